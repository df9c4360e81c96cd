package analysis

import (
	"fmt"

	telemetry "istio.io/api/telemetry/v1alpha1"
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
//     is not disabled, when the mesh config has no
//     defaultProviders.accessLogging (Istio's default has none).
//
//   - IST0002 (Istio: telemetry/lightstep.go LightstepAnalyzer at
//     815deca43c3b) for each spec.tracing provider that names a Lightstep
//     extension provider of the mesh config.
//
// The Telemetry names of a message are sorted, as Istio's getNames sorts them.
func telemetries(in *Input) []Message {
	mesh := in.mesh()
	checkProviders := len(mesh.GetDefaultProviders().GetAccessLogging()) == 0
	lightstep := map[string]bool{} // names of Lightstep extension providers
	for _, p := range mesh.GetExtensionProviders() {
		//lint:ignore SA1019 finding the deprecated provider is the point (Istio's LightstepAnalyzer)
		if p.GetLightstep() != nil {
			lightstep[p.GetName()] = true
		}
	}
	var namespaces []string
	byNamespace := map[string][]selectingObject{}
	var out []Message
	for _, o := range in.Objects {
		spec, ok := o.Spec.(*telemetry.Telemetry)
		if !ok {
			continue
		}
		if _, seen := byNamespace[o.Namespace]; !seen {
			namespaces = append(namespaces, o.Namespace)
		}
		byNamespace[o.Namespace] = append(byNamespace[o.Namespace], selectingObject{o: o, labels: spec.GetSelector().GetMatchLabels(),
			unselected: spec.GetSelector() == nil, notFoundField: "spec.selector.matchLabels"})
		for i, l := range spec.GetAccessLogging() {
			if !checkProviders || l.GetDisabled().GetValue() || len(l.GetProviders()) > 0 {
				continue
			}
			out = append(out, newMessage(o, InvalidTelemetryProvider, fmt.Sprintf("spec.accessLogging[%d].providers", i),
				fmt.Sprintf("The Telemetry %v in namespace %q with empty providers will be ignored.", o.Name, o.Namespace)))
		}
		for i, t := range spec.GetTracing() {
			for j, p := range t.GetProviders() {
				if lightstep[p.GetName()] {
					out = append(out, newMessage(o, Deprecated, fmt.Sprintf("spec.tracing[%d].providers[%d]", i, j),
						fmt.Sprintf("Deprecated: The Lightstep provider %s is deprecated, please migrate to OpenTelemetry provider.", p.GetName())))
				}
			}
		}
	}
	workloads := in.selectable()
	for _, ns := range namespaces {
		s := selectionsOf(byNamespace[ns], workloads, ns, in.AllWorkloads)
		out = append(out, s.notFound...)
		out = append(out, s.conflicts(ConflictingTelemetryWorkloadSelectors, "Telemetries", ns)...)
		out = append(out, s.withoutSelector(MultipleTelemetriesWithoutWorkloadSelectors, "spec.selector", "Telemetries", ns)...)
	}
	return out
}
