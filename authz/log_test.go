package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr/funcr"

	"github.com/meshguard/meshguard/policy"
)

// Decision logs never carry credentials: not the query string, not headers.
func TestDecisionLogsCarryNoCredentials(t *testing.T) {
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 10})
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, Options{DecisionLog: "full"}, log)
	// Also requests refused as bad (400), whose reason quotes the path.
	for _, path := range []string{"/api/items?access_token=query-secret-123", "/api/items%00?access_token=bad-secret-321"} {
		_, err := srv.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: path, Host: "api",
				Headers: map[string]string{"authorization": "Bearer header-secret-456", "cookie": "session=cookie-secret-789"},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	httpReq := httptest.NewRequest(http.MethodGet, "/elsewhere?access_token=http-secret-654", nil)
	httpResp := httptest.NewRecorder()
	NewServer(engine, Options{DecisionLog: "full", HTTPPathPrefix: "/check"}, log).httpHandler().ServeHTTP(httpResp, httpReq)
	if httpResp.Code != http.StatusBadRequest {
		t.Fatalf("HTTP request outside the path prefix: %d", httpResp.Code)
	}
	out := logs.String()
	if !strings.Contains(out, "/api/items") {
		t.Fatalf("no decision line for the request:\n%s", out)
	}
	for _, secret := range []string{"query-secret-123", "bad-secret-321", "http-secret-654", "header-secret-456", "cookie-secret-789"} {
		if strings.Contains(out, secret) {
			t.Errorf("decision log leaks %q:\n%s", secret, out)
		}
	}
}

// Decision log lines are bounded whatever the request carries: every field
// read from the request (and a reason or error quoting one) is cut to
// maxLogField, so a denial of a 4 MiB CheckRequest does not write megabytes.
func TestDecisionLogFieldsBounded(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{Verbosity: 10})
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("é", 256<<10) // 512 KiB, cut at a character boundary
	srv := NewServer(engine, Options{DecisionLog: "full", HTTPPathPrefix: "/check"}, log)
	addr := &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: huge}}}
	for _, path := range []string{"/" + huge, "/x%00" + huge} { // allowed; bad request quoting the path
		if _, err := srv.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source:      &authv3.AttributeContext_Peer{Principal: huge, Address: addr},
			Destination: &authv3.AttributeContext_Peer{Address: addr},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: huge, Path: path, Host: huge,
			}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	// HTTP: a path outside the prefix is a bad request whose reason quotes it.
	httpResp := httptest.NewRecorder()
	srv.httpHandler().ServeHTTP(httpResp, httptest.NewRequest(http.MethodGet, "/elsewhere/"+strings.Repeat("a", 512<<10), nil))
	if httpResp.Code != http.StatusBadRequest {
		t.Fatalf("HTTP request outside the path prefix: %d", httpResp.Code)
	}
	if len(lines) != 3 {
		t.Fatalf("%d decision lines, want 3", len(lines))
	}
	for _, l := range lines {
		// 10 request fields and the reason, each cut to maxLogField, plus the rest.
		if len(l) > 12*maxLogField+2048 {
			t.Errorf("decision line of %d bytes: %.300s...", len(l), l)
		}
		if !strings.Contains(l, "more bytes") {
			t.Errorf("decision line does not say a field was cut: %.300s...", l)
		}
	}
}
