package policy

import (
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNormalizePath(t *testing.T) {
	cases := []struct{ in, mode, want string }{
		{"/a?b=c", "BASE", "/a"},
		{"/a#frag", "BASE", "/a"},
		{"/public/../private", "BASE", "/private"},
		{"/public/%2E%2E/private", "BASE", "/private"},
		{"/public/%2e/%2e%2e/private", "BASE", "/private"},
		{"/public\\..\\private", "BASE", "/private"},
		{"/a/./b", "BASE", "/a/b"},
		{"/..", "BASE", "/"},
		{"/%41%7e", "BASE", "/A~"},
		{"/a%2fb", "BASE", "/a%2fb"}, // kept escapes keep their hex case, as Envoy keeps them
		{"/a%2Fb", "MERGE_SLASHES", "/a%2Fb"},
		{"/a%3f%3Fb", "BASE", "/a%3f%3Fb"},
		{"/a%2fb", "DECODE_AND_MERGE_SLASHES", "/a/b"},
		{"/a%5cb", "DECODE_AND_MERGE_SLASHES", "/a/b"},
		{"/a//b", "BASE", "/a//b"},
		{"/a//b", "MERGE_SLASHES", "/a/b"},
		{"/%252e%252e/x", "BASE", "/%252e%252e/x"}, // decoded once only
		{"/a/../b?x=/..", "NONE", "/a/../b"},
		{"/plain", "BASE", "/plain"},
	}
	for _, c := range cases {
		got, err := NormalizePath(c.in, c.mode)
		if err != nil || got != c.want {
			t.Errorf("NormalizePath(%q, %s) = %q, %v; want %q", c.in, c.mode, got, err, c.want)
		}
	}
	if _, err := NormalizePath("/a%00b", "BASE"); err == nil {
		t.Error("%00 must be rejected")
	}
}

func checkReq(srcPrincipal, srcIP, dstIP string, dstPort uint32, method, p string, headers map[string]string) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr(srcIP, 40000), Principal: srcPrincipal},
		Destination: &authv3.AttributeContext_Peer{Address: addr(dstIP, dstPort)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: p, Host: "Web.Foo:8080", Headers: headers}},
	}}
}

func TestCheckRequestDecoding(t *testing.T) {
	set := &Set{Pods: []*corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "foo", Labels: map[string]string{"app": "web"}},
		Status:     corev1.PodStatus{PodIP: "10.0.1.1"},
	}}}
	if _, err := set.AddYAML("p", []byte(
		ap("foo", "sel", "selector: {matchLabels: {app: web}}\naction: DENY\nrules:\n- to:\n  - operation: {paths: [/private], hosts: [\"web.foo:*\"]}")+
			ap("foo", "xff", "action: DENY\nrules:\n- from:\n  - source: {remoteIpBlocks: [203.0.113.0/24]}"))); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		req     *authv3.CheckRequest
		allowed bool
		policy  string
		status  int
	}{
		{"pod by destination IP, normalised path, query stripped", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/public/%2e%2e/private?x=1", nil), false, "foo/sel", 403},
		{"other path", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/public", nil), true, "", 200},
		{"unknown destination IP: fails closed (TestUnknownDestination)", checkReq("", "10.0.0.5", "10.9.9.9", 8080, "GET", "/public", nil), false, "", 403},
		{"remote.ip from X-Forwarded-For", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", map[string]string{"x-forwarded-for": "203.0.113.9"}), false, "foo/xff", 403},
		{"%00 is a bad request", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/a%00", nil), false, "", 400},
		// Envoy would match it only against IPv6 ranges, OPA only against IPv4 ones.
		{"IPv4-mapped X-Forwarded-For is a bad request", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", map[string]string{"x-forwarded-for": "::ffff:203.0.113.9"}), false, "", 400},
		{"IPv4-mapped entry before the one used is not read", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", map[string]string{"x-forwarded-for": "::ffff:1.2.3.4, 203.0.113.9"}), false, "foo/xff", 403},
	}
	for _, c := range cases {
		v, err := s.Check(context.Background(), c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if v.Allowed != c.allowed || v.Policy != c.policy || v.Status != c.status {
			t.Errorf("%s: got %+v", c.name, v)
		}
	}
	// Namespace from the destination principal when the IP is unknown (no
	// selector policy, so the labels are not needed).
	set = &Set{}
	if _, err := set.AddYAML("p", []byte(ap("foo", "xff", "action: DENY\nrules:\n- from:\n  - source: {remoteIpBlocks: [203.0.113.0/24]}"))); err != nil {
		t.Fatal(err)
	}
	if s, err = Compile(context.Background(), Mesh{}, set, 1); err != nil {
		t.Fatal(err)
	}
	// X-Forwarded-For names only the peer: remote.ip is the same whatever
	// hops the unknown destination trusts (requestRemoteIP).
	r := checkReq("", "203.0.113.9", "10.9.9.9", 8080, "GET", "/", map[string]string{"x-forwarded-for": "203.0.113.9"})
	r.Attributes.Destination.Principal = "spiffe://cluster.local/ns/foo/sa/web"
	v, err := s.Check(context.Background(), r)
	if err != nil || v.Allowed || v.Policy != "foo/xff" {
		t.Errorf("namespace from destination principal: %+v %v", v, err)
	}
	if _, err := s.Check(context.Background(), &authv3.CheckRequest{}); err != nil {
		t.Errorf("empty request must give a verdict, got %v", err)
	}
}

func TestEngineKeepsLastGoodSnapshot(t *testing.T) {
	e := NewEngine(Mesh{})
	if _, err := e.Check(context.Background(), checkReq("", "1.1.1.1", "2.2.2.2", 80, "GET", "/", nil)); err == nil {
		t.Fatal("Check before the first snapshot must fail")
	}
	good, err := e.Update(context.Background(), &Set{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Update(context.Background(), &Set{UserModules: map[string]string{"x.rego": "package meshguard.user\nbroken ::"}}); err == nil {
		t.Fatal("broken update must fail")
	}
	if e.Snapshot() != good {
		t.Fatal("broken update replaced the last good snapshot")
	}
}

// TestEngineConcurrentSwap: requests keep being answered from a complete
// snapshot while updates swap new ones in (run with -race).
func TestEngineConcurrentSwap(t *testing.T) {
	e := NewEngine(Mesh{})
	if _, err := e.Update(context.Background(), &Set{}); err != nil {
		t.Fatal(err)
	}
	req := checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/admin", nil)
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			var last uint64
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				v, err := e.Check(context.Background(), req)
				if err != nil {
					errs <- err
					return
				}
				if v.Version < last {
					errs <- fmt.Errorf("snapshot version went back from %d to %d", last, v.Version)
					return
				}
				last = v.Version
			}
		}()
	}
	for i := 0; i < 10; i++ {
		set := &Set{}
		if i%2 == 1 {
			if _, err := set.AddYAML("p", []byte(ap("istio-system", "deny", "action: DENY\nrules:\n- {}"))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.Update(context.Background(), set); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := e.Check(context.Background(), req); v.Allowed || v.Version != 11 {
		t.Fatalf("final snapshot: %+v", v)
	}
}

// TestIsLowerAgreesWithASCIILower: the header-name fast path answers exactly
// as asciiLower(s) == s: header names fold in ASCII only, as Envoy's
// (TestHeaderNamesFoldASCIIOnly), so non-ASCII letters are left as they are.
func TestIsLowerAgreesWithASCIILower(t *testing.T) {
	for _, s := range []string{"", "x-tenant", ":authority", "X-Evil", "x-evilZ", "ümlaut", "Ümlaut", "straße", "İstanbul", "k\u212a", "a\x80b", "0-9_~"} {
		if got, want := isLower(s), asciiLower(s) == s; got != want {
			t.Errorf("isLower(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestAddrIPCanonical: addresses come back in netip's canonical form
// (IPv4-mapped IPv6 unmapped, zero-compressed IPv6, no zone), or "" when
// invalid.
func TestAddrIPCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.5": "10.0.0.5", "::ffff:10.0.0.5": "10.0.0.5", "2001:db8:0:0:0:0:0:1": "2001:db8::1",
		"2001:db8::1": "2001:db8::1", "fe80::1%eth0": "fe80::1", "fe80::1%3": "fe80::1", "": "", "10.0.0": "", "x": "",
	} {
		if got := addrIP(in); got != want {
			t.Errorf("addrIP(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestKeptEscapesMatchAsWritten: an escape the normalization keeps is
// compared with the policy's path in the case the client wrote it, as
// Envoy's RBAC compares it (a lower-case %2f upper-cased by meshguard made
// this DENY fail open).
func TestKeptEscapesMatchAsWritten(t *testing.T) {
	s := compileCase(t, Mesh{}, ap("foo", "deny-admin", "action: DENY\nrules: [{to: [{operation: {paths: [\"/admin%2f*\"]}}]}]"), webPod())
	for path, status := range map[string]int{"/admin%2fusers": 403, "/admin%2Fusers": 200, "/admin/users": 200} {
		v, err := s.Check(context.Background(), checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", path, nil))
		if err != nil || v.Status != status {
			t.Errorf("%s: %+v %v, want status %d", path, v, err, status)
		}
	}
}

// TestIssuerKeyedJWTPayloads: one issuer-keyed payload is the request's
// token; several are refused (400) instead of one of them being taken in
// map order, which made a DENY on one issuer's principal match at random.
func TestIssuerKeyedJWTPayloads(t *testing.T) {
	s := compileCase(t, Mesh{}, ap("foo", "deny-b", "action: DENY\nrules: [{from: [{source: {requestPrincipals: [\"B/*\"]}}]}]"), webPod())
	payload := func(iss, sub string) *structpb.Value {
		return structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"iss": structpb.NewStringValue(iss), "sub": structpb.NewStringValue(sub)}})
	}
	for name, c := range map[string]struct {
		fields map[string]*structpb.Value
		status int
	}{
		"B alone":           {map[string]*structpb.Value{"B": payload("B", "y")}, 403},
		"A alone":           {map[string]*structpb.Value{"A": payload("A", "x")}, 200},
		"A and B":           {map[string]*structpb.Value{"A": payload("A", "x"), "B": payload("B", "y")}, 400},
		"payload key first": {map[string]*structpb.Value{"payload": payload("B", "y"), "A": payload("A", "x")}, 403},
	} {
		r := checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", nil)
		r.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"envoy.filters.http.jwt_authn": {Fields: c.fields}}}
		for range 20 { // map order varies between runs of the same request
			v, err := s.Check(context.Background(), r)
			if err != nil || v.Status != c.status {
				t.Fatalf("%s: %+v %v, want status %d", name, v, err, c.status)
			}
		}
	}
}

// TestJWTPayloadNonFiniteNumbers: a JWT payload is JSON, so jwt_authn never
// writes NaN or ±Inf, yet the protobuf Struct can carry them; OPA panics
// comparing such a number ("illegal value"), so a user module reading a
// numeric claim panicked. They are refused (400) naming the claim.
func TestJWTPayloadNonFiniteNumbers(t *testing.T) {
	set := &Set{Pods: []*corev1.Pod{webPod()}, UserModules: map[string]string{"exp.rego": `package meshguard.user
deny contains "expired" if input.jwt.claims.exp < 100
`}}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	num := structpb.NewNumberValue
	for name, c := range map[string]struct {
		exp    *structpb.Value
		status int
		reason string
	}{
		"finite, expired": {num(1), 403, "expired"},
		"finite":          {num(1e9), 200, ""},
		"NaN":             {num(math.NaN()), 400, `claim "exp": number NaN`},
		"+Inf":            {num(math.Inf(1)), 400, `claim "exp": number +Inf`},
		"-Inf in a list":  {structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{num(math.Inf(-1))}}), 400, `claim "exp[0]": number -Inf`},
		"NaN nested": {structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": num(math.NaN())}}),
			400, `claim "exp.a": number NaN`},
	} {
		r := checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", nil)
		r.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{"payload": structpb.NewStructValue(&structpb.Struct{
				Fields: map[string]*structpb.Value{"iss": structpb.NewStringValue("i"), "exp": c.exp}})}}}}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: panic: %v", name, p)
				}
			}()
			v, err := s.Check(context.Background(), r)
			if err != nil || v.Status != c.status || !strings.Contains(v.Reason, c.reason) {
				t.Errorf("%s: %+v %v, want status %d, reason with %q", name, v, err, c.status, c.reason)
			}
		}()
	}
}

// TestJWTPayloadReasonsBounded: the keys a 400's reason quotes come from the
// request, which may be megabytes: several issuer-keyed payloads are named
// by the first few, each cut short, and a long claim path is cut too.
func TestJWTPayloadReasonsBounded(t *testing.T) {
	s, err := Compile(context.Background(), Mesh{}, &Set{Pods: []*corev1.Pod{webPod()}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	payload := func(extra string) *structpb.Value {
		return structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"iss": structpb.NewStringValue("i"), extra: structpb.NewNumberValue(math.NaN())}})
	}
	many := map[string]*structpb.Value{}
	for i := 0; i < 1000; i++ {
		many[fmt.Sprintf("%04d-%s", i, strings.Repeat("k", 1000))] = payload("exp")
	}
	for name, c := range map[string]struct {
		fields map[string]*structpb.Value
		reason string
	}{
		"1,000 issuer-keyed payloads": {many, "1000 verified JWT payloads (0000-kkk"},
		"a long claim name":           {map[string]*structpb.Value{"payload": payload(strings.Repeat("c", 100000))}, `payload claim "ccc`},
	} {
		r := checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", nil)
		r.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"envoy.filters.http.jwt_authn": {Fields: c.fields}}}
		v, err := s.Check(context.Background(), r)
		if err != nil || v.Status != 400 || !strings.Contains(v.Reason, c.reason) || len(v.Reason) > 1024 {
			t.Errorf("%s: status %d, %d-byte reason %.200q, err %v; want 400 naming %q within 1 KiB", name, v.Status, len(v.Reason), v.Reason, err, c.reason)
		}
	}
}

// TestParsePathNormalization: every MeshConfig pathNormalization value
// parses (the mesh config accepts any the proto names), DEFAULT as BASE, as
// Istio configures it; one check for the flag, the mesh config and a
// snapshot (a flag had refused DEFAULT, which the mesh config took).
func TestParsePathNormalization(t *testing.T) {
	for n, name := range meshv1alpha1.MeshConfig_ProxyPathNormalization_NormalizationType_name {
		got, err := ParsePathNormalization(name)
		want := name
		if n == int32(meshv1alpha1.MeshConfig_ProxyPathNormalization_DEFAULT) {
			want = "BASE"
		}
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if got, err := ParsePathNormalization(""); err != nil || got != "BASE" {
		t.Errorf("unset: %q, %v; want BASE", got, err)
	}
	for _, bad := range []string{"base", "MERGE-SLASHES", "UNESCAPE_AND_MERGE_SLASHES", " NONE"} {
		if got, err := ParsePathNormalization(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}
