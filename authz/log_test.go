package authz

import (
	"context"
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
	_, err := srv.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/api/items?access_token=query-secret-123", Host: "api",
			Headers: map[string]string{"authorization": "Bearer header-secret-456", "cookie": "session=cookie-secret-789"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "/api/items") {
		t.Fatalf("no decision line for the request:\n%s", out)
	}
	for _, secret := range []string{"query-secret-123", "header-secret-456", "cookie-secret-789"} {
		if strings.Contains(out, secret) {
			t.Errorf("decision log leaks %q:\n%s", secret, out)
		}
	}
}
