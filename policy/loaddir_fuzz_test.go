package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fuzzDirFiles are the files FuzzLoadDir writes: YAML, JSON and a
// subdirectory as authz serve reads them, a user module and an `opa test`
// file LoadDir must skip.
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
		if _, ok := set.UserModules["user_test.rego"]; ok {
			t.Fatal("an opa test file was loaded as a module")
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
