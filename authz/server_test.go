package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/reload"
)

const denyAdmin = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/admin*"]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: foo, labels: {app: web}}
status: {podIP: 10.0.1.1}
`

func request(path string) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("10.0.0.5", 40000)},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.0.1.1", 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: "web.foo"}},
	}}
}

// startServer runs RunStandalone on 127.0.0.1 and returns a connected client.
func startServer(t *testing.T, dir string, o Options, serverTLS *tls.Config, clientCreds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.PolicyDir = dir
	o.DecisionLog = "full"
	o.Debounce = 20 * time.Millisecond
	// At nice 19 a rebuild can wait past any fixed deadline while the
	// other test binaries of `make test-race` keep both cores busy.
	o.RebuildPriority = "normal"
	done := make(chan error, 1)
	go func() { done <- RunStandalone(ctx, o, lis, serverTLS, logr.Discard()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(clientCreds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Wait for SERVING (first snapshot loaded).
	hc := healthpb.NewHealthClient(conn)
	if err := poll(reloadWait, func() error {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: ServiceName})
		if err != nil {
			return err
		}
		if r.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v", r.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("server never became healthy: %v", err)
	}
	return conn
}

// reloadWait bounds waiting for a snapshot built after a change: rebuilds run
// at nice 19 (internal/background), so on a machine busy with other tests
// (make test runs packages in parallel beside control planes) they get the
// CPU last; 5 s was once not enough there.
const reloadWait = 30 * time.Second

func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGRPCCheckAndReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), denyAdmin)
	conn := startServer(t, dir, Options{}, nil, insecure.NewCredentials())
	c := authv3.NewAuthorizationClient(conn)
	ctx := context.Background()

	resp, err := c.Check(ctx, request("/index"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status.Code != int32(codes.OK) || resp.GetOkResponse() == nil {
		t.Fatalf("want OK, got %v", resp)
	}
	if !hasHeader(resp.GetOkResponse().GetHeaders(), HeaderDecisionID) {
		t.Errorf("OK response lacks %s: %v", HeaderDecisionID, resp)
	}

	resp, err = c.Check(ctx, request("/admin/users"))
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeniedResponse()
	if resp.Status.Code != int32(codes.PermissionDenied) || d == nil || d.Status.Code != 403 || d.Body == "" {
		t.Fatalf("want 403 denial, got %v", resp)
	}
	if headerValue(d.Headers, HeaderPolicy) != "foo/deny-admin" {
		t.Errorf("denied response policy header = %q", headerValue(d.Headers, HeaderPolicy))
	}

	// A new ALLOW policy in the watched dir changes the verdict.
	writeFile(t, filepath.Join(dir, "allow.yaml"), `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-api, namespace: foo}
spec:
  rules:
  - to:
    - operation: {paths: ["/api/*"]}
`)
	if err := poll(reloadWait, func() error {
		resp, err := c.Check(ctx, request("/index"))
		if err != nil {
			return err
		}
		if resp.GetDeniedResponse() == nil {
			return fmt.Errorf("still allowed")
		}
		return nil
	}); err != nil {
		t.Fatalf("reload not observed: %v", err)
	}
	resp, err = c.Check(ctx, request("/api/x"))
	if err != nil || headerValue(resp.GetOkResponse().GetHeaders(), HeaderPolicy) != "foo/only-api" {
		t.Fatalf("want allowed by foo/only-api, got %v %v", resp, err)
	}

	// A broken file keeps the last good snapshot.
	writeFile(t, filepath.Join(dir, "broken.yaml"), "kind: AuthorizationPolicy\napiVersion: security.istio.io/v1\nmetadata: {name: x}\nspec: {rules: 5}\n")
	if err := poll(reloadWait, func() error {
		if got := testutilCounter(reload.ReloadErrorsTotal.WithLabelValues(string(reload.Policy))); got < 1 {
			return fmt.Errorf("reload errors %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err = c.Check(ctx, request("/api/x"))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("last good snapshot must stay active, got %v %v", resp, err)
	}
}

func hasHeader(hs []*corev3.HeaderValueOption, k string) bool { return headerValue(hs, k) != "" }

func headerValue(hs []*corev3.HeaderValueOption, k string) string {
	for _, h := range hs {
		if h.GetHeader().GetKey() == k {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// conflictModule fails every evaluation: two values for one response header.
const conflictModule = "package meshguard.user\n" +
	"response_headers[\"x\"] := \"a\" if true\nresponse_headers[\"x\"] := \"b\" if true\n"

// tenantModule fails when the client sends an x-tenant other than
// "default" (two values for x-tenant): a review's finding, where
// that error under --fail-open allowed a request a DENY policy matched.
const tenantModule = "package meshguard.user\n" +
	"response_headers[\"x-tenant\"] := input.headers[\"x-tenant\"]\n" +
	"response_headers[\"x-tenant\"] := \"default\" if not input.headers[\"x-tenant\"] == \"default\"\n"

// allowIndex admits /index only, to web-1 of denyAdmin.
const allowIndex = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-index, namespace: foo}
spec:
  action: ALLOW
  rules:
  - to:
    - operation: {paths: ["/index"]}
`

// TestInternalErrorAndFailOpen: an evaluation error is 503 (a 403 with the
// service-error body on the HTTP protocol); with --fail-open, an error of a
// snapshot with user modules is answered by the same policies without them,
// as Istio's DENY and ALLOW are RBAC filters that never fail open and only
// the CUSTOM check (what user modules are to meshguard) is skipped when the
// provider's failOpen is set (Istio: pilot/pkg/security/authz/builder/
// extauthz.go generateGRPCConfig, generateHTTPConfig: FailureModeAllow on
// the ext_authz filter only). Their allow is "error_fail_open", their
// denial the request's denial. No policy state loaded yet, and a snapshot
// compiled before --fail-open was asked for (no fallback), are 503 even
// with --fail-open. Both protocols.
func TestInternalErrorAndFailOpen(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policies   string // YAML; "" = none
		module     string // "" = no snapshot at all
		failOpen   bool
		noFallback bool // the snapshot is compiled before the server asks for the fallback
		path       string
		tenant     string
		wantStatus int    // gRPC: 200 OK, else the denial's status
		wantResult string // meshguard_authz_protocol_decisions_total's result
		wantPolicy string
		wantTenant string // the x-tenant response header of an OK
	}{
		{name: "evaluation error", module: conflictModule, path: "/", wantStatus: 503, wantResult: "error"},
		{name: "evaluation error, --fail-open, no policies", module: conflictModule, failOpen: true, path: "/",
			wantStatus: 200, wantResult: "error_fail_open"},
		{name: "evaluation error, --fail-open, snapshot without fallback", module: conflictModule, failOpen: true, noFallback: true,
			path: "/", wantStatus: 503, wantResult: "error"},
		{name: "no snapshot", path: "/", wantStatus: 503, wantResult: "error"},
		{name: "no snapshot, --fail-open", failOpen: true, path: "/", wantStatus: 503, wantResult: "error"},
		// A review's reproduction:
		// x-tenant: evil made the user module fail and --fail-open then
		// allowed /admin/users past deny-admin.
		{name: "DENY matches, --fail-open", policies: denyAdmin + allowIndex, module: tenantModule, failOpen: true,
			path: "/admin/users", wantStatus: 403, wantResult: "deny", wantPolicy: "foo/deny-admin"},
		{name: "DENY matches, user module fails, --fail-open", policies: denyAdmin + allowIndex, module: tenantModule, failOpen: true,
			path: "/admin/users", tenant: "evil", wantStatus: 403, wantResult: "deny", wantPolicy: "foo/deny-admin"},
		{name: "DENY matches, user module fails", policies: denyAdmin + allowIndex, module: tenantModule,
			path: "/admin/users", tenant: "evil", wantStatus: 503, wantResult: "error"},
		{name: "ALLOW admits, user module fails, --fail-open", policies: denyAdmin + allowIndex, module: tenantModule, failOpen: true,
			path: "/index", tenant: "evil", wantStatus: 200, wantResult: "error_fail_open", wantPolicy: "foo/allow-index"},
		{name: "no ALLOW admits, user module fails, --fail-open", policies: denyAdmin + allowIndex, module: tenantModule, failOpen: true,
			path: "/other", tenant: "evil", wantStatus: 403, wantResult: "deny"},
		{name: "ALLOW admits, user module evaluates, --fail-open", policies: denyAdmin + allowIndex, module: tenantModule, failOpen: true,
			path: "/index", tenant: "default", wantStatus: 200, wantResult: "allow", wantPolicy: "foo/allow-index", wantTenant: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			engine := policy.NewEngine(policy.Mesh{})
			update := func() {
				set := &policy.Set{}
				if tc.policies != "" {
					if _, err := set.AddYAML("p.yaml", []byte(tc.policies)); err != nil {
						t.Fatal(err)
					}
				}
				set.UserModules = map[string]string{"u.rego": tc.module}
				if _, err := engine.Update(ctx, set); err != nil {
					t.Fatal(err)
				}
			}
			if tc.module != "" && tc.noFallback {
				update()
			}
			s := NewServer(engine, Options{FailOpen: tc.failOpen, DecisionLog: "off"}, logr.Discard())
			if tc.module != "" && !tc.noFallback {
				update()
			}
			m := DefaultMetrics()

			// gRPC
			req := request(tc.path)
			if tc.tenant != "" {
				req.Attributes.Request.Http.Headers = map[string]string{"x-tenant": tc.tenant}
			}
			before := testutilCounter(m.Protocol.WithLabelValues("grpc", tc.wantResult))
			resp, err := s.Check(ctx, req)
			if err != nil {
				t.Fatalf("gRPC: Check must not return an RPC error: %v", err)
			}
			if got := testutilCounter(m.Protocol.WithLabelValues("grpc", tc.wantResult)) - before; got != 1 {
				t.Errorf("gRPC: %s decisions +%v, want +1 (%v)", tc.wantResult, got, resp)
			}
			var hs []*corev3.HeaderValueOption
			if ok := resp.GetOkResponse(); ok != nil {
				if tc.wantStatus != 200 {
					t.Fatalf("gRPC: OK, want %d: %v", tc.wantStatus, resp)
				}
				hs = ok.GetHeaders()
				tenant := ""
				for _, h := range ok.GetResponseHeadersToAdd() {
					if h.GetHeader().GetKey() == "x-tenant" {
						tenant = h.GetHeader().GetValue()
					}
				}
				if tenant != tc.wantTenant {
					t.Errorf("gRPC: x-tenant response header %q, want %q", tenant, tc.wantTenant)
				}
			} else {
				d := resp.GetDeniedResponse()
				if d == nil || int(d.GetStatus().GetCode()) != tc.wantStatus {
					t.Fatalf("gRPC: want %d, got %v", tc.wantStatus, resp)
				}
				hs = d.GetHeaders()
			}
			if got := headerValue(hs, HeaderPolicy); got != tc.wantPolicy {
				t.Errorf("gRPC: %s %q, want %q", HeaderPolicy, got, tc.wantPolicy)
			}

			// HTTP: a 503 is a 403 with the service-error body (TestHTTPErrorsAreDenials).
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := s.HTTPServer(nil)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(func() { srv.Close() })
			hreq, err := http.NewRequest("GET", "http://"+lis.Addr().String()+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			hreq.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
			if tc.tenant != "" {
				hreq.Header.Set("x-tenant", tc.tenant)
			}
			before = testutilCounter(m.Protocol.WithLabelValues("http", tc.wantResult))
			hresp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(hresp.Body)
			hresp.Body.Close()
			if got := testutilCounter(m.Protocol.WithLabelValues("http", tc.wantResult)) - before; got != 1 {
				t.Errorf("HTTP: %s decisions +%v, want +1", tc.wantResult, got)
			}
			wantHTTP, wantBody := tc.wantStatus, ""
			switch tc.wantStatus {
			case 503:
				wantHTTP, wantBody = 403, "authorization service error"
			case 403:
				wantBody = "RBAC: access denied"
			}
			if hresp.StatusCode != wantHTTP || string(body) != wantBody {
				t.Errorf("HTTP: %d %q, want %d %q", hresp.StatusCode, body, wantHTTP, wantBody)
			}
			if got := hresp.Header.Get(HeaderPolicy); got != tc.wantPolicy {
				t.Errorf("HTTP: %s %q, want %q", HeaderPolicy, got, tc.wantPolicy)
			}
			if wantHTTP == 200 {
				if got := hresp.Header.Get("x-tenant"); got != tc.wantTenant {
					t.Errorf("HTTP: x-tenant %q, want %q", got, tc.wantTenant)
				}
			}
		})
	}
}

// TestEvaluationPanicDenied: a panic while evaluating (here: an engine that
// is not there) denies that request with 503, also with --fail-open, and the
// server goes on answering.
func TestEvaluationPanicDenied(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		s := NewServer(policy.NewEngine(policy.Mesh{}), Options{FailOpen: failOpen, DecisionLog: "off"}, logr.Discard())
		s.engine = nil // Check dereferences it: a nil pointer panic
		for range 2 {
			resp, err := s.Check(t.Context(), request("/"))
			if err != nil {
				t.Fatalf("fail-open %v: Check must not return an RPC error: %v", failOpen, err)
			}
			if d := resp.GetDeniedResponse(); d == nil || d.Status.Code != 503 {
				t.Errorf("fail-open %v: want 503, got %v", failOpen, resp)
			}
		}
	}
}

// TestPolicyHeaderNotSpoofable: an OK without a deciding policy tells Envoy
// to remove a client's own x-meshguard-policy, on both protocols.
func TestPolicyHeaderNotSpoofable(t *testing.T) {
	resp := okResponse("id-1", "", nil)
	if got := resp.GetOkResponse().GetHeadersToRemove(); len(got) != 1 || got[0] != HeaderPolicy {
		t.Errorf("gRPC OK without a policy: headers_to_remove %v, want [%s]", got, HeaderPolicy)
	}
	ok := okResponse("id-2", "ns/p", nil).GetOkResponse()
	if got := ok.GetHeadersToRemove(); len(got) != 0 {
		t.Errorf("gRPC OK with a policy (its header overwrites): headers_to_remove %v", got)
	}
	// Envoy's HeaderValueOption: APPEND_IF_EXISTS_OR_ADD would keep a
	// client's forged x-meshguard-policy beside meshguard's value.
	if hs := ok.GetHeaders(); len(hs) != 2 || headerValue(hs, HeaderPolicy) != "ns/p" {
		t.Errorf("gRPC OK with a policy: headers %v, want %s and %s", hs, HeaderDecisionID, HeaderPolicy)
	}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("gRPC OK header %s: append action %v, want OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey(), h.GetAppendAction())
		}
	}
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set(HeaderPolicy, "ns/forged")
	NewServer(engine, Options{DecisionLog: "off"}, logr.Discard()).httpHandler().ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Header().Get("x-envoy-auth-headers-to-remove") != HeaderPolicy {
		t.Errorf("HTTP OK without a policy: %d, x-envoy-auth-headers-to-remove %q", w.Code, w.Header().Get("x-envoy-auth-headers-to-remove"))
	}
}

// TestUserHeadersCannotOverrideOwnHeaders: a user Rego module's
// response_headers never set meshguard's own names (x-meshguard-*) or
// Envoy's control headers (x-envoy-*): on the HTTP protocol they would
// overwrite the x-meshguard-policy meshguard set or the
// x-envoy-auth-headers-to-remove that strips a client's forged one. They
// are dropped (and logged); the other headers pass on both protocols.
func TestUserHeadersCannotOverrideOwnHeaders(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{UserModules: map[string]string{"u.rego": "package meshguard.user\n" +
		"response_headers[\"X-Meshguard-Policy\"] := \"ns/forged\"\n" +
		"response_headers[\"x-meshguard-decision-id\"] := \"forged\"\n" +
		"response_headers[\"x-envoy-auth-headers-to-remove\"] := \"authorization\"\n" +
		"response_headers[\"x-ok\"] := \"1\"\n"}}); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{})
	s := NewServer(engine, Options{DecisionLog: "off"}, log)
	resp, err := s.Check(context.Background(), request("/"))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("want OK, got %v %v", resp, err)
	}
	ok := resp.GetOkResponse()
	if hs := ok.GetResponseHeadersToAdd(); len(hs) != 1 || headerValue(hs, "x-ok") != "1" {
		t.Errorf("gRPC response_headers_to_add %v: want only x-ok", hs)
	}
	if got := ok.GetHeadersToRemove(); len(got) != 1 || got[0] != HeaderPolicy {
		t.Errorf("gRPC headers_to_remove %v, want [%s]", got, HeaderPolicy)
	}

	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set(HeaderPolicy, "ns/forged-by-client")
	s.httpHandler().ServeHTTP(w, r)
	h := w.Header()
	if w.Code != http.StatusOK || h.Get("x-ok") != "1" {
		t.Fatalf("HTTP: %d %v: want 200 with x-ok", w.Code, h)
	}
	if got := h.Values(HeaderPolicy); len(got) != 0 {
		t.Errorf("HTTP %s %q: set by the user module", HeaderPolicy, got)
	}
	if got := h.Get(HeaderDecisionID); got == "forged" || got == "" {
		t.Errorf("HTTP %s %q: want meshguard's", HeaderDecisionID, got)
	}
	if got := h.Values("x-envoy-auth-headers-to-remove"); len(got) != 1 || got[0] != HeaderPolicy {
		t.Errorf("HTTP x-envoy-auth-headers-to-remove %q, want [%s]", got, HeaderPolicy)
	}
	if !strings.Contains(logs.String(), "x-envoy-auth-headers-to-remove") {
		t.Errorf("dropped headers not logged:\n%s", logs.String())
	}
}

func TestGRPCMutualTLS(t *testing.T) {
	ca, caKey := newCA(t)
	serverCert := leaf(t, ca, caKey, "server", []string{"127.0.0.1"})
	clientCert := leaf(t, ca, caKey, "client", nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), denyAdmin)
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	conn := startServer(t, dir, Options{}, serverTLS, creds)
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), request("/admin"))
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Fatalf("want denial over mTLS, got %v %v", resp, err)
	}
	// A client without a certificate is rejected by the TLS handshake.
	bad, err := grpc.NewClient(conn.Target(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := authv3.NewAuthorizationClient(bad).Check(cctx, request("/")); err == nil {
		t.Fatal("client without certificate must fail")
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func leaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, ips []string) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveGRPC serves engine's gRPC ext_authz on loopback until the test ends
// and returns a client connection to it.
func serveGRPC(tb testing.TB, engine *policy.Engine, o Options) *grpc.ClientConn {
	tb.Helper()
	g := NewServer(engine, o, logr.Discard()).GRPCServer(nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	tb.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// TestSilentConnectionClosed: a client that connects and sends nothing is
// disconnected after handshakeTimeout, on the gRPC port as on the HTTP one.
func TestSilentConnectionClosed(t *testing.T) {
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = 200 * time.Millisecond
	s := NewServer(policy.NewEngine(policy.Mesh{}), Options{DecisionLog: "off"}, logr.Discard())
	g := s.GRPCServer(nil)
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(glis) }()
	t.Cleanup(g.Stop)
	hs := s.HTTPServer(nil)
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(hlis) }()
	t.Cleanup(func() { hs.Close() })
	for name, addr := range map[string]string{"gRPC": glis.Addr().String(), "HTTP": hlis.Addr().String()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// gRPC writes its SETTINGS first; read until the server closes.
		_, err = io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: a silent connection was still open after 10 s (handshake timeout %v)", name, handshakeTimeout)
		}
	}
}

// TestGRPCCallBounded: a call whose client sets no deadline (no
// grpc-timeout) and then withholds its request message is ended at
// callDeadline, as the HTTP port's ReadTimeout ends a withheld body; before,
// it held its stream, its goroutine and up to --authz-max-recv-msg-size of
// partial message for as long as the connection lasted. A health Watch,
// long-lived by design, outlives it once its request has arrived.
func TestGRPCCallBounded(t *testing.T) {
	defer func(d time.Duration) { callDeadline = d }(callDeadline)
	callDeadline = 300 * time.Millisecond
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	conn := serveGRPC(t, engine, Options{DecisionLog: "off"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A client deadline (grpc-timeout) longer than callDeadline does not extend it.
	long, cancelLong := context.WithTimeout(ctx, time.Hour)
	defer cancelLong()
	ended := make(chan error, 1)
	for _, call := range []struct {
		method string
		ctx    context.Context
	}{{"/" + ServiceName + "/Check", ctx}, {"/" + ServiceName + "/Check", long}, {healthpb.Health_Watch_FullMethodName, ctx}} {
		method := call.method
		stream, err := conn.NewStream(call.ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
		if err != nil {
			t.Fatal(err)
		}
		go func() { ended <- stream.RecvMsg(&healthpb.HealthCheckResponse{}) }()
		select {
		case err := <-ended:
			if err == nil {
				t.Errorf("%s without its request message was answered", method)
			} else if method != healthpb.Health_Watch_FullMethodName && status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("%s without its request message: %v, want DEADLINE_EXCEEDED", method, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s without its request message was still open after 10 s (call deadline %v)", method, callDeadline)
		}
	}

	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch: %v %v, want SERVING", m, err)
	}
	go func() { _, err := watch.Recv(); ended <- err }()
	select {
	case err := <-ended:
		t.Errorf("health Watch ended after its request arrived: %v", err)
	case <-time.After(3 * callDeadline):
	}
}

// TestGRPCServerBounds: one connection holds at most maxConcurrentStreams
// calls at a time (each may buffer a CheckRequest of --authz-max-recv-msg-size),
// and a call's metadata is bounded like the HTTP port's headers, by
// --authz-max-recv-msg-size (grpc-go's defaults: unlimited streams, 16 MiB).
func TestGRPCServerBounds(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	conn := serveGRPC(t, engine, Options{DecisionLog: "off", MaxRecvMsgSize: 16 << 10})
	client := authv3.NewAuthorizationClient(conn)
	if _, err := client.Check(context.Background(), request("/")); err != nil {
		t.Fatal(err) // also: the client has the server's SETTINGS now
	}

	// A CheckRequest above the limit is refused by grpc-go before Check:
	// RESOURCE_EXHAUSTED, which Envoy takes for a failure of the service
	// (the provider's failOpen applies; docs/operations.md, request body).
	huge := request("/")
	huge.Attributes.Request.Http.Body = strings.Repeat("b", 32<<10)
	if _, err := client.Check(context.Background(), huge); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("32 KiB CheckRequest with --authz-max-recv-msg-size 16 KiB: got %v, want RESOURCE_EXHAUSTED", err)
	}

	big := metadata.Pairs("x-big", strings.Repeat("a", 64<<10))
	if _, err := client.Check(metadata.NewOutgoingContext(context.Background(), big), request("/")); err == nil {
		t.Error("64 KiB of metadata with --authz-max-recv-msg-size 16 KiB: want an error")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	desc := &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
	const method = "/" + ServiceName + "/Check"
	for i := range maxConcurrentStreams {
		if _, err := conn.NewStream(ctx, desc, method); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if _, err := conn.NewStream(sctx, desc, method); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("stream %d on one connection: want it to wait (DeadlineExceeded), got %v", maxConcurrentStreams+1, err)
	}
}

// TestManyValuesUnderOneHeaderName: values under one header name, as
// header_map entries or as names equal but for case, are joined with ','
// once per name. Appending each value to the joined string copied it every
// time: a CheckRequest of under 1 MiB held a core for seconds (4 MiB:
// minutes) before it was answered.
func TestManyValuesUnderOneHeaderName(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	client := authv3.NewAuthorizationClient(serveGRPC(t, engine, Options{DecisionLog: "off"}))

	const n, value = 50000, "bbbbbbbbbb"
	headerMap := request("/")
	hm := &corev3.HeaderMap{}
	for range n {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "x-a", Value: value})
	}
	headerMap.Attributes.Request.Http.HeaderMap = hm
	caseVariants := request("/")
	headers := map[string]string{}
	for i := range n {
		name := []byte("x-aaaaaaaaaaaaaaaaaaaa")
		for b := range 20 {
			if i&(1<<b) != 0 {
				name[2+b] = 'A'
			}
		}
		headers[string(name)] = value
	}
	caseVariants.Attributes.Request.Http.Headers = headers
	for name, req := range map[string]*authv3.CheckRequest{"header_map": headerMap, "names equal but for case": caseVariants} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.Check(ctx, req)
		cancel()
		if err != nil {
			t.Errorf("%s: %d values under one name: %v", name, n, err)
			continue
		}
		if resp.GetOkResponse() == nil {
			t.Errorf("%s: want OK (no policies), got %v", name, resp)
		}
	}
}

// TestCancelledCallNotAnError: a call the client cancelled while user Rego
// was evaluating is the client's doing, not a failure of meshguard: counted
// and logged as "cancelled" (not "error", which MeshguardAuthzErrors alerts
// on) and denied, also with --fail-open. A deadline meshguard missed stays an error.
func TestCancelledCallNotAnError(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	// As a --fail-open server asks (NewServer): the user module's deadline
	// is then answered by the policies without it (none here: allowed).
	engine.EnableFailOpenFallback()
	if _, err := engine.Update(context.Background(), &policy.Set{UserModules: map[string]string{"u.rego": "package meshguard.user\n" +
		// Long enough for OPA to see the cancellation during evaluation.
		"response_headers[\"n\"] := format_int(count([x | some x in numbers.range(1, 2000000)]), 10)\n"}}); err != nil {
		t.Fatal(err)
	}
	cancelled, stop := context.WithCancel(context.Background())
	stop()
	expired, stop2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer stop2()
	for _, tc := range []struct {
		name       string
		ctx        context.Context
		failOpen   bool
		wantResult string
		wantOK     bool
	}{
		{"cancelled", cancelled, false, "cancelled", false},
		{"cancelled, --fail-open", cancelled, true, "cancelled", false},
		{"deadline exceeded", expired, false, "error", false},
		{"deadline exceeded, --fail-open", expired, true, "error_fail_open", true},
	} {
		m := DefaultMetrics()
		before := testutilCounter(m.Decisions.WithLabelValues(tc.wantResult, "NONE"))
		s := NewServer(engine, Options{FailOpen: tc.failOpen, DecisionLog: "off"}, logr.Discard())
		resp, err := s.Check(tc.ctx, request("/"))
		if err != nil {
			t.Fatalf("%s: Check must not return an RPC error: %v", tc.name, err)
		}
		if got := testutilCounter(m.Decisions.WithLabelValues(tc.wantResult, "NONE")) - before; got != 1 {
			t.Errorf("%s: %s decisions +%v, want +1", tc.name, tc.wantResult, got)
		}
		if ok := resp.GetOkResponse() != nil; ok != tc.wantOK {
			t.Errorf("%s: OK %v, want %v: %v", tc.name, ok, tc.wantOK, resp)
		}
	}
}

// TestRunStandaloneLogsListening: `meshguard authz serve` logs the same
// "listening" lines as serve and dev (Setup), with the HTTP path prefix.
func TestRunStandaloneLogsListening(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{PolicyDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HTTPPathPrefix: "/ext-authz", RebuildPriority: "normal"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunStandalone(ctx, o, lis, nil, log) }()
	want := []string{
		`"msg"="ext_authz gRPC server listening" "addr"="` + lis.Addr().String() + `" "tls"=false`,
		`"msg"="ext_authz HTTP server listening" "addr"="127.0.0.1:`,
		`"pathPrefix"="/ext-authz"`,
	}
	err = poll(reloadWait, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range want {
			if !strings.Contains(logs.String(), w) {
				return fmt.Errorf("no %s in\n%s", w, logs.String())
			}
		}
		return nil
	})
	cancel()
	if serveErr := <-done; serveErr != nil {
		t.Errorf("server: %v", serveErr)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestReflectionOffByDefault: gRPC reflection is registered only when asked
// for (--authz-reflection), as OPA-Envoy's enable-reflection defaults to
// false: it lists the port's services to any client.
func TestReflectionOffByDefault(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		o := DefaultOptions()
		o.DecisionLog = "off"
		if on {
			o.Reflection = true
		}
		stream, err := reflectionpb.NewServerReflectionClient(serveGRPC(t, engine, o)).ServerReflectionInfo(t.Context())
		if err == nil {
			// A Send on a stream the server has ended returns io.EOF;
			// Recv then gives the call's status.
			_ = stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = stream.Recv()
		}
		if got := status.Code(err); on && got != codes.OK || !on && got != codes.Unimplemented {
			t.Errorf("reflection with Reflection=%v: %v, want %v", on, err, map[bool]codes.Code{false: codes.Unimplemented, true: codes.OK}[on])
		}
	}
}
