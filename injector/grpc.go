package injector

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/template"
)

// TemplateGrpcSimple is Istio's proxyless gRPC template without an agent:
// an init container writes the xDS bootstrap, every container gets the
// GRPC_XDS_BOOTSTRAP env and its mount (the `grpc-simple` template of
// Istio's default install).
const TemplateGrpcSimple = "grpc-simple"

const (
	grpcBootstrapInit   = "grpc-bootstrap-init"
	grpcBootstrapVolume = "grpc-io-proxyless-bootstrap"
	grpcBootstrapDir    = "/var/lib/grpc/data/"
)

// grpcBootstrapScript is the init container's command of Istio's
// grpc-simple template, unchanged.
const grpcBootstrapScript = `NODE_ID="sidecar~${INSTANCE_IP}~${POD_NAME}.${POD_NAMESPACE}~cluster.local"
SERVER_URI="dns:///istiod.${ISTIO_NAMESPACE}.svc:15010"
echo '
{
  "xds_servers": [
    {
      "server_uri": "'${SERVER_URI}'",
      "channel_creds": [{"type": "insecure"}],
      "server_features" : ["xds_v3"]
    }
  ],
  "node": {
    "id": "'${NODE_ID}'",
    "metadata": {
      "GENERATOR": "grpc"
    }
  }
}' > /var/lib/grpc/data/bootstrap.json`

// applyGrpcSimple injects the grpc-simple template. As in Istio, the
// template touches the app containers, so they are listed in the status
// annotation and their originals kept in proxy.istio.io/overrides; the
// Prometheus merge still rewrites the annotations (there is no sidecar to
// record the app's config), and the template turns probe rewriting off.
//
// The template injects grpc-bootstrap-init and every container of the pod,
// and nothing else (Istio's reapplyOverwrittenContainers, webhook.go, takes
// as overrides only the names a template injected): a container the pod
// declares as istio-proxy, istio-init or istio-validation is one of its own,
// an app container among the containers and untouched among the init
// containers; the pod's own grpc-bootstrap-init is merged over the injected
// one where it stands and recorded.
func (p *params) applyGrpcSimple(pod *corev1.Pod, prev previous) error {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	none := func(string) bool { return false }
	p.keepNotInjected(pod, none)
	// A re-injection: the app containers the previous injection touched were
	// stripped with it; their originals come back from the overrides. A
	// recorded init container other than grpc-bootstrap-init was injected
	// by another template: not injected now.
	p.reinsertRecorded(pod, prev, none)
	var userInit *corev1.Container
	for i, o := range p.overrides {
		if o.Name == grpcBootstrapInit {
			userInit = &p.overrides[i]
			continue
		}
		p.warnings = append(p.warnings, fmt.Sprintf("container %q is not injected with these settings; the user-declared one is ignored", o.Name))
	}
	// The recorded one first, else the pod's own (reapplyOverwrittenContainers).
	own := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == grpcBootstrapInit })
	if userInit == nil && own >= 0 {
		userInit = pod.Spec.InitContainers[own].DeepCopy()
	}
	var po proxyOverrides
	po.Containers = make([]corev1.Container, len(pod.Spec.Containers))
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].DeepCopyInto(&po.Containers[i])
	}
	mount := corev1.VolumeMount{Name: grpcBootstrapVolume, MountPath: grpcBootstrapDir}
	env := []corev1.EnvVar{
		{Name: "GRPC_XDS_BOOTSTRAP", Value: grpcBootstrapDir + "bootstrap.json"},
		{Name: "GRPC_GO_LOG_VERBOSITY_LEVEL", Value: "99"},
		{Name: "GRPC_GO_LOG_SEVERITY_LEVEL", Value: "info"},
	}
	st := Status{Revision: p.cfg.Revision(), InitContainers: []string{grpcBootstrapInit}, Volumes: []string{grpcBootstrapVolume}}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		// The template's container merged with the pod's as Istio merges a
		// user's container with an injected one: the pod's env and mounts
		// win (e.g. its own GRPC_XDS_BOOTSTRAP), in the merges' order.
		merged, err := applyOverride(&corev1.Container{Name: c.Name, Env: env, VolumeMounts: []corev1.VolumeMount{mount}}, *c)
		if err != nil {
			return err
		}
		*c = *merged
		st.Containers = append(st.Containers, c.Name)
	}
	init := &corev1.Container{
		Name:         grpcBootstrapInit,
		Image:        "busybox:1.28",
		Command:      []string{"sh", "-c", grpcBootstrapScript},
		VolumeMounts: []corev1.VolumeMount{mount},
		Env: []corev1.EnvVar{
			fieldEnv("INSTANCE_IP", "status.podIP"),
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			{Name: "ISTIO_NAMESPACE", Value: p.cfg.Values.Global.IstioNamespace + "\n"},
		},
	}
	if userInit != nil {
		var err error
		if init, err = p.override(init, *userInit); err != nil {
			return err
		}
		po.InitContainers = []corev1.Container{*userInit}
	}
	// Where the pod has it, or had it before a re-injection stripped it (the
	// template merges into it), else first (a new item of Istio's strategic
	// merge).
	if own >= 0 {
		pod.Spec.InitContainers[own] = *init
	} else {
		at := min(prev.initPlaces[grpcBootstrapInit], len(pod.Spec.InitContainers))
		pod.Spec.InitContainers = slices.Insert(pod.Spec.InitContainers, at, *init)
	}
	pod.Spec.Volumes = mergeByName([]corev1.Volume{{Name: grpcBootstrapVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		pod.Spec.Volumes, func(v corev1.Volume) string { return v.Name })

	a := pod.Annotations
	a[AnnotationRewriteProbes] = "false"
	if _, err := p.mergePrometheus(pod, prev.prometheus); err != nil {
		return err
	}
	a[AnnotationOverrides] = po.JSON()
	// The status first: injectedAnnotations may override it (Istio
	// webhook.go applyMetadata).
	a[AnnotationStatus] = st.JSON()
	for k, v := range p.cfg.Values.SidecarInjectorWebhook.InjectedAnnotations {
		a[k] = v
	}
	// A pod's own istio-proxy among the init containers, or
	// enable-core-dump, is ordered as Istio's reorderPod orders every pod.
	template.Reorder(pod, p.hold)
	return nil
}

func containsName(cs []corev1.Container, name string) bool {
	for i := range cs {
		if cs[i].Name == name {
			return true
		}
	}
	return false
}
