package injector

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Injection templates a pod can ask for with inject.istio.io/templates
// (spec §2.11). The gateway template is what Istio's gateway Helm chart and
// gateway Deployments use: a pod that is only a proxy, run as a router.
const (
	TemplateSidecar = "sidecar"
	TemplateGateway = "gateway"
)

// gatewayContainer builds istio-proxy for the gateway template: `proxy
// router`, no init container, no traffic capture, readiness probe from the
// values only, and no resources or securityContext of its own; those come
// from the container the gateway's Deployment declares (usually
// `istio-proxy` with `image: auto`), merged over this one.
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
	if v.Proxy.Lifecycle != nil {
		c.Lifecycle = v.Proxy.Lifecycle.DeepCopy()
	}
	return c, nil
}
