package validation

import (
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	telemetry "istio.io/api/telemetry/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

func TestValidateTelemetry(t *testing.T) {
	prov := func(names ...string) []*telemetry.ProviderRef {
		out := make([]*telemetry.ProviderRef, len(names))
		for i, n := range names {
			out[i] = &telemetry.ProviderRef{Name: n}
		}
		return out
	}
	tagOverride := func(name string, op telemetry.MetricsOverrides_TagOverride_Operation, value string) *telemetry.Telemetry {
		return &telemetry.Telemetry{Metrics: []*telemetry.Metrics{{Overrides: []*telemetry.MetricsOverrides{{
			TagOverrides: map[string]*telemetry.MetricsOverrides_TagOverride{name: {Operation: op, Value: value}}}}}}}
	}
	runKindCases(t, validateTelemetry, []kindCase{
		{name: "full", spec: &telemetry.Telemetry{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "a"}},
			Tracing: []*telemetry.Tracing{{Providers: prov("otlp"), RandomSamplingPercentage: wrapperspb.Double(54.5),
				CustomTags: map[string]*telemetry.Tracing_CustomTag{
					"env":    {Type: &telemetry.Tracing_CustomTag_Environment{Environment: &telemetry.Tracing_Environment{Name: "NAME"}}},
					"header": {Type: &telemetry.Tracing_CustomTag_Header{Header: &telemetry.Tracing_RequestHeader{Name: "x-name"}}},
					"lit":    {Type: &telemetry.Tracing_CustomTag_Literal{Literal: &telemetry.Tracing_Literal{Value: "v"}}}}}},
			Metrics: []*telemetry.Metrics{{Providers: prov("prometheus"), ReportingInterval: durationpb.New(5e9),
				Overrides: []*telemetry.MetricsOverrides{{Match: &telemetry.MetricSelector{MetricMatch: &telemetry.MetricSelector_CustomMetric{CustomMetric: "foo"}},
					TagOverrides: map[string]*telemetry.MetricsOverrides_TagOverride{"request_host": {Value: "request.host"}, "gone": {Operation: telemetry.MetricsOverrides_TagOverride_REMOVE}}}}}},
			AccessLogging: []*telemetry.AccessLogging{{Providers: prov("stdout"), Filter: &telemetry.AccessLogging_Filter{Expression: "response.code >= 400"}}}}},
		{name: "empty provider names", spec: &telemetry.Telemetry{Metrics: []*telemetry.Metrics{{Providers: prov("")}},
			Tracing: []*telemetry.Tracing{{Providers: prov("")}}, AccessLogging: []*telemetry.AccessLogging{{Providers: prov("")}}},
			errs: []string{"spec.metrics[0].providers[0].name: Required value", "spec.tracing[0].providers[0].name", "spec.accessLogging[0].providers[0].name"}},
		{name: "multiple tracing and providers warn", spec: &telemetry.Telemetry{Tracing: []*telemetry.Tracing{{Providers: prov("a", "b")}, {}}},
			warns: []string{"spec.tracing: Invalid value: multiple tracing is not currently supported", "spec.tracing[0].providers: Invalid value: multiple providers"}},
		{name: "sampling out of range", spec: &telemetry.Telemetry{Tracing: []*telemetry.Tracing{{RandomSamplingPercentage: wrapperspb.Double(101)}}},
			errs: []string{"spec.tracing[0].randomSamplingPercentage: Invalid value: 101: randomSamplingPercentage must be in range [0.0, 100.0]"}},
		{name: "custom tags", spec: &telemetry.Telemetry{Tracing: []*telemetry.Tracing{{CustomTags: map[string]*telemetry.Tracing_CustomTag{
			"":  {Type: &telemetry.Tracing_CustomTag_Literal{Literal: &telemetry.Tracing_Literal{Value: "v"}}},
			"a": nil,
			"b": {Type: &telemetry.Tracing_CustomTag_Literal{Literal: &telemetry.Tracing_Literal{}}},
			"c": {Type: &telemetry.Tracing_CustomTag_Header{Header: &telemetry.Tracing_RequestHeader{}}},
			"d": {Type: &telemetry.Tracing_CustomTag_Environment{Environment: &telemetry.Tracing_Environment{}}},
			"e": {},
		}}}},
			errs: []string{"spec.tracing[0].customTags[]: Invalid value: \"\": tag name must not be empty", "spec.tracing[0].customTags[a]: Required value",
				"customTags[b].literal.value", "customTags[c].header.name", "customTags[d].environment.name"},
			// Istio accepts a tag of no type (and ignores it).
			warns: []string{`spec.tracing[0].customTags[e]: Invalid value: "e": custom tag sets none of`}},
		{name: "reportingInterval checked (Istio does not)", spec: &telemetry.Telemetry{Metrics: []*telemetry.Metrics{{ReportingInterval: durationpb.New(0)}}},
			errs: []string{"spec.metrics[0].reportingInterval: Invalid value: \"0s\": duration must be greater than 1ms"}},
		{name: "empty custom metric", spec: &telemetry.Telemetry{Metrics: []*telemetry.Metrics{{Overrides: []*telemetry.MetricsOverrides{
			nil, {Match: &telemetry.MetricSelector{MetricMatch: &telemetry.MetricSelector_CustomMetric{}}}}}}},
			errs: []string{"spec.metrics[0].overrides[0]: Required value", "spec.metrics[0].overrides[1].match.customMetric: Required value"}},
		{name: "upsert without value", spec: tagOverride("foo", telemetry.MetricsOverrides_TagOverride_UPSERT, ""),
			errs: []string{"spec.metrics[0].overrides[0].tagOverrides[foo].value: Required value: value must be set when operation is UPSERT"}},
		{name: "remove with value", spec: tagOverride("foo", telemetry.MetricsOverrides_TagOverride_REMOVE, "oops"),
			errs: []string{`tagOverrides[foo].value: Invalid value: "oops": value must not be set when operation is REMOVE`}},
		{name: "empty tag name warns", spec: tagOverride("", telemetry.MetricsOverrides_TagOverride_UPSERT, "x"),
			warns: []string{"empty tag name"}},
		{name: "bad CEL filter", spec: &telemetry.Telemetry{AccessLogging: []*telemetry.AccessLogging{{Filter: &telemetry.AccessLogging_Filter{Expression: "response.code >="}}}},
			errs: []string{"spec.accessLogging[0].filter.expression: Invalid value: \"response.code >=\": invalid CEL expression"}},
		{name: "targetRef", spec: &telemetry.Telemetry{TargetRef: &typev1beta1.PolicyTargetReference{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}},
	})
}

func TestTelemetryYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid v1", doc: `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 10.00
`},
		{name: "bad filter", doc: `
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: logs, namespace: ns}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: "response.code >= )"}
`, errs: []string{"Telemetry ns/logs", "spec.accessLogging[0].filter.expression", "invalid CEL expression"}},
	})
}
