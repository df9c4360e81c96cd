package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A ConfigMap volume: p.yaml -> ..data/p.yaml, ..data -> ..2026_01_01/.
func TestLoadDirFollowsConfigMapLinks(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_01_01")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "p.yaml"), []byte(ap("foo", "all", "rules: [{}]")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "p.yaml"), filepath.Join(dir, "p.yaml")); err != nil {
		t.Fatal(err)
	}
	set, _, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if len(set.AuthorizationPolicies) != 1 {
		t.Fatalf("got %d policies, want 1 (read through the ..data link)", len(set.AuthorizationPolicies))
	}
}

func TestLoadDirRefusesLinksOutside(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte(ap("foo", "all", "rules: [{}]")), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "p.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "outside the directory") {
		t.Fatalf("LoadDir error = %v, want a link outside the directory refused", err)
	}
	// Relative escape too.
	dir2 := t.TempDir()
	if err := os.Symlink(filepath.Join("..", filepath.Base(filepath.Dir(outside)), "secret.yaml"), filepath.Join(dir2, "q.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDir(dir2); err == nil || !strings.Contains(err.Error(), "outside the directory") {
		t.Fatalf("LoadDir (relative link) error = %v, want refused", err)
	}
}

// TestLoadDirSymlinkedRoot: a --policy-dir that is itself a symlink loads
// the directory it points to (walking the link found no file: every policy,
// DENYs included, was missing).
func TestLoadDirSymlinkedRoot(t *testing.T) {
	real := t.TempDir()
	if err := os.WriteFile(filepath.Join(real, "p.yaml"), []byte(ap("foo", "deny", "action: DENY\nrules: [{}]")), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "policies")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	set, _, err := LoadDir(link)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.AuthorizationPolicies) != 1 {
		t.Fatalf("got %d policies through the linked directory, want 1", len(set.AuthorizationPolicies))
	}
}
