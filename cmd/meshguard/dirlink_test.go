package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// denyAdmin is a DENY of /admin* for every workload of foo.
const denyAdmin = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
`

// TestDirectoryLinksNeverSkipped: a subdirectory that is a symlink was
// read as a file with no matching extension and dropped, so a DENY in it
// was never enforced: `authz check --policy-dir` allowed /admin/users
// ("no ALLOW policy for workload") where the same file copied in denied it
// (internal/dirwalk.Files). A link inside the directory is
// walked; one elsewhere rejects the load, naming it; `validate -f DIR`, as
// kubectl apply -f DIR, does not follow it, and says so instead of
// skipping it.
func TestDirectoryLinksNeverSkipped(t *testing.T) {
	layout := func(t *testing.T, target string) string {
		t.Helper()
		base := t.TempDir()
		pol := filepath.Join(base, "pol")
		for _, f := range []struct{ path, text string }{
			{filepath.Join(pol, "pod.yaml"), fooPod},
			{filepath.Join(base, "shared", "deny.yaml"), denyAdmin},
			{filepath.Join(pol, ".shared", "deny.yaml"), denyAdmin},
		} {
			if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(target, filepath.Join(pol, "shared")); err != nil {
			t.Fatal(err)
		}
		return pol
	}
	req := regressionRequest("", "/admin/users", nil)

	t.Run("policy dir: link inside walked, its DENY enforced", func(t *testing.T) {
		pol := layout(t, ".shared")
		out, err := runAuthzCheck(t, req, "--policy-dir", pol, "--request", "-", "--explain")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Allowed bool `json:"allowed"`
			Explain struct {
				Decision struct{ Action, Policy string } `json:"decision"`
			} `json:"explain"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if got.Allowed || got.Explain.Decision.Action != "DENY" || got.Explain.Decision.Policy != "foo/deny-admin" {
			t.Errorf("GET /admin/users: %s; want denied by foo/deny-admin (in the linked directory)", out)
		}
	})
	t.Run("policy dir: link elsewhere rejects the load, naming it", func(t *testing.T) {
		pol := layout(t, filepath.Join("..", "shared"))
		_, err := runAuthzCheck(t, req, "--policy-dir", pol, "--request", "-")
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, filepath.Join("pol", "shared")+": symlink target") {
			t.Fatalf("err = %v, want exit 2 naming the link pol/shared", err)
		}
	})
	t.Run("validate -f DIR: a directory link is an error naming it", func(t *testing.T) {
		pol := layout(t, filepath.Join("..", "shared"))
		var out, errOut strings.Builder
		code := runValidate(context.Background(), validateOptions{files: []string{pol}, output: "text", namespace: "default"}, strings.NewReader(""), &out, &errOut)
		if all := out.String() + errOut.String(); code != 2 || !strings.Contains(all, filepath.Join("pol", "shared")+": a link to the directory") {
			t.Errorf("exit %d, output %q; want exit 2 naming the link pol/shared", code, all)
		}
	})
}
