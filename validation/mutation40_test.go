package validation

import (
	"strings"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestMutation40EnvoyFilterGoDurations: efGoDurations reaches every place a
// google.protobuf.Duration is read in a patch value — through a map of
// messages, a list of messages, an Any holding a well-known type — and leaves
// scalar maps and unknown Any types alone. Istio decodes patch values with
// golang/protobuf jsonpb (envoyfilter.go validateEnvoyFilter via
// xds.BuildXDSObjectFromStruct), whose Duration reader is time.ParseDuration
// and which decodes a well-known type in an Any from its "value".
func TestMutation40EnvoyFilterGoDurations(t *testing.T) {
	const always = "EnvoyFilter exposes internal implementation details"
	perFilter := func(cfg map[string]any) *networking.EnvoyFilter {
		return efOne(networking.EnvoyFilter_VIRTUAL_HOST, nil, networking.EnvoyFilter_Patch_MERGE,
			efStruct(t, map[string]any{"typed_per_filter_config": map[string]any{"f": cfg}}))
	}
	runKindCases(t, validateEnvoyFilter, []kindCase{
		{name: "Go duration in a map<string, Any> value (HTTPFault fixed_delay)", spec: perFilter(map[string]any{
			"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
			"delay": map[string]any{"fixed_delay": "500ms"}}), warns: []string{always}},
		{name: "scalar map in an Any (ExtAuthzPerRoute context_extensions)", spec: perFilter(map[string]any{
			"@type":          "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
			"check_settings": map[string]any{"context_extensions": map[string]any{"k": "1m"}}}), warns: []string{always}},
		{name: "Go duration in a well-known type in an Any", spec: perFilter(map[string]any{
			"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1m"}), warns: []string{always}},
		{name: "Go duration in a list of messages (route timeout)", spec: efOne(networking.EnvoyFilter_ROUTE_CONFIGURATION, nil, networking.EnvoyFilter_Patch_MERGE,
			efStruct(t, map[string]any{"virtual_hosts": []any{map[string]any{"name": "v", "domains": []any{"*"}, "routes": []any{
				map[string]any{"match": map[string]any{"prefix": "/"}, "route": map[string]any{"cluster": "c", "timeout": "1m"}}}}}})),
			warns: []string{always}},
		{name: "unknown type in a nested Any", spec: perFilter(map[string]any{"@type": "type.googleapis.com/no.such.Type"}),
			warns: []string{always, "type type.googleapis.com/no.such.Type is not known to meshguard; its content is not checked"}},
	})
}

// TestMutation40NamespaceHostTildeAdvice: the invalid-namespace error offers
// "~" exactly where "~" is a namespace — a Sidecar egress host and a Gateway
// with Gateway API semantics, not a plain Gateway server host (Istio's
// ValidateNamespaceSlashWildcardHostname accepts "~" for !isGateway, and for
// a gateway only with gatewaySemantics).
func TestMutation40NamespaceHostTildeAdvice(t *testing.T) {
	for _, c := range []struct {
		name  string
		check func(*field.Path, string, *Findings)
		tilde bool
	}{
		{"sidecar", validateNamespaceHost, true},
		{"gateway", validateGatewayNamespaceHost, false},
		{"gateway API semantics", validateGatewayAPINamespaceHost, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f Findings
			c.check(field.NewPath("spec", "x"), "~prod/foo.com", &f)
			if len(f.Errors) != 1 {
				t.Fatalf("want one error, got %v", f.Errors)
			}
			msg := f.Errors[0].Error()
			if !strings.Contains(msg, `invalid namespace "~prod"`) || strings.Contains(msg, `"~" or`) != c.tilde {
				t.Errorf("error %q: want the namespace named and \"~\" offered=%v", msg, c.tilde)
			}
		})
	}
}

// TestMutation40DNSAutoAllocateAnyValue: Istio's ValidateMeshConfigProxyConfig
// warns that ISTIO_META_DNS_AUTO_ALLOCATE is deprecated whenever the key is in
// proxyMetadata, whatever its value ("false" and "" included), and only warns.
func TestMutation40DNSAutoAllocateAnyValue(t *testing.T) {
	for _, v := range []string{"true", "false", ""} {
		var f Findings
		meshProxyConfig(field.NewPath("defaultConfig"), &meshv1alpha1.ProxyConfig{ProxyMetadata: map[string]string{dnsAutoAllocateV1: v}}, &f)
		var warned int
		for _, w := range f.Warnings {
			if strings.Contains(w.Error(), "'ISTIO_META_DNS_AUTO_ALLOCATE' is deprecated") {
				warned++
			}
		}
		if warned != 1 {
			t.Errorf("value %q: want one deprecation warning, got %v", v, f.Warnings)
		}
		for _, e := range f.Errors {
			if strings.Contains(e.Field, "proxyMetadata") {
				t.Errorf("value %q: unexpected error %v", v, e)
			}
		}
	}
}
