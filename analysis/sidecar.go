package analysis

import (
	"istio.io/api/label"
	networking "istio.io/api/networking/v1alpha3"
)

// Codes of Istio's Sidecar selector analyzer
// (pkg/config/analysis/analyzers/sidecar/selector.go SelectorAnalyzer.Analyze;
// texts and levels from pkg/config/analysis/msg/messages.yaml).
const (
	ConflictingSidecarWorkloadSelectors      = "IST0110"
	MultipleSidecarsWithoutWorkloadSelectors = "IST0111"
)

func init() {
	Types[ConflictingSidecarWorkloadSelectors] = MessageType{ConflictingSidecarWorkloadSelectors, "ConflictingSidecarWorkloadSelectors", Error}
	Types[MultipleSidecarsWithoutWorkloadSelectors] = MessageType{MultipleSidecarsWithoutWorkloadSelectors, "MultipleSidecarsWithoutWorkloadSelectors", Error}
}

// sidecarSelectors is Istio's SelectorAnalyzer over the whole input, per
// namespace:
//
//   - IST0110 for each Sidecar whose workloadSelector matches a workload
//     (in.Workloads, same namespace) that another Sidecar's selector also
//     matches: one message per Sidecar and workload, naming the Sidecars
//     selecting it and the workload;
//
//   - IST0111 for each Sidecar without a selector (none, or no labels) when
//     its namespace has several, unless the namespace is in ambient mode
//     (Istio's util.NamespaceInAmbientMode, ambientNamespace), where Istio
//     reports IneffectivePolicy instead (ineffective.go).
//
//   - IST0101 for a Sidecar whose selector matches no workload, only when
//     in.AllWorkloads says the workload list is complete (`meshguard analyze
//     --kubeconfig` lists the pods of every Sidecar selector), as for a
//     Gateway (gatewayWorkloadPorts): from files the pods are usually not
//     part of the input.
//
// A workload in ambient mode (workloadInAmbientMode: Istio's
// util.PodInAmbientMode) gets no IST0110, as the newest stored selector.go
// (the version with IneffectivePolicy) skips it; it still counts as found
// for IST0101. Istio reports IneffectivePolicy for the Sidecars selecting it
// instead (ineffective.go). The Sidecar names are sorted (Istio
// lists them in its store's iteration order).
func sidecarSelectors(in *Input) []Message {
	var namespaces []string
	byNamespace := map[string][]selectingObject{}
	for _, o := range in.Objects {
		if spec, ok := o.Spec.(*networking.Sidecar); ok {
			if _, seen := byNamespace[o.Namespace]; !seen {
				namespaces = append(namespaces, o.Namespace)
			}
			sel := spec.GetWorkloadSelector().GetLabels()
			byNamespace[o.Namespace] = append(byNamespace[o.Namespace],
				selectingObject{o: o, labels: sel, unselected: len(sel) == 0, notFoundField: "spec.workloadSelector.labels"})
		}
	}
	var out []Message
	workloads := in.selectable()
	for _, ns := range namespaces {
		s := selectionsOf(byNamespace[ns], workloads, ns, in.AllWorkloads)
		for _, w := range workloads {
			if w.Namespace == ns && workloadInAmbientMode(w) {
				delete(s.selecting, w.Name) // no sidecar: no conflict (Istio: IneffectivePolicy)
			}
		}
		out = append(out, s.notFound...)
		out = append(out, s.conflicts(ConflictingSidecarWorkloadSelectors, "Sidecars", ns)...)
		if !ambientNamespace(in.Namespaces[ns]) {
			out = append(out, s.withoutSelector(MultipleSidecarsWithoutWorkloadSelectors, "spec.workloadSelector", "Sidecars", ns)...)
		}
	}
	return out
}

// ambientNamespace is Istio's util.NamespaceInAmbientMode
// (pkg/config/analysis/analyzers/util) on a namespace's labels: labelled
// istio.io/dataplane-mode=ambient, and neither istio-injection=enabled nor a
// non-empty istio.io/rev (sidecar injection wins). An unknown namespace (nil
// labels) is not in ambient mode, as Istio's nil Namespace resource.
func ambientNamespace(nsLabels map[string]string) bool {
	if nsLabels["istio-injection"] == "enabled" || nsLabels[label.IoIstioRev.Name] != "" {
		return false
	}
	return nsLabels[label.IoIstioDataplaneMode.Name] == "ambient"
}
