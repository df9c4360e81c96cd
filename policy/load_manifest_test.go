package policy

import (
	"fmt"
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

// A policy file whose text the decoder would change: invalid UTF-8 (the
// JSON decoder silently reads it as U+FFFD, the YAML parser refuses it
// naming no field) or a JSON escape of a lone UTF-16 surrogate (read as
// U+FFFD too). The generated Rego would then match a value the file does
// not hold; the load fails naming the file and the field instead.
func TestLoadDirRefusesTextTheDecoderWouldChange(t *testing.T) {
	const apJSON = `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"p","namespace":"foo"},"spec":{"action":"DENY","rules":[%s]}}`
	const apYAML = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - %s\n"
	for _, c := range []struct {
		name, file, doc, field string // field "": accepted
	}{
		{"JSON path", "p.json", fmt.Sprintf(apJSON, `{"to":[{"operation":{"paths":["/admin`+"\xff"+`"]}}]}`), "spec.rules[0].to[0].operation.paths[0]"},
		{"JSON principal", "p.json", fmt.Sprintf(apJSON, `{"from":[{"source":{"principals":["cluster.local/ns/foo/sa/`+"\xc3"+`"]}}]}`), "spec.rules[0].from[0].source.principals[0]"},
		{"JSON header value, lone surrogate escape", "p.json", fmt.Sprintf(apJSON, `{"when":[{"key":"request.headers[x]","values":["a\ud800"]}]}`), "spec.rules[0].when[0].values[0]"},
		{"JSON lone low surrogate escape", "p.json", fmt.Sprintf(apJSON, `{"to":[{"operation":{"paths":["/\udc00"]}}]}`), "spec.rules[0].to[0].operation.paths[0]"},
		{"YAML path", "p.yaml", fmt.Sprintf(apYAML, `to: [{operation: {paths: ["/admin`+"\xff"+`"]}}]`), "spec.rules[0].to[0].operation.paths[0]"},
		{"YAML header value", "p.yaml", fmt.Sprintf(apYAML, "when: [{key: \"request.headers[x]\", values: [a\xed\xa0\x80]}]"), "spec.rules[0].when[0].values[0]"},
		{"JSON surrogate pair", "p.json", fmt.Sprintf(apJSON, `{"to":[{"operation":{"paths":["/\ud83d\ude00"]}}]}`), ""},
		{"JSON escaped backslash before u", "p.json", fmt.Sprintf(apJSON, `{"to":[{"operation":{"paths":["/\\ud800"]}}]}`), ""},
		{"YAML literal backslash-u text", "p.yaml", fmt.Sprintf(apYAML, `to: [{operation: {paths: ['/\ud800']}}]`), ""},
		{"U+FFFD written in the file", "p.json", fmt.Sprintf(apJSON, `{"to":[{"operation":{"paths":["/`+"\uFFFD"+`", "/\ufffd"]}}]}`), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			set, _, err := LoadDir(dir)
			if c.field == "" {
				if err != nil || len(set.AuthorizationPolicies) != 1 {
					t.Fatalf("LoadDir: %v; want the policy loaded", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.file) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("LoadDir = %v; want an error naming %s and %s", err, c.file, c.field)
			}
			// authz check's input (AddYAML) too.
			if _, err := (&Set{}).AddYAML(c.file, []byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("AddYAML = %v; want an error naming %s", err, c.field)
			}
		})
	}
}
