package authzref

import (
	"testing"
	"time"

	secapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The reference's own oracle: verdicts stated by Istio's documentation,
// source and regression examples checked against Istio. Each case fails if the
// reference is changed to the opposite reading.

func mkAP(ns, name string, action secapi.AuthorizationPolicy_Action, rules ...*secapi.Rule) *secv1.AuthorizationPolicy {
	ap := &secv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	ap.Spec.Action = action
	ap.Spec.Rules = rules
	return ap
}

func mkPA(ns, name string, age int, mode secapi.PeerAuthentication_MutualTLS_Mode, set bool) *secv1.PeerAuthentication {
	pa := &secv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))}}
	if set {
		pa.Spec.Mtls = &secapi.PeerAuthentication_MutualTLS{Mode: mode}
	}
	return pa
}

func from(s *secapi.Source) *secapi.Rule    { return &secapi.Rule{From: []*secapi.Rule_From{{Source: s}}} }
func to(o *secapi.Operation) *secapi.Rule   { return &secapi.Rule{To: []*secapi.Rule_To{{Operation: o}}} }
func when(c *secapi.Condition) *secapi.Rule { return &secapi.Rule{When: []*secapi.Condition{c}} }

func TestReferenceExamples(t *testing.T) {
	mesh := Mesh{RootNamespace: Root, TrustDomain: "cluster.local"}
	aliased := Mesh{RootNamespace: Root, TrustDomain: "cluster.local", TrustDomainAliases: []string{"other.td"}}
	fooWeb := Workloads[0]
	http := func(principal, path string) Request {
		return Request{Dest: fooWeb, DstPort: 8080, Principal: principal, SrcIP: "10.0.0.5", Method: "GET", Path: path, Host: "web.foo.svc"}
	}
	const DENY, ALLOW = secapi.AuthorizationPolicy_DENY, secapi.AuthorizationPolicy_ALLOW
	const UNSET, DISABLE, STRICT = secapi.PeerAuthentication_MutualTLS_UNSET, secapi.PeerAuthentication_MutualTLS_DISABLE, secapi.PeerAuthentication_MutualTLS_STRICT
	denyFooNS := mkAP("foo", "d", DENY, from(&secapi.Source{Principals: []string{"cluster.local/ns/foo/*"}}))
	sel := &secv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: "foo", Name: "port"}}
	sel.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "web"}}
	sel.Spec.PortLevelMtls = map[uint32]*secapi.PeerAuthentication_MutualTLS{8080: {Mode: STRICT}}
	rootWeb := Workload{Namespace: Root, Labels: map[string]string{"app": "web"}, IP: "10.0.3.1"}
	rootSel := mkPA(Root, "sel", 0, STRICT, true)
	rootSel.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "web"}}
	gwWeb := Workload{Namespace: "foo", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw"}, IP: "10.0.1.3", Proxy: RouterProxy}
	// the same label on a Pod whose istio-proxy runs `proxy sidecar`
	// (container or native sidecar), a router without it, the label on a
	// Pod known without its istio-proxy
	gwLabel := map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "web"}
	labelledSidecar := Workload{Namespace: "foo", Labels: gwLabel, IP: "10.0.1.8", Proxy: SidecarProxy}
	labelledNative := Workload{Namespace: "foo", Labels: gwLabel, IP: "10.0.1.9", Proxy: NativeSidecarProxy}
	plainRouter := Workload{Namespace: "foo", Labels: map[string]string{"app": "web"}, IP: "10.0.1.4", Proxy: RouterProxy}
	labelOnly := Workload{Namespace: "foo", Labels: gwLabel, IP: "10.0.1.11"}
	at := func(w Workload, r Request) Request { r.Dest = w; return r }
	meshStrict := []*secv1.PeerAuthentication{mkPA(Root, "default", 0, STRICT, true)}
	toGW := func(ns string) *secv1.AuthorizationPolicy {
		ap := mkAP(ns, "gw-deny", DENY, &secapi.Rule{})
		ap.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}
		return ap
	}
	meshHops := func(n uint32) Mesh { m := mesh; m.GatewayNumTrustedProxies = n; return m }
	withPC := func(w Workload, pc string) Workload { w.ProxyConfig = pc; return w }
	xff := func(w Workload, v string) Request {
		r := http("", "/")
		r.Dest, r.Headers = w, map[string]string{"X-Forwarded-For": v}
		return r
	}
	denyClient := mkAP("foo", "client", DENY, from(&secapi.Source{RemoteIpBlocks: []string{"10.1.2.3/32"}}))
	denyLast := mkAP("foo", "last", DENY, from(&secapi.Source{RemoteIpBlocks: []string{"192.168.1.1/32"}}))
	dryRun := func(v string) *secv1.AuthorizationPolicy {
		ap := mkAP("foo", "d", DENY, &secapi.Rule{})
		ap.Annotations = map[string]string{"istio.io/dry-run": v}
		return ap
	}
	cases := []struct {
		name  string
		mesh  Mesh
		aps   []*secv1.AuthorizationPolicy
		pas   []*secv1.PeerAuthentication
		req   Request
		allow bool
	}{
		{"PA precedence: oldest PA (UNSET) wins its level, then inherits PERMISSIVE; DENY still sees the principal", mesh,
			[]*secv1.AuthorizationPolicy{denyFooNS}, []*secv1.PeerAuthentication{mkPA("foo", "pa-0", 0, UNSET, false), mkPA("foo", "pa-1", 1, DISABLE, true)},
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), false},
		{"newer DISABLE alone drops the principal", mesh,
			[]*secv1.AuthorizationPolicy{denyFooNS}, []*secv1.PeerAuthentication{mkPA("foo", "pa-1", 1, DISABLE, true)},
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), true},
		{"PA precedence, STRICT variant: plaintext allowed", mesh, nil,
			[]*secv1.PeerAuthentication{mkPA("foo", "pa-0", 0, UNSET, false), mkPA("foo", "pa-1", 1, STRICT, true)}, http("", "/"), true},
		{"port-level STRICT refuses plaintext on that port", mesh, nil, []*secv1.PeerAuthentication{sel}, http("", "/"), false},
		{"aliases do not widen a non-exact principal", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"cluster.local/ns/foo/*"}}))}, nil,
			http("spiffe://other.td/ns/foo/sa/sleep", "/"), false},
		{"aliases expand an exact principal", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"cluster.local/ns/foo/sa/sleep"}}))}, nil,
			http("spiffe://other.td/ns/foo/sa/sleep", "/"), true},
		{"literal after {**} is valid, GET / not denied", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, to(&secapi.Operation{Paths: []string{"/admin/{**}/secret"}}))}, nil, http("", "/"), true},
		{"{**} template matches several segments", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, to(&secapi.Operation{Paths: []string{"/admin/{**}/secret"}}))}, nil, http("", "/admin/a/b/secret"), false},
		{"{*} excludes '*' (Envoy kLiteral)", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, to(&secapi.Operation{Paths: []string{"/api/{*}/users"}}))}, nil, http("", "/api/v*1/users"), false},
		{"normalised path: /public/%2E%2E/private is /private", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, to(&secapi.Operation{Paths: []string{"/private"}}))}, nil, http("", "/public/%2E%2E/private?x=1"), false},
		{"SPIFFE ID with extra segments: namespace by regex .*/ns/foo/.*", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{Namespaces: []string{"foo"}}))}, nil,
			http("spiffe://cluster.local/ns/bar/sa/x/ns/foo/sa/sleep", "/"), false},
		{"upper-case header key still matches (header names are case-insensitive)", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, when(&secapi.Condition{Key: "request.headers[x-evil]", Values: []string{"*"}}))}, nil,
			func() Request { r := http("", "/"); r.Headers = map[string]string{"X-Evil": "1"}; return r }(), false},
		{"ISTIO-SECURITY-2021-004: notNamespaces on plaintext matches", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{NotNamespaces: []string{"foo"}}))}, nil, http("", "/"), true},
		{"methods '*' is present_match: any method, even an empty one (generator.go methodGenerator)", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, to(&secapi.Operation{Methods: []string{"*"}}))}, nil,
			func() Request { r := http("", "/"); r.Method = ""; return r }(), false},
		{"notMethods '*' never matches", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, to(&secapi.Operation{NotMethods: []string{"*"}}))}, nil,
			func() Request { r := http("", "/"); r.Method = ""; return r }(), false},
		{"hosts are case-insensitive", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, to(&secapi.Operation{Hosts: []string{"Web.Foo.Svc"}}))}, nil, http("", "/"), true},
		{"ALLOW rule with HTTP-only field never matches on TCP", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, to(&secapi.Operation{Methods: []string{"GET"}, Ports: []string{"8080"}}))}, nil,
			Request{Dest: fooWeb, DstPort: 8080, SrcIP: "10.0.0.5", TCP: true}, false},
		{"DENY rule ignores the HTTP-only field on TCP", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, to(&secapi.Operation{Methods: []string{"GET"}, Ports: []string{"8080"}}))}, nil,
			Request{Dest: fooWeb, DstPort: 8080, SrcIP: "10.0.0.5", TCP: true}, false},
		{"requestPrincipals split at the last '/'", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{RequestPrincipals: []string{"a/b/c"}}))}, nil,
			func() Request {
				r := http("", "/")
				r.JWT = &JWT{Claims: map[string]any{"iss": "a", "sub": "b/c"}}
				return r
			}(), false},

		// principal "*x" is the regex spiffe://.*x with x quoted, full match
		// (StringMatcherWithPrefix; quoted since Istio's 1.29.3 security fix)
		{"principal *x: '.' is a literal dot", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*/sa/a.b"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/aXb", "/"), false},
		{"principal *x: the dotted name itself", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*/sa/a.b"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/a.b", "/"), true},
		{"principal *x: '|' is no alternation", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*sleep|api"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), false},
		{"principal *x: a literal '|' matches", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*sleep|api"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/sleep|api", "/"), true},
		{"principal *x: '(' is a literal", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*sleep("}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/sleep(", "/"), true},
		{"principal *x: '.*' does not cross a newline", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*/sa/sleep"}}))}, nil,
			http("spiffe://evil\n/ns/foo/sa/sleep", "/"), false},

		// namespaces (every '*' as .*) and serviceAccounts are quoted, full
		// match (generator.go; Istio's security fixes istio/istio#59700, #59992)
		{"namespace 'foo|bar' is no alternation", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{Namespaces: []string{"foo|bar"}}))}, nil,
			http("spiffe://cluster.local/ns/foo", "/"), true},
		{"namespace 'foo|bar' matches itself", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{Namespaces: []string{"foo|bar"}}))}, nil,
			http("spiffe://cluster.local/ns/foo|bar/sa/api", "/"), false},
		{"namespace 'f.o': '.' is a literal dot", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{Namespaces: []string{"f.o"}}))}, nil,
			http("spiffe://cluster.local/ns/fxo/sa/sleep", "/"), true},
		{"namespace 'f.*': '*' is still .*", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{Namespaces: []string{"f.*"}}))}, nil,
			http("spiffe://cluster.local/ns/f.oo/sa/sleep", "/"), false},
		{"namespace 'f.*': the dot stays literal", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{Namespaces: []string{"f.*"}}))}, nil,
			http("spiffe://cluster.local/ns/fxoo/sa/sleep", "/"), true},
		{"serviceAccount 'foo/x|b': no alternation", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{ServiceAccounts: []string{"foo/x|b"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/x", "/"), true},
		{"serviceAccount 'foo/x|b': the literal name", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{ServiceAccounts: []string{"foo/x|b"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/x|b", "/"), false},
		{"serviceAccount 'cert-manager.io': '.' is a literal dot", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{ServiceAccounts: []string{"cert-manager.io"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/cert-manager-io", "/"), false},

		// requestPrincipals: a missing or non-string claim matches no half (Envoy metadata matcher)
		{"requestPrincipal 'iss/' needs sub to be the empty string, not missing", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{RequestPrincipals: []string{"https://iss/"}}))}, nil,
			func() Request {
				r := http("", "/")
				r.JWT = &JWT{Claims: map[string]any{"iss": "https://iss"}}
				return r
			}(), false},
		{"requestPrincipal 'iss/' matches sub \"\"", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{RequestPrincipals: []string{"https://iss/"}}))}, nil,
			func() Request {
				r := http("", "/")
				r.JWT = &JWT{Claims: map[string]any{"iss": "https://iss", "sub": ""}}
				return r
			}(), true},
		{"requestPrincipal '*/' on a token lacking sub", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "b", DENY, from(&secapi.Source{RequestPrincipals: []string{"*/"}}))}, nil,
			func() Request {
				r := http("", "/")
				r.JWT = &JWT{Claims: map[string]any{"iss": "https://iss"}}
				return r
			}(), true},
		{"notRequestPrincipals '*' on a token whose sub is a number", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{NotRequestPrincipals: []string{"*"}}))}, nil,
			func() Request {
				r := http("", "/")
				r.JWT = &JWT{Claims: map[string]any{"iss": "https://iss", "sub": float64(42)}}
				return r
			}(), true},

		// PeerAuthentication with a selector in the root namespace applies to no workload
		{"root-namespace PA with selector ignored for a root-namespace workload", mesh, nil,
			[]*secv1.PeerAuthentication{rootSel},
			func() Request { r := http("", "/"); r.Dest = rootWeb; return r }(), true},

		// trust-domain aliases: stringMatch from either side, "*x" kept for the members it matches
		{"principal trust domain '*local' kept for cluster.local, rewritten for the alias", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*local/ns/foo/sa/sleep"}}))}, nil,
			http("spiffe://other.td/ns/foo/sa/sleep", "/"), true},
		{"principal trust domain 'other*' matches the alias: rewritten to exact members", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"other*/ns/foo/sa/sleep"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), true},
		{"principal trust domain 'other*' without aliases: kept, an exact literal", mesh,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"other*/ns/foo/sa/sleep"}}))}, nil,
			http("spiffe://other.td/ns/foo/sa/sleep", "/"), false},
		{"principal trust domain '*.td' with alias other.td: rewritten to exact cluster.local", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"*.td/ns/foo/sa/sleep"}}))}, nil,
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), true},

		// gateways (proxies run as routers): PeerAuthentication configures
		// sidecars only (listener_inbound.go authnBuilder.ForPort), targetRefs
		// attach to a Gateway API gateway of the policy's own namespace
		// (policyattachment.go ShouldAttachPolicy)
		{"mesh STRICT: a gateway takes plaintext", mesh, nil, []*secv1.PeerAuthentication{mkPA(Root, "default", 0, STRICT, true)},
			func() Request { r := http("", "/"); r.Dest = gwWeb; return r }(), true},
		{"namespace DISABLE: a gateway keeps the peer identity", mesh,
			[]*secv1.AuthorizationPolicy{denyFooNS}, []*secv1.PeerAuthentication{mkPA("foo", "off", 0, DISABLE, true)},
			func() Request { r := http("spiffe://cluster.local/ns/foo/sa/sleep", "/"); r.Dest = gwWeb; return r }(), false},
		{"targetRefs Gateway gw attaches to gw's pods", mesh, []*secv1.AuthorizationPolicy{toGW("foo")}, nil,
			func() Request { r := http("", "/"); r.Dest = gwWeb; return r }(), false},
		{"targetRefs Gateway gw: never a sidecar", mesh, []*secv1.AuthorizationPolicy{toGW("foo")}, nil, http("", "/"), true},
		// the proxy type decides, not the label (listener.go BuildListeners
		// builds gateway listeners for model.Router alone)
		{"mesh STRICT: a sidecar labelled as gateway gw refuses plaintext", mesh, nil, meshStrict, at(labelledSidecar, http("", "/")), false},
		{"mesh STRICT: a native sidecar labelled as gateway gw refuses plaintext", mesh, nil, meshStrict, at(labelledNative, http("", "/")), false},
		{"namespace DISABLE: a labelled sidecar hides the peer identity", mesh,
			[]*secv1.AuthorizationPolicy{denyFooNS}, []*secv1.PeerAuthentication{mkPA("foo", "off", 0, DISABLE, true)},
			at(labelledNative, http("spiffe://cluster.local/ns/foo/sa/sleep", "/")), true},
		{"mesh STRICT: a router without the label takes plaintext", mesh, nil, meshStrict, at(plainRouter, http("", "/")), true},
		{"mesh STRICT: a labelled Pod without istio-proxy is a Gateway API gateway's, takes plaintext", mesh, nil, meshStrict,
			at(labelOnly, http("", "/")), true},
		{"mesh STRICT: an unlabelled Pod without istio-proxy is a sidecar's", mesh, nil, meshStrict, http("", "/"), false},
		{"targetRefs Gateway gw attaches by the label, to a labelled sidecar too", mesh, []*secv1.AuthorizationPolicy{toGW("foo")}, nil,
			at(labelledSidecar, http("", "/")), false},
		{"targetRefs Gateway gw from the root namespace: not mesh-wide", mesh, []*secv1.AuthorizationPolicy{toGW(Root)}, nil,
			func() Request { r := http("", "/"); r.Dest = gwWeb; return r }(), true},

		// remote.ip: a sidecar trusts no X-Forwarded-For hop; a gateway
		// (use_remote_address) its ProxyConfig's numTrustedProxies, from
		// its proxy.istio.io/config over the mesh's defaultConfig (Envoy
		// mutateRequestHeaders, Istio buildGatewayConnectionManager)
		{"sidecar: the last X-Forwarded-For entry", meshHops(2), []*secv1.AuthorizationPolicy{denyClient}, nil, xff(fooWeb, "10.1.2.3, 192.168.1.1"), true},
		{"sidecar: a gatewayTopology annotation does not apply", mesh, []*secv1.AuthorizationPolicy{denyClient}, nil,
			xff(withPC(fooWeb, "gatewayTopology: {numTrustedProxies: 2}"), "10.1.2.3, 192.168.1.1"), true},
		{"labelled sidecar: trusts no hop whatever the mesh's gatewayTopology", meshHops(2), []*secv1.AuthorizationPolicy{denyClient}, nil,
			xff(labelledSidecar, "10.1.2.3, 192.168.1.1"), true},
		{"labelled native sidecar: the last entry, not its annotation's hops", mesh, []*secv1.AuthorizationPolicy{denyLast}, nil,
			xff(withPC(labelledNative, "gatewayTopology: {numTrustedProxies: 2}"), "10.1.2.3, 192.168.1.1"), false},
		{"router without the label, mesh trusts two: the one before", meshHops(2), []*secv1.AuthorizationPolicy{denyClient}, nil,
			xff(plainRouter, "10.1.2.3, 192.168.1.1"), false},
		{"labelled Pod without istio-proxy, its annotation trusts two: the one before", mesh, []*secv1.AuthorizationPolicy{denyClient}, nil,
			xff(withPC(labelOnly, "gatewayTopology: {numTrustedProxies: 2}"), "10.1.2.3, 192.168.1.1"), false},
		{"gateway trusting none: the peer", mesh, []*secv1.AuthorizationPolicy{denyLast}, nil, xff(gwWeb, "10.1.2.3, 192.168.1.1"), true},
		{"gateway, mesh trusts one: the last entry", meshHops(1), []*secv1.AuthorizationPolicy{denyLast}, nil, xff(gwWeb, "10.1.2.3, 192.168.1.1"), false},
		{"gateway, mesh trusts two: the one before", meshHops(2), []*secv1.AuthorizationPolicy{denyClient}, nil, xff(gwWeb, "10.1.2.3, 192.168.1.1"), false},
		{"gateway, mesh trusts three: fewer entries, the peer", meshHops(3), []*secv1.AuthorizationPolicy{denyClient, denyLast}, nil, xff(gwWeb, "10.1.2.3, 192.168.1.1"), true},
		{"gateway annotation overrides the mesh", mesh, []*secv1.AuthorizationPolicy{denyClient}, nil,
			xff(withPC(gwWeb, "gatewayTopology: {numTrustedProxies: 2}"), "10.1.2.3, 192.168.1.1"), false},
		{"gateway annotation's gatewayTopology replaces the mesh's whole", meshHops(1), []*secv1.AuthorizationPolicy{denyLast}, nil,
			xff(withPC(gwWeb, "gatewayTopology: {forwardClientCertDetails: SANITIZE}"), "10.1.2.3, 192.168.1.1"), true},
		{"gateway annotation without gatewayTopology keeps the mesh's", meshHops(1), []*secv1.AuthorizationPolicy{denyLast}, nil,
			xff(withPC(gwWeb, "concurrency: 2"), "10.1.2.3, 192.168.1.1"), false},

		// istio.io/dry-run is strconv.ParseBool
		{"dry-run 'T' is not enforced", mesh, []*secv1.AuthorizationPolicy{dryRun("T")}, nil, http("", "/"), true},
		{"dry-run '0' is enforced", mesh, []*secv1.AuthorizationPolicy{dryRun("0")}, nil, http("", "/"), false},
	}
	for _, c := range cases {
		got := Evaluate(c.mesh, c.aps, c.pas, c.req)
		if got.Allowed != c.allow {
			t.Errorf("%s: reference says %+v, want allowed=%v", c.name, got, c.allow)
		}
	}
	if v := Evaluate(mesh, nil, nil, http("", "/a%00b")); v.Status != 400 {
		t.Errorf("%%00 in the path: got %+v, want 400", v)
	}
}

// TestReferenceProxyProtocol: "PROXY protocol on gateways" in
// docs/compatibility.md, case by case: behind PROXY protocol the source
// address (ipBlocks, notIpBlocks, source.ip) is unknown to the ext_authz
// server and denies under an enforced policy that may apply and reads it;
// remote.ip is the PROXY header's client; the annotation's gatewayTopology
// replaces the mesh's whole.
func TestReferenceProxyProtocol(t *testing.T) {
	mesh := Mesh{RootNamespace: Root, TrustDomain: "cluster.local"}
	meshPP := mesh
	meshPP.GatewayProxyProtocol = true
	gw := Workload{Namespace: "foo", Labels: map[string]string{"app": "web"}, IP: "10.0.1.4", Proxy: RouterProxy}
	withPC := func(w Workload, pc string) Workload { w.ProxyConfig = pc; return w }
	pp := withPC(gw, "gatewayTopology: {proxyProtocol: {}}")
	sidecar := Workloads[0]
	req := func(w Workload) Request {
		return Request{Dest: w, DstPort: 8080, SrcIP: "10.0.0.77", ProxyClientIP: "10.1.2.3", Method: "GET", Path: "/", Host: "web.foo.svc"}
	}
	allowClient := mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, from(&secapi.Source{IpBlocks: []string{"10.1.2.3/32"}}))
	allowLB := mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, from(&secapi.Source{IpBlocks: []string{"10.0.0.77/32"}}))
	denyLB := mkAP("foo", "d", secapi.AuthorizationPolicy_DENY, from(&secapi.Source{IpBlocks: []string{"10.0.0.77/32"}}))
	allowNotLB := mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, from(&secapi.Source{NotIpBlocks: []string{"10.0.0.77/32"}}))
	allowWhen := mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, when(&secapi.Condition{Key: "source.ip", Values: []string{"10.1.2.3"}}))
	allowRemote := mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, from(&secapi.Source{RemoteIpBlocks: []string{"10.1.2.3/32"}}))
	allowGET := mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, to(&secapi.Operation{Methods: []string{"GET"}}))
	other := mkAP("foo", "o", secapi.AuthorizationPolicy_DENY, from(&secapi.Source{IpBlocks: []string{"10.0.0.77/32"}}))
	other.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "not-web"}}
	for _, c := range []struct {
		name    string
		mesh    Mesh
		ap      *secv1.AuthorizationPolicy
		w       Workload
		allowed bool
	}{
		{"ALLOW ipBlocks of the client", mesh, allowClient, pp, false},
		{"ALLOW ipBlocks of the load balancer (Istio allows; unknown)", mesh, allowLB, pp, false},
		{"DENY ipBlocks of the load balancer", mesh, denyLB, pp, false},
		{"ALLOW notIpBlocks", mesh, allowNotLB, pp, false},
		{"ALLOW source.ip", mesh, allowWhen, pp, false},
		{"remoteIpBlocks: the PROXY header's client", mesh, allowRemote, pp, true},
		{"policy not reading the source", mesh, allowGET, pp, true},
		{"policy for another workload", mesh, other, pp, true},
		{"mesh defaultConfig", meshPP, allowLB, gw, false},
		{"annotation gatewayTopology replaces the mesh's", meshPP, allowLB, withPC(gw, "gatewayTopology: {numTrustedProxies: 1}"), true},
		{"annotation without gatewayTopology keeps the mesh's", meshPP, allowLB, withPC(gw, "concurrency: 2"), false},
		{"no PROXY protocol: the direct peer", mesh, allowLB, gw, true},
		{"no PROXY protocol: remote.ip is the direct peer", mesh, allowRemote, gw, false},
		{"sidecar: no gateway listeners, the direct peer", meshPP, allowLB, withPC(sidecar, "gatewayTopology: {proxyProtocol: {}}"), true},
	} {
		if v := Evaluate(c.mesh, []*secv1.AuthorizationPolicy{c.ap}, nil, req(c.w)); v.Allowed != c.allowed {
			t.Errorf("%s: verdict %+v, want allowed %v", c.name, v, c.allowed)
		}
	}
}

// TestReferenceSNI: the connection.sni row of docs/compatibility.md, stated
// case by case: which CheckRequests leave the SNI unknown, and that an
// unknown one denies only under an enforced ALLOW or DENY policy with a
// connection.sni condition that applies to the workload.
func TestReferenceSNI(t *testing.T) {
	mesh := Mesh{RootNamespace: Root, TrustDomain: "cluster.local"}
	fooWeb := Workloads[0]
	const p = "spiffe://cluster.local/ns/foo/sa/sleep"
	unknownCases := []struct {
		name    string
		r       Request
		unknown bool
	}{
		{"mTLS with tls_session", Request{Principal: p, TLS: true, TLSSession: true, SNI: "web.foo.svc"}, false},
		{"mTLS with tls_session, no SNI", Request{Principal: p, TLS: true, TLSSession: true}, false},
		{"mTLS without tls_session", Request{Principal: p, TLS: true, SNI: "web.foo.svc"}, true},
		{"SIMPLE TLS without tls_session", Request{TLS: true, SNI: "web.foo.svc"}, true},
		{"SIMPLE TLS with tls_session", Request{TLS: true, TLSSession: true, SNI: "web.foo.svc"}, false},
		{"TCP, SNI as destination.service", Request{TCP: true, TLS: true, SNI: "web.foo.svc"}, false},
		{"TCP TLS without SNI", Request{TCP: true, TLS: true}, true},
		{"plaintext", Request{}, false},
		{"plaintext TCP", Request{TCP: true}, false},
		{"plaintext, tls-unknown extension", Request{TLSUnknown: true}, true},
	}
	for _, c := range unknownCases {
		if got := sniUnknown(c.r); got != c.unknown {
			t.Errorf("%s: sniUnknown = %v, want %v", c.name, got, c.unknown)
		}
	}
	sniCond := when(&secapi.Condition{Key: "connection.sni", NotValues: []string{"evil.example"}})
	dryRun := mkAP("foo", "dry", secapi.AuthorizationPolicy_DENY, sniCond)
	dryRun.Annotations = map[string]string{"istio.io/dry-run": "true"}
	other := mkAP("foo", "other", secapi.AuthorizationPolicy_DENY, sniCond)
	other.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "not-web"}}
	simpleTLS := Request{Dest: fooWeb, DstPort: 8080, TLS: true, SNI: "web.foo.svc", Method: "GET", Path: "/", Host: "web.foo.svc"}
	verdictCases := []struct {
		name    string
		aps     []*secv1.AuthorizationPolicy
		allowed bool
	}{
		{"ALLOW on SNI", []*secv1.AuthorizationPolicy{mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, sniCond)}, false},
		{"DENY on SNI, root namespace", []*secv1.AuthorizationPolicy{mkAP(Root, "d", secapi.AuthorizationPolicy_DENY, sniCond)}, false},
		{"AUDIT on SNI", []*secv1.AuthorizationPolicy{mkAP("foo", "a", secapi.AuthorizationPolicy_AUDIT, sniCond)}, true},
		{"dry-run DENY on SNI", []*secv1.AuthorizationPolicy{dryRun}, true},
		{"DENY on SNI for another workload", []*secv1.AuthorizationPolicy{other}, true},
		{"DENY in another namespace", []*secv1.AuthorizationPolicy{mkAP("bar", "d", secapi.AuthorizationPolicy_DENY, sniCond)}, true},
		{"ALLOW not on SNI", []*secv1.AuthorizationPolicy{mkAP("foo", "a", secapi.AuthorizationPolicy_ALLOW, to(&secapi.Operation{Methods: []string{"GET"}}))}, true},
	}
	for _, c := range verdictCases {
		if v := Evaluate(mesh, c.aps, nil, simpleTLS); v.Allowed != c.allowed {
			t.Errorf("%s, SNI unknown: verdict %+v, want allowed %v", c.name, v, c.allowed)
		}
	}
	known := simpleTLS
	known.TLSSession = true
	if v := Evaluate(mesh, verdictCases[0].aps, nil, known); !v.Allowed {
		t.Errorf("ALLOW on SNI, SNI known: verdict %+v, want allowed", v)
	}
}
