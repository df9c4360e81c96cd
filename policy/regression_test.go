package policy

import (
	"context"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Regression cases of Istio's authorization semantics: a policy set, a
// request and Istio's verdict (from Istio's ComposePeerAuthentication,
// trustdomain.Bundle, model/generator.go matchers and Envoy's uri_template
// matcher). Each runs twice: on decoded attributes (Snapshot.CheckRequest)
// and as an Envoy CheckRequest through Snapshot.Check, the ext_authz
// server's path, with the destination found by its Pod IP.

// webPod is the destination of http(): foo/app=web at 10.0.1.1.
func webPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "foo", Labels: map[string]string{"app": "web"}},
		Status: corev1.PodStatus{PodIP: "10.0.1.1"}}
}

// envoyRequest renders r as the CheckRequest Envoy would send.
func envoyRequest(r *Request) *authv3.CheckRequest {
	req := checkReq(r.Principal, r.SrcIP, r.DstIP, r.DstPort, r.Method, r.Path, r.Headers)
	req.Attributes.Request.Http.Host = r.Host
	if r.TCP {
		req.Attributes.Request = nil
	} else if r.JWT != nil {
		// Where Istio's jwt_authn configuration writes the verified payload.
		req.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{"payload": structpb.NewStructValue(r.JWT)}}}}
	}
	return req
}

func runBothPaths(t *testing.T, mesh Mesh, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, mesh, c.policies, webPod())
			for _, via := range []string{"attributes", "CheckRequest"} {
				var v Verdict
				var err error
				if via == "attributes" {
					v, err = s.CheckRequest(context.Background(), c.req)
				} else {
					v, err = s.Check(context.Background(), envoyRequest(c.req))
				}
				if err != nil {
					t.Fatalf("%s: check: %v", via, err)
				}
				if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
					t.Errorf("%s: verdict = %+v (reason %q), want %+v", via, got, v.Reason, c.want)
				}
			}
		})
	}
}

func TestRegressionPeerAuthenticationPrecedence(t *testing.T) {
	const t0, t1, t2 = "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"
	denyFoo := ap("foo", "deny-foo", `action: DENY
rules: [{from: [{source: {principals: ["cluster.local/ns/foo/*"]}}]}]`)
	strictDenied := func(id string) want { return want{false, "DENY", id, -1} }
	runBothPaths(t, Mesh{}, []tc{
		// The example: the older mode-less pa-0 is THE namespace
		// policy; UNSET inherits the mesh default PERMISSIVE, so the peer
		// identity stays and the DENY matches.
		{"older UNSET namespace PA beats newer DISABLE", pa("foo", "pa-0", t0, "{}") + pa("foo", "pa-1", t1, "mtls: {mode: DISABLE}") + denyFoo,
			http(from(pFoo)), deniedBy("foo/deny-foo", 0)},
		{"older UNSET namespace PA beats newer STRICT: plaintext allowed", pa("foo", "pa-0", t0, "{}") + pa("foo", "pa-1", t1, "mtls: {mode: STRICT}"),
			http(), open},
		{"newer UNSET namespace PA: the older DISABLE decides", pa("foo", "pa-1", t1, "{}") + pa("foo", "pa-0", t0, "mtls: {mode: DISABLE}") + denyFoo,
			http(from(pFoo)), open},
		{"UNSET namespace PA inherits mesh STRICT", pa("istio-system", "mesh", t0, "mtls: {mode: STRICT}") + pa("foo", "pa-0", t1, "{}"),
			http(), strictDenied("istio-system/mesh")},
		{"older UNSET mesh PA beats newer mesh STRICT", pa("istio-system", "m0", t0, "mtls: {}") + pa("istio-system", "m1", t1, "mtls: {mode: STRICT}"),
			http(), open},
		{"same creation time: name decides (a-unset before b-strict)", pa("foo", "b-strict", t0, "mtls: {mode: STRICT}") + pa("foo", "a-unset", t0, "{}"),
			http(), open},
		{"older UNSET workload PA beats newer workload STRICT, inherits namespace DISABLE",
			pa("foo", "ns", t0, "mtls: {mode: DISABLE}") + pa("foo", "w0", t1, "selector: {matchLabels: {app: web}}") +
				pa("foo", "w1", t2, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}") + denyFoo,
			http(from(pFoo)), open},
		{"UNSET port level inherits the workload mode", pa("foo", "w", t0, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {}"),
			http(), strictDenied("foo/w")},
		{"port level DISABLE under workload STRICT", pa("foo", "w", t0, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: DISABLE}"),
			http(), open},
	})
}

func TestRegressionTrustDomainAliases(t *testing.T) {
	mesh := Mesh{TrustDomain: "cluster.local", TrustDomainAliases: []string{"other.td"}}
	const other = "spiffe://other.td/ns/foo/sa/sleep"
	allowPrefix := ap("foo", "allow", `rules: [{from: [{source: {principals: ["cluster.local/ns/foo/*"]}}]}]`)
	runBothPaths(t, mesh, []tc{
		{"ALLOW prefix principal is not expanded", allowPrefix, http(from(other)), noAllow},
		{"ALLOW prefix principal, own trust domain", allowPrefix, http(from(pFoo)), allowedBy("foo/allow", 0)},
		{"ALLOW exact principal is expanded", ap("foo", "allow", `rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]}]`),
			http(from(other)), allowedBy("foo/allow", 0)},
		{"DENY prefix principal is not expanded", ap("foo", "deny", `action: DENY
rules: [{from: [{source: {principals: ["cluster.local/ns/foo/*"]}}]}]`), http(from(other)), open},
		{"DENY exact principal is expanded", ap("foo", "deny", `action: DENY
rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]}]`), http(from(other)), deniedBy("foo/deny", 0)},
		{"notPrincipals prefix is not expanded", ap("foo", "allow", `rules: [{from: [{source: {notPrincipals: ["cluster.local/ns/foo/*"]}}]}]`),
			http(from(other)), allowedBy("foo/allow", 0)},
		{"notPrincipals exact is expanded", ap("foo", "allow", `rules: [{from: [{source: {notPrincipals: ["cluster.local/ns/foo/sa/sleep"]}}]}]`),
			http(from(other)), noAllow},
		{"source.principal exact is expanded", ap("foo", "deny", `action: DENY
rules: [{when: [{key: source.principal, values: ["cluster.local/ns/foo/sa/sleep"]}]}]`), http(from(other)), deniedBy("foo/deny", 0)},
		{"suffix principal is not expanded", ap("foo", "allow", `rules: [{from: [{source: {principals: ["*/ns/foo/sa/sleep"]}}]}]`),
			http(from(other)), allowedBy("foo/allow", 0)},
		{"principal with six parts is not expanded", ap("foo", "allow", `rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep/x"]}}]}]`),
			http(from(other + "/x")), noAllow},
	})
}

func TestRegressionPathTemplates(t *testing.T) {
	block := ap("shop", "block-secrets", `action: DENY
rules:
- to: [{operation: {paths: ["/admin/{**}/secret"]}}]`)
	inShop := func(r *Request) { r.Namespace, r.Labels = "shop", map[string]string{"app": "web"} }
	allowUsers := ap("foo", "users", `rules: [{to: [{operation: {paths: ["/api/{*}/users"]}}]}]`)
	runCases(t, Mesh{}, []tc{
		{"DENY template: GET / allowed", block, http(inShop, path("/")), open},
		{"DENY template: /healthz allowed", block, http(inShop, path("/healthz")), open},
		{"DENY template: /admin/a/b/secret denied", block, http(inShop, path("/admin/a/b/secret")), deniedBy("shop/block-secrets", 0)},
		{"DENY template: /admin/x/secret denied", block, http(inShop, path("/admin/x/secret")), deniedBy("shop/block-secrets", 0)},
		{"DENY template: /admin/secret (no segment for {**} between) allowed", block, http(inShop, path("/admin/secret")), open},
		{"DENY template: /admin/x/secret/more allowed", block, http(inShop, path("/admin/x/secret/more")), open},
		{"ALLOW {*}: /api/v1/users", allowUsers, http(path("/api/v1/users")), allowedBy("foo/users", 0)},
		{"ALLOW {*}: '*' is outside Envoy's literal set", allowUsers, http(path("/api/v*1/users")), noAllow},
		{"ALLOW {*}: one segment only", allowUsers, http(path("/api/v1/x/users")), noAllow},
		{"ALLOW {*}: not empty", allowUsers, http(path("/api//users")), noAllow},
		{"ALLOW {*}: pchar %, =, @, :", allowUsers, http(path("/api/a%20b=c@d:e/users")), allowedBy("foo/users", 0)},
		{"{*} then {**} then literal", ap("foo", "p", `rules: [{to: [{operation: {paths: ["/api/{*}/{**}/edit"]}}]}]`),
			http(path("/api/v1/a/b/edit")), allowedBy("foo/p", 0)},
	})
}

func TestRegressionTyposRejectedEverywhere(t *testing.T) {
	cases := map[string]string{
		"principal for principals": ap("foo", "p", `rules: [{from: [{source: {principal: ["cluster.local/ns/foo/sa/sleep"]}}]}]`),
		"pathz for paths":          ap("foo", "p", `rules: [{to: [{operation: {pathz: ["/admin"]}}]}]`),
		"unknown when key in DENY": ap("foo", "d", "action: DENY\nrules:\n- when:\n  - key: request.bogus\n    values: [x]"),
		"mtls.mod":                 pa("foo", "pa", "2020-01-01T00:00:00Z", "mtls: {mod: STRICT}"),
		"invalid port":             ap("foo", "p", `rules: [{to: [{operation: {ports: ["99999"]}}]}]`),
		"{**} before an operator":  ap("foo", "p", `rules: [{to: [{operation: {paths: ["/a/{**}/{*}"]}}]}]`),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			set := &Set{}
			_, err := set.AddYAML("p.yaml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), "rejected as `meshguard validate` rejects it") {
				t.Fatalf("AddYAML error = %v, want the validation rejection", err)
			}
		})
	}
}

func TestRegressionHeaderNamesCaseInsensitive(t *testing.T) {
	deny := ap("foo", "deny-evil", "action: DENY\nrules:\n- when:\n  - key: request.headers[X-Evil]\n    values: [\"*\"]")
	runBothPaths(t, Mesh{}, []tc{
		{"upper-case header name still denied", deny, http(hdr("X-Evil", "1")), deniedBy("foo/deny-evil", 0)},
		{"lower-case header name denied", deny, http(hdr("x-evil", "1")), deniedBy("foo/deny-evil", 0)},
		{"no such header", deny, http(), open},
	})
}

func TestRegressionSpiffeExtraSegments(t *testing.T) {
	const odd = "spiffe://cluster.local/ns/bar/sa/x/ns/foo/sa/sleep"
	allow := func(src string) string { return ap("foo", "p", "rules: [{from: [{source: "+src+"}]}]") }
	whenKey := func(k, v string) string {
		return ap("foo", "p", "rules: [{when: [{key: "+k+", values: ["+v+"]}]}]")
	}
	runBothPaths(t, Mesh{}, []tc{
		// generator.go srcNamespaceGenerator: ".*/ns/foo/.*" matches the second ns segment.
		{"namespaces matches any /ns/<x>/ segment", allow("{namespaces: [foo]}"), http(from(odd)), allowedBy("foo/p", 0)},
		{"namespaces: first segment too", allow("{namespaces: [bar]}"), http(from(odd)), allowedBy("foo/p", 0)},
		{"namespaces: glob", allow(`{namespaces: ["f*"]}`), http(from(odd)), allowedBy("foo/p", 0)},
		{"notNamespaces: foo is one of the segments", allow("{notNamespaces: [foo]}"), http(from(odd)), noAllow},
		{"namespaces: 'sleep' is no namespace segment", allow("{namespaces: [sleep]}"), http(from(odd)), noAllow},
		// serviceAccountRegex: "spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?".
		{"serviceAccounts: ns and sa across segments", allow("{serviceAccounts: [foo/sleep]}"), http(from(odd)), allowedBy("foo/p", 0)},
		{"serviceAccounts: bar/x with trailing segments", allow("{serviceAccounts: [bar/x]}"), http(from(odd)), allowedBy("foo/p", 0)},
		{"serviceAccounts: bar/sleep (sa after other segments)", allow("{serviceAccounts: [bar/sleep]}"), http(from(odd)), allowedBy("foo/p", 0)},
		{"serviceAccounts: sa prefix is not a match", allow("{serviceAccounts: [foo/sle]}"), http(from(odd)), noAllow},
		{"source.namespace", whenKey("source.namespace", "foo"), http(from(odd)), allowedBy("foo/p", 0)},
		{"source.serviceAccount", whenKey("source.serviceAccount", "foo/sleep"), http(from(odd)), allowedBy("foo/p", 0)},
		{"source.principal exact needs the whole ID", whenKey("source.principal", "cluster.local/ns/foo/sa/sleep"), http(from(odd)), noAllow},
		{"principals suffix", allow(`{principals: ["*/ns/foo/sa/sleep"]}`), http(from(odd)), allowedBy("foo/p", 0)},
		{"trustDomains", allow("{trustDomains: [cluster.local]}"), http(from(odd)), allowedBy("foo/p", 0)},
		{"principals '*' matches a non-SPIFFE principal", allow(`{principals: ["*"]}`), http(from("CN=legacy")), allowedBy("foo/p", 0)},
		{"namespaces never match a non-SPIFFE principal", allow("{namespaces: [foo]}"), http(from("CN=legacy")), noAllow},
	})
}

func TestRequestsEnvoyNeverSends(t *testing.T) {
	set := &Set{Pods: []*corev1.Pod{webPod()}}
	if _, err := set.AddYAML("p", []byte(ap("foo", "all", "rules: [{}]"))); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		method, path string
		status       int
	}{
		"raw NUL":            {"GET", "/a\x00b", 400},
		"empty path":         {"GET", "", 400},
		"relative path":      {"GET", "admin", 400},
		"asterisk form":      {"OPTIONS", "*", 400},
		"CONNECT has none":   {"CONNECT", "", 200},
		"ordinary path":      {"GET", "/a", 200},
		"encoded NUL (%00)":  {"GET", "/a%00", 400},
		"query only differs": {"GET", "/a?b=\x01", 200},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := s.Check(context.Background(), checkReq(pFoo, "10.0.0.5", "10.0.1.1", 8080, c.method, c.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != c.status || v.Allowed != (c.status == 200) {
				t.Errorf("status %d allowed %v (reason %q), want %d", v.Status, v.Allowed, v.Reason, c.status)
			}
		})
	}
}

// The effective PeerAuthentication mode names the policy it came from (for --explain).
func TestEffectiveModePolicy(t *testing.T) {
	const t0, t1 = "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"
	cases := []struct {
		name, policies, mode, from string
	}{
		{"mesh default", "", "PERMISSIVE", ""},
		{"older UNSET namespace PA inherits the mesh policy", pa("istio-system", "mesh", t0, "mtls: {mode: STRICT}") + pa("foo", "ns0", t0, "{}") + pa("foo", "ns1", t1, "mtls: {mode: DISABLE}"),
			"STRICT", "istio-system/mesh"},
		{"workload UNSET inherits namespace", pa("foo", "ns", t0, "mtls: {mode: DISABLE}") + pa("foo", "w", t0, "selector: {matchLabels: {app: web}}"), "DISABLE", "foo/ns"},
		{"port level", pa("foo", "w", t0, "selector: {matchLabels: {app: web}}\nportLevelMtls:\n  8080: {mode: STRICT}"), "STRICT", "foo/w"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := &Set{}
			if _, err := set.AddYAML(c.name, []byte(c.policies)); err != nil {
				t.Fatal(err)
			}
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.CheckRequest(context.Background(), http(from(pFoo)))
			if err != nil {
				t.Fatal(err)
			}
			if v.Mode != c.mode || v.ModePolicy != c.from {
				t.Errorf("mode %s from %q, want %s from %q", v.Mode, v.ModePolicy, c.mode, c.from)
			}
		})
	}
}
