package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// storedAP decodes an AuthorizationPolicy as the API server client does
// (no validation): how an invalid policy stored before the webhook, or one
// with a value meshguard cannot evaluate, reaches Compile.
func storedAP(t *testing.T, doc string) *secv1.AuthorizationPolicy {
	t.Helper()
	return storedObject[secv1.AuthorizationPolicy](t, doc)
}

// storedPA is storedAP for a PeerAuthentication.
func storedPA(t *testing.T, doc string) *secv1.PeerAuthentication {
	t.Helper()
	return storedObject[secv1.PeerAuthentication](t, doc)
}

func storedObject[T any](t *testing.T, doc string) *T {
	t.Helper()
	obj := new(T)
	if err := yaml.Unmarshal([]byte(doc), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestFailClosedNeverWider: for every field kind that can hold a value
// meshguard cannot evaluate, in an ALLOW and in a DENY policy, the workloads
// the policy selects are denied naming the policy and the field (a DENY rule
// never loses its field and matches more or less; an ALLOW rule never
// vanishes silently), and other workloads keep being served.
func TestFailClosedNeverWider(t *testing.T) {
	fields := []struct{ name, rule, field string }{
		{"ports", `to: [{operation: {ports: ["99999"]}}]`, "ports"},
		{"notPorts", `to: [{operation: {notPorts: ["x"]}}]`, "notPorts"},
		{"paths", `to: [{operation: {paths: ["/a/{**}/{*}"]}}]`, "paths"},
		{"notPaths", `to: [{operation: {notPaths: ["/a{b"]}}]`, "notPaths"},
		{"ipBlocks", `from: [{source: {ipBlocks: ["not-an-ip"]}}]`, "ipBlocks"},
		{"notIpBlocks", `from: [{source: {notIpBlocks: ["10.0.0.0/99"]}}]`, "notIpBlocks"},
		{"remoteIpBlocks", `from: [{source: {remoteIpBlocks: ["x"]}}]`, "remoteIpBlocks"},
		{"notRemoteIpBlocks", `from: [{source: {notRemoteIpBlocks: ["x"]}}]`, "notRemoteIpBlocks"},
		{"serviceAccounts", `from: [{source: {serviceAccounts: ["a/*"]}}]`, "serviceAccounts"},
		{"notServiceAccounts", `from: [{source: {notServiceAccounts: ["/x"]}}]`, "notServiceAccounts"},
		{"trustDomains", `from: [{source: {trustDomains: ["a/b"]}}]`, "trustDomains"},
		{"when: unknown key", `when: [{key: request.bogus, values: ["x"]}]`, "when[0]"},
		{"when: experimental.envoy.filters (not evaluated)", `when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}]`, "when[0]"},
		{"when: destination.port", `when: [{key: destination.port, values: ["x"]}]`, "when[0]"},
		{"when: source.ip", `when: [{key: source.ip, notValues: ["x"]}]`, "when[0]"},
		{"when: source.serviceAccount", `when: [{key: source.serviceAccount, values: ["*"]}]`, "when[0]"},
		{"when: no values", `when: [{key: source.ip}]`, "when[0]"},
		// Envoy keeps an IPv4-mapped range IPv6 (never an IPv4 peer); Go and OPA would read it as IPv4.
		{"ipBlocks: IPv4-mapped", `from: [{source: {ipBlocks: ["::ffff:10.0.0.0/104"]}}]`, "IPv4-mapped"},
		{"when: source.ip IPv4-mapped", `when: [{key: source.ip, notValues: ["::ffff:10.0.0.5"]}]`, "IPv4-mapped"},
	}
	okPolicy := storedAP(t, ap("bar", "allow-all", "rules: [{}]"))
	for _, f := range fields {
		for _, action := range []string{"ALLOW", "DENY"} {
			t.Run(action+" "+f.name, func(t *testing.T) {
				bad := storedAP(t, ap("foo", "broken", "action: "+action+"\nselector: {matchLabels: {app: web}}\nrules:\n- "+f.rule))
				set := &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{bad, okPolicy}}
				s, err := Compile(context.Background(), Mesh{}, set, 1)
				if err != nil {
					t.Fatalf("compile: %v (one bad policy must not stop the snapshot)", err)
				}
				if len(s.Failed) != 1 || s.Failed[0].ID != "foo/broken" {
					t.Fatalf("Failed = %+v, want foo/broken", s.Failed)
				}
				// Every request to the selected workload is denied, whatever it carries.
				for _, r := range []*Request{http(), http(from(pFoo), path("/a/x/y")), http(tcp())} {
					v, err := s.CheckRequest(context.Background(), r)
					if err != nil {
						t.Fatal(err)
					}
					if v.Allowed || v.Policy != "foo/broken" || v.Rule != FailClosedRule ||
						!strings.Contains(v.Reason, "AuthorizationPolicy foo/broken") || !strings.Contains(v.Reason, f.field) {
						t.Errorf("verdict %+v, want a fail-closed denial naming foo/broken and %s", v, f.field)
					}
				}
				// Another workload in the same namespace, and another namespace, keep serving.
				for _, r := range []*Request{http(ns("foo", map[string]string{"app": "other"})), http(ns("bar", nil))} {
					v, err := s.CheckRequest(context.Background(), r)
					if err != nil {
						t.Fatal(err)
					}
					if !v.Allowed {
						t.Errorf("%s/%v: denied (%q), want served", r.Namespace, r.Labels, v.Reason)
					}
				}
			})
		}
	}
}

// A stored PeerAuthentication that validation rejects denies the workloads it selects.
func TestFailClosedPeerAuthentication(t *testing.T) {
	pa := &secv1.PeerAuthentication{}
	if err := yaml.Unmarshal([]byte(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: bad, namespace: foo}
spec:
  portLevelMtls:
    8080: {mode: STRICT}
`), pa); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, &Set{PeerAuthentications: []*secv1.PeerAuthentication{pa},
		Pods: []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "bar"}, Status: corev1.PodStatus{PodIP: "10.9.9.9"}}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.CheckRequest(context.Background(), http())
	if v.Allowed || v.Rule != FailClosedRule || !strings.Contains(v.Reason, "PeerAuthentication foo/bad") || !strings.Contains(v.Reason, "portLevelMtls") {
		t.Errorf("foo: verdict %+v, want a fail-closed denial naming PeerAuthentication foo/bad and portLevelMtls", v)
	}
	if v, _ := s.CheckRequest(context.Background(), http(ns("bar", nil))); !v.Allowed {
		t.Errorf("bar: %+v, want served", v)
	}
}

// TestFailedReportingOnlyPolicies: a stored policy that never decides here
// (AUDIT, CUSTOM, dry-run ALLOW/DENY; docs/compatibility.md "Enforcement
// point") and cannot be evaluated is reported as matching every request,
// and denies nothing: Istio widens such a policy (checkError in
// pilot/pkg/security/authz/model/model.go ignores a bad field for every
// action but ALLOW), which for these changes what is reported or sent to the
// CUSTOM provider, never the ALLOW/DENY verdict.
func TestFailedReportingOnlyPolicies(t *testing.T) {
	const bad = "selector: {matchLabels: {app: web}}\nrules:\n- to: [{operation: {ports: [\"99999\"]}}]"
	cases := []struct {
		name, meta, spec string
		hits             func(Verdict) []Hit
	}{
		{"AUDIT", "", "action: AUDIT\n", func(v Verdict) []Hit { return v.Audit }},
		{"CUSTOM", "", "action: CUSTOM\nprovider: {name: ext}\n", func(v Verdict) []Hit { return v.Custom }},
		{"dry-run DENY", "annotations: {istio.io/dry-run: \"true\"}\n", "action: DENY\n", func(v Verdict) []Hit { return v.DryRunDeny }},
		{"dry-run ALLOW", "annotations: {istio.io/dry-run: \"true\"}\n", "", func(v Verdict) []Hit { return v.DryRunAllow }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: broken\n  namespace: foo\n" +
				indent(c.meta) + "\nspec:\n" + indent(c.spec+bad) + "\n"
			set := &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{storedAP(t, doc)}}
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Failed) != 1 || s.Failed[0].ID != "foo/broken" {
				t.Fatalf("Failed = %+v, want foo/broken", s.Failed)
			}
			v, err := s.CheckRequest(context.Background(), http())
			if err != nil {
				t.Fatal(err)
			}
			if !v.Allowed {
				t.Errorf("verdict %+v: denied by a policy that never decides", v)
			}
			if h := c.hits(v); len(h) != 1 || h[0].Policy != "foo/broken" || h[0].Rule != FailClosedRule {
				t.Errorf("reported %+v, want foo/broken rule %d", h, FailClosedRule)
			}
		})
	}
}

// TestFailedPeerAuthenticationSparesGateways: a stored PeerAuthentication
// that cannot be evaluated denies the sidecars it selects, not a gateway's
// pods, which PeerAuthentication never configures (TestPeerAuthentication).
func TestFailedPeerAuthenticationSparesGateways(t *testing.T) {
	const bad = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: bad, namespace: %s}\nspec:\n%s"
	gwLabels := map[string]string{GatewayNameLabel: "gw", "app": "web"}
	cases := []struct {
		name, ns, spec string
		req            *Request
		allowed        bool
	}{
		{"namespace-wide: sidecar denied", "foo", "  portLevelMtls: {8080: {mode: STRICT}}", http(), false},
		{"namespace-wide: gateway pod served", "foo", "  portLevelMtls: {8080: {mode: STRICT}}", http(ns("foo", gwLabels)), true},
		{"mesh-wide: gateway pod served", "istio-system", "  portLevelMtls: {8080: {mode: STRICT}}", http(ns("foo", gwLabels)), true},
		{"mesh-wide: sidecar denied", "istio-system", "  portLevelMtls: {8080: {mode: STRICT}}", http(), false},
		{"workload selector: gateway pod served", "foo", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}\n  bogus: 1", http(ns("foo", gwLabels)), true},
		{"workload selector: sidecar denied", "foo", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}\n  bogus: 1", http(), false},
		// Istio's ComposePeerAuthentication (pilot/pkg/security/authn/policy_applier.go)
		// never applies a root-namespace policy with a selector: nothing to fail closed.
		{"root namespace with a selector: never applies", "istio-system", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}\n  bogus: 1", http(), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(fmt.Sprintf(bad, c.ns, c.spec)), &m); err != nil {
				t.Fatal(err)
			}
			st, err := DecodeStored("PeerAuthentication", m)
			if err != nil || st.Invalid == "" {
				t.Fatalf("DecodeStored: %v, invalid %q: want an invalid object", err, st.Invalid)
			}
			set := &Set{}
			set.AddStored(st)
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.CheckRequest(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowed != c.allowed || (!v.Allowed && v.Rule != FailClosedRule) {
				t.Errorf("verdict %+v, want allowed=%v", v, c.allowed)
			}
		})
	}
}

// TestValidatorAcceptsOnlyWhatCompiles: across every source, operation and
// `when` field and a corpus of awkward values (wildcards in every place,
// regex metacharacters, CIDRs Istio and Envoy read differently, ports at
// the edges, Envoy-refused path templates), a value the validator (the
// webhook's rules) accepts always compiles: the webhook never admits a
// policy ext_authz then fails closed for. The reverse holds by
// construction (Compile fails closed every object validation rejects).
// experimental.envoy.filters.* is the documented exception and not listed.
func TestValidatorAcceptsOnlyWhatCompiles(t *testing.T) {
	values := []string{"", "*", "**", "a*", "*a", "a*b", "a(", "*a(", "a(*", "x|y", "*x|y", "a.b", "10.0.0.1", "10.0.0.0/33", "10.0.0.1/8",
		"::ffff:1.2.3.4", "fe80::1%eth0", "fe80::/10", "[::1]", " 10.0.0.1", "0", "65536", "080", "+80", "-1", "/a/{*}", "a/{*}", "//a/{*}",
		"/{**}/{*}", "/a/{x}", "{*}", "{**}", "/a/{**}/b", "ns/sa", "a/b/c", "/", "a/", "/b", "cluster.local/ns/a/sa/b", "*/ns/a/sa/b",
		"td/x", "*td", "t*d", "\u212a", "a\nb", "GET", "%", "\\", "(?i)a", "^a$"}
	sources := []string{"principals", "notPrincipals", "requestPrincipals", "namespaces", "notNamespaces", "serviceAccounts",
		"ipBlocks", "remoteIpBlocks", "trustDomains"}
	operations := []string{"hosts", "ports", "notPorts", "methods", "paths", "notPaths"}
	keys := []string{"source.ip", "remote.ip", "destination.ip", "destination.port", "source.namespace", "source.principal",
		"source.serviceAccount", "source.trustDomain", "request.headers[x]", "request.experimental.inline.headers[x]",
		"request.auth.claims[a][b]", "connection.sni", "request.auth.principal", "request.auth.audiences", "request.auth.presenter"}
	check := func(spec string) {
		st, err := DecodeStored("AuthorizationPolicy", storedJSON(t, "AuthorizationPolicy", "p", spec))
		if err != nil {
			t.Fatal(err)
		}
		if st.Invalid != "" {
			return
		}
		tr := newTranslator(Mesh{})
		for i, r := range st.Object.(*secv1.AuthorizationPolicy).Spec.GetRules() {
			if _, err := tr.rule(fmt.Sprintf("spec.rules[%d]", i), "foo", r); err != nil {
				t.Errorf("validation accepts %s, the compiler fails it: %v", spec, err)
			}
		}
	}
	for _, v := range values {
		q, _ := json.Marshal(v)
		for _, f := range sources {
			check(fmt.Sprintf(`{"rules": [{"from": [{"source": {%q: [%s]}}]}]}`, f, q))
		}
		for _, f := range operations {
			check(fmt.Sprintf(`{"rules": [{"to": [{"operation": {%q: [%s]}}]}]}`, f, q))
		}
		for _, k := range keys {
			for _, list := range []string{"values", "notValues"} {
				check(fmt.Sprintf(`{"rules": [{"when": [{"key": %q, %q: [%s]}]}]}`, k, list, q))
			}
		}
	}
}
