package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// runCLI runs a meshguard command line as main does and returns the exit
// status and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// A flag that is unknown or does not parse, an argument a command does not
// take and an unknown command are usage errors: 64 for analyze and an
// unknown command, as istioctl (istioctl/cmd/root.go GetRootCmd sets
// CommandParseError as every command's flag error; istioctl/cmd/istioctl/main.go
// GetExitCode: CommandParseError and "unknown command" are
// ExitIncorrectUsage, 64), 2 for the other commands, where 1 says the input
// is at fault (validate: an invalid object; inject: a document not injected).
// --max-input-size must be over 0 (0 read as the default before).
func TestUsageErrorsExitCodes(t *testing.T) {
	f := writeFile(t, t.TempDir(), "a.yaml", cliGoodDR)
	for _, tc := range []struct {
		args []string
		want int
		text string
	}{
		{[]string{"analyze", "--bogus", "-f", f}, 64, "unknown flag: --bogus"},
		{[]string{"analyze", "--max-input-size", "abc", "-f", f}, 64, `invalid argument "abc" for "--max-input-size"`},
		{[]string{"analyze", "--max-input-size", "0", "-f", f}, 64, "must be more than 0 bytes"},
		{[]string{"analyze", "--max-input-size", "-5", "-f", f}, 64, "must be more than 0 bytes"},
		{[]string{"analyze", "--max-input-size", "4096", "-f", f}, 0, ""},
		{[]string{"bogus"}, 64, `unknown command "bogus"`},
		{[]string{"validate", "--bogus", "-f", f}, 2, "unknown flag: --bogus"},
		{[]string{"validate", "-f", f, "extra-arg"}, 2, `unknown command "extra-arg"`},
		{[]string{"validate", "--max-input-size", "0", "-f", f}, 2, "must be more than 0 bytes"},
		{[]string{"validate", "--max-input-size", "1e3", "-f", f}, 2, "not a number of bytes"},
		{[]string{"validate", "--max-input-size", "4096", "-f", f}, 0, ""},
		{[]string{"inject", "--bogus", "-f", f}, 2, "unknown flag: --bogus"},
		{[]string{"inject", "-f", f, "extra-arg"}, 2, `unknown command "extra-arg"`},
		{[]string{"inject", "--max-input-size", "-1", "-f", f}, 2, "must be more than 0 bytes"},
		{[]string{"authz", "check", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"authz", "chek"}, 2, `unknown command "chek"`},
		{[]string{"authz"}, 0, ""},
		{[]string{"serve", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"version", "extra-arg"}, 2, `unknown command "extra-arg"`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.want || !strings.Contains(errOut, tc.text) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.want, tc.text)
		}
	}
}

// analyze takes files as arguments, as istioctl analyze takes them (Istio:
// istioctl/pkg/analyze/analyze.go, gatherFiles of args), beside -f; -R is
// accepted and ignored, as istioctl keeps it ("hardcoded to true").
func TestAnalyzePositionalFiles(t *testing.T) {
	gw := writeFile(t, t.TempDir(), "vs.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: other}\n"+
		"spec: {hosts: [other.example.com], gateways: [nogw], http: [{route: [{destination: {host: reviews}}]}]}\n")
	const subset, gateway = `Referenced host+subset in destinationrule not found: "reviews+v3"`, `Referenced gateway not found: "nogw"`
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"analyze", "testdata/analyze/missing-subset"}, []string{subset}},
		{[]string{"analyze", "-R", "testdata/analyze/missing-subset"}, []string{subset}},
		{[]string{"analyze", "-f", "testdata/analyze/missing-subset", gw}, []string{subset, gateway}},
		{[]string{"analyze", gw, "-f", "testdata/analyze/missing-subset"}, []string{subset, gateway}},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		for _, w := range tc.want {
			if code != exitAnalyzeFoundIssues || !strings.Contains(out, w) {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want 79 and %s", tc.args, code, out, errOut, w)
			}
		}
	}
	// Every argument is read: a missing one is unreadable input (65).
	code, _, errOut := runCLI(t, "analyze", "../../analysis/testdata/bookinfo", "does-not-exist.yaml")
	if code != exitAnalyzeDataError || !strings.Contains(errOut, "does-not-exist.yaml: unreadable: ") {
		t.Errorf("missing argument: exit %d, stderr %q; want 65 naming it", code, errOut)
	}
	if code, _, errOut := runCLI(t, "analyze"); code != 1 || !strings.Contains(errOut, "nothing to analyze") {
		t.Errorf("no input: exit %d, stderr %q; want 1", code, errOut)
	}
}

// The objects analyze reads from files count toward the same bound as the
// cluster's (maxClusterObjects): each document, each List item, across every
// -f; past it analysis stops with exit 1 naming the bound and the document,
// as for a cluster (TestAnalyzeClusterBounded). 240,000 one-line documents
// in 2.4 MB took 504 MB and 13 s before.
func TestAnalyzeFileObjectsBounded(t *testing.T) {
	defer func(n int) { maxClusterObjects = n }(maxClusterObjects)
	maxClusterObjects = 3
	dir := t.TempDir()
	docs := func(n int) string { return strings.Repeat("---\nkind: X\n", n) }
	three := writeFile(t, dir, "three.yaml", docs(3))
	four := writeFile(t, dir, "four.yaml", docs(4))
	two := writeFile(t, dir, "two.yaml", docs(2))
	list := func(n int) string {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: List\nitems:\n")
		for i := range n {
			fmt.Fprintf(&b, "- {apiVersion: v1, kind: Service, metadata: {name: s%d}, spec: {ports: [{port: 80}]}}\n", i)
		}
		return b.String()
	}
	list3 := writeFile(t, dir, "list3.yaml", list(3))
	list4 := writeFile(t, dir, "list4.yaml", list(4))
	for _, tc := range []struct {
		files []string
		stop  string // the document named, "" when not stopped
	}{
		{[]string{three}, ""},
		{[]string{list3}, ""},
		{[]string{four}, four + "#3"},
		{[]string{two, two}, two + "#1"},
		{[]string{list4}, list4 + "#0.items[3]"},
		{[]string{two, list3}, list3 + "#0.items[1]"},
	} {
		_, exit, errOut := analyzeLines(t, analyzeOptions{files: tc.files}, "IST0106")
		stopped := strings.Contains(errOut, "more than 3 objects") && strings.Contains(errOut, "analysis stopped")
		switch {
		case tc.stop == "" && (stopped || exit == 1):
			t.Errorf("%q: stopped under the bound: exit %d, stderr %q", tc.files, exit, errOut)
		case tc.stop != "" && (exit != 1 || !stopped || !strings.Contains(errOut, "Error: "+tc.stop+": more than 3 objects")):
			t.Errorf("%q: exit %d, stderr %q; want 1, the bound and %s named", tc.files, exit, errOut, tc.stop)
		}
	}
	// Files and cluster share the bound.
	u := func(name string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	}
	client, mapper := fakeCluster(t, u("a"), u("b"))
	if _, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{two}, cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0102"); exit != 1 || !strings.Contains(errOut, "more than 3 objects") {
		t.Errorf("2 file objects and 2 stored, bound 3: exit %d, stderr %q; want 1 and the bound named", exit, errOut)
	}
	maxClusterObjects = 4
	if _, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{two}, cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0102"); exit == 1 {
		t.Errorf("2 file objects and 2 stored, bound 4: exit 1, stderr %q", errOut)
	}
}

// An object without kind is named "object" in analyze's messages, as
// validate names it, not by an empty kind ("( default/x FILE#0)").
func TestAnalyzeKindlessObjectNamed(t *testing.T) {
	f := writeFile(t, t.TempDir(), "nokind.yaml", "apiVersion: networking.istio.io/v1\nmetadata: {name: x}\nspec: {hosts: [a]}\n")
	got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{f}}, "IST0106")
	if exit != exitAnalyzeFoundIssues || len(got) != 1 || !strings.Contains(got[0], "(object default/x "+f+"#0)") {
		t.Errorf("exit %d, IST0106 lines %q (stderr %q); want one naming (object default/x %s#0)", exit, got, errOut, f)
	}
}

// validate names an input it could not list or read by its name, as analyze
// does (FILE: unreadable: ...), not as its first document (FILE#0); a
// document's error still names the document.
func TestValidateUnreadableInputNamedByFile(t *testing.T) {
	dir := t.TempDir()
	missing := dir + "/missing.yaml"
	big := writeFile(t, dir, "big.yaml", cliGoodDR)
	badDoc := writeFile(t, dir, "bad.yaml", cliGoodDR+"---\nkey: [\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", missing}, missing + ": unreadable: "},
		{[]string{"-f", big, "--max-input-size", "10"}, big + ": unreadable: input too large"},
		{[]string{"-f", badDoc}, badDoc + "#1: unreadable: "},
	} {
		code, _, errOut := runCLI(t, append([]string{"validate"}, tc.args...)...)
		if code != 2 || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a line starting %q", tc.args, code, errOut, tc.want)
		}
	}
}

// validate --rego holds every object of every -f until the rules run: their
// number is bounded as analyze's (maxClusterObjects), each document and
// List item counted; past it validation stops with exit 2 naming the bound
// and the document. Without --rego nothing is held and nothing is counted.
func TestValidateRulesObjectsBounded(t *testing.T) {
	defer func(n int) { maxClusterObjects = n }(maxClusterObjects)
	maxClusterObjects = 3
	dir := t.TempDir()
	two := writeFile(t, dir, "two.yaml", cliGoodDR+"---\n"+cliGoodDR)
	list := writeFile(t, dir, "list.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n")
	const rules = "../../deploy/examples/rego"
	for _, tc := range []struct {
		files []string
		rego  string
		code  int
		stop  string
	}{
		{[]string{two}, rules, 0, ""},
		{[]string{two, list}, rules, 2, list + "#0.items[1]"},
		{[]string{two, two}, rules, 2, two + "#1"},
		{[]string{two, two, list}, "", 0, ""},
	} {
		var out, errOut bytes.Buffer
		code := runValidate(t.Context(), validateOptions{files: tc.files, output: "text", namespace: "default", regoDir: tc.rego}, nil, &out, &errOut)
		stopped := strings.Contains(errOut.String(), "more than 3 objects held for the organisation rules (--rego): validation stopped")
		if code != tc.code || stopped != (tc.stop != "") || (tc.stop != "" && !strings.HasPrefix(errOut.String(), tc.stop+": unreadable: more than 3")) {
			t.Errorf("%q rego %q: exit %d, stderr %q; want %d, stopped at %q", tc.files, tc.rego, code, errOut.String(), tc.code, tc.stop)
		}
	}
}
