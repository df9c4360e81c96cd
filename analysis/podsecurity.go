package analysis

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// InvalidApplicationUID is the code of Istio's application UID analyzer
// (pkg/config/analysis/analyzers/deployment/pod.go ApplicationUIDAnalyzer,
// istio/istio e9503ddd5df0 and 0a617ca985f9, which agree; level and text from
// pkg/config/analysis/msg/messages.gen.go NewInvalidApplicationUID).
const InvalidApplicationUID = "IST0144"

// sidecarProxyUID is the user ID the sidecar proxy runs as (Istio: pod.go
// UserID), which an application container must not use: the proxy's iptables
// rules exempt that UID's traffic from redirection.
const sidecarProxyUID = int64(1337)

// istioOperatorContainer is the container name, besides istio-proxy, that
// the analyzer does not judge (Istio: analyzers/util/constants.go
// IstioOperator).
const istioOperatorContainer = "istio-operator"

func init() {
	Types[InvalidApplicationUID] = MessageType{InvalidApplicationUID, "InvalidApplicationUID", Warning}
}

// applicationUIDs is Istio's ApplicationUIDAnalyzer.Analyze over
// in.Workloads (analyzeAppUIDForPod, analyzeAppUIDForDeployment): a Pod, or
// a Deployment's pod template, that is not part of the Istio control plane
// (util.IsIstioControlPlane: the object's own labels, a Pod's labels or a
// Deployment's, not its template's, have the key "istio" or release=istio)
// is IST0144 when its spec.securityContext.runAsUser is 1337, and again for
// each container (not init container) other than istio-proxy and
// istio-operator whose securityContext.runAsUser is 1337. Each message has
// the field it is about; Istio's have no field and print alike, and
// istioctl's diag.Messages.SortedDedupedCopy keeps one of them. Every
// namespace is judged (Istio's analyzer skips none). From a cluster, only
// the pods and Deployments `meshguard analyze --kubeconfig` lists are
// judged.
func applicationUIDs(in *Input) []Message {
	var out []Message
	for _, w := range in.Workloads {
		own, spec := w.Labels, field.NewPath("spec")
		if w.Kind == "Deployment" {
			own, spec = w.DeploymentLabels, field.NewPath("spec", "template", "spec")
		}
		if _, ok := own["istio"]; ok || own["release"] == "istio" {
			continue
		}
		o := Object{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
		report := func(p *field.Path) {
			out = append(out, newMessage(o, InvalidApplicationUID, p.String(), "User ID (UID) 1337 is reserved for the sidecar proxy."))
		}
		if w.RunAsUser != nil && *w.RunAsUser == sidecarProxyUID {
			report(spec.Child("securityContext", "runAsUser"))
		}
		for i, c := range w.Containers {
			if c.Name == istioProxyContainer || c.Name == istioOperatorContainer || c.RunAsUser == nil || *c.RunAsUser != sidecarProxyUID {
				continue
			}
			report(spec.Child("containers").Index(i).Child("securityContext", "runAsUser"))
		}
	}
	return out
}
