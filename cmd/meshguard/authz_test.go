package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const authzTestPolicies = `apiVersion: security.istio.io/v1
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

func authzRequest(path string) string {
	return `{"attributes": {
  "source": {"address": {"socketAddress": {"address": "10.0.0.5", "portValue": 40000}}},
  "destination": {"address": {"socketAddress": {"address": "10.0.1.1", "portValue": 8080}}},
  "request": {"http": {"method": "GET", "path": "` + path + `", "host": "web.foo"}}}}`
}

func runAuthzCheck(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append([]string{"authz", "check"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func TestAuthzCheckCLI(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(authzTestPolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(t.TempDir(), "req.json")
	if err := os.WriteFile(reqFile, []byte(authzRequest("/admin/x")), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  map[string]any
	}{
		{"denied from file", "", []string{"--policy-dir", dir, "--request", reqFile},
			map[string]any{"allowed": false, "status": 403.0, "action": "DENY", "policy": "foo/deny-admin", "rule": 0.0, "reason": "denied by DENY policy"}},
		{"allowed from stdin", authzRequest("/index"), []string{"--policy-dir", dir, "--request", "-"},
			map[string]any{"allowed": true, "status": 200.0, "action": "NONE", "policy": "", "rule": -1.0, "reason": "no ALLOW policy for workload"}},
	}
	for _, c := range cases {
		out, err := runAuthzCheck(t, c.stdin, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: output %q: %v", c.name, out, err)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: keys = %v, want exactly %v", c.name, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", c.name, k, got[k], v)
			}
		}
	}
}

func TestAuthzCheckCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(authzTestPolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "p.yaml"), []byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {rules: 7}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, stdin, wantMsg string
		args                 []string
	}{
		{"missing policy dir", "", "--policy-dir is required", []string{"--request", "-"}},
		{"missing request", "", "--request is required", []string{"--policy-dir", dir}},
		{"not json", "nope", "not a protojson", []string{"--policy-dir", dir, "--request", "-"}},
		{"unknown field", `{"attributes": {"bogus": 1}}`, "not a protojson", []string{"--policy-dir", dir, "--request", "-"}},
		{"bad policy", authzRequest("/"), "p.yaml: document 0: rejected as `meshguard validate` rejects it", []string{"--policy-dir", bad, "--request", "-"}},
		{"missing file", "", "read request", []string{"--policy-dir", dir, "--request", filepath.Join(dir, "nope.json")}},
		{"bad flag value", authzRequest("/"), "--path-normalization", []string{"--policy-dir", dir, "--request", "-", "--path-normalization", "SLASHES"}},
	}
	for _, c := range cases {
		_, err := runAuthzCheck(t, c.stdin, c.args...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, c.wantMsg) {
			t.Errorf("%s: err = %v, want exit 2 with an error containing %q", c.name, err, c.wantMsg)
		}
	}
}

// rootDenyPolicyDir writes authzTestPolicies and a DENY of /private in
// namespace mesh-root, which is mesh-wide only if mesh-root is the root
// namespace, and returns the directory.
func rootDenyPolicyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	const rootDeny = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-private, namespace: mesh-root}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/private"]}
`
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(authzTestPolicies+"---\n"+rootDeny), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAuthzCheckMeshConfig: --mesh-config supplies the settings Istio takes
// from MeshConfig (here rootNamespace and pathNormalization); a flag given
// explicitly wins over the file.
func TestAuthzCheckMeshConfig(t *testing.T) {
	dir := rootDenyPolicyDir(t)
	mesh := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(mesh, []byte("rootNamespace: mesh-root\npathNormalization: {normalization: MERGE_SLASHES}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badMesh := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badMesh, []byte("rootNamespace: [x]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path  string
		args        []string
		wantAllowed bool
	}{
		{"root namespace from the mesh config", "/private", []string{"--mesh-config", mesh}, false},
		{"without it the policy is namespaced", "/private", nil, true},
		{"--root-namespace wins over the file", "/private", []string{"--mesh-config", mesh, "--root-namespace", "istio-system"}, true},
		{"MERGE_SLASHES from the mesh config", "//admin", []string{"--mesh-config", mesh}, false},
		{"BASE keeps double slashes", "//admin", nil, true},
		{"--path-normalization wins over the file", "//admin", []string{"--mesh-config", mesh, "--path-normalization", "BASE"}, true},
	}
	for _, c := range cases {
		out, err := runAuthzCheck(t, authzRequest(c.path), append([]string{"--policy-dir", dir, "--request", "-"}, c.args...)...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got struct{ Allowed bool }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: output %q: %v", c.name, out, err)
		}
		if got.Allowed != c.wantAllowed {
			t.Errorf("%s: allowed %v, want %v (%s)", c.name, got.Allowed, c.wantAllowed, out)
		}
	}
	_, err := runAuthzCheck(t, authzRequest("/"), "--policy-dir", dir, "--request", "-", "--mesh-config", badMesh)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "--mesh-config") {
		t.Errorf("bad mesh config: err = %v, want exit 2 naming --mesh-config", err)
	}
}

// TestAuthzCheckRequestBounded: the request is read up to the server's
// CheckRequest limit (4 MiB by default), then refused (exit 2), as the
// server refuses it.
func TestAuthzCheckRequestBounded(t *testing.T) {
	dir := t.TempDir()
	big := `{"attributes": {"request": {"http": {"path": "/` + strings.Repeat("a", 5<<20) + `"}}}}`
	_, err := runAuthzCheck(t, big, "--policy-dir", dir, "--request", "-")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "input too large") {
		t.Fatalf("err = %v, want exit 2 naming the size limit", err)
	}
}

// TestAuthzServeBadFlagExit2: `authz serve` refuses a bad flag value with
// exit status 2 naming the flag, as a missing --policy-dir and `authz
// check` (it exited 1 from the server's start).
func TestAuthzServeBadFlagExit2(t *testing.T) {
	cmd := newRootCmd()
	cmd.SetArgs([]string{"authz", "serve", "--policy-dir", t.TempDir(), "--authz-addr", "127.0.0.1:0", "--decision-log=loud"})
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	err := cmd.Execute()
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "--decision-log") {
		t.Fatalf("err = %v, want exit 2 naming --decision-log", err)
	}
}
