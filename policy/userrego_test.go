package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	corev1 "k8s.io/api/core/v1"
)

// tenantModule denies on values a client sends, through builtins that fail
// on malformed input (base64.decode, to_number).
const tenantModule = `package meshguard.user

allowed_tenants := {"acme", "globex"}

deny contains "tenant not allowed" if {
	t := base64.decode(input.headers["x-tenant"])
	not t in allowed_tenants
}

deny contains "amount too large" if to_number(input.headers["x-amount"]) > 1000
`

// TestUserModuleBuiltinErrorFailsClosed: a builtin error in a user module,
// which a client provokes with a malformed header, is an evaluation error
// (503, or the --fail-open fallback), never a deny rule left undefined and
// the request allowed.
func TestUserModuleBuiltinErrorFailsClosed(t *testing.T) {
	s, err := Compile(context.Background(), Mesh{}, &Set{UserModules: map[string]string{"tenant.rego": tenantModule}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, header, value string
		allowed             bool
		reason, errPart     string // errPart: the evaluation fails naming it
	}{
		{"allowed tenant", "x-tenant", "YWNtZQ==", true, "", ""},
		{"other tenant", "x-tenant", "ZXZpbA==", false, "tenant not allowed", ""},
		{"malformed base64", "x-tenant", "ZXZpbA=!", false, "", "base64.decode"},
		{"small amount", "x-amount", "5", true, "", ""},
		{"large amount", "x-amount", "5000", false, "amount too large", ""},
		{"malformed number", "x-amount", "5e3x", false, "", "to_number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := s.CheckRequest(context.Background(), http(hdr(c.header, c.value)))
			if c.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("verdict %+v, err %v; want an evaluation error naming %s", v, err, c.errPart)
				}
				return
			}
			if err != nil || v.Allowed != c.allowed || (!c.allowed && v.Reason != c.reason) {
				t.Fatalf("verdict %+v, err %v; want allowed %v, reason %q", v, err, c.allowed, c.reason)
			}
		})
	}
}

// TestGeneratedRulesUnchangedByStrictBuiltinErrors: user modules are
// evaluated with strict builtin errors, and so are the generated rules
// evaluated with them. Every builtin the generated rules may call
// (generatedBuiltins, engine.go) has a reason it cannot fail on a request's
// values in strictReasons below; one added to generatedBuiltins without a
// reason fails the test. Hostile values for each (empty and odd addresses, ports, SNI, principals,
// headers, paths, JWT claims of every type): the verdict with a user module
// that never denies is the verdict without user modules, and neither is an
// error.
func TestGeneratedRulesUnchangedByStrictBuiltinErrors(t *testing.T) {
	const onStrings = "fails only on a non-string; every input it reads is a string (Request.value) or tested by is_string (JWT claims)"
	strictReasons := map[string]string{
		"eq": "never fails", "assign": "never fails", "equal": "never fails", "neq": "never fails", "gt": "never fails",
		"count": "never fails", "internal.member_2": "never fails", "is_string": "never fails", "is_array": "never fails",
		"startswith": onStrings, "endswith": onStrings, "indexof": onStrings,
		"strings.any_prefix_match": onStrings, "strings.any_suffix_match": onStrings,
		"regex.match":       onStrings + "; its patterns are constants built from quoted values",
		"object.get":        "fails only on a non-object; input.jwt.claims is an object",
		"net.cidr_contains": `fails on a non-address; the generated rule tests for "" (what decoding leaves of a non-address) first`,
	}
	for _, b := range generatedBuiltins {
		if strictReasons[b] == "" {
			t.Errorf("generated builtin %s: no reason it cannot fail under strict builtin errors; add one (and a hostile row below)", b)
		}
	}
	policies := ap("foo", "allow", `rules:
- from:
  - source: {ipBlocks: [10.0.0.0/8], notRemoteIpBlocks: ["fd00::/8"]}
  to:
  - operation: {paths: ["/api/*", "*.json", "/v/{*}/x"], hosts: ["web.*", "*.svc"], methods: [GET], ports: ["8080"]}
  when:
  - {key: "request.headers[x-env]", values: ["prod*", "*-eu", "stage"]}
  - {key: connection.sni, notValues: ["evil.*"]}
  - {key: destination.ip, values: ["10.0.1.0/24"]}
- from:
  - source: {principals: ["*/sa/sleep", "cluster.local/ns/foo/*"], namespaces: ["f*"]}
- from:
  - source: {requestPrincipals: ["iss/*"]}
  when:
  - {key: "request.auth.claims[groups]", values: ["admin"]}
  - {key: "request.auth.claims[nested][role]", values: ["*"]}`) +
		ap("foo", "deny", `action: DENY
rules:
- from:
  - source: {notIpBlocks: [10.0.0.0/8], remoteIpBlocks: [203.0.113.0/24]}
- to:
  - operation: {notPaths: ["/api/*"], notHosts: ["*.svc"]}
  when:
  - {key: "request.headers[x-block]", values: ["*"]}`) +
		ap("foo", "audit", "action: AUDIT\nrules:\n- from:\n  - source: {ipBlocks: [10.0.0.0/8]}\n  when:\n  - {key: destination.ip, notValues: [10.0.1.0/24]}") +
		apAnn("foo", "dry", `istio.io/dry-run: "true"`, "action: DENY\nrules:\n- from:\n  - source: {remoteIpBlocks: [203.0.113.0/24]}")
	plain := compileCase(t, Mesh{}, policies, webPod())
	set := &Set{Pods: []*corev1.Pod{webPod()}, UserModules: map[string]string{"u.rego": "package meshguard.user\n\ndeny contains \"never\" if input.path == \"/never\"\n"}}
	if _, err := set.AddYAML(t.Name(), []byte(policies)); err != nil {
		t.Fatal(err)
	}
	user, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(c map[string]any) func(*Request) { return jwt(c) }
	rows := []struct {
		name string
		req  *Request
	}{
		{"plain", http()},
		{"matching ALLOW", http(path("/api/x"), host("web.foo"), hdr("x-env", "prod-1"), sni("web"))},
		{"empty source address", http(srcIP(""))},
		{"empty remote address", http(remote(""))},
		{"empty destination address", http(dstIP(""))},
		{"source address not an address", http(srcIP("not-an-ip"))},
		{"remote address not an address", http(remote("203.0.113.9, 1.2.3.4"))},
		{"destination address not an address", http(dstIP("::zz"))},
		{"zoned address", http(srcIP("fe80::1%eth0"))},
		{"no port", http(port(0))},
		{"odd SNI", http(sni("\n\x00é"))},
		{"odd principal", http(from("spiffe://"))},
		{"principal without spiffe", http(from("x/ns/foo/sa/sleep"))},
		{"newline in header", http(hdr("x-env", "prod\nx"), hdr("x-block", "\n"))},
		{"empty header", http(hdr("x-env", ""), hdr("x-block", ""))},
		{"invalid UTF-8 path", http(path("/api/\xff"))},
		{"empty path and host", http(path(""), host(""))},
		{"claims of other types", http(claims(map[string]any{"iss": 1, "sub": true, "groups": []any{1, nil, "admin"}, "nested": "x"}))},
		{"claims nested deeper", http(claims(map[string]any{"iss": "iss", "sub": "s", "groups": map[string]any{"a": 1}, "nested": map[string]any{"role": []any{map[string]any{}}}}))},
		{"claims null", http(claims(map[string]any{"iss": nil, "groups": nil, "nested": nil}))},
		{"tcp", http(tcp(), srcIP(""))},
	}
	same := func(t *testing.T, got, want Verdict, gerr, werr error) {
		t.Helper()
		if werr != nil || gerr != nil {
			t.Fatalf("errors: without user modules %v, with %v", werr, gerr)
		}
		if got.Allowed != want.Allowed || got.Status != want.Status || got.Action != want.Action || got.Policy != want.Policy || got.Rule != want.Rule {
			t.Errorf("with a user module %+v, without %+v", got, want)
		}
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			want, werr := plain.CheckRequest(context.Background(), r.req)
			got, gerr := user.CheckRequest(context.Background(), r.req)
			same(t, got, want, gerr, werr)
		})
	}
	// The same through decoding, as Envoy's CheckRequests arrive.
	xff := func(v string) map[string]string { return map[string]string{"x-forwarded-for": v} }
	noAddr := checkReq("", "", "", 0, "GET", "/api/x", nil)
	noAddr.Attributes.Source.Address, noAddr.Attributes.Destination.Address = nil, nil
	protos := []struct {
		name string
		req  *authv3.CheckRequest
	}{
		{"source not an address", checkReq("", "not-an-ip", "10.0.1.1", 8080, "GET", "/api/x", nil)},
		{"zoned source", checkReq("", "fe80::1%eth0", "10.0.1.1", 8080, "GET", "/api/x", nil)},
		{"destination not an address", checkReq("", "10.0.0.5", "::zz", 8080, "GET", "/api/x", nil)},
		{"X-Forwarded-For not an address", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/api/x", xff("garbage"))},
		{"X-Forwarded-For empty entries", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/api/x", xff(" , ,"))},
		{"X-Forwarded-For zoned", checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/api/x", xff("fe80::1%eth0"))},
		{"no addresses", noAddr},
	}
	for _, r := range protos {
		t.Run(r.name, func(t *testing.T) {
			want, werr := plain.Check(context.Background(), r.req)
			got, gerr := user.Check(context.Background(), r.req)
			same(t, got, want, gerr, werr)
		})
	}
}

// TestUserModuleOutputShape: a user output of the wrong shape is refused
// naming the user's module that defines it, not the generated module whose
// use of it fails to type-check.
func TestUserModuleOutputShape(t *testing.T) {
	const head = "package meshguard.user\n\n"
	cases := []struct {
		name, module, errPart string // errPart "": accepted
	}{
		{"deny contains", `deny contains "x" if input.path == "/x"`, ""},
		{"deny as a set", `deny := {"x"} if input.path == "/x"`, ""},
		{"deny as a set of any", `deny contains input.headers.x`, ""},
		{"response_headers by key", `response_headers["x-a"] := "b"`, ""},
		{"response_headers as an object", `response_headers := {"x-a": "b"}`, ""},
		{"deny boolean", `deny := true`, "deny"},
		{"deny string", `deny := "no"`, "deny"},
		{"deny array", `deny := ["no"]`, "deny"},
		{"deny of numbers", `deny contains 1 if true`, "deny"},
		{"deny an object", `deny["a"] := "b"`, "deny"},
		{"response_headers string", `response_headers := "x"`, "response_headers"},
		{"response_headers a set", `response_headers contains "x"`, "response_headers"},
		{"response_headers with a number value", `response_headers["x-a"] := 1`, "response_headers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(context.Background(), Mesh{}, &Set{UserModules: map[string]string{"ok.rego": head + "x := 1\n", "my.rego": head + c.module + "\n"}}, 1)
			if c.errPart == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "my.rego") || !strings.Contains(err.Error(), c.errPart) ||
				strings.Contains(err.Error(), generatedModuleName) {
				t.Fatalf("err = %v; want an error naming my.rego and %s, not the generated module", err, c.errPart)
			}
		})
	}
}

// TestUserModuleEvalTimeout: a user module that runs long is cut off at
// UserEvalTimeout, answered as an evaluation error (fail closed, or the
// --fail-open fallback) well within the call's deadline.
func TestUserModuleEvalTimeout(t *testing.T) {
	defer func(d time.Duration) { UserEvalTimeout = d }(UserEvalTimeout)
	UserEvalTimeout = 100 * time.Millisecond
	const slow = "package meshguard.user\n\ndeny contains \"x\" if {\n\tsome i in numbers.range(1, 3000000)\n\ti < 0\n}\n"
	s, err := Compile(context.Background(), Mesh{}, &Set{UserModules: map[string]string{"slow.rego": slow}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, err := s.CheckRequest(context.Background(), http())
	took := time.Since(start)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "user Rego modules") {
		t.Fatalf("verdict %+v, err %v; want a deadline error naming the user Rego modules", v, err)
	}
	if took > 2*time.Second {
		t.Errorf("evaluation returned after %v; want about %v", took, UserEvalTimeout)
	}
	// A caller's context that ended first is reported as the caller's.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.CheckRequest(ctx, http()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: err %v, want context.Canceled", err)
	}
}

// TestLoadDirSkipsRegoTests: an `opa test` file beside the user modules
// (*_test.rego, another package) is not a module of the policy directory
// (SkipRegoTestFile).
func TestLoadDirSkipsRegoTests(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"tenant.rego":      tenantModule,
		"tenant_test.rego": "package meshguard.user_test\n\nimport data.meshguard.user\n\ntest_evil if \"tenant not allowed\" in user.deny with input as {\"headers\": {\"x-tenant\": \"ZXZpbA==\"}}\n",
		"Upper_Test.REGO":  "package meshguard.user_test\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, _, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.UserModules) != 1 || set.UserModules["tenant.rego"] == "" {
		t.Fatalf("user modules %v; want tenant.rego alone", keysOf(set.UserModules))
	}
	if _, err := Compile(context.Background(), Mesh{}, set, 1); err != nil {
		t.Fatal(err)
	}
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
