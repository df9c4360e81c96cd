package injector

import (
	corev1 "k8s.io/api/core/v1"
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
func (p *params) applyGrpcSimple(pod *corev1.Pod, prev previous) error {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	// A re-injection: the app containers the previous injection touched were
	// stripped with it; their originals come back from the overrides.
	for _, o := range p.overrides {
		if !isInjectedName(o.Name) && !containsName(pod.Spec.Containers, o.Name) {
			pod.Spec.Containers = append(pod.Spec.Containers, o)
		}
	}
	originals := make([]corev1.Container, len(pod.Spec.Containers))
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].DeepCopyInto(&originals[i])
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
		c.Env = mergeByName(env, c.Env, func(e corev1.EnvVar) string { return e.Name })
		c.VolumeMounts = mergeByName([]corev1.VolumeMount{mount}, c.VolumeMounts, func(m corev1.VolumeMount) string { return m.MountPath })
		st.Containers = append(st.Containers, c.Name)
	}
	init := corev1.Container{
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
	pod.Spec.InitContainers = mergeByName([]corev1.Container{init}, pod.Spec.InitContainers, func(c corev1.Container) string { return c.Name })
	pod.Spec.Volumes = mergeByName([]corev1.Volume{{Name: grpcBootstrapVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		pod.Spec.Volumes, func(v corev1.Volume) string { return v.Name })

	a := pod.Annotations
	a[AnnotationRewriteProbes] = "false"
	if _, err := p.mergePrometheus(pod, prev.prometheus); err != nil {
		return err
	}
	a[AnnotationOverrides] = recordOverrides(originals, false)
	// The status first: injectedAnnotations may override it (Istio
	// webhook.go applyMetadata).
	a[AnnotationStatus] = st.JSON()
	for k, v := range p.cfg.Values.SidecarInjectorWebhook.InjectedAnnotations {
		a[k] = v
	}
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
