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
// source and issue 12's Istio-checked examples. Each case fails if the
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
	cases := []struct {
		name  string
		mesh  Mesh
		aps   []*secv1.AuthorizationPolicy
		pas   []*secv1.PeerAuthentication
		req   Request
		allow bool
	}{
		{"issue 12 #1: oldest PA (UNSET) wins its level, then inherits PERMISSIVE; DENY still sees the principal", mesh,
			[]*secv1.AuthorizationPolicy{denyFooNS}, []*secv1.PeerAuthentication{mkPA("foo", "pa-0", 0, UNSET, false), mkPA("foo", "pa-1", 1, DISABLE, true)},
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), false},
		{"newer DISABLE alone drops the principal", mesh,
			[]*secv1.AuthorizationPolicy{denyFooNS}, []*secv1.PeerAuthentication{mkPA("foo", "pa-1", 1, DISABLE, true)},
			http("spiffe://cluster.local/ns/foo/sa/sleep", "/"), true},
		{"issue 12 #1 STRICT variant: plaintext allowed", mesh, nil,
			[]*secv1.PeerAuthentication{mkPA("foo", "pa-0", 0, UNSET, false), mkPA("foo", "pa-1", 1, STRICT, true)}, http("", "/"), true},
		{"port-level STRICT refuses plaintext on that port", mesh, nil, []*secv1.PeerAuthentication{sel}, http("", "/"), false},
		{"issue 12 #2: aliases do not widen a non-exact principal", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"cluster.local/ns/foo/*"}}))}, nil,
			http("spiffe://other.td/ns/foo/sa/sleep", "/"), false},
		{"aliases expand an exact principal", aliased,
			[]*secv1.AuthorizationPolicy{mkAP("foo", "a", ALLOW, from(&secapi.Source{Principals: []string{"cluster.local/ns/foo/sa/sleep"}}))}, nil,
			http("spiffe://other.td/ns/foo/sa/sleep", "/"), true},
		{"issue 12 #3: literal after {**} is valid, GET / not denied", mesh,
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
			func() Request { r := http("", "/"); r.JWT = &JWT{Iss: "a", Sub: "b/c"}; return r }(), false},
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
