// Package conformance locates the upstream conformance data the tests run
// against: Istio's own test data, kept beside the repository in
// ../shared/conformance/<name> (not part of the product binary).
package conformance

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
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

// IstioInstall returns the injector's three inputs of Istio's default
// install (injection/istio-default-install: the config and values keys of
// ConfigMap istio-sidecar-injector, the mesh key of ConfigMap istio).
func IstioInstall(t testing.TB) (cfg, values, mesh []byte) {
	t.Helper()
	d := filepath.Join(Dir(t, "injection"), "istio-default-install")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return read("config"), read("values"), read("mesh")
}

// EditGlobalValues returns values (an IstioInstall values key) with edit
// applied to its `global` object, as JSON.
func EditGlobalValues(t testing.TB, values []byte, edit func(global map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(values, &v); err != nil {
		t.Fatal(err)
	}
	global, ok := v["global"].(map[string]any)
	if !ok {
		t.Fatal("install values: global is not an object")
	}
	edit(global)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CustomSidecarConfig returns cfg (an IstioInstall config) with the sidecar
// template edited: one more env var on istio-proxy, so the template is no
// longer Istio's stock text and takes meshguard's generic template path.
func CustomSidecarConfig(t testing.TB, cfg []byte) []byte {
	t.Helper()
	const anchor = "        - name: PILOT_CERT_PROVIDER\n"
	if !bytes.Contains(cfg, []byte(anchor)) {
		t.Fatalf("the default install config no longer contains %q", anchor)
	}
	return bytes.Replace(cfg, []byte(anchor), []byte("        - name: CUSTOMISED\n          value: \"yes\"\n"+anchor), 1)
}

// InjectionCase is one line of injection/cases.tsv: the input manifest, Istio's
// golden output for it and whether the golden has native sidecars.
type InjectionCase struct {
	Input, Golden string
	Native        bool
}

// InjectionCases reads injection/cases.tsv. Every file under cases/ must be
// named by a line, and every named file must exist: a case dropped from the
// list (or a golden nobody compares with) fails the test.
func InjectionCases(t testing.TB) []InjectionCase {
	t.Helper()
	dir := Dir(t, "injection")
	data, err := os.ReadFile(filepath.Join(dir, "cases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []InjectionCase
	named := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if i == 0 {
			continue // header
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || (f[2] != "on" && f[2] != "off") {
			t.Fatalf("cases.tsv line %d: want input<TAB>golden<TAB>on|off, got %q", i+1, line)
		}
		cases = append(cases, InjectionCase{Input: f[0], Golden: f[1], Native: f[2] == "on"})
		named[f[0]], named[f[1]] = true, true
	}
	checkCaseFiles(t, dir, named)
	if len(cases) == 0 {
		t.Fatal("cases.tsv lists no case")
	}
	return cases
}

// checkCaseFiles fails t unless the files under dir/cases are exactly those
// named (by a cases.tsv): a case dropped from the list, or a line naming a
// file that does not exist, must not pass unnoticed.
func checkCaseFiles(t testing.TB, dir string, named map[string]bool) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !named[e.Name()] {
			t.Errorf("%s: cases/%s is in no line of cases.tsv", dir, e.Name())
		}
		delete(named, e.Name())
	}
	for name := range named {
		t.Errorf("%s: cases.tsv names cases/%s, which does not exist", dir, name)
	}
}

// ExtraInjectionCase is one line of a cases.tsv of further Istio injection
// goldens that run with their own settings (injector/kubeinject/testdata/
// istio-extra): the input, Istio's golden ("-" for an error case), native
// sidecars, values and mesh config as JSON fragments ("-": none), a
// substring of Istio's error ("-": none) and the Istio commit the golden
// was taken from.
type ExtraInjectionCase struct {
	Input, Golden string
	Native        bool
	Values, Mesh  string
	WantErr       string
	IstioCommit   string
}

// ExtraInjectionCases reads dir/cases.tsv in the ExtraInjectionCase format,
// as strictly as InjectionCases: every line well-formed (a golden exactly
// when no error is expected, a full commit hash), every file under
// dir/cases named by a line and every named file present.
func ExtraInjectionCases(t testing.TB, dir string) []ExtraInjectionCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "cases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []ExtraInjectionCase
	named := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if i == 0 {
			continue // header
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 || (f[2] != "on" && f[2] != "off") || !isCommit(f[6]) || (f[1] == "-") == (f[5] == "-") {
			t.Fatalf("%s/cases.tsv line %d: want input, golden (- for an error case), on|off, values, mesh, error (- for none), istio_commit (40 hex digits), tab-separated, got %q", dir, i+1, line)
		}
		cases = append(cases, ExtraInjectionCase{Input: f[0], Golden: f[1], Native: f[2] == "on", Values: f[3], Mesh: f[4], WantErr: f[5], IstioCommit: f[6]})
		named[f[0]] = true
		if f[1] != "-" {
			named[f[1]] = true
		}
	}
	checkCaseFiles(t, dir, named)
	if len(cases) == 0 {
		t.Fatal("cases.tsv lists no case")
	}
	return cases
}

func isCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
