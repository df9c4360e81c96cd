package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
