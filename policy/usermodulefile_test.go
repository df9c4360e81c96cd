package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSkipRegoTestFile: the one rule both user module directories
// (--policy-dir, --authz-rego-dir) select *.rego files by. A file named as a
// Rego test is skipped only when its package is not meshguard.user: OPA's
// loader loads *_test.rego as modules, so a user module that happens to be
// named so keeps its denies.
func TestSkipRegoTestFile(t *testing.T) {
	cases := []struct {
		name, src string
		skip      bool
		errPart   string // non-empty: an error naming the file and this
	}{
		{"tenant.rego", "package meshguard.user\n", false, ""},
		{"other.rego", "package other\n", false, ""}, // refused at compile, as before
		{"broken.rego", "package", false, ""},        // refused at compile, as before
		{"tenant_test.rego", "package meshguard.user_test\n\ntest_x if true\n", true, ""},
		{"sub/More_TEST.Rego", "# a comment first\npackage meshguard.user_test\n", true, ""},
		{"lib_test.rego", "package helpers\n", true, ""},
		{"ab_test.rego", "package meshguard.user\n\ndeny contains \"blocked\" if input.path == \"/x\"\n", false, ""},
		{"AB_TEST.REGO", "# comment\npackage meshguard.user\n", false, ""},
		{"bad_test.rego", "package meshguard.user_test\n\ntest_x if {", false, "bad_test.rego"},
		{"empty_test.rego", "", false, "empty_test.rego"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			warning, err := SkipRegoTestFile(c.name, []byte(c.src))
			if c.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("SkipRegoTestFile = %q, %v; want an error naming %s", warning, err, c.errPart)
				}
				return
			}
			if err != nil || (warning != "") != c.skip || (c.skip && !strings.Contains(warning, c.name)) {
				t.Fatalf("SkipRegoTestFile = %q, %v; want skipped %v, a warning naming the file", warning, err, c.skip)
			}
		})
	}
}

// TestLoadDirLoadsUserModuleNamedAsTest: a *_test.rego file of package
// meshguard.user in the policy directory is a user module, its denies apply;
// an `opa test` file beside it is skipped with a warning naming it.
func TestLoadDirLoadsUserModuleNamedAsTest(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"ab_test.rego":     "package meshguard.user\n\ndeny contains \"blocked\" if input.path == \"/x\"\n",
		"tenant_test.rego": "package meshguard.user_test\n\ntest_ok if true\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, warnings, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.UserModules) != 1 || set.UserModules["ab_test.rego"] == "" {
		t.Fatalf("user modules %v; want ab_test.rego alone", keysOf(set.UserModules))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "tenant_test.rego") || !strings.Contains(warnings[0], "meshguard.user_test") {
		t.Errorf("warnings %q; want one naming tenant_test.rego and its package", warnings)
	}
	set.Pods = append(set.Pods, webPod())
	s, err := NewEngine(Mesh{}).Update(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CheckRequest(context.Background(), http(path("/x")))
	if err != nil || v.Allowed || v.Reason != "blocked" {
		t.Fatalf("/x: verdict %+v, err %v; want denied by ab_test.rego", v, err)
	}
}
