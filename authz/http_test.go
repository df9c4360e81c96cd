package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshguard/meshguard/policy"
)

// protocolPolicies: a DENY, a workload ALLOW, a dry-run DENY and an AUDIT
// policy for foo/web-1 (10.0.1.1).
const protocolPolicies = denyAdmin + `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-bar-get, namespace: foo}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/bar/sa/client"]}}]
    to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny, namespace: foo, annotations: {istio.io/dry-run: "true"}}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/dry"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-all, namespace: foo}
spec:
  action: AUDIT
  rules:
  - to: [{operation: {paths: ["/audit/*"]}}]
`

type protocolCase struct {
	name, method, path, principal string
	wantStatus                    int    // Istio's verdict: 200 allow, 403 deny
	wantPolicy                    string // deciding policy ("" when none)
	wantMeta                      map[string]string
}

// Expected verdicts follow Istio's documented evaluation order (CUSTOM, DENY,
// ALLOW; dry-run and AUDIT never change the verdict), worked out by hand
// from the policies above.
var protocolCases = []protocolCase{
	{name: "allowed principal", method: "GET", path: "/index", principal: "spiffe://cluster.local/ns/bar/sa/client", wantStatus: 200, wantPolicy: "foo/allow-bar-get"},
	{name: "deny wins over allow", method: "GET", path: "/admin/x", principal: "spiffe://cluster.local/ns/bar/sa/client", wantStatus: 403, wantPolicy: "foo/deny-admin"},
	{name: "method not allowed", method: "POST", path: "/index", principal: "spiffe://cluster.local/ns/bar/sa/client", wantStatus: 403},
	{name: "plaintext has no principal", method: "GET", path: "/index", wantStatus: 403},
	{name: "other principal", method: "GET", path: "/index", principal: "spiffe://cluster.local/ns/baz/sa/client", wantStatus: 403},
	{name: "query is not part of the path", method: "GET", path: "/admin?x=1", principal: "spiffe://cluster.local/ns/bar/sa/client", wantStatus: 403, wantPolicy: "foo/deny-admin"},
	{name: "dry-run deny does not deny", method: "GET", path: "/dry", principal: "spiffe://cluster.local/ns/bar/sa/client", wantStatus: 200, wantPolicy: "foo/allow-bar-get",
		wantMeta: map[string]string{"istio_dry_run_deny_shadow_effective_policy_id": "ns[foo]-policy[dry-deny]-rule[0]", "istio_dry_run_deny_shadow_engine_result": "denied"}},
	{name: "audit does not change the verdict", method: "GET", path: "/audit/x", principal: "spiffe://cluster.local/ns/bar/sa/client", wantStatus: 200, wantPolicy: "foo/allow-bar-get",
		wantMeta: map[string]string{"access_log_hint": "true", "meshguard_audit_policy_id": "ns[foo]-policy[audit-all]-rule[0]"}},
}

type protocolServers struct {
	grpc       authv3.AuthorizationClient
	httpURL    string
	httpClient *http.Client
	pool       *x509.CertPool
}

// startBoth serves one Server over gRPC and HTTP, both with the same mutual
// TLS configuration, on loopback.
func startBoth(t *testing.T, policies string, o Options) protocolServers {
	t.Helper()
	ca, caKey := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf(t, ca, caKey, "server", []string{"127.0.0.1"})}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	clientTLS := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{leaf(t, ca, caKey, "client", nil)}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policies), 0o644); err != nil {
		t.Fatal(err)
	}
	set, _, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.DecisionLog = "full"
	engine := policy.NewEngine(o.Mesh())
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, o, logr.Discard())
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, glis, serverTLS) }()
	go func() { done <- srv.ServeHTTP(ctx, hlis, serverTLS) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		}
	})
	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}
	t.Cleanup(hc.CloseIdleConnections)
	return protocolServers{grpc: authv3.NewAuthorizationClient(conn), httpURL: "https://" + hlis.Addr().String(), httpClient: hc, pool: pool}
}

// httpCheck sends what Envoy's HTTP ext_authz client sends for c through an
// Istio sidecar: the original method, prefix + original path, the original
// :authority, x-forwarded-client-cert as the sidecar sets it on mTLS (none on
// plaintext), and the attribute headers from includeAdditionalHeadersInCheck.
func httpCheck(t *testing.T, s protocolServers, prefix string, c protocolCase) *http.Response {
	t.Helper()
	req, err := http.NewRequest(c.method, s.httpURL+prefix+c.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "web.foo"
	if c.principal != "" {
		// A forged element from the client first: only the last one counts.
		req.Header.Set(HeaderXFCC, `By=spiffe://cluster.local/ns/foo/sa/web;URI=spiffe://cluster.local/ns/bar/sa/client,By=spiffe://cluster.local/ns/foo/sa/web;Hash=abc;Subject="O=x,CN=y";URI=`+c.principal)
	}
	req.Header.Set(HeaderSourceAddress, "10.0.0.5:40000")
	req.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
	resp, err := s.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func grpcCheck(t *testing.T, s protocolServers, c protocolCase) *authv3.CheckResponse {
	t.Helper()
	req := request(c.path)
	req.Attributes.Request.Http.Method = c.method
	req.Attributes.Source.Principal = c.principal
	resp, err := s.grpc.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestHTTPAndGRPCGiveTheSameVerdicts(t *testing.T) {
	const prefix = "/ext-authz"
	s := startBoth(t, protocolPolicies, Options{HTTPPathPrefix: prefix})
	for _, c := range protocolCases {
		t.Run(c.name, func(t *testing.T) {
			g := grpcCheck(t, s, c)
			gStatus, gHeaders := 200, []*corev3.HeaderValueOption(nil)
			if d := g.GetDeniedResponse(); d != nil {
				gStatus, gHeaders = int(d.GetStatus().GetCode()), d.GetHeaders()
			} else {
				gHeaders = g.GetOkResponse().GetHeaders()
			}
			h := httpCheck(t, s, prefix, c)
			body, _ := io.ReadAll(h.Body)
			if gStatus != c.wantStatus || h.StatusCode != c.wantStatus {
				t.Fatalf("status: gRPC %d, HTTP %d (%s), Istio %d", gStatus, h.StatusCode, body, c.wantStatus)
			}
			if got := headerValue(gHeaders, HeaderPolicy); got != c.wantPolicy {
				t.Errorf("gRPC policy %q, want %q", got, c.wantPolicy)
			}
			if got := h.Header.Get(HeaderPolicy); got != c.wantPolicy {
				t.Errorf("HTTP policy %q, want %q", got, c.wantPolicy)
			}
			if c.wantStatus != 200 && (string(body) != g.GetDeniedResponse().GetBody() || len(body) == 0) {
				t.Errorf("denial body: HTTP %q, gRPC %q", body, g.GetDeniedResponse().GetBody())
			}
			if h.Header.Get(HeaderDecisionID) == "" {
				t.Errorf("HTTP response lacks %s", HeaderDecisionID)
			}
			// Dynamic metadata on the gRPC response, read by a real client.
			fields := g.GetDynamicMetadata().GetFields()
			if len(fields) != len(c.wantMeta) {
				t.Errorf("dynamic metadata %v, want %v", g.GetDynamicMetadata(), c.wantMeta)
			}
			for k, want := range c.wantMeta {
				got := fmt.Sprint(fields[k].AsInterface())
				if got != want {
					t.Errorf("dynamic metadata %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestHTTPFailsClosedOnWhatItCannotRead(t *testing.T) {
	s := startBoth(t, protocolPolicies, Options{HTTPPathPrefix: "/ext-authz"})
	ok := protocolCase{method: "GET", path: "/index", principal: "spiffe://cluster.local/ns/bar/sa/client"}
	if r := httpCheck(t, s, "/ext-authz", ok); r.StatusCode != 200 {
		t.Fatalf("baseline: want 200, got %d", r.StatusCode)
	}
	// Wrong prefix: not a request Envoy built for this provider.
	if r := httpCheck(t, s, "/other", ok); r.StatusCode != 400 {
		t.Errorf("wrong path prefix: want 400, got %d", r.StatusCode)
	}
	// Unterminated quote in x-forwarded-client-cert.
	req, _ := http.NewRequest("GET", s.httpURL+"/ext-authz/index", nil)
	req.Header.Set(HeaderXFCC, `By=x;Subject="unterminated;URI=spiffe://cluster.local/ns/bar/sa/client`)
	resp, err := s.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("bad XFCC: want 400, got %d", resp.StatusCode)
	}
	// A client without a certificate is refused by the TLS handshake, as on the gRPC port.
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}}
	if r, err := noCert.Get(s.httpURL + "/ext-authz/index"); err == nil {
		r.Body.Close()
		t.Fatal("client without certificate must fail")
	}
}

func TestXFCCPrincipals(t *testing.T) {
	for _, c := range []struct {
		in, peer, local string
		bad             bool
	}{
		// Istio sidecar on inbound mTLS (Envoy's documented XFCC format).
		{in: `By=spiffe://cluster.local/ns/foo/sa/web;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="";URI=spiffe://cluster.local/ns/bar/sa/sleep`,
			peer: "spiffe://cluster.local/ns/bar/sa/sleep", local: "spiffe://cluster.local/ns/foo/sa/web"},
		// Forwarded elements before the sidecar's own are ignored.
		{in: `URI=spiffe://cluster.local/ns/istio-system/sa/admin, By=spiffe://cluster.local/ns/foo/sa/web;URI=spiffe://cluster.local/ns/bar/sa/sleep`,
			peer: "spiffe://cluster.local/ns/bar/sa/sleep", local: "spiffe://cluster.local/ns/foo/sa/web"},
		// Separators inside quotes are not separators.
		{in: `By=spiffe://td/ns/a/sa/b;Subject="CN=x,O=\"y;z\"";URI=spiffe://td/ns/c/sa/d`, peer: "spiffe://td/ns/c/sa/d", local: "spiffe://td/ns/a/sa/b"},
		// The last element has no URI: no principal, even if an earlier one had.
		{in: `URI=spiffe://cluster.local/ns/bar/sa/sleep,Hash=abc`},
		// Without a URI SAN the principal is the first DNS SAN, else the
		// subject, as Envoy's source.principal (check_request_utils.cc
		// setAttrContextPeer); Istio's sidecar sets Subject, URI and DNS.
		{in: `By=spiffe://td/ns/a/sa/b;Hash=abc;Subject="CN=c";URI=;DNS=c.example.com;DNS=d.example.com`, peer: "c.example.com", local: "spiffe://td/ns/a/sa/b"},
		{in: `By=spiffe://td/ns/a/sa/b;Hash=abc;Subject="CN=c,O=x";URI=`, peer: "CN=c,O=x", local: "spiffe://td/ns/a/sa/b"},
		{in: `By=spiffe://td/ns/a/sa/b;Hash=abc;Subject="";URI=`, local: "spiffe://td/ns/a/sa/b"},
		{in: `By=spiffe://td/ns/a/sa/b;Subject="CN=c";URI=spiffe://td/ns/c/sa/d;DNS=c.example.com`, peer: "spiffe://td/ns/c/sa/d", local: "spiffe://td/ns/a/sa/b"},
		{in: `By=x;Subject="open`, bad: true},
		{in: `By=x;junk`, bad: true},
	} {
		peer, local, err := xfccPrincipals(c.in)
		if (err != nil) != c.bad || peer != c.peer || local != c.local {
			t.Errorf("xfccPrincipals(%q) = %q, %q, %v; want %q, %q, bad=%v", c.in, peer, local, err, c.peer, c.local, c.bad)
		}
	}
}

// TestRunStandaloneServesHTTP: `meshguard authz serve --authz-http-addr`
// serves both protocols from one policy directory and stops both.
func TestRunStandaloneServesHTTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), denyAdmin)
	_ = startServer(t, dir, Options{HTTPAddr: httpAddr}, nil, insecure.NewCredentials())
	for path, want := range map[string]int{"/index": 200, "/admin/x": 403} {
		var resp *http.Response
		if err := poll(reloadWait, func() error {
			req, err := http.NewRequest("GET", "http://"+httpAddr+path, nil)
			if err != nil {
				return err
			}
			req.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080") // foo/web-1
			resp, err = http.DefaultClient.Do(req)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestHTTPProviderExampleAttributeOperators: the provider example in
// docs/operations.md must fill each attribute header with the Envoy command
// operator giving what the gRPC CheckRequest carries. source.address is the
// connection's peer (check_request_utils.cc setAttrContextPeer), Istio's
// source.ip/ipBlocks is direct_remote_ip; %DOWNSTREAM_REMOTE_ADDRESS% is
// instead the address the HTTP connection manager took from X-Forwarded-For
// (Istio's sidecar inbound has use_remote_address false, so a client's own
// X-Forwarded-For sets it: an ipBlocks bypass).
func TestHTTPProviderExampleAttributeOperators(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		HeaderSourceAddress:      "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%",
		HeaderDestinationAddress: "%DOWNSTREAM_LOCAL_ADDRESS%",
		HeaderSNI:                "%REQUESTED_SERVER_NAME%",
	}
	for name, op := range want {
		re := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `:\s*"([^"]*)"`)
		m := re.FindSubmatch(doc)
		if m == nil {
			t.Errorf("docs/operations.md: no %s in the HTTP provider example", name)
			continue
		}
		if string(m[1]) != op {
			t.Errorf("docs/operations.md: %s: %q, want %q", name, m[1], op)
		}
	}
}

// TestHTTPAttributeHeaderOnce: Envoy sets each attribute header once
// (headers_to_add with OVERWRITE_IF_EXISTS_OR_ADD, ext_authz_http_impl.cc
// ClientConfig); two values are not from Envoy and neither is trusted over
// the other: 400, as for an address that does not parse.
func TestHTTPAttributeHeaderOnce(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	h := NewServer(engine, Options{DecisionLog: "off"}, logr.Discard()).httpHandler()
	for _, name := range []string{HeaderSourceAddress, HeaderDestinationAddress, HeaderSNI} {
		for _, values := range [][]string{{"10.0.0.5:1"}, {"10.0.0.5:1", "10.9.9.9:1"}} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			r.Header[http.CanonicalHeaderKey(name)] = values
			h.ServeHTTP(w, r)
			if want := map[int]int{1: 200, 2: 400}[len(values)]; w.Code != want {
				t.Errorf("%s %q: %d, want %d", name, values, w.Code, want)
			}
		}
	}
}

// TestHTTPWithoutAddressHeadersFailsClosed: the HTTP protocol has the
// connection's addresses only from the attribute headers the operator adds;
// without x-meshguard-source-address an ipBlocks DENY must not be skipped
// (policy.unknownAttribute), while policies that read no address are
// still evaluated.
func TestHTTPWithoutAddressHeadersFailsClosed(t *testing.T) {
	s := startBoth(t, protocolPolicies+`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-range, namespace: foo}
spec:
  action: DENY
  rules: [{from: [{source: {ipBlocks: ["192.0.2.0/24"]}}]}]
`, Options{HTTPPathPrefix: "/ext-authz"})
	ok := protocolCase{method: "GET", path: "/index", principal: "spiffe://cluster.local/ns/bar/sa/client"}
	if r := httpCheck(t, s, "/ext-authz", ok); r.StatusCode != 200 {
		t.Fatalf("with the address headers: want 200, got %d", r.StatusCode)
	}
	req, err := http.NewRequest("GET", s.httpURL+"/ext-authz/index", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "web.foo"
	req.Header.Set(HeaderXFCC, "By=spiffe://cluster.local/ns/foo/sa/web;URI="+ok.principal)
	req.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
	resp, err := s.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// With the header (10.0.0.5, outside the denied range) the same request
	// was allowed above: this 403 is the unknown address's.
	if resp.StatusCode != 403 {
		t.Fatalf("without %s: want 403, got %d", HeaderSourceAddress, resp.StatusCode)
	}
}

// TestHTTPCannotDecideJWTPolicies: the HTTP protocol never carries the
// jwt_authn metadata, so a requestPrincipals DENY cannot be decided there
// and denies (policy.NoMetadataExtension), whatever --authz-jwt-metadata
// says; over gRPC a request without metadata is a request without a token,
// which that DENY does not match, only where Envoy is wired to forward it
// (forwarded), and has an unknown JWT by default (jwtmetadata_test.go).
func TestHTTPCannotDecideJWTPolicies(t *testing.T) {
	for _, c := range []struct {
		setting   string
		grpcAllow bool
	}{{JWTMetadataForwarded, true}, {"", false}} {
		t.Run("setting="+c.setting, func(t *testing.T) {
			s := startBoth(t, protocolPolicies+`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-issuer, namespace: foo}
spec:
  action: DENY
  rules: [{from: [{source: {requestPrincipals: ["https://evil.example/*"]}}]}]
`, Options{HTTPPathPrefix: "/ext-authz", JWTMetadata: c.setting})
			ok := protocolCase{method: "GET", path: "/index", principal: "spiffe://cluster.local/ns/bar/sa/client"}
			if g := grpcCheck(t, s, ok); (g.GetOkResponse() != nil) != c.grpcAllow {
				t.Fatalf("gRPC without metadata: want allowed %v, got %v", c.grpcAllow, g)
			}
			if r := httpCheck(t, s, "/ext-authz", ok); r.StatusCode != 403 {
				t.Fatalf("HTTP: want 403 (the JWT cannot be known), got %d", r.StatusCode)
			}
		})
	}
}

// TestHTTPErrorsAreDenials: Envoy's HTTP ext_authz client reads any 5xx
// from the authorization service as a failure of the service, not as its
// answer (ext_authz_http_impl.cc RawHttpClientImpl::toResponse), and the
// filter then lets the request through when the provider has failOpen
// (Istio's envoyExtAuthzHttp failOpen is failure_mode_allow). A request
// meshguard could not evaluate is denied unless --fail-open, and before the
// first snapshot or after a panic even with it, as on the gRPC protocol:
// the HTTP answer must be a denial Envoy enforces whatever failOpen says.
func TestHTTPErrorsAreDenials(t *testing.T) {
	failing := policy.NewEngine(policy.Mesh{})
	// Compiled before the servers below, which would ask for it: with
	// --fail-open the policies without the user module (none: allowed)
	// answer its error (TestInternalErrorAndFailOpen).
	failing.EnableFailOpenFallback()
	if _, err := failing.Update(context.Background(), &policy.Set{UserModules: map[string]string{"u.rego": "package meshguard.user\n" +
		"response_headers[\"x\"] := \"a\" if true\nresponse_headers[\"x\"] := \"b\" if true\n"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		engine   *policy.Engine
		panics   bool
		failOpen bool
		want     int
	}{
		{name: "evaluation error", engine: failing, want: 403},
		{name: "evaluation error, --fail-open", engine: failing, failOpen: true, want: 200},
		{name: "no snapshot", engine: policy.NewEngine(policy.Mesh{}), want: 403},
		{name: "no snapshot, --fail-open", engine: policy.NewEngine(policy.Mesh{}), failOpen: true, want: 403},
		{name: "panic, --fail-open", engine: policy.NewEngine(policy.Mesh{}), panics: true, failOpen: true, want: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(tc.engine, Options{FailOpen: tc.failOpen, DecisionLog: "off"}, logr.Discard())
			if tc.panics {
				s.engine = nil // Check dereferences it
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := s.HTTPServer(nil)
			go func() { _ = hs.Serve(lis) }()
			t.Cleanup(func() { hs.Close() })
			req, err := http.NewRequest("GET", "http://"+lis.Addr().String()+"/index", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP status %d (%q), want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want != 200 && string(body) != "authorization service error" {
				t.Errorf("body %q, want the gRPC denial's", body)
			}
		})
	}
}

// TestMethodStarIsPresence: Istio builds methods with matcher.HeaderMatcher
// on ":method" (model/generator.go methodGenerator), so "*" is Envoy's
// present_match, which every HTTP request satisfies: a DENY on methods ["*"]
// applies and an ALLOW on notMethods ["*"] never does, whatever the method,
// over both protocols. A gRPC CheckRequest with an empty method (Envoy never
// sends one, a client may) passed both before.
func TestMethodStarIsPresence(t *testing.T) {
	const both = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-any-method, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: ["*"], paths: ["/m"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-no-method, namespace: foo}
spec:
  rules: [{to: [{operation: {notMethods: ["*"]}}]}]
`
	s := startBoth(t, denyAdmin+both, Options{HTTPPathPrefix: "/ext-authz"})
	for _, c := range []protocolCase{
		{name: "DENY methods *", path: "/m", wantPolicy: "foo/deny-any-method"},
		{name: "ALLOW notMethods *", path: "/x"},
	} {
		for _, m := range []string{"", "GET", "G\nET"} {
			c.method = m
			if d := grpcCheck(t, s, c).GetDeniedResponse(); d == nil || headerValue(d.GetHeaders(), HeaderPolicy) != c.wantPolicy {
				t.Errorf("%s, gRPC method %q: %v, want denied by %q", c.name, m, d, c.wantPolicy)
			}
		}
		// Go's HTTP server refuses an empty or malformed method itself.
		for _, m := range []string{"GET", "PURGE"} {
			c.method = m
			if r := httpCheck(t, s, "/ext-authz", c); r.StatusCode != 403 || r.Header.Get(HeaderPolicy) != c.wantPolicy {
				t.Errorf("%s, HTTP method %q: %d %q, want 403 by %q", c.name, m, r.StatusCode, r.Header.Get(HeaderPolicy), c.wantPolicy)
			}
		}
	}
}

// TestNoJWTMetadataNeverAllowsWhatIstioDenies: a CheckRequest without
// jwt_authn metadata (Istio wires CUSTOM before jwt_authn, and Envoy's HTTP
// client sends none) is, for Istio's RBAC filter, a request without a token
// (model/util.go MetadataStringMatcherForJWTClaim fails on missing
// metadata): an ALLOW on requestPrincipals or a claim does not match, a DENY
// on notRequestPrincipals ["*"] or a claim's notValues does. gRPC gives
// those verdicts where Envoy forwards jwt_authn's metadata
// (--authz-jwt-metadata=forwarded; an empty jwt_authn struct too, with any
// setting); HTTP denies them all, as the JWT is unknown there, and so does
// gRPC without metadata by default (the fail-closed reason, no policy).
func TestNoJWTMetadataNeverAllowsWhatIstioDenies(t *testing.T) {
	const allow = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-jwt, namespace: foo}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
  - when: [{key: "request.auth.claims[group]", values: ["admin"]}]
`
	const deny = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-no-jwt, namespace: foo}
spec:
  action: DENY
  rules:
  - from: [{source: {notRequestPrincipals: ["*"]}}]
    to: [{operation: {paths: ["/d"]}}]
  - to: [{operation: {paths: ["/c"]}}]
    when: [{key: "request.auth.claims[group]", notValues: ["admin"]}]
`
	noJWT := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": {}}}
	for _, tc := range []struct {
		name, policies, path, wantPolicy string
	}{
		{"ALLOW requestPrincipals/claims", allow, "/x", ""},
		{"DENY notRequestPrincipals *", deny, "/d", "foo/deny-no-jwt"},
		{"DENY claim notValues", deny, "/c", "foo/deny-no-jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, setting := range []string{JWTMetadataForwarded, ""} {
				s := startBoth(t, denyAdmin+tc.policies, Options{HTTPPathPrefix: "/ext-authz", JWTMetadata: setting})
				c := protocolCase{method: "GET", path: tc.path, principal: "spiffe://cluster.local/ns/bar/sa/client"}
				for _, meta := range []*corev3.Metadata{nil, noJWT} {
					req := request(c.path)
					req.Attributes.Source.Principal, req.Attributes.MetadataContext = c.principal, meta
					g, err := s.grpc.Check(context.Background(), req)
					if err != nil {
						t.Fatal(err)
					}
					want := tc.wantPolicy
					if meta == nil && setting == "" {
						want = "" // the JWT is unknown: denied by no policy
					}
					if d := g.GetDeniedResponse(); d == nil || headerValue(d.GetHeaders(), HeaderPolicy) != want {
						t.Errorf("gRPC, --authz-jwt-metadata %q, metadata %v: %v, want denied by %q", setting, meta, g, want)
					}
				}
				if r := httpCheck(t, s, "/ext-authz", c); r.StatusCode != 403 {
					t.Errorf("HTTP: %d, want 403", r.StatusCode)
				}
			}
		})
	}
}

// TestHTTPServerLogsHandshakeErrorsStructured: a client failing the TLS
// handshake on the HTTP ext_authz port writes nothing to stderr; net/http's
// message reaches the server's logger at V(1), naming the server
// (httplog.ErrorLog). With ErrorLog unset it was a raw stderr line per attempt.
func TestHTTPServerLogsHandshakeErrorsStructured(t *testing.T) {
	var mu sync.Mutex
	var stderr strings.Builder
	defer stdlog.SetOutput(stdlog.Writer())
	stdlog.SetOutput(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) }))
	var lines []string
	log := funcr.NewJSON(func(obj string) { mu.Lock(); lines = append(lines, obj); mu.Unlock() }, funcr.Options{Verbosity: 1})
	ca, caKey := newCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf(t, ca, caKey, "server", []string{"127.0.0.1"})}, MinVersion: tls.VersionTLS12}
	s := NewServer(policy.NewEngine(policy.Mesh{}), Options{DecisionLog: "off"}, log)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeHTTP(ctx, lis, serverTLS) }()
	// The client does not trust the server's CA: it aborts the handshake.
	if c, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if stderr.Len() > 0 {
		t.Errorf("net/http wrote to the standard logger (stderr):\n%s", stderr.String())
	}
	if out := strings.Join(lines, "\n"); !regexp.MustCompile(`"level":1,"msg":"http: TLS handshake error[^\n]*"server":"ext_authz HTTP"`).MatchString(out) {
		t.Errorf("no V(1) handshake error naming the server in:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
