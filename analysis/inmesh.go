package analysis

import "slices"

// The names Istio's analyzers read on pods (Istio:
// pkg/config/analysis/analyzers/util/constants.go IstioProxyName;
// istio.io/api label.SidecarInject / annotation.SidecarInject, one name;
// pkg/config/constants AmbientRedirection, AmbientRedirectionEnabled).
const (
	istioProxyContainer       = "istio-proxy"
	sidecarInjectKey          = "sidecar.istio.io/inject"
	ambientRedirectionKey     = "ambient.istio.io/redirection"
	ambientRedirectionEnabled = "enabled"
)

// workloadInMesh is Istio's util.PodInMesh for a Pod and util.DeploymentInMesh
// for a Deployment (pkg/config/analysis/analyzers/util/in_mesh.go, istio/istio
// 2a83968b0e99, inMesh): the workload has a sidecar when
//
//   - a container named istio-proxy has an image (a Pod's init containers
//     count too, native sidecars; a Deployment's template's do not, as in
//     DeploymentInMesh);
//   - else the sidecar.istio.io/inject label, when present, is "true";
//   - else the sidecar.istio.io/inject annotation, when present, is "true";
//   - else its namespace is known (a Namespace of namespaces) and labelled
//     istio-injection=enabled (istio.io/rev is not read, as in Istio);
//   - else not.
func workloadInMesh(w Workload, namespaces map[string]map[string]string) bool {
	cs := w.Containers
	if w.Kind != "Deployment" {
		cs = slices.Concat(w.Containers, w.InitContainers)
	}
	if hasIstioProxy(cs) {
		return true
	}
	if v, ok := w.Labels[sidecarInjectKey]; ok {
		return v == "true"
	}
	if v, ok := w.Annotations[sidecarInjectKey]; ok {
		return v == "true"
	}
	if nsLabels, ok := namespaces[w.Namespace]; ok {
		return nsLabels[injectionLabel] == "enabled"
	}
	return false
}

// hasIstioProxy is Istio's hasIstioProxy (in_mesh.go): the first container
// named istio-proxy has a non-empty image.
func hasIstioProxy(cs []Container) bool {
	for _, c := range cs {
		if c.Name == istioProxyContainer {
			return c.Image != ""
		}
	}
	return false
}

// workloadInAmbientMode is Istio's util.PodInAmbientMode (in_mesh.go): the
// annotation ambient.istio.io/redirection is "enabled".
func workloadInAmbientMode(w Workload) bool {
	return w.Annotations[ambientRedirectionKey] == ambientRedirectionEnabled
}
