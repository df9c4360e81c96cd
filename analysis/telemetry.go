package analysis

import (
	"fmt"
	"slices"

	telemetry "istio.io/api/telemetry/v1alpha1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/validation/crossref"
)

// Codes of Istio's Telemetry analyzers (pkg/config/analysis/analyzers/telemetry;
// names, levels and texts from pkg/config/analysis/msg/messages.yaml).
const (
	InvalidTelemetryProvider                    = "IST0157"
	ConflictingTelemetryWorkloadSelectors       = "IST0159"
	MultipleTelemetriesWithoutWorkloadSelectors = "IST0160"
)

func init() {
	Types[InvalidTelemetryProvider] = MessageType{InvalidTelemetryProvider, "InvalidTelemetryProvider", Warning}
	Types[ConflictingTelemetryWorkloadSelectors] = MessageType{ConflictingTelemetryWorkloadSelectors, "ConflictingTelemetryWorkloadSelectors", Error}
	Types[MultipleTelemetriesWithoutWorkloadSelectors] = MessageType{MultipleTelemetriesWithoutWorkloadSelectors, "MultipleTelemetriesWithoutWorkloadSelectors", Error}
}

// telemetries runs Istio's Telemetry analyzers over the whole input:
//
//   - IST0160 (Istio: telemetry/default_selector.go DefaultSelectorAnalyzer)
//     for each Telemetry without spec.selector (absent: an empty selector is
//     a selector there; targetRef/targetRefs are not looked at, as in Istio)
//     when its namespace has several.
//
//   - IST0159 (Istio: telemetry/selector.go SelectorAnalyzer at ee836cd0886f)
//     for each Telemetry whose selector.matchLabels (non-empty) matches a
//     workload of its namespace (in.Workloads) that another Telemetry's
//     selector also matches: one message per Telemetry and workload; and
//     IST0101 for a selector matching none, only when in.AllWorkloads says
//     the workload list is complete, as for Sidecars (sidecarSelectors).
//
//   - IST0157 (Istio: telemetry/providers.go ProviderAnalyzer at
//     461f85ba4afe) for each spec.accessLogging entry without providers that
//     is not disabled. Istio runs it only when the MeshConfig has no
//     defaultProviders.accessLogging; meshguard's analyze reads no MeshConfig
//     and takes Istio's default (none), so it always runs.
//
// The Telemetry names of a message are sorted, as Istio's getNames sorts them.
func telemetries(in *Input) []Message {
	type tel struct {
		o    Object
		spec *telemetry.Telemetry
	}
	var namespaces []string
	byNamespace := map[string][]tel{}
	var out []Message
	for _, o := range in.Objects {
		spec, ok := o.Spec.(*telemetry.Telemetry)
		if !ok {
			continue
		}
		if _, seen := byNamespace[o.Namespace]; !seen {
			namespaces = append(namespaces, o.Namespace)
		}
		byNamespace[o.Namespace] = append(byNamespace[o.Namespace], tel{o, spec})
		for i, l := range spec.GetAccessLogging() {
			if l.GetDisabled().GetValue() || len(l.GetProviders()) > 0 {
				continue
			}
			out = append(out, newMessage(o, InvalidTelemetryProvider, fmt.Sprintf("spec.accessLogging[%d].providers", i),
				fmt.Sprintf("The Telemetry %v in namespace %q with empty providers will be ignored.", o.Name, o.Namespace)))
		}
	}
	for _, ns := range namespaces {
		var unselected []Object
		var order []string                 // workloads in the order first selected
		selecting := map[string][]Object{} // by workload name: a Pod and a Deployment of one name are one
		for _, t := range byNamespace[ns] {
			if t.spec.GetSelector() == nil {
				unselected = append(unselected, t.o)
			}
			sel := t.spec.GetSelector().GetMatchLabels()
			if len(sel) == 0 {
				continue
			}
			selector := labels.SelectorFromSet(sel)
			found := false
			for _, w := range in.Workloads {
				if w.Namespace != ns || !selector.Matches(labels.Set(w.Labels)) {
					continue
				}
				found = true
				if _, ok := selecting[w.Name]; !ok {
					order = append(order, w.Name)
				}
				if !slices.ContainsFunc(selecting[w.Name], func(o Object) bool { return o.Name == t.o.Name }) {
					selecting[w.Name] = append(selecting[w.Name], t.o)
				}
			}
			if !found && in.AllWorkloads {
				out = append(out, newMessage(t.o, crossref.CodeReferencedResourceNotFound, "spec.selector.matchLabels",
					fmt.Sprintf("Referenced selector not found: %q", selector.String())))
			}
		}
		for _, pod := range order {
			if objs := selecting[pod]; len(objs) > 1 {
				names := sidecarNames(objs)
				for _, o := range objs {
					out = append(out, newMessage(o, ConflictingTelemetryWorkloadSelectors, "metadata.name",
						fmt.Sprintf("The Telemetries %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.",
							names, ns, pod)))
				}
			}
		}
		if len(unselected) > 1 {
			names := sidecarNames(unselected)
			for _, o := range unselected {
				out = append(out, newMessage(o, MultipleTelemetriesWithoutWorkloadSelectors, "spec.selector",
					fmt.Sprintf("The Telemetries %v in namespace %q have no workload selector, which can lead to undefined behavior.",
						names, ns)))
			}
		}
	}
	return out
}
