package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	secapi "istio.io/api/security/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/policy"
)

// TestSNIUnknownOnTLSBothProtocols: the SNI Istio matches as connection.sni
// (pilot/pkg/security/authz/model/generator.go connSNIGenerator:
// requested_server_name) reaches meshguard only in tls_session (gRPC, with
// include_tls_session) or x-meshguard-sni (HTTP, %REQUESTED_SERVER_NAME%,
// which Envoy leaves out when empty: router/header_parser.cc evaluateHeaders
// adds no empty value). Without it, a connection that is TLS has an unknown
// SNI: a DENY on connection.sni denies for that (fail closed, no policy
// named), on mTLS and on SIMPLE TLS alike (a gateway terminating TLS without
// a client certificate, where a missing tls_session used to read as SNI ""
// and the DENY never matched). The gRPC CheckRequest tells TLS from
// plaintext (destination.principal is the server certificate's, Envoy's
// check_request_utils.cc setAttrContextPeer); the HTTP protocol cannot
// (Envoy strips x-forwarded-client-cert without a client certificate), so
// there a request without the header is read as unknown even on plaintext.
// Both protocols decide through the one rule in policy's decode.
func TestSNIUnknownOnTLSBothProtocols(t *testing.T) {
	set := &policy.Set{}
	if _, err := set.AddYAML("p.yaml", []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-evil, namespace: foo}
spec:
  action: DENY
  rules: [{when: [{key: connection.sni, values: [evil.example.com]}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: foo, labels: {app: web}}
status: {podIP: 10.0.1.1}
`)); err != nil {
		t.Fatal(err)
	}
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	s := NewServer(engine, Options{DecisionLog: "off"}, logr.Discard())
	const (
		client = "spiffe://cluster.local/ns/bar/sa/client"
		web    = "spiffe://cluster.local/ns/foo/sa/web"
	)
	type outcome struct {
		allowed bool
		policy  string
		unknown bool // denied for the unknown SNI (fail closed)
	}
	var (
		allowed  = outcome{allowed: true}
		denied   = outcome{policy: "foo/deny-evil"}
		unknown  = outcome{unknown: true}
		mtls     = [2]string{client, web}
		simple   = [2]string{"", "web.example.com"} // server certificate only (a DNS SAN)
		plain    = [2]string{}
		evil     = "evil.example.com"
		good     = "web.example.com"
		noSNI    = ""
		fromGRPC = func(peers [2]string, sni string) *authv3.CheckRequest {
			a := &authv3.AttributeContext{
				Source:      &authv3.AttributeContext_Peer{Address: socketAddress("10.0.0.5", 40000), Principal: peers[0]},
				Destination: &authv3.AttributeContext_Peer{Address: socketAddress("10.0.1.1", 8080), Principal: peers[1]},
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/index", Host: "web.foo",
					Headers: map[string]string{":method": "GET", ":path": "/index", ":authority": "web.foo"}}},
			}
			if sni != "" {
				a.TlsSession = &authv3.AttributeContext_TLSSession{Sni: sni}
			}
			return &authv3.CheckRequest{Attributes: a}
		}
		fromHTTP = func(peers [2]string, sni string) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/index", nil)
			r.Host = "web.foo"
			r.Header.Set(HeaderSourceAddress, "10.0.0.5:40000")
			r.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
			if peers[0] != "" { // Envoy sets XFCC only with a client certificate
				r.Header.Set(HeaderXFCC, "By="+peers[1]+";URI="+peers[0])
			}
			if sni != "" {
				r.Header.Set(HeaderSNI, sni)
			}
			return r
		}
	)
	for _, c := range []struct {
		name               string
		peers              [2]string
		sni                string // "" = not sent (no tls_session, no header)
		wantGRPC, wantHTTP outcome
	}{
		{"mTLS, SNI not sent", mtls, noSNI, unknown, unknown},
		{"mTLS, SNI evil", mtls, evil, denied, denied},
		{"mTLS, SNI good", mtls, good, allowed, allowed},
		{"SIMPLE TLS, SNI not sent", simple, noSNI, unknown, unknown},
		{"SIMPLE TLS, SNI evil", simple, evil, denied, denied},
		{"SIMPLE TLS, SNI good", simple, good, allowed, allowed},
		// Plaintext has no SNI (Envoy's requested_server_name is empty):
		// gRPC knows it is plaintext; HTTP cannot tell it from SIMPLE TLS.
		{"plaintext", plain, noSNI, allowed, unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := func(protocol string, d decision, want outcome) {
				t.Helper()
				v := d.verdict
				got := outcome{allowed: v.Allowed, policy: v.Policy, unknown: !v.Allowed && strings.Contains(v.Reason, "no SNI") && strings.Contains(v.Reason, "fail closed")}
				if got != want {
					t.Errorf("%s: %+v (reason %q), want %+v", protocol, got, v.Reason, want)
				}
			}
			check("grpc", s.decide(context.Background(), fromGRPC(c.peers, c.sni), nil, "grpc"), c.wantGRPC)
			req, err := checkRequestFromHTTP(fromHTTP(c.peers, c.sni), s.opts.HTTPPathPrefix)
			if err != nil {
				t.Fatal(err)
			}
			check("http", s.decide(context.Background(), req, nil, "http"), c.wantHTTP)

			w := httptest.NewRecorder()
			s.httpHandler().ServeHTTP(w, fromHTTP(c.peers, c.sni))
			if wantStatus := map[bool]int{true: 200, false: 403}[c.wantHTTP.allowed]; w.Code != wantStatus || w.Header().Get(HeaderPolicy) != c.wantHTTP.policy {
				t.Errorf("http handler: %d, policy %q; want %d, policy %q", w.Code, w.Header().Get(HeaderPolicy), wantStatus, c.wantHTTP.policy)
			}
		})
	}
}

// socketAddress is ip:port as Envoy sends a peer's address.
func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// TestReloaderWordsFailedPoliciesByBucket: the error logged for a policy
// that cannot be evaluated says the workloads are denied only when they
// are: a failed AUDIT (or CUSTOM, or dry-run) policy denies nothing.
func TestReloaderWordsFailedPoliciesByBucket(t *testing.T) {
	badPorts := []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Ports: []string{"99999"}}}}}}
	mk := func(name string, action secapi.AuthorizationPolicy_Action) *secv1.AuthorizationPolicy {
		p := &secv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "foo"}}
		p.Spec.Action, p.Spec.Rules = action, badPorts
		return p
	}
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
	rl := &Reloader{
		Engine: policy.NewEngine(policy.Mesh{}),
		Load: func(context.Context) (*policy.Set, error) {
			return &policy.Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{
				mk("bad-deny", secapi.AuthorizationPolicy_DENY), mk("bad-audit", secapi.AuthorizationPolicy_AUDIT)}}, nil
		},
		Log:            log,
		NormalPriority: true,
	}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	const denied = "the workloads it selects are denied"
	for policyID, wantDenied := range map[string]bool{"foo/bad-deny": true, "foo/bad-audit": false} {
		var line string
		for _, l := range lines {
			if strings.Contains(l, "cannot be evaluated") && strings.Contains(l, `"policy"="`+policyID+`"`) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no error logged for %s:\n%s", policyID, strings.Join(lines, "\n"))
			continue
		}
		if strings.Contains(line, denied) != wantDenied || (!wantDenied && !strings.Contains(line, "none denied")) {
			t.Errorf("%s: %s\nwant it to say %q: %v", policyID, line, denied, wantDenied)
		}
	}
}
