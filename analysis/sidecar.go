package analysis

import (
	"fmt"
	"slices"

	"istio.io/api/label"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/validation/crossref"
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
//     reports IneffectivePolicy instead (not reported by meshguard).
//
//   - IST0101 for a Sidecar whose selector matches no workload, only when
//     in.AllWorkloads says the workload list is complete (`meshguard analyze
//     --kubeconfig` lists the pods of every Sidecar selector), as for a
//     Gateway (gatewayWorkloadPorts): from files the pods are usually not
//     part of the input.
//
// The Sidecar names are sorted (Istio lists them in its store's iteration
// order). Not done here: the skip of pods in ambient mode of newer Istio
// (annotation ambient.istio.io/redirection, which Workload does not carry;
// the selector.go of istio/istio 0a617ca has no such skip).
func sidecarSelectors(in *Input) []Message {
	type sidecar struct {
		o    Object
		spec *networking.Sidecar
	}
	var namespaces []string
	byNamespace := map[string][]sidecar{}
	for _, o := range in.Objects {
		if spec, ok := o.Spec.(*networking.Sidecar); ok {
			if _, seen := byNamespace[o.Namespace]; !seen {
				namespaces = append(namespaces, o.Namespace)
			}
			byNamespace[o.Namespace] = append(byNamespace[o.Namespace], sidecar{o, spec})
		}
	}
	if len(byNamespace) == 0 {
		return nil
	}
	workloads := map[string][]Workload{}
	for _, w := range in.Workloads {
		if _, ok := byNamespace[w.Namespace]; ok {
			workloads[w.Namespace] = append(workloads[w.Namespace], w)
		}
	}
	var out []Message
	for _, ns := range namespaces {
		var unselected []Object
		// The Sidecars selecting each workload (by name: a Pod and a
		// Deployment of one name, or one object given twice, are one
		// workload), each Sidecar once.
		var order []string
		selecting := map[string][]Object{}
		for _, s := range byNamespace[ns] {
			sel := s.spec.GetWorkloadSelector().GetLabels()
			if len(sel) == 0 {
				unselected = append(unselected, s.o)
				continue
			}
			selector := labels.SelectorFromSet(sel)
			found := false
			for _, w := range workloads[ns] {
				if !selector.Matches(labels.Set(w.Labels)) {
					continue
				}
				found = true
				if _, ok := selecting[w.Name]; !ok {
					order = append(order, w.Name)
				}
				if !slices.ContainsFunc(selecting[w.Name], func(o Object) bool { return o.Name == s.o.Name }) {
					selecting[w.Name] = append(selecting[w.Name], s.o)
				}
			}
			if !found && in.AllWorkloads {
				out = append(out, newMessage(s.o, crossref.CodeReferencedResourceNotFound, "spec.workloadSelector.labels",
					fmt.Sprintf("Referenced selector not found: %q", selector.String())))
			}
		}
		for _, pod := range order {
			sidecars := selecting[pod]
			if len(sidecars) < 2 {
				continue
			}
			names := sidecarNames(sidecars)
			for _, o := range sidecars {
				out = append(out, newMessage(o, ConflictingSidecarWorkloadSelectors, "metadata.name",
					fmt.Sprintf("The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.",
						names, ns, pod)))
			}
		}
		if len(unselected) < 2 || ambientNamespace(in.Namespaces[ns]) {
			continue
		}
		names := sidecarNames(unselected)
		for _, o := range unselected {
			out = append(out, newMessage(o, MultipleSidecarsWithoutWorkloadSelectors, "spec.workloadSelector",
				fmt.Sprintf("The Sidecars %v in namespace %q have no workload selector, which can lead to undefined behavior.",
					names, ns)))
		}
	}
	return out
}

func sidecarNames(objs []Object) []string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	slices.Sort(names)
	return names
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
