package authz

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/policy"
)

// A change of the mesh config file (trustDomainAliases) reaches the verdicts
// without a restart: Istio matches a policy principal in the trust domain
// also under each alias (pilot/pkg/security/trustdomain bundle.go).
func TestMeshConfigChangeReachesVerdicts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-sleep, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"cluster.local/ns/foo/sa/sleep\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mesh := filepath.Join(dir, "mesh", "mesh")
	if err := os.MkdirAll(filepath.Dir(mesh), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		tmp := mesh + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, mesh); err != nil {
			t.Fatal(err)
		}
	}
	write("trustDomain: cluster.local\n")
	o := DefaultOptions()
	o.MeshConfigPath = mesh
	o.Debounce = 10 * time.Millisecond
	rl := &Reloader{Engine: policy.NewEngine(o.Mesh()), Load: DirLoader(dir, "", logr.Discard()), Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{}, 1)
	go rl.Run(ctx, trigger, o.Debounce)
	go func() { _ = watchMeshConfig(ctx, o, rl, trigger) }()
	req := &policy.Request{Namespace: "foo", Principal: "spiffe://old.td/ns/foo/sa/sleep", Method: "GET", Path: "/"}
	allowed := func() bool {
		s := rl.Engine.Snapshot()
		if s == nil {
			return false
		}
		v, err := s.CheckRequest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return v.Allowed
	}
	deadline := time.Now().Add(10 * time.Second)
	for rl.Engine.Snapshot() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if allowed() {
		t.Fatal("old.td principal allowed without an alias")
	}
	for !allowed() {
		if time.Now().After(deadline) {
			t.Fatal("the trustDomainAliases change did not reach the verdict")
		}
		// Rewritten until the watch (registered asynchronously) sees it.
		write("trustDomain: cluster.local\ntrustDomainAliases: [old.td]\n")
		time.Sleep(50 * time.Millisecond)
	}
}
