package analysis

import (
	"slices"
	"testing"

	security "istio.io/api/security/v1beta1"
	apitype "istio.io/api/type/v1beta1"
)

// authzObject is an AuthorizationPolicy of namespace ns: selector nil is
// none, an empty map the empty selector; from is one source's namespaces.
func authzObject(ns, name string, selector map[string]string, namespaces, notNamespaces []string) Object {
	spec := &security.AuthorizationPolicy{}
	if selector != nil {
		spec.Selector = &apitype.WorkloadSelector{MatchLabels: selector}
	}
	if namespaces != nil || notNamespaces != nil {
		spec.Rules = []*security.Rule{{From: []*security.Rule_From{
			{Source: &security.Source{Principals: []string{"cluster.local/ns/a/sa/b"}}},
			{Source: &security.Source{Namespaces: namespaces, NotNamespaces: notNamespaces}},
		}}}
	}
	return Object{Kind: "AuthorizationPolicy", Namespace: ns, Name: name, Origin: name + ".yaml#0", Spec: spec}
}

// authzLines renders the IST0127 and AuthorizationPolicy IST0101 messages of
// in as istioctl analyze prints them, with their field.
func authzLines(in Input) []string {
	var out []string
	for _, m := range Analyze(in) {
		if m.Kind == "AuthorizationPolicy" && (m.Code == NoMatchingWorkloadsFound || m.Code == "IST0101") {
			out = append(out, m.String()+" @"+m.Field)
		}
	}
	return out
}

// TestAuthzPolicyAnalyzer: the cases Istio's test data does not cover,
// with Istio's rule from
// pkg/config/analysis/analyzers/authz/authorizationpolicies.go
// (analyzeNoMatchingWorkloads, analyzeNamespaceNotFound, namespaceMatch).
func TestAuthzPolicyAnalyzer(t *testing.T) {
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	// Pods with a sidecar (Istio counts only pods in the mesh: inmesh_test.go).
	pod := func(ns, name, a string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: name, Labels: app(a), Containers: []Container{{Name: "istio-proxy", Image: "proxyv2"}}}
	}
	nss := func(names ...string) map[string]map[string]string {
		m := map[string]map[string]string{}
		for _, n := range names {
			m[n] = nil
		}
		return m
	}
	for _, tc := range []struct {
		name string
		in   Input
		want []string
	}{
		{
			// From files (no cluster): neither the pods nor the namespaces are
			// known to be complete, nothing is reported.
			name: "workloads not complete",
			in: Input{Objects: []Object{authzObject("shop", "p", app("gone"), []string{"nowhere"}, nil)},
				Namespaces: nss("shop")},
		},
		{
			name: "selector matches a pod of another namespace only",
			in: Input{AllWorkloads: true, Workloads: []Workload{pod("other", "cart-1", "cart")},
				Objects: []Object{authzObject("shop", "p", app("cart"), nil, nil)}, Namespaces: nss("shop", "other")},
			want: []string{"Warning [IST0127] (AuthorizationPolicy shop/p p.yaml#0) No matching workloads for this resource with the following labels: app=cart @spec.selector"},
		},
		{
			// The empty selector of a root-namespace policy selects every pod:
			// reported only when the mesh has none; no selector selects
			// nothing to check.
			name: "root namespace empty selector, no pods",
			in: Input{AllWorkloads: true, Objects: []Object{
				authzObject(DefaultRootNamespace, "empty", map[string]string{}, nil, nil),
				authzObject(DefaultRootNamespace, "none", nil, nil, nil),
			}, Namespaces: nss(DefaultRootNamespace)},
			want: []string{"Warning [IST0127] (AuthorizationPolicy istio-system/empty empty.yaml#0) No matching workloads for this resource with the following labels:  @spec.selector"},
		},
		{
			name: "root namespace selector matches a pod of any namespace",
			in: Input{AllWorkloads: true, Workloads: []Workload{pod("shop", "cart-1", "cart")},
				Objects: []Object{
					authzObject(DefaultRootNamespace, "empty", map[string]string{}, nil, nil),
					authzObject(DefaultRootNamespace, "cart", app("cart"), nil, nil),
				}, Namespaces: nss(DefaultRootNamespace, "shop")},
		},
		{
			// Outside the root namespace the empty selector is every pod of
			// the namespace.
			name: "empty selector in a namespace with and without pods",
			in: Input{AllWorkloads: true, Workloads: []Workload{pod("shop", "cart-1", "cart")},
				Objects: []Object{
					authzObject("shop", "empty", map[string]string{}, nil, nil),
					authzObject("idle", "empty", map[string]string{}, nil, nil),
					authzObject("idle", "none", nil, nil, nil),
				}, Namespaces: nss("shop", "idle")},
			want: []string{
				"Warning [IST0127] (AuthorizationPolicy idle/empty empty.yaml#0) No matching workloads for this resource with the following labels:  @spec.selector",
				"Warning [IST0127] (AuthorizationPolicy idle/none none.yaml#0) No matching workloads for this resource with the following labels:  @spec.selector",
			},
		},
		{
			// namespaceMatch: an exact value case-insensitively, a prefix or
			// suffix pattern case-sensitively, "*" anything, a "*" inside the
			// value literally.
			name: "namespace values",
			in: Input{AllWorkloads: true, Workloads: []Workload{pod("shop", "cart-1", "cart")},
				Objects: []Object{authzObject("shop", "p", app("cart"),
					[]string{"SHOP", "sh*", "*op", "SH*", "*OP", "s*p", "*"}, []string{"Shop", "x*"})},
				Namespaces: nss("shop")},
			want: []string{
				`Error [IST0101] (AuthorizationPolicy shop/p p.yaml#0) Referenced namespace not found: "*OP" @spec.rules[0].from[1].source.namespaces[4]`,
				`Error [IST0101] (AuthorizationPolicy shop/p p.yaml#0) Referenced namespace not found: "SH*" @spec.rules[0].from[1].source.namespaces[3]`,
				`Error [IST0101] (AuthorizationPolicy shop/p p.yaml#0) Referenced namespace not found: "s*p" @spec.rules[0].from[1].source.namespaces[5]`,
				`Error [IST0101] (AuthorizationPolicy shop/p p.yaml#0) Referenced namespace not found: "x*" @spec.rules[0].from[1].source.notNamespaces[1]`,
			},
		},
		{
			// Istio's matchNamespace looks for a Namespace matching the value:
			// with none, not even "*" matches.
			name: "no namespace at all",
			in: Input{AllWorkloads: true, Workloads: []Workload{pod("shop", "cart-1", "cart")},
				Objects: []Object{authzObject("shop", "p", app("cart"), []string{"*"}, nil)}},
			want: []string{`Error [IST0101] (AuthorizationPolicy shop/p p.yaml#0) Referenced namespace not found: "*" @spec.rules[0].from[1].source.namespaces[0]`},
		},
	} {
		got := authzLines(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
