package validation

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	security "istio.io/api/security/v1beta1"
	telemetry "istio.io/api/telemetry/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// kindCase is one table entry for a kind validator called directly.
// errs and warns are substrings of "path: message" lines; each must be found
// in a distinct finding, and there must be exactly as many findings as
// substrings (so an empty list means "none").
type kindCase struct {
	name  string
	meta  metav1.ObjectMeta // default: test/default
	spec  proto.Message
	errs  []string
	warns []string
}

// runKindCases runs the table through v.
func runKindCases[T proto.Message](t *testing.T, v func(metav1.ObjectMeta, T, *Findings), cases []kindCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			meta := c.meta
			if meta.Name == "" {
				meta.Name = "test"
			}
			if meta.Namespace == "" {
				meta.Namespace = "default"
			}
			spec, ok := c.spec.(T)
			if !ok {
				t.Fatalf("case spec has type %T", c.spec)
			}
			var f Findings
			v(meta, spec, &f)
			checkFindings(t, "error", f.Errors, c.errs)
			checkFindings(t, "warning", f.Warnings, c.warns)
		})
	}
}

func checkFindings(t *testing.T, what string, got field.ErrorList, want []string) {
	t.Helper()
	lines := make([]string, len(got))
	for i, e := range got {
		lines[i] = e.Error()
	}
	used := make([]bool, len(lines))
	for _, w := range want {
		found := false
		for i, l := range lines {
			if !used[i] && strings.Contains(l, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no %s contains %q; got:\n  %s", what, w, strings.Join(lines, "\n  "))
		}
	}
	if len(lines) != len(want) {
		t.Errorf("want %d %s(s), got %d:\n  %s", len(want), what, len(lines), strings.Join(lines, "\n  "))
	}
}

// yamlCase runs a YAML document through the full entry point (decoding, CRD
// schema, metadata and kind rules), as `meshguard validate` does.
type yamlCase struct {
	name  string
	doc   string
	errs  []string // substrings that must appear among the error lines; none means valid
	warns []string // substrings that must appear among the warning lines
}

func runYAMLCases(t *testing.T, cases []yamlCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ValidateJSON(context.Background(), []byte(c.doc), Options{DefaultNamespace: "default"})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			errs := strings.Join(res.ErrorLines(), "\n")
			if len(c.errs) == 0 && !res.Valid() {
				t.Errorf("want valid, got errors:\n%s", errs)
			}
			if len(c.errs) > 0 && res.Valid() {
				t.Errorf("want errors %q, got none", c.errs)
			}
			for _, w := range c.errs {
				if !strings.Contains(errs, w) {
					t.Errorf("no error contains %q; got:\n%s", w, errs)
				}
			}
			warns := strings.Join(res.WarningLines(), "\n")
			for _, w := range c.warns {
				if !strings.Contains(warns, w) {
					t.Errorf("no warning contains %q; got:\n%s", w, warns)
				}
			}
		})
	}
}

func TestKhUnixAddress(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"unix:///var/run/a.sock", ""},
		{"unix://@abstract", ""},
		{"unix://relative", "UDS must be an absolute path or abstract socket"},
		{"unix:///dir/", "UDS may not be a dir"},
		{"unix://", "must not be empty"},
	}
	for _, c := range cases {
		var f Findings
		khUnixAddress(field.NewPath("spec", "address"), c.in, &f)
		switch {
		case c.want == "" && len(f.Errors) > 0:
			t.Errorf("%s: unexpected %v", c.in, f.Errors)
		case c.want != "" && (len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Error(), c.want)):
			t.Errorf("%s: want one error with %q, got %v", c.in, c.want, f.Errors)
		}
	}
}

func TestKhPolicyTargets(t *testing.T) {
	sel := &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "a"}}
	svc := &typev1beta1.PolicyTargetReference{Kind: "Service", Name: "s"}
	cases := []struct {
		name string
		sel  *typev1beta1.WorkloadSelector
		ref  *typev1beta1.PolicyTargetReference
		refs []*typev1beta1.PolicyTargetReference
		errs []string
	}{
		{"none", nil, nil, nil, nil},
		{"selector", sel, nil, nil, nil},
		{"targetRef service", nil, svc, nil, nil},
		{"targetRefs gateway", nil, nil, []*typev1beta1.PolicyTargetReference{
			{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"},
			{Group: "networking.istio.io", Kind: "ServiceEntry", Name: "se"},
		}, nil},
		{"selector and targetRef", sel, svc, nil, []string{"spec: Invalid value: only one of targetRefs or selector can be set"}},
		{"targetRef and targetRefs", nil, svc, []*typev1beta1.PolicyTargetReference{svc}, []string{"only one of"}},
		{"no name", nil, &typev1beta1.PolicyTargetReference{Kind: "Service"}, nil, []string{"spec.targetRef.name: Required value"}},
		{"cross namespace", nil, &typev1beta1.PolicyTargetReference{Kind: "Service", Name: "s", Namespace: "other"}, nil,
			[]string{"spec.targetRef.namespace: Invalid value: \"other\": cross namespace referencing is not currently supported"}},
		{"bad kind", nil, nil, []*typev1beta1.PolicyTargetReference{{Group: "apps", Kind: "Deployment", Name: "d"}},
			[]string{"spec.targetRefs[0]: Invalid value: \"apps/Deployment\": targetRef must be to one of"}},
		{"null ref in list", nil, nil, []*typev1beta1.PolicyTargetReference{nil}, []string{"spec.targetRefs[0]: Required value"}},
		// Istio compares canonical group names: "core" is the core group.
		{"core group named", nil, &typev1beta1.PolicyTargetReference{Group: "core", Kind: "Service", Name: "s"}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f Findings
			khPolicyTargets(field.NewPath("spec"), c.sel, c.ref, c.refs, &f)
			checkFindings(t, "error", f.Errors, c.errs)
		})
	}
}

func TestKhProtocol(t *testing.T) {
	for _, ok := range []string{"", "HTTP", "http", "grpc-web", "TLS", "Mongo", "MySQL", "UDP"} {
		var f Findings
		khProtocol(field.NewPath("p"), ok, &f)
		if len(f.Errors) != 0 {
			t.Errorf("%q: unexpected %v", ok, f.Errors)
		}
	}
	// Istio's protocol.Parse lower-cases (strings.ToLower): "httpſ" (long s) and
	// "redıs" (dotless i) upper-case to HTTPS and REDIS but are not protocols.
	for _, bad := range []string{"HTTP3", "kafka", "h2c", "httpſ", "tlſ", "redıs"} {
		var f Findings
		khProtocol(field.NewPath("p"), bad, &f)
		if len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Error(), "unrecognized protocol") {
			t.Errorf("%q: want unrecognized protocol, got %v", bad, f.Errors)
		}
	}
}

// TestKindValidatorsRejectWrongType: a spec of the wrong type is reported, not a panic.
func TestKindValidatorsRejectWrongType(t *testing.T) {
	for _, kind := range []string{"ServiceEntry", "Sidecar", "WorkloadEntry", "WorkloadGroup", "EnvoyFilter", "ProxyConfig",
		"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Telemetry", "WasmPlugin"} {
		v := validatorFor(kind)
		if v == nil {
			t.Errorf("%s: no validator registered", kind)
			continue
		}
		var f Findings
		v(metav1.ObjectMeta{Name: "x", Namespace: "y"}, &typev1beta1.WorkloadSelector{}, &f)
		if len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Error(), "internal error") {
			t.Errorf("%s: want one internal error, got %v", kind, f.Errors)
		}
	}
}

// fuzzKinds are the kinds of this file set, with their spec types.
var fuzzKinds = []struct {
	kind string
	new  func() proto.Message
}{
	{"ServiceEntry", func() proto.Message { return &networking.ServiceEntry{} }},
	{"Sidecar", func() proto.Message { return &networking.Sidecar{} }},
	{"WorkloadEntry", func() proto.Message { return &networking.WorkloadEntry{} }},
	{"WorkloadGroup", func() proto.Message { return &networking.WorkloadGroup{} }},
	{"EnvoyFilter", func() proto.Message { return &networking.EnvoyFilter{} }},
	{"ProxyConfig", func() proto.Message { return &networkingv1beta1.ProxyConfig{} }},
	{"AuthorizationPolicy", func() proto.Message { return &security.AuthorizationPolicy{} }},
	{"PeerAuthentication", func() proto.Message { return &security.PeerAuthentication{} }},
	{"RequestAuthentication", func() proto.Message { return &security.RequestAuthentication{} }},
	{"Telemetry", func() proto.Message { return &telemetry.Telemetry{} }},
	{"WasmPlugin", func() proto.Message { return &extensions.WasmPlugin{} }},
	{"TrafficExtension", func() proto.Message { return &extensions.TrafficExtension{} }},
}

// FuzzKindValidators: whatever spec decodes, the validators never panic and
// every finding carries a path under spec.
func FuzzKindValidators(f *testing.F) {
	seeds := []string{
		`{"hosts":["a.com","*"],"ports":[{"number":0,"name":"a"}],"resolution":"DNS","endpoints":[{"address":"unix://"}]}`,
		`{"egress":[{"port":{"number":0},"bind":"unix://x","hosts":["a/b"]}],"ingress":[{"port":{"number":1},"defaultEndpoint":"[:"}]}`,
		`{"address":"unix:///","ports":{"":0}}`,
		`{"template":{},"probe":{"grpc":{}}}`,
		`{"configPatches":[{"applyTo":"HTTP_FILTER","patch":{"operation":"ADD","value":{"typed_config":{"@type":"x/y"}}}}]}`,
		`{"concurrency":-5,"environmentVariables":{"":""}}`,
		`{"action":"CUSTOM","rules":[{"when":[{"key":"experimental.envoy.filters.[","values":["1"]}],"to":[{"operation":{"paths":["/{**}/{*}"]}}]}]}`,
		`{"portLevelMtls":{"0":{}}}`,
		`{"jwtRules":[{"jwks":"{\"keys\":[{}]}","jwksUri":"http://[::1"}]}`,
		`{"accessLogging":[{"filter":{"expression":"(("}}],"metrics":[{"overrides":[{"tagOverrides":{"":{}}}]}]}`,
		`{"url":"%","vmConfig":{"env":[{}]}}`,
		`{"targetRefs":[{}],"wasm":{"url":"%","vmConfig":{"env":[{},{}]}},"match":[{"ports":[{}]}]}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		k := fuzzKinds[int(which)%len(fuzzKinds)]
		msg := k.new()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, msg); err != nil {
			return
		}
		var fs Findings
		validatorFor(k.kind)(metav1.ObjectMeta{Name: "n", Namespace: "ns"}, msg, &fs)
		for _, e := range append(fs.Errors, fs.Warnings...) {
			if !strings.HasPrefix(e.Field, "spec") {
				t.Errorf("%s: finding without a spec path: %v", k.kind, e)
			}
		}
	})
}

// BenchmarkKindValidators measures typical objects through the kind function.
func BenchmarkKindValidators(b *testing.B) {
	objs := []struct {
		kind, json string
	}{
		{"AuthorizationPolicy", `{"selector":{"matchLabels":{"app":"httpbin"}},"rules":[{"from":[{"source":{"principals":["cluster.local/ns/default/sa/sleep"]}},{"source":{"namespaces":["test"]}}],"to":[{"operation":{"methods":["GET"],"paths":["/info*"]}},{"operation":{"methods":["POST"],"paths":["/data"]}}],"when":[{"key":"request.auth.claims[iss]","values":["https://accounts.google.com"]}]}]}`},
		{"ServiceEntry", `{"hosts":["eu.bookinfo.com"],"ports":[{"number":80,"name":"http","protocol":"HTTP"}],"resolution":"DNS","endpoints":[{"address":"t.istio-system.svc.cluster.local","ports":{"http":8080}}]}`},
		{"Sidecar", `{"egress":[{"hosts":["./*","istio-system/*"]}]}`},
		{"RequestAuthentication", `{"selector":{"matchLabels":{"app":"httpbin"}},"jwtRules":[{"issuer":"example.com","jwksUri":"https://example.com/jwks.json"}]}`},
		{"EnvoyFilter", `{"configPatches":[{"applyTo":"HTTP_FILTER","match":{"listener":{"filterChain":{"filter":{"name":"envoy.filters.network.http_connection_manager","subFilter":{"name":"envoy.filters.http.router"}}}}},"patch":{"operation":"INSERT_BEFORE","value":{"name":"envoy.filters.http.lua","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua","default_source_code":{"inline_string":"function envoy_on_request(h) end"}}}}}]}`},
	}
	for _, o := range objs {
		var msg proto.Message
		for _, k := range fuzzKinds {
			if k.kind == o.kind {
				msg = k.new()
			}
		}
		if err := protojson.Unmarshal([]byte(o.json), msg); err != nil {
			b.Fatalf("%s: %v", o.kind, err)
		}
		v := validatorFor(o.kind)
		meta := metav1.ObjectMeta{Name: "n", Namespace: "ns"}
		b.Run(o.kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var fs Findings
				v(meta, msg, &fs)
				if len(fs.Errors) > 0 {
					b.Fatalf("unexpected errors: %v", fs.Errors)
				}
			}
		})
	}
}
