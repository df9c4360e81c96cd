package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/policy"
)

// A --policy-dir update with a typo `meshguard validate` rejects (here
// `principal` for `principals`, which would otherwise allow everything) is
// rejected as a whole; the last good snapshot keeps deciding.
func TestDirUpdateWithTypoKeepsLastGoodSnapshot(t *testing.T) {
	dir := t.TempDir()
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const head = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-sleep, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {"
	write(head + `principals: ["cluster.local/ns/foo/sa/sleep"]}` + "\n")
	rl := &Reloader{Engine: policy.NewEngine(policy.Mesh{}), Load: DirLoader(dir, "", logr.Discard()), Log: logr.Discard()}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	good := rl.Engine.Snapshot()
	other := &policy.Request{Namespace: "foo", Principal: "spiffe://cluster.local/ns/bar/sa/x", Method: "GET", Path: "/"}
	verdict := func() policy.Verdict {
		v, err := rl.Engine.Snapshot().CheckRequest(context.Background(), other)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if verdict().Allowed {
		t.Fatal("bar/x allowed by the good policy")
	}

	write(head + `principal: ["cluster.local/ns/foo/sa/sleep"]}` + "\n")
	err := rl.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "principal") {
		t.Fatalf("Reload = %v, want the unknown field rejected", err)
	}
	if rl.Engine.Snapshot() != good {
		t.Fatal("the rejected update replaced the snapshot")
	}
	if verdict().Allowed {
		t.Fatal("bar/x allowed after the rejected typo update")
	}
}
