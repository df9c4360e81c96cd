package injector

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Injection templates a pod can ask for with inject.istio.io/templates
// (Istio's pkg/kube/inject/inject.go RunTemplate). The gateway template is what Istio's
// gateway Helm chart and
// gateway Deployments use: a pod that is only a proxy, run as a router.
const (
	TemplateSidecar = "sidecar"
	TemplateGateway = "gateway"
)

// gatewayContainer builds istio-proxy for the gateway template: `proxy
// router`, no init container, no traffic capture, readiness probe from the
// values only, no resources of its own and only the proxy's uid/gid as
// securityContext (Istio's gateway template); the rest comes from the
// container the gateway's Deployment declares (usually `istio-proxy` with
// `image: auto`), merged over this one.
func (p *params) gatewayContainer(pod *corev1.Pod) (*corev1.Container, error) {
	v := p.cfg.Values.Global
	c, err := p.agentContainer(pod, "router")
	if err != nil {
		return nil, err
	}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromInt32(15021)}},
		InitialDelaySeconds: *v.Proxy.ReadinessInitialDelaySeconds,
		PeriodSeconds:       *v.Proxy.ReadinessPeriodSeconds,
		TimeoutSeconds:      3,
		FailureThreshold:    *v.Proxy.ReadinessFailureThreshold,
	}
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(p.proxyUID), RunAsGroup: ptr(p.proxyGID)}
	if v.Proxy.Lifecycle != nil {
		c.Lifecycle = v.Proxy.Lifecycle.DeepCopy()
	}
	return c, nil
}

// unprivilegedPortSysctl lets the gateway bind ports below 1024 without
// NET_BIND_SERVICE; Istio's gateway template sets it on the pod.
var unprivilegedPortSysctl = corev1.Sysctl{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}

// gatewayPodSecurity sets the gateway template's pod sysctls. The template
// (gateway-injection-template.yaml, `spec.securityContext.sysctls`) is laid
// over the pod by a strategic merge (Istio's pkg/kube/inject/inject.go
// applyOverlayYAML): the securityContext's other fields stay the pod's, but
// PodSecurityContext.Sysctls is +listType=atomic with no patch merge key, so
// the template's list replaces the pod's whole list.
func gatewayPodSecurity(pod *corev1.Pod) {
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	pod.Spec.SecurityContext.Sysctls = []corev1.Sysctl{unprivilegedPortSysctl}
}
