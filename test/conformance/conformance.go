// Package conformance locates the upstream conformance data the tests run
// against: Istio's own test data, kept beside the repository in
// ../shared/conformance/<name> (not part of the product binary).
package conformance

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns <repo>/../shared/conformance/<name>, found by walking up from
// the test's directory to go.mod. A missing corpus fails the test: make test
// must never pass without it.
func Dir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("conformance: go.mod not found above the test directory")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "conformance", name)
	if st, err := os.Stat(c); err != nil || !st.IsDir() {
		t.Fatalf("conformance corpus %s is missing (%v): it must exist for make test", c, err)
	}
	return c
}
