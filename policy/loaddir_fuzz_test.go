package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// fuzzDirFiles are the files FuzzLoadDir writes: YAML, JSON and a
// subdirectory as authz serve reads them, a user module and a file named
// as a Rego test (a module when of package meshguard.user, else skipped).
var fuzzDirFiles = []string{"a.yaml", filepath.Join("sub", "b.yml"), "c.json", "user.rego", "user_test.rego"}

// FuzzLoadDir loads a directory of small fuzzed files as authz serve
// loads its policy directory (LoadDir, then the same DirLoader again, as
// a reload reuses the documents it decoded): no panic; an error names the
// file it is about; and the reload gives what the first load gave (the
// document memo changes the cost, never the result).
func FuzzLoadDir(f *testing.F) {
	f.Add(fuzzPolicies, "", "", "", "")
	f.Add("kind: AuthorizationPolicy\napiVersion: security.istio.io/v1\nmetadata: {name: x, namespace: a}\nspec: {action: DENY}\n",
		"kind: AuthorizationPolicy\napiVersion: security.istio.io/v1\nmetadata: {name: x, namespace: a}\nspec: {}\n", "", "", "")
	f.Add("a: 1\na: 2\n", "---\n---\n", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n"}}`, "package meshguard.user\n", "not rego")
	f.Add("kind: PeerAuthentication\napiVersion: security.istio.io/v1beta1\nmetadata: {name: p, namespace: n}\nspec: {mtls: {mode: BOGUS}}\n", "", "[1,2]", "", "")
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: w}\nspec:\n  rules: [{when: [{key: request.headers[x], values: [a]}]}]\n  provider: {name: x}\n", "\t- bad indent", "{", "", "")
	f.Add("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: b}}]\n", "", "null", "", "")
	// A test-named file of the user package is a module; of another
	// package, an `opa test` file skipped.
	f.Add("", "", "", "", "package meshguard.user\ndeny contains \"x\" if true\n")
	f.Add("", "", "", "package meshguard.user\n", "package meshguard.user_test\ntest_x if true\n")
	f.Fuzz(func(t *testing.T, a, b, c, rego, regoTest string) {
		contents := []string{a, b, c, rego, regoTest}
		total := 0
		for _, s := range contents {
			total += len(s)
		}
		if total > 8<<10 {
			return // small files: the per-document rules, not the size limits
		}
		dir := t.TempDir()
		for i, name := range fuzzDirFiles {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(contents[i]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var l DirLoader
		set, warnings, err := l.Load(dir)
		if err != nil {
			named := false
			for _, name := range fuzzDirFiles {
				named = named || strings.Contains(err.Error(), name)
			}
			if !named {
				t.Fatalf("error names no file: %v", err)
			}
		}
		set2, warnings2, err2 := l.Load(dir)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("reload: %v, first load: %v", err2, err)
		}
		if err != nil {
			return
		}
		// A *_test.rego file is a module when its package is the user
		// package (its denies apply), else an `opa test` file left out.
		// Read here with OPA's parser, not by the rule under test.
		m, perr := ast.ParseModuleWithOpts("user_test.rego", regoTest, ast.ParserOptions{RegoVersion: ast.RegoV1})
		userPackage := perr == nil && m != nil && m.Package.Path.String() == "data.meshguard.user"
		if _, loaded := set.UserModules["user_test.rego"]; loaded != userPackage {
			t.Fatalf("user_test.rego loaded as a module: %v, want %v (package meshguard.user: %v, parse error: %v)", loaded, userPackage, userPackage, perr)
		}
		if set.count() != set2.count() || !reflect.DeepEqual(set.UserModules, set2.UserModules) || !reflect.DeepEqual(warnings, warnings2) {
			t.Fatalf("reload differs: %+v %q, first load %+v %q", set2.count(), warnings2, set.count(), warnings)
		}
		for i := range set.AuthorizationPolicies {
			if !reflect.DeepEqual(set.AuthorizationPolicies[i], set2.AuthorizationPolicies[i]) {
				t.Fatalf("reload: AuthorizationPolicy %d differs", i)
			}
		}
		for i := range set.PeerAuthentications {
			if !reflect.DeepEqual(set.PeerAuthentications[i], set2.PeerAuthentications[i]) {
				t.Fatalf("reload: PeerAuthentication %d differs", i)
			}
		}
	})
}
