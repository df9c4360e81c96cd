package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The policy loader decodes with the decoder `meshguard validate` uses
// (internal/manifest): duplicate keys are errors naming key and line, and
// `kubectl get -o yaml` lists (List, AuthorizationPolicyList) are expanded.
func TestAddYAMLSharesTheManifestDecoder(t *testing.T) {
	list := `apiVersion: security.istio.io/v1
kind: AuthorizationPolicyList
items:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: a, namespace: foo}
  spec: {action: DENY, rules: [{}]}
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: b, namespace: foo}
  spec: {}
`
	set := &Set{}
	if _, err := set.AddYAML("list.yaml", []byte(list)); err != nil {
		t.Fatal(err)
	}
	if len(set.AuthorizationPolicies) != 2 {
		t.Fatalf("items loaded: %d, want 2", len(set.AuthorizationPolicies))
	}
	dup := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: DENY\n  action: ALLOW\n"
	_, err := (&Set{}).AddYAML("dup.yaml", []byte(dup))
	if err == nil || !strings.Contains(err.Error(), `"action"`) || !strings.Contains(err.Error(), "line") {
		t.Fatalf("duplicate key: %v", err)
	}
	bad := strings.Replace(list, "  spec: {}\n", "  spec: {}\n  spec: {action: DENY}\n", 1)
	if _, err := (&Set{}).AddYAML("list.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `"spec"`) || !strings.Contains(err.Error(), "line 12") {
		t.Fatalf("duplicate key inside a list item: %v", err)
	}
}

// Two objects of one kind with the same namespace and name in a policy
// directory: the API server holds one object per name (`kubectl apply -f
// DIR` leaves the last one), but both were loaded and enforced, so the
// directory allowed what either ALLOW allowed. The load fails naming both
// files, on the first load and on a memoized reload alike.
func TestLoadDirRefusesTheSameNameTwice(t *testing.T) {
	dir := t.TempDir()
	ap := func(sa string) string {
		return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"cluster.local/ns/foo/sa/" + sa + "\"]}\n"
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", ap("a"))
	l := new(DirLoader)
	if _, _, err := l.Load(dir); err != nil {
		t.Fatal(err)
	}
	write("b.yaml", ap("b"))
	for range 2 { // the second load reuses a.yaml's decoded objects
		set, _, err := l.Load(dir)
		if err == nil || !strings.Contains(err.Error(), "AuthorizationPolicy foo/p") || !strings.Contains(err.Error(), "a.yaml") || !strings.Contains(err.Error(), "b.yaml") {
			t.Fatalf("Load = %v, %v; want an error naming AuthorizationPolicy foo/p, a.yaml and b.yaml", set, err)
		}
	}
	// In one file, and with the namespace defaulted.
	write("b.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: default}\n")
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Load(dir); err == nil || !strings.Contains(err.Error(), "PeerAuthentication default/x") {
		t.Fatalf("Load: %v; want an error naming PeerAuthentication default/x", err)
	}
}
