package policy

import (
	"context"
	"slices"
	"strings"
	"testing"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
)

// TestGatewayTargetRefs: which workloads a policy with targetRefs applies
// to, as Istio's pilot/pkg/model/policyattachment.go ShouldAttachPolicy
// decides for a non-waypoint workload: none without the
// gateway.networking.k8s.io/gateway-name label; for a gateway's pod, a
// policy of the pod's own namespace whose targetRefs name that Gateway
// (group gateway.networking.k8s.io; another namespace is refused by
// validation, the CRD's rule); the root namespace is no exception. Service, ServiceEntry and GatewayClass
// references attach to waypoints only.
func TestGatewayTargetRefs(t *testing.T) {
	gw := func(name string) map[string]string {
		return map[string]string{GatewayNameLabel: name, "app": "gw-istio"}
	}
	ref := func(kind, group, name, ns string) string {
		return "- {kind: " + kind + ", group: " + group + ", name: " + name + ", namespace: \"" + ns + "\"}\n"
	}
	const k8sGW = "gateway.networking.k8s.io"
	denyAdmin := "action: DENY\nrules:\n- to:\n  - operation: {paths: [\"/admin*\"]}"
	allowGet := "rules:\n- to:\n  - operation: {methods: [GET]}"
	runCases(t, Mesh{}, []tc{
		{"DENY on the named Gateway's pods", ap("foo", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(ns("foo", gw("gw")), path("/admin/x")), deniedBy("foo/d", 0)},
		{"ALLOW makes the Gateway deny-by-default", ap("foo", "a", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+allowGet),
			http(ns("foo", gw("gw")), method("DELETE")), noAllow},
		{"ALLOW allows on the Gateway", ap("foo", "a", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+allowGet),
			http(ns("foo", gw("gw")), method("GET")), allowedBy("foo/a", 0)},
		{"legacy targetRef", ap("foo", "d", "targetRef: {kind: Gateway, group: "+k8sGW+", name: gw}\n"+denyAdmin),
			http(ns("foo", gw("gw")), path("/admin")), deniedBy("foo/d", 0)},
		{"second of several Gateways", ap("foo", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "one", "")+ref("Gateway", k8sGW, "two", "")+denyAdmin),
			http(ns("foo", gw("two")), path("/admin")), deniedBy("foo/d", 0)},
		{"another Gateway's pods", ap("foo", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(ns("foo", gw("other")), path("/admin")), open},
		{"a sidecar workload", ap("foo", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(path("/admin")), open},
		{"the same Gateway name in another namespace", ap("foo", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(ns("bar", gw("gw")), path("/admin")), open},
		{"root namespace: its own Gateway", ap("istio-system", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(ns("istio-system", gw("gw")), path("/admin")), deniedBy("istio-system/d", 0)},
		{"root namespace: not mesh-wide", ap("istio-system", "d", "targetRefs:\n"+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(ns("foo", gw("gw")), path("/admin")), open},
		{"Service reference: waypoints only", ap("foo", "d", "targetRefs:\n"+ref("Service", "", "gw", "")+denyAdmin),
			http(ns("foo", gw("gw")), path("/admin")), open},
		// Validation checks each reference on its own (validation.go
		// validatePolicyTargetReferences), so kinds may be mixed; the
		// Gateway reference attaches, the Service one only to waypoints.
		{"Service and Gateway references: on the Gateway's pods", ap("foo", "d", "targetRefs:\n"+ref("Service", "", "web", "")+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(ns("foo", gw("gw")), path("/admin")), deniedBy("foo/d", 0)},
		{"Service and Gateway references: never a sidecar", ap("foo", "d", "targetRefs:\n"+ref("Service", "", "web", "")+ref("Gateway", k8sGW, "gw", "")+denyAdmin),
			http(path("/admin")), open},
		{"GatewayClass reference: waypoints only", ap("istio-system", "d", "targetRefs:\n"+ref("GatewayClass", k8sGW, "istio", "")+denyAdmin),
			http(ns("istio-system", gw("gw")), path("/admin")), open},
		{"selector policies still apply to a gateway's pods", ap("foo", "d", "selector: {matchLabels: {app: gw-istio}}\n"+denyAdmin),
			http(ns("foo", gw("gw")), path("/admin")), deniedBy("foo/d", 0)},
		{"root namespace policies still apply to a gateway's pods", ap("istio-system", "d", denyAdmin),
			http(ns("foo", gw("gw")), path("/admin")), deniedBy("istio-system/d", 0)},
	})
}

// A rebuild that reuses a Gateway-attached policy's translation (the same
// object) while regenerating its shard (another policy of the namespace
// changed) keeps each copy on its own Gateway (materialize restores the
// rules, not the selector).
func TestGatewayTargetRefsRebuild(t *testing.T) {
	ctx := context.Background()
	gwPolicy := ap("foo", "d", "targetRefs:\n- {kind: Gateway, group: gateway.networking.k8s.io, name: one}\n"+
		"- {kind: Gateway, group: gateway.networking.k8s.io, name: two}\naction: DENY\nrules:\n- to:\n  - operation: {paths: [\"/admin*\"]}")
	set := &Set{}
	if _, err := set.AddYAML("gw", []byte(gwPolicy)); err != nil {
		t.Fatal(err)
	}
	other := func(method string) *Set {
		s := &Set{AuthorizationPolicies: slices.Clone(set.AuthorizationPolicies)}
		if _, err := s.AddYAML("other", []byte(ap("foo", "other", "action: DENY\nrules:\n- to:\n  - operation: {methods: ["+method+"]}"))); err != nil {
			t.Fatal(err)
		}
		return s
	}
	prev, err := CompileNext(ctx, nil, Mesh{}, other("PUT"), 1)
	if err != nil {
		t.Fatal(err)
	}
	next, err := CompileNext(ctx, prev, Mesh{}, other("PATCH"), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Snapshot{prev, next} {
		for _, c := range []struct {
			gateway string
			allowed bool
		}{{"one", false}, {"two", false}, {"three", true}} {
			v, err := s.CheckRequest(ctx, http(ns("foo", map[string]string{GatewayNameLabel: c.gateway}), path("/admin")))
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowed != c.allowed {
				t.Errorf("snapshot %d, gateway %s: %+v, want allowed=%v", s.Version, c.gateway, v, c.allowed)
			}
		}
	}
}

// TestClassicGatewayTargetRef: Istio 1.31 (istio.io/api v1.31.1, go.mod)
// attaches targetRefs to gateway.networking.k8s.io Gateways only
// (pilot/pkg/model/policyattachment.go ShouldAttachPolicy) and its
// validation refuses a networking.istio.io Gateway reference
// (pkg/config/validation/validation.go allowedTargetRefs), which the CRD
// still stores. So --policy-dir refuses it, and a stored policy naming only
// classic Gateways attaches nowhere: not to the pods the Gateway selects,
// not to a Gateway API gateway's pods of the same name (a warning says so).
func TestClassicGatewayTargetRef(t *testing.T) {
	doc := ap("foo", "d", "targetRefs:\n- {kind: Gateway, group: networking.istio.io, name: gw}\naction: DENY\nrules:\n- to:\n  - operation: {paths: [\"/admin*\"]}")
	if _, err := (&Set{}).AddYAML("p.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), "spec.targetRefs[0]") {
		t.Fatalf("AddYAML: %v; want spec.targetRefs[0] refused", err)
	}
	s, err := Compile(context.Background(), Mesh{}, &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{storedAP(t, strings.TrimSuffix(doc, "---\n"))}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.Contains(w, "foo/d: spec.targetRefs: policy ignored") }) {
		t.Errorf("warnings %q: want foo/d ignored", s.Warnings)
	}
	for _, labels := range []map[string]string{{"istio": "ingressgateway"}, {GatewayNameLabel: "gw"}} {
		v, err := s.CheckRequest(context.Background(), http(ns("foo", labels), path("/admin")))
		if err != nil || !v.Allowed || v.Action != "NONE" {
			t.Errorf("pod %v: %+v %v; want allowed, no policy", labels, v, err)
		}
	}
	// Mixed with a Gateway API reference, the policy attaches to that
	// Gateway's pods (as in Istio), where the invalid policy fails closed;
	// a sidecar is not concerned.
	mixed := strings.Replace(doc, "targetRefs:\n", "targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\n", 1)
	if _, err := (&Set{}).AddYAML("p.yaml", []byte(mixed)); err == nil || !strings.Contains(err.Error(), "spec.targetRefs[1]") {
		t.Fatalf("AddYAML mixed: %v; want spec.targetRefs[1] refused", err)
	}
	s, err = Compile(context.Background(), Mesh{}, &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{storedAP(t, strings.TrimSuffix(mixed, "---\n"))}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.CheckRequest(context.Background(), http(ns("foo", map[string]string{GatewayNameLabel: "gw"}), path("/"))); err != nil || v.Allowed || v.Rule != FailClosedRule {
		t.Errorf("mixed, Gateway API pod: %+v %v; want failed closed", v, err)
	}
	if v, err := s.CheckRequest(context.Background(), http(path("/admin"))); err != nil || !v.Allowed {
		t.Errorf("mixed, sidecar: %+v %v; want allowed", v, err)
	}
}

// TestStoredGatewayTargetRefNamespace: a targetRef naming a namespace,
// which only a policy stored before the CRD's rule can hold (AddYAML
// refuses it). ShouldAttachPolicy (pilot/pkg/model/policyattachment.go)
// skips a targetRef whose namespace is not the workload's, so naming
// another namespace attaches the policy nowhere: there is nothing to fail
// closed. Naming its own namespace attaches it to that Gateway, where the
// invalid policy fails closed.
func TestStoredGatewayTargetRefNamespace(t *testing.T) {
	gwPod := func(n string) func(*Request) {
		return ns(n, map[string]string{GatewayNameLabel: "gw", "app": "gw-istio"})
	}
	cases := []struct {
		name, refNS string
		req         *Request
		allowed     bool
	}{
		{"another namespace: not on the policy's namespace's Gateway", "bar", http(gwPod("foo"), path("/admin")), true},
		{"another namespace: not on that namespace's Gateway", "bar", http(gwPod("bar"), path("/admin")), true},
		{"its own namespace: on its Gateway, failed closed", "foo", http(gwPod("foo"), path("/")), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: foo}\nspec:\n" +
				"  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw, namespace: " + c.refNS + "}]\n" +
				"  action: DENY\n  rules: [{to: [{operation: {paths: [\"/admin*\"]}}]}]\n"
			s, err := Compile(context.Background(), Mesh{}, &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{storedAP(t, doc)}}, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.CheckRequest(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowed != c.allowed || (!v.Allowed && (v.Policy != "foo/d" || v.Rule != FailClosedRule)) {
				t.Errorf("verdict %+v, want allowed=%v", v, c.allowed)
			}
		})
	}
}
