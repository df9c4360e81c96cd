package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// regressionRequest is an mTLS (or plaintext, principal "") request to the foo pod 10.0.1.1.
func regressionRequest(principal, path string, headers map[string]string) string {
	h, _ := json.Marshal(headers)
	return `{"attributes": {
  "source": {"principal": "` + principal + `", "address": {"socketAddress": {"address": "10.0.0.5", "portValue": 40000}}},
  "destination": {"address": {"socketAddress": {"address": "10.0.1.1", "portValue": 8080}}},
  "request": {"http": {"method": "GET", "path": "` + path + `", "host": "web.foo", "headers": ` + string(h) + `}}}}`
}

const fooPod = `apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: foo, labels: {app: web}}
status: {podIP: 10.0.1.1}
---
`

func writePolicyDir(t *testing.T, docs string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(fooPod+docs), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Regression examples (PeerAuthentication precedence, trust-domain aliases,
// path templates, header case) through `meshguard authz check`, with Istio's
// verdicts; policy/regression_test.go has the same cases in-process.
func TestAuthzCheckRegressionExamples(t *testing.T) {
	const paPrecedence = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-0, namespace: foo, creationTimestamp: "2024-01-01T00:00:00Z"}
spec: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-1, namespace: foo, creationTimestamp: "2024-02-01T00:00:00Z"}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-foo, namespace: foo}
spec:
  action: DENY
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/*"]}}]
`
	const aliasAllow = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-foo, namespace: foo}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/*"]}}]
`
	const blockSecrets = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: block-secrets, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/{**}/secret"]}}]
`
	const denyEvil = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-evil, namespace: foo}
spec:
  action: DENY
  rules:
  - when: [{key: "request.headers[X-Evil]", values: ["*"]}]
`
	cases := []struct {
		name, policies, request string
		extra                   []string
		allowed                 bool
		policy                  string
	}{
		{"PA precedence: DENY still matches", paPrecedence, regressionRequest("spiffe://cluster.local/ns/foo/sa/sleep", "/", nil), nil, false, "foo/deny-foo"},
		{"trust-domain alias does not widen a prefix principal", aliasAllow, regressionRequest("spiffe://other.td/ns/foo/sa/sleep", "/", nil),
			[]string{"--trust-domain-aliases", "other.td"}, false, ""},
		{"path template: GET / allowed", blockSecrets, regressionRequest("", "/", nil), nil, true, ""},
		{"path template: /healthz allowed", blockSecrets, regressionRequest("", "/healthz", nil), nil, true, ""},
		{"path template: /admin/a/secret denied", blockSecrets, regressionRequest("", "/admin/a/secret", nil), nil, false, "foo/block-secrets"},
		{"upper-case header name denied", denyEvil, regressionRequest("", "/", map[string]string{"X-Evil": "1"}), nil, false, "foo/deny-evil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writePolicyDir(t, c.policies)
			out, err := runAuthzCheck(t, c.request, append([]string{"--policy-dir", dir, "--request", "-"}, c.extra...)...)
			if err != nil {
				t.Fatal(err)
			}
			var v struct {
				Allowed bool   `json:"allowed"`
				Policy  string `json:"policy"`
				Reason  string `json:"reason"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if v.Allowed != c.allowed || v.Policy != c.policy {
				t.Errorf("allowed=%v policy=%q (%s), want allowed=%v policy=%q", v.Allowed, v.Policy, v.Reason, c.allowed, c.policy)
			}
		})
	}
}

// Typos never change meaning: `authz check` rejects what `meshguard validate` rejects.
func TestAuthzCheckRejectsTypos(t *testing.T) {
	typos := map[string]string{
		"principal": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: foo}
spec:
  rules: [{from: [{source: {principal: ["cluster.local/ns/foo/sa/sleep"]}}]}]
`,
		"pathz": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: foo}
spec:
  rules: [{to: [{operation: {pathz: ["/admin"]}}]}]
`,
		"unknown when key": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: foo}
spec:
  action: DENY
  rules: [{when: [{key: request.bogus, values: ["x"]}]}]
`,
		"mtls.mod": `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p, namespace: foo}
spec: {mtls: {mod: STRICT}}
`,
	}
	for name, doc := range typos {
		t.Run(name, func(t *testing.T) {
			dir := writePolicyDir(t, doc)
			_, err := runAuthzCheck(t, regressionRequest("", "/", nil), "--policy-dir", dir, "--request", "-")
			var ee exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "rejected as `meshguard validate` rejects it") {
				t.Fatalf("err = %v, want exit 2 with the validation rejection", err)
			}
			// and `meshguard validate` rejects the same file.
			cmd := newRootCmd()
			cmd.SetArgs([]string{"validate", "-f", filepath.Join(dir, "p.yaml")})
			cmd.SetOut(new(strings.Builder))
			cmd.SetErr(new(strings.Builder))
			if err := cmd.Execute(); err == nil {
				t.Errorf("meshguard validate accepted what authz check rejects")
			}
		})
	}
}

func TestAuthzCheckExplain(t *testing.T) {
	dir := writePolicyDir(t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns-strict, namespace: foo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-all, namespace: foo}
spec:
  action: AUDIT
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny, namespace: foo, annotations: {istio.io/dry-run: "true"}}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [POST]}}]}, {}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: foo}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: foo}
spec:
  rules:
  - {from: [{source: {principals: ["cluster.local/ns/bar/*"]}}]}
  - {from: [{source: {namespaces: ["foo"]}}]}
`)
	out, err := runAuthzCheck(t, regressionRequest("spiffe://cluster.local/ns/foo/sa/sleep", "/", nil), "--policy-dir", dir, "--request", "-", "--explain")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Allowed bool `json:"allowed"`
		Explain struct {
			Decision struct {
				Action, Policy string
				Rule           *int
			} `json:"decision"`
			Audit, DryRunDeny, Custom []struct {
				Policy string
				Rule   int
			}
			PeerAuthentication struct{ Mode, Policy string } `json:"peerAuthentication"`
		} `json:"explain"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	e := got.Explain
	if !got.Allowed || e.Decision.Action != "ALLOW" || e.Decision.Policy != "foo/allow-sleep" || e.Decision.Rule == nil || *e.Decision.Rule != 1 {
		t.Errorf("decision %+v, want ALLOW by foo/allow-sleep rule 1 (%s)", e.Decision, out)
	}
	if len(e.Audit) != 1 || e.Audit[0].Policy != "foo/audit-all" {
		t.Errorf("audit %+v, want foo/audit-all", e.Audit)
	}
	if len(e.DryRunDeny) != 1 || e.DryRunDeny[0].Policy != "foo/dry-deny" || e.DryRunDeny[0].Rule != 1 {
		t.Errorf("dryRunDeny %+v, want foo/dry-deny rule 1", e.DryRunDeny)
	}
	if len(e.Custom) != 1 || e.Custom[0].Policy != "foo/ext" {
		t.Errorf("custom %+v, want foo/ext", e.Custom)
	}
	if e.PeerAuthentication.Mode != "STRICT" || e.PeerAuthentication.Policy != "foo/ns-strict" {
		t.Errorf("peerAuthentication %+v, want STRICT from foo/ns-strict", e.PeerAuthentication)
	}
	// "rule" is the spec.rules index, 0 included; absent when no rule decided.
	for _, tc := range []struct {
		ns   string
		rule *int
	}{{"bar", new(0)}, {"baz", nil}} {
		out, err := runAuthzCheck(t, regressionRequest("spiffe://cluster.local/ns/"+tc.ns+"/sa/sleep", "/", nil), "--policy-dir", dir, "--request", "-", "--explain")
		if err != nil {
			t.Fatal(err)
		}
		got.Explain.Decision.Rule = nil
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if r := got.Explain.Decision.Rule; (r == nil) != (tc.rule == nil) || r != nil && *r != *tc.rule {
			t.Errorf("from ns %s: decision %s, want rule %v", tc.ns, out, tc.rule)
		}
	}
}

// A policy file named as --policy-dir is refused (exit 2, naming it), not
// read as an empty directory: a DENY-all policy given so had allowed every
// request (internal/dirwalk.Files).
func TestAuthzCheckPolicyDirMustBeADirectory(t *testing.T) {
	dir := writePolicyDir(t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: foo}
spec: {action: DENY, rules: [{}]}
`)
	file := filepath.Join(dir, "p.yaml")
	_, err := runAuthzCheck(t, regressionRequest("", "/", nil), "--policy-dir", file, "--request", "-")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "not a directory") {
		t.Fatalf("err = %v, want exit 2 saying %s is not a directory", err, file)
	}
}
