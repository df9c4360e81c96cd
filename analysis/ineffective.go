package analysis

import (
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/labels"
)

// IneffectivePolicy is the code Istio's Sidecar selector analyzer reports
// for a Sidecar that has no effect because what it selects is in ambient
// mode (pkg/config/analysis/analyzers/sidecar/selector.go
// SelectorAnalyzer.Analyze, the version with IneffectivePolicy; Warning, the
// text "The policy has no impact: %s." as istio.io's generated message page
// content/en/docs/reference/config/analysis/ist0167/index.md prints it).
// Of the stored Istio analyzers only that one reports it.
const IneffectivePolicy = "IST0167"

func init() {
	Types[IneffectivePolicy] = MessageType{IneffectivePolicy, "IneffectivePolicy", Warning}
}

// ineffectivePolicies is the IneffectivePolicy half of Istio's
// sidecar.SelectorAnalyzer (sidecar.go has the rest), each Sidecar reported
// at most once:
//
//   - a Sidecar whose workloadSelector labels select a workload of its
//     namespace in ambient mode (workloadInAmbientMode: Istio's
//     util.PodInAmbientMode, the ambient.istio.io/redirection annotation):
//     "selected workload is in ambient mode, the policy has no impact";
//   - a Sidecar without workloadSelector labels in a namespace in ambient
//     mode (ambientNamespace: util.NamespaceInAmbientMode; an unknown
//     namespace is not): "namespace is in ambient mode, the policy has no
//     impact".
//
// Only the workloads given count: a Sidecar selecting no given workload
// gets nothing here, whether or not in.AllWorkloads (Istio reports only
// pods it sees too).
func ineffectivePolicies(in *Input) []Message {
	var out []Message
	for _, o := range in.Objects {
		sc, ok := o.Spec.(*networking.Sidecar)
		if !ok {
			continue
		}
		sel := sc.GetWorkloadSelector().GetLabels()
		if len(sel) == 0 {
			if ambientNamespace(in.Namespaces[o.Namespace]) {
				out = append(out, newMessage(o, IneffectivePolicy, "metadata.namespace",
					"The policy has no impact: namespace is in ambient mode, the policy has no impact."))
			}
			continue
		}
		selector := labels.SelectorFromSet(sel)
		for _, w := range in.selectable() {
			if w.Namespace == o.Namespace && workloadInAmbientMode(w) && selector.Matches(labels.Set(w.Labels)) {
				out = append(out, newMessage(o, IneffectivePolicy, "spec.workloadSelector.labels",
					"The policy has no impact: selected workload is in ambient mode, the policy has no impact."))
				break
			}
		}
	}
	return out
}
