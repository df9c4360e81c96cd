package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserModuleCannotReplaceGeneratedModule: a user module whose path in
// the policy directory is the one the generated module was compiled under
// (meshguard/authz.rego) had replaced it in the compiler's modules: the
// update was accepted and every check then failed "undefined result". The
// generated module's name is one no directory path can take, so the user
// module is one more module beside it, and the policies still decide.
func TestUserModuleCannotReplaceGeneratedModule(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "meshguard"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{
		filepath.Join("meshguard", "authz.rego"): "package meshguard.user\n\ndeny contains \"never\" if input.path == \"/never\"\n",
		"p.yaml":                                 ap("foo", "deny", "action: DENY\nrules:\n- to:\n  - operation: {paths: [\"/admin\"]}"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, _, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	set.Pods = append(set.Pods, webPod())
	s, err := NewEngine(Mesh{}).Update(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path    string
		allowed bool
	}{{"/", true}, {"/admin", false}, {"/never", false}} {
		v, err := s.CheckRequest(context.Background(), http(path(c.path)))
		if err != nil || v.Allowed != c.allowed {
			t.Errorf("%s: verdict %+v, err %v; want allowed %v", c.path, v, err, c.allowed)
		}
	}
}

// TestUserModuleNamedAsGeneratedModuleRefused: a Set built by other means
// than a directory (any key is possible) with a user module under the
// generated module's name is refused, naming it, never compiled in its place.
func TestUserModuleNamedAsGeneratedModuleRefused(t *testing.T) {
	set := &Set{UserModules: map[string]string{generatedModuleName: "package meshguard.user\n"}}
	_, err := Compile(context.Background(), Mesh{}, set, 1)
	if err == nil || !strings.Contains(err.Error(), generatedModuleName) {
		t.Fatalf("err = %v; want a refusal naming %s", err, generatedModuleName)
	}
}
