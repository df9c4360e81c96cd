package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

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

// A --policy-dir reload compiles only the shards whose namespaces changed
// (policy.CompileNext through Engine.UpdateFrom) and logs how many.
func TestDirReloadCompilesOnlyChangedShards(t *testing.T) {
	dir := t.TempDir()
	write := func(name, ns, principal string) {
		t.Helper()
		doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"" + principal + "\"]}\n"
		if err := os.WriteFile(filepath.Join(dir, ns+".yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nss := []string{"alpha", "beta", "gamma", "delta"}
	for _, ns := range nss {
		write("allow-sleep", ns, "cluster.local/ns/"+ns+"/sa/sleep")
	}
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{})
	rl := &Reloader{Engine: policy.NewEngine(policy.Mesh{}), Load: DirLoader(dir, "", logr.Discard()), Log: log}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := rl.Engine.Snapshot()
	if first.Shards < 2 || first.Compiled != first.Shards {
		t.Fatalf("first load: %d of %d shards compiled; want all of several", first.Compiled, first.Shards)
	}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := rl.Engine.Snapshot(); s.Compiled != 0 {
		t.Fatalf("unchanged directory: %d shards compiled, want 0", s.Compiled)
	}
	write("allow-api", "beta", "cluster.local/ns/beta/sa/api")
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := rl.Engine.Snapshot()
	if s.Compiled != 1 || s.Shards != first.Shards {
		t.Fatalf("one file changed: %d of %d shards compiled, want 1", s.Compiled, s.Shards)
	}
	v, err := s.CheckRequest(context.Background(), &policy.Request{Namespace: "beta", Principal: "spiffe://cluster.local/ns/beta/sa/api", Method: "GET", Path: "/"})
	if err != nil || !v.Allowed || v.Policy != "beta/allow-api" {
		t.Fatalf("beta after the change: %+v %v, want allowed by beta/allow-api", v, err)
	}
	if !strings.Contains(logs.String(), `"shardsCompiled"=1`) {
		t.Fatalf("the reload log does not say one shard was compiled:\n%s", logs.String())
	}
}

// A user Rego module is read with the bound of every other input path
// (policy.ReadFileBounded, manifest.DefaultMaxInputBytes).
func TestUserRegoReadBounded(t *testing.T) {
	dir := t.TempDir()
	big := "package meshguard.user\n# " + strings.Repeat("x", 9<<20) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "big.rego"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRego(dir, logr.Discard()); err == nil || !strings.Contains(err.Error(), "big.rego") {
		t.Errorf("loadRego of a 9 MiB module: %v, want a size error naming the file", err)
	}
}

// A module of the policy dir under rego/ and one of --authz-rego-dir with
// the same relative name had the same key: the policy dir's was replaced
// without a word, and a deny rule in it went unenforced. The load fails,
// naming both.
func TestUserRegoNamesDoNotCollide(t *testing.T) {
	policyDir, regoDir := t.TempDir(), t.TempDir()
	write := func(p, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(policyDir, "rego", "a.rego"), "package meshguard.user\ndeny contains \"from the policy dir\" if true\n")
	write(filepath.Join(regoDir, "a.rego"), "package meshguard.user\nresponse_headers := {}\n")
	set, err := DirLoader(policyDir, regoDir, logr.Discard())(context.Background())
	if err == nil {
		t.Fatalf("loaded modules %v; want an error naming both rego/a.rego files", set.UserModules)
	}
	if !strings.Contains(err.Error(), filepath.Join(regoDir, "a.rego")) || !strings.Contains(err.Error(), filepath.Join("rego", "a.rego")) {
		t.Errorf("error %q does not name both modules", err)
	}
	// --authz-rego-dir being the policy dir's rego/: the same modules.
	set, err = DirLoader(policyDir, filepath.Join(policyDir, "rego"), logr.Discard())(context.Background())
	if err != nil || len(set.UserModules) != 1 {
		t.Errorf("rego dir inside the policy dir: modules %v, %v; want rego/a.rego once", set, err)
	}
}

// An `opa test` file beside the user modules (*_test.rego, package
// meshguard.user_test) is not a module: it had rejected the whole update.
// It is skipped and logged; a *_test.rego of package meshguard.user is a
// module, as OPA's loader reads it (policy.SkipRegoTestFile, the policy
// dir's rule).
func TestUserRegoDirSkipsRegoTests(t *testing.T) {
	regoDir := t.TempDir()
	for name, src := range map[string]string{
		"tenant.rego":        "package meshguard.user\n\ndeny contains \"evil\" if input.headers[\"x-tenant\"] == \"evil\"\n",
		"tenant_test.rego":   "package meshguard.user_test\n\nimport data.meshguard.user\n\ntest_evil if \"evil\" in user.deny with input as {\"headers\": {\"x-tenant\": \"evil\"}}\n",
		"sub/More_TEST.Rego": "package meshguard.user_test\n",
		"ab_test.rego":       "package meshguard.user\n\ndeny contains \"blocked\" if input.path == \"/x\"\n",
	} {
		p := filepath.Join(regoDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logged []string
	log := funcr.New(func(_, args string) { logged = append(logged, args) }, funcr.Options{})
	set, err := DirLoader("", regoDir, log)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.UserModules) != 2 || set.UserModules["rego/tenant.rego"] == "" || set.UserModules["rego/ab_test.rego"] == "" {
		t.Fatalf("user modules %v; want rego/tenant.rego and rego/ab_test.rego", set.UserModules)
	}
	all := strings.Join(logged, "\n")
	for _, skipped := range []string{"tenant_test.rego", filepath.Join("sub", "More_TEST.Rego")} {
		if !strings.Contains(all, skipped) {
			t.Errorf("log %q does not name the skipped %s", all, skipped)
		}
	}
	if _, err := policy.NewEngine(policy.Mesh{}).Update(context.Background(), set); err != nil {
		t.Fatalf("update with the modules beside their test: %v", err)
	}
}
