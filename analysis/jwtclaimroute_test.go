package analysis

import (
	"slices"
	"strings"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	apitype "istio.io/api/type/v1beta1"
)

// Edge cases of jwtClaimRoutes that Istio's one test row leaves out, each
// as Istio's JWTClaimRouteAnalyzer decides it (jwtclaimroute.go), except the
// root namespace (the mesh config's; see jwtClaimRoutes).
func TestJWTClaimRoutes(t *testing.T) {
	ingress := map[string]string{"istio": "ingressgateway"}
	vsObj := func(ns, name string, gateways []string, headers, without map[string]*networking.StringMatch) Object {
		return Object{Kind: "VirtualService", Namespace: ns, Name: name, Spec: &networking.VirtualService{
			Hosts: []string{"foo.com"}, Gateways: gateways,
			Http: []*networking.HTTPRoute{
				{Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/a"}}}}},
				{Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{"x-plain": {}}}, {Headers: headers, WithoutHeaders: without}}},
			}}}
	}
	claim := func(keys ...string) map[string]*networking.StringMatch {
		m := map[string]*networking.StringMatch{}
		for _, k := range keys {
			m[k] = &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "v"}}
		}
		return m
	}
	gwObj := func(ns, name string, sel map[string]string) Object {
		return Object{Kind: "Gateway", Namespace: ns, Name: name, Spec: &networking.Gateway{Selector: sel}}
	}
	raObj := func(ns, name string, sel map[string]string) Object {
		spec := &security.RequestAuthentication{}
		if sel != nil {
			spec.Selector = &apitype.WorkloadSelector{MatchLabels: sel}
		}
		return Object{Kind: "RequestAuthentication", Namespace: ns, Name: name, Spec: spec}
	}
	pod := func(ns, name string, l map[string]string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: name, Labels: l}
	}
	gwPod := pod("istio-system", "ingress-1", ingress)
	vs := vsObj("default", "vs", []string{"gw"}, claim("@request.auth.claims.group"), nil)
	gw := gwObj("default", "gw", ingress)
	// Each row's want: "name key gateway pod @field", in Analyze's order.
	tests := []struct {
		name      string
		objs      []Object
		workloads []Workload
		all       bool
		mesh      *meshv1alpha1.MeshConfig
		want      []string
	}{
		{name: "no RequestAuthentication", objs: []Object{vs, gw}, workloads: []Workload{gwPod},
			want: []string{"vs @request.auth.claims.group default/gw ingress-1 @spec.http[1].match[1].headers[@request.auth.claims.group]"}},
		{name: "a RequestAuthentication of the pod's namespace selecting it",
			objs: []Object{vs, gw, raObj("istio-system", "ra", ingress)}, workloads: []Workload{gwPod}},
		{name: "a selector-less one of the root namespace covers pods of every namespace",
			objs: []Object{vs, gw, raObj("istio-system", "ra", nil)}, workloads: []Workload{pod("gw-ns", "ingress-2", ingress)}},
		{name: "one of another namespace, or not selecting the pod, does not",
			objs:      []Object{vs, gw, raObj("default", "ra", nil), raObj("gw-ns", "other", map[string]string{"app": "x"})},
			workloads: []Workload{pod("gw-ns", "ingress-2", ingress)},
			want:      []string{"vs @request.auth.claims.group default/gw ingress-2 @spec.http[1].match[1].headers[@request.auth.claims.group]"}},
		// Deliberate difference: Istio's analyzer reads istio-system whatever
		// the mesh config; pilot applies the mesh root namespace's.
		{name: "the mesh config's root namespace, not istio-system",
			objs:      []Object{vs, gw, raObj("mesh-root", "ra", nil)},
			workloads: []Workload{pod("gw-ns", "ingress-2", ingress)}, mesh: &meshv1alpha1.MeshConfig{RootNamespace: "mesh-root"}},
		{name: "istio-system is not the root under another mesh config",
			objs:      []Object{vs, gw, raObj("istio-system", "ra", nil)},
			workloads: []Workload{pod("gw-ns", "ingress-2", ingress)}, mesh: &meshv1alpha1.MeshConfig{RootNamespace: "mesh-root"},
			want: []string{"vs @request.auth.claims.group default/gw ingress-2 @spec.http[1].match[1].headers[@request.auth.claims.group]"}},
		{name: "no routing claim: a bare prefix, a plain header",
			objs:      []Object{vsObj("default", "vs", []string{"gw"}, claim("@request.auth.claims", "@request.auth.claims[]", "x-claims"), nil), gw},
			workloads: []Workload{gwPod}},
		{name: "withoutHeaders, the [a] form and any case of the prefix; the smallest key of a match named",
			objs:      []Object{vsObj("default", "vs", []string{"gw"}, claim("x-plain"), claim("@request.auth.claims[b]", "@Request.Auth.Claims[a]")), gw},
			workloads: []Workload{gwPod},
			want:      []string{"vs @Request.Auth.Claims[a] default/gw ingress-1 @spec.http[1].match[1].withoutHeaders[@Request.Auth.Claims[a]]"}},
		{name: "mesh and missing gateways skipped; ns/name resolved; each gateway and pod once",
			objs: []Object{vsObj("default", "vs", []string{"mesh", "missing", "edge/gw2", "gw"}, claim("@request.auth.claims.group"), nil),
				gw, gwObj("edge", "gw2", map[string]string{"app": "edge"})},
			workloads: []Workload{gwPod, pod("edge", "edge-1", map[string]string{"app": "edge"}), pod("edge", "edge-2", map[string]string{"app": "edge"})},
			want: []string{
				"vs @request.auth.claims.group edge/gw2 edge-1 @spec.http[1].match[1].headers[@request.auth.claims.group]",
				"vs @request.auth.claims.group edge/gw2 edge-2 @spec.http[1].match[1].headers[@request.auth.claims.group]",
				"vs @request.auth.claims.group default/gw ingress-1 @spec.http[1].match[1].headers[@request.auth.claims.group]",
			}},
		{name: "gateway pods not given: nothing", objs: []Object{vs, gw}, workloads: []Workload{pod("default", "app", map[string]string{"app": "x"})}},
		{name: "an empty gateway selector selects every workload",
			objs: []Object{vs, gwObj("default", "gw", nil)}, workloads: []Workload{pod("default", "app", map[string]string{"app": "x"})},
			want: []string{"vs @request.auth.claims.group default/gw app @spec.http[1].match[1].headers[@request.auth.claims.group]"}},
		{name: "from files a Deployment template counts",
			objs: []Object{vs, gw}, workloads: []Workload{{Kind: "Deployment", Namespace: "istio-system", Name: "ingress", Labels: ingress}},
			want: []string{"vs @request.auth.claims.group default/gw ingress @spec.http[1].match[1].headers[@request.auth.claims.group]"}},
		{name: "in a cluster only its pods",
			objs: []Object{vs, gw}, all: true,
			workloads: []Workload{{Kind: "Deployment", Namespace: "istio-system", Name: "ingress", Labels: ingress, Stored: true}, gwPod},
			want:      []string{"vs @request.auth.claims.group default/gw ingress-1 @spec.http[1].match[1].headers[@request.auth.claims.group]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Objects: tt.objs, Workloads: tt.workloads, AllWorkloads: tt.all, Mesh: tt.mesh}
			var got []string
			for _, m := range jwtClaimRoutes(&in) {
				if m.Code != JwtClaimBasedRoutingWithoutRequestAuthN || m.Level != Error {
					t.Fatalf("message %v", m)
				}
				got = append(got, m.Object+" "+jwtKeyGatewayPod(t, m.Message)+" @"+m.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// jwtKeyGatewayPod reads back the key, gateway and pod of an IST0149 text.
func jwtKeyGatewayPod(t *testing.T, text string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(text, "The virtual service uses the JWT claim based routing (key: ")
	if !ok {
		t.Fatalf("text %q", text)
	}
	var parts []string
	for _, sep := range []string{") but found no request authentication for the gateway (", ") pod (",
		"). The request authentication must first be applied for the gateway pods to validate the JWT token and make the claims available for routing."} {
		var part string
		if part, rest, ok = strings.Cut(rest, sep); !ok {
			t.Fatalf("text %q: no %q", text, sep)
		}
		parts = append(parts, part)
	}
	if rest != "" {
		t.Fatalf("text %q: %q after the template", text, rest)
	}
	return strings.Join(parts, " ")
}
