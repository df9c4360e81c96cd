package binary

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/cluster"
)

// goListDeps returns every package the given package links, as `go list -deps` prints them.
func goListDeps(t *testing.T, pkg string, flags ...string) []string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"list", "-deps"}, flags...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// testCode is what the product binary must never link: the testing package,
// controller-runtime's envtest, and meshguard's own test/ packages.
func testCode(dep string) bool {
	return dep == "testing" || strings.Contains(dep, "/envtest") || strings.HasPrefix(dep, "github.com/meshguard/meshguard/test/")
}

func matching(deps []string, bad func(string) bool) []string {
	var out []string
	for _, d := range deps {
		if bad(d) {
			out = append(out, d)
		}
	}
	return out
}

// TestProductBinaryLinksNoTestCode keeps test code out of ./cmd/meshguard:
// `meshguard dev` (which needs envtest) exists only with -tags dev.
func TestProductBinaryLinksNoTestCode(t *testing.T) {
	if bad := matching(goListDeps(t, "./cmd/meshguard"), testCode); len(bad) > 0 {
		t.Errorf("./cmd/meshguard links test code: %v", bad)
	}
	// The check itself can fail: the -tags dev build does link the harness.
	if bad := matching(goListDeps(t, "./cmd/meshguard", "-tags", DevTag), testCode); len(bad) == 0 {
		t.Errorf("-tags %s build links no test code: the check above cannot see test code", DevTag)
	}
}

// TestCertsImportsNoWebhookAdapters keeps certs a leaf below the admission
// adapters: it needs only the webhook configuration names (package webhookconfig).
func TestCertsImportsNoWebhookAdapters(t *testing.T) {
	adapter := func(dep string) bool {
		for _, p := range []string{"webhook", "injector", "validation"} {
			if dep == "github.com/meshguard/meshguard/"+p || strings.HasPrefix(dep, "github.com/meshguard/meshguard/"+p+"/") {
				return true
			}
		}
		return false
	}
	if bad := matching(goListDeps(t, "./certs"), adapter); len(bad) > 0 {
		t.Errorf("./certs imports %v", bad)
	}
}
