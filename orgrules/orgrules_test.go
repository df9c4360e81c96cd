package orgrules

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshguard/meshguard/validation/crossref"
)

const examples = "../deploy/examples/rego"

// The shipped examples' own Rego tests pass under OPA's runner (run in make test).
func TestExampleRegoTests(t *testing.T) {
	results, err := RunTests(t.Context(), examples)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 9 {
		t.Fatalf("want the 9 example tests, ran %d", len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s: %s", r.Name, r.Detail)
		}
	}
}

func TestRunTestsReportsFailure(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r.rego", "package meshguard.validation\ndeny contains \"x\" if input.kind == \"A\"\n")
	write(t, dir, "r_test.rego", "package meshguard.validation_test\nimport data.meshguard.validation\ntest_never if { count(validation.deny) == 0 with input as {\"kind\": \"A\"} }\n")
	results, err := RunTests(t.Context(), dir)
	if err != nil || len(results) != 1 || results[0].Passed {
		t.Fatalf("want one failing test, got %+v, %v", results, err)
	}
}

func TestEvaluateExamples(t *testing.T) {
	rules, err := Load(t.Context(), examples)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		in         Input
		deny, warn int
	}{
		{"wildcard VirtualService in default", Input{Kind: "VirtualService", Object: map[string]any{
			"metadata": map[string]any{"name": "a", "namespace": "default"}, "spec": map[string]any{"hosts": []any{"*"}}}}, 1, 0},
		{"wildcard VirtualService in istio-system", Input{Kind: "VirtualService", Object: map[string]any{
			"metadata": map[string]any{"name": "a", "namespace": "istio-system"}, "spec": map[string]any{"hosts": []any{"*"}}}}, 0, 0},
		{"permissive in production", Input{Kind: "PeerAuthentication", NamespaceLabels: map[string]string{"environment": "production"}, Object: map[string]any{
			"metadata": map[string]any{"name": "a", "namespace": "shop"}, "spec": map[string]any{"mtls": map[string]any{"mode": "PERMISSIVE"}}}}, 0, 1},
	} {
		v, err := rules.Evaluate(t.Context(), tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(v.Deny) != tc.deny || len(v.Warn) != tc.warn {
			t.Errorf("%s: got %+v, want %d deny %d warn", tc.name, v, tc.deny, tc.warn)
		}
	}
}

func TestLoadFailsClosed(t *testing.T) {
	bad := t.TempDir()
	write(t, bad, "bad.rego", "package meshguard.validation\ndeny contains msg if {\n")
	if _, err := Load(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "bad.rego") {
		t.Errorf("unparsable module: got %v, want an error naming bad.rego", err)
	}
	if _, err := Load(t.Context(), t.TempDir()); err == nil {
		t.Error("empty directory accepted")
	}
	v0 := t.TempDir()
	write(t, v0, "v0.rego", "package meshguard.validation\ndeny[msg] { msg := \"x\" }\n")
	if _, err := Load(t.Context(), v0); err == nil {
		t.Error("Rego v0 syntax accepted; rules must be Rego v1")
	}
}

// TestLoadRefusesNetworkBuiltins: a rule runs in the admission request and
// in every audit run, so it may not reach outside its input: http.send (off
// by default in Gatekeeper, --disable-opa-builtin), net.lookup_ip_addr and
// the JSON schema builtins (which fetch a remote $ref) are compile errors
// naming the module and the builtin, in the rules and in their Rego tests
// alike, and nothing is sent.
func TestLoadRefusesNetworkBuiltins(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, tc := range []struct{ builtin, call string }{
		{"http.send", `http.send({"method": "GET", "url": "` + srv.URL + `"}).status_code == 200`},
		{"net.lookup_ip_addr", `count(net.lookup_ip_addr("localhost")) > 0`},
		{"json.match_schema", `json.match_schema({}, {"$ref": "` + srv.URL + `/s.json"})[0]`},
		{"json.verify_schema", `json.verify_schema({"$ref": "` + srv.URL + `/s.json"})[0]`},
	} {
		src := "package meshguard.validation\ndeny contains \"x\" if " + tc.call + "\n"
		r, err := Compile(t.Context(), []Module{{Name: "net.rego", Source: src}})
		if err == nil {
			_, err = r.Evaluate(t.Context(), Input{Kind: "Gateway", Object: map[string]any{}})
			t.Errorf("%s: rules compiled (evaluation: %v), want a compile error", tc.builtin, err)
		} else if !strings.Contains(err.Error(), "net.rego") || !strings.Contains(err.Error(), tc.builtin) {
			t.Errorf("%s: err = %v, want it to name the module and the builtin", tc.builtin, err)
		}
		dir := t.TempDir()
		write(t, dir, "r_test.rego", "package meshguard.validation_test\ntest_net if "+tc.call+"\n")
		if _, err := RunTests(t.Context(), dir); err == nil || !strings.Contains(err.Error(), tc.builtin) {
			t.Errorf("%s: Rego tests: err = %v, want the same compile error", tc.builtin, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("a rule sent %d HTTP requests", n)
	}
}

// TestLoadRefusesRulesThatEnforceNothing: a misspelt package or Gatekeeper's
// rule name would load and admit everything (fail open); a library module
// beside real rules is fine.
func TestLoadRefusesRulesThatEnforceNothing(t *testing.T) {
	typo := t.TempDir()
	write(t, typo, "r.rego", "package meshguard.validaton\ndeny contains \"x\" if true\n")
	if _, err := Load(t.Context(), typo); err == nil || !strings.Contains(err.Error(), "no module defines deny or warn in package meshguard.validation") ||
		!strings.Contains(err.Error(), "(package meshguard.validaton)") {
		t.Errorf("misspelt package: err = %v, want it refused naming the module's package", err)
	}
	gk := t.TempDir()
	write(t, gk, "r.rego", "package meshguard.validation\nviolation contains \"x\" if true\n")
	if _, err := Load(t.Context(), gk); err == nil {
		t.Error("rules without deny or warn accepted")
	}
	lib := t.TempDir()
	write(t, lib, "lib.rego", "package lib.names\nbad(n) if startswith(n, \"tmp-\")\n")
	write(t, lib, "r.rego", "package meshguard.validation\nimport data.lib.names\ndeny contains \"tmp name\" if names.bad(input.object.metadata.name)\n")
	r, err := Load(t.Context(), lib)
	if err != nil {
		t.Fatalf("rules with a library module: %v", err)
	}
	v, err := r.Evaluate(t.Context(), Input{Kind: "Gateway", Object: map[string]any{"metadata": map[string]any{"name": "tmp-gw"}}})
	if err != nil || len(v.Deny) != 1 {
		t.Errorf("library rule: %+v %v", v, err)
	}
}

// TestReadDirMountedConfigMap: a ConfigMap volume holds each key as a link
// into ..data and as a file under the hidden timestamped directory; each
// module is read once, so a default rule does not conflict with itself.
func TestReadDirMountedConfigMap(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_05_21_00_00.123")
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, ts, "rules.rego", "package meshguard.validation\ndefault strict := false\ndeny contains \"x\" if strict\n")
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "rules.rego"), filepath.Join(dir, "rules.rego")); err != nil {
		t.Fatal(err)
	}
	mods, err := ReadDir(dir)
	if err != nil || len(mods) != 1 || filepath.Base(mods[0].Name) != "rules.rego" || filepath.Dir(mods[0].Name) != dir {
		t.Fatalf("ReadDir = %+v, %v; want the one linked key", mods, err)
	}
	if _, err := Load(t.Context(), dir); err != nil {
		t.Errorf("mounted ConfigMap: %v", err)
	}
}

// TestReadDirRefusesNonRegularFiles: a *.rego entry that is a FIFO (or a
// link to a device) is an error naming it, not a read that blocks or never
// ends, as `meshguard validate -f DIR` refuses one.
func TestReadDirRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r.rego", "package meshguard.validation\ndeny contains \"x\" if false\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.rego"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadDir(dir); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "pipe.rego") || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("err = %v, want pipe.rego refused as not a regular file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadDir blocked on a FIFO")
	}
}

// TestReadDirModuleSizeLimit: a module over MaxModuleBytes is refused naming
// it and the limit; one at the limit is read.
func TestReadDirModuleSizeLimit(t *testing.T) {
	src := "package meshguard.validation\n"
	pad := func(n int) string { return src + strings.Repeat("#", n-len(src)) }
	dir := t.TempDir()
	write(t, dir, "r.rego", pad(MaxModuleBytes))
	if mods, err := ReadDir(dir); err != nil || len(mods) != 1 {
		t.Fatalf("module at the limit: %d modules, %v", len(mods), err)
	}
	write(t, dir, "r.rego", pad(MaxModuleBytes+1))
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "r.rego: over the 1048576-byte limit of a rule module") {
		t.Errorf("module over the limit: %v", err)
	}
}

// TestMessagesBounded: a rule yielding thousands of messages gives at most
// MaxMessages, the last saying how many more there were.
func TestMessagesBounded(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r.rego", "package meshguard.validation\ndeny contains sprintf(\"m%05d\", [i]) if some i in numbers.range(1, 3000)\n")
	r, err := Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Evaluate(t.Context(), Input{Kind: "Gateway", Object: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Deny) != MaxMessages || !strings.Contains(v.Deny[MaxMessages-1], "and 2901 more deny messages") {
		t.Errorf("%d messages, last %q; want %d ending with the count of the rest", len(v.Deny), v.Deny[len(v.Deny)-1], MaxMessages)
	}
}

// TestMessagesBoundedAtTheLimit: MaxMessages messages are all kept; one more
// and the last kept says how many were left out (fail-closed denials stay
// whole up to the bound).
func TestMessagesBoundedAtTheLimit(t *testing.T) {
	for _, tc := range []struct {
		n        int
		wantLast string
	}{
		{MaxMessages, fmt.Sprintf("m%05d", MaxMessages)},
		{MaxMessages + 1, "… and 2 more deny messages of the organisation rules"},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			r, err := Compile(t.Context(), []Module{{Name: "r.rego", Source: fmt.Sprintf(
				"package meshguard.validation\ndeny contains sprintf(\"m%%05d\", [i]) if some i in numbers.range(1, %d)\n", tc.n)}})
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.Evaluate(t.Context(), Input{Kind: "Gateway", Object: map[string]any{}})
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Deny) != MaxMessages || v.Deny[MaxMessages-1] != tc.wantLast {
				t.Errorf("%d messages, last %q; want %d, last %q", len(v.Deny), v.Deny[len(v.Deny)-1], MaxMessages, tc.wantLast)
			}
		})
	}
}

// TestCheckFailsClosed: a rule that cannot be evaluated on the object is an
// error problem (a denial at admission), never no problem: OPA's
// evaluation error, or a message that is not a string (conftest refuses it
// too), must not let the object through.
func TestCheckFailsClosed(t *testing.T) {
	for _, tc := range []struct{ name, rule, want string }{
		{"builtin error", `deny contains x if { x := sprintf("%d", [to_number(input.object.metadata.name)]) }`, "to_number"},
		{"message not a string", `warn contains 1 if { true }`, "is not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(t.Context(), []Module{{Name: "r.rego", Source: "package meshguard.validation\n" + tc.rule + "\n"}})
			if err != nil {
				t.Fatal(err)
			}
			obj := map[string]any{"kind": "Gateway", "metadata": map[string]any{"name": "gw"}}
			errs, warns := Check(t.Context(), r, nil, "Gateway", "shop", "gw", nil, obj, Admission{})
			if len(errs) != 1 || !strings.Contains(errs[0].Message, tc.want) || len(warns) != 0 {
				t.Errorf("errors %v warnings %v, want one error naming %q", errs, warns, tc.want)
			}
		})
	}
}

// TestMessageLengthBounded: a message longer than MaxMessageBytes is cut at
// a character boundary and says how many bytes were left out.
func TestMessageLengthBounded(t *testing.T) {
	r, err := Compile(t.Context(), []Module{{Name: "long.rego",
		Source: "package meshguard.validation\ndeny contains concat(\"\", array.concat([\"a\"], [\"é\" | some _ in numbers.range(1, 5000)]))\nwarn contains \"short\"\n"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Evaluate(t.Context(), Input{Kind: "Gateway", Object: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Deny) != 1 || len(v.Warn) != 1 || v.Warn[0] != "short" {
		t.Fatalf("verdict %+v", v)
	}
	m := v.Deny[0]
	// "a" + 5,000 two-byte runes = 10,001 bytes; cut at 2,047 (a rune boundary).
	if want := "… (7954 more bytes)"; !strings.HasSuffix(m, want) || !utf8.ValidString(m) || len(m) > MaxMessageBytes+len(want) {
		t.Errorf("message of %d bytes ending %q, want at most %d bytes of valid UTF-8 ending %q", len(m), m[max(0, len(m)-30):], MaxMessageBytes+len(want), want)
	}
}

// TestEvaluationErrorsBounded: OPA's errors quote the value they fail on, so
// a builtin error on a large field, or a message that is not a string, was
// an error of megabytes (a denial, an audit finding, a Rego test's detail);
// it is cut as a message is, still naming the module, line and builtin.
func TestEvaluationErrorsBounded(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	in := Input{Kind: "Gateway", Object: map[string]any{"spec": map[string]any{"big": big}}}
	const suffix = " more bytes)"
	for _, tc := range []struct{ rule, want string }{
		{"deny contains to_number(input.object.spec.big)", "p.rego:2: eval_builtin_error: to_number"},
		{"deny contains msg if { time.parse_rfc3339_ns(input.object.spec.big); msg := \"x\" }", "p.rego:2: eval_builtin_error: time.parse_rfc3339_ns"},
		{"warn contains input.object", "organisation rule warn: message"},
	} {
		r, err := Compile(t.Context(), []Module{{Name: "p.rego", Source: "package meshguard.validation\n" + tc.rule + "\n"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Evaluate(t.Context(), in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), suffix) || len(err.Error()) > MaxMessageBytes+64 {
			t.Errorf("%s: error of %d bytes (%.120v), want at most %d naming %q", tc.rule, len(fmt.Sprint(err)), err, MaxMessageBytes+64, tc.want)
		}
	}
	dir := t.TempDir()
	write(t, dir, "r_test.rego", "package meshguard.validation_test\ntest_big if to_number(concat(\"\", [\"x\" | some _ in numbers.range(1, 100000)]))\n")
	rs, err := RunTests(t.Context(), dir)
	if err != nil || len(rs) != 1 || rs[0].Passed || !strings.Contains(rs[0].Detail, "to_number") || len(rs[0].Detail) > MaxMessageBytes+64 {
		t.Errorf("RunTests = %d results, %v; want one failure of at most %d bytes", len(rs), err, MaxMessageBytes+64)
	}
}

// TestEvaluateBounded: a rule that would run for minutes is cut at
// EvalTimeout on every path (validate and analyze have no request deadline;
// the audit and the webhook share the bound) and is an error (fail closed).
func TestEvaluateBounded(t *testing.T) {
	defer func(d time.Duration) { EvalTimeout = d }(EvalTimeout)
	EvalTimeout = 200 * time.Millisecond
	r, err := Compile(t.Context(), []Module{{Name: "slow.rego",
		Source: "package meshguard.validation\ndeny contains \"n\" if { some i in numbers.range(1, 1000000000000); i < 0 }\n"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Evaluate(context.Background(), Input{Kind: "Gateway", Object: map[string]any{}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
			t.Errorf("err = %v, want the timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Evaluate still running after 10s")
	}
}

// TestRunTestsBounded: a Rego test that does not end fails after
// EvalTimeout, as `opa test` fails it after its 5 s per-test timeout
// (tester.Runner), instead of hanging `validate --rego --test`.
func TestRunTestsBounded(t *testing.T) {
	defer func(d time.Duration) { EvalTimeout = d }(EvalTimeout)
	EvalTimeout = 200 * time.Millisecond
	dir := t.TempDir()
	write(t, dir, "r_test.rego", "package meshguard.validation_test\ntest_slow if { every i in numbers.range(1, 1000000000000) { i > 0 } }\ntest_fast if true\n")
	done := make(chan []TestResult, 1)
	go func() {
		rs, err := RunTests(context.Background(), dir)
		if err != nil {
			t.Error(err)
		}
		done <- rs
	}()
	select {
	case rs := <-done:
		got := map[string]TestResult{}
		for _, r := range rs {
			got[r.Name] = r
		}
		if slow := got["data.meshguard.validation_test.test_slow"]; slow.Passed || !strings.Contains(slow.Detail, "200ms") {
			t.Errorf("slow test: %+v, want a failure naming the timeout", slow)
		}
		if !got["data.meshguard.validation_test.test_fast"].Passed {
			t.Errorf("fast test: %+v", got["data.meshguard.validation_test.test_fast"])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunTests still running after 10s")
	}
}

// TestRunTestsRefusesParameterizedTests: opa test runs a parameterized test
// (test_cases[name] if ...) and fails it when a case fails; RunTests cannot
// tell its failed cases apart (opa test traces them), so it is an error
// naming the rule rather than a test silently not run.
func TestRunTestsRefusesParameterizedTests(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r_test.rego", "package meshguard.validation_test\ntest_cases[name] if { some name, c in {\"a\": 1, \"b\": 2}; c == 1 }\ntest_plain if true\n")
	rs, err := RunTests(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "r_test.rego:2") || !strings.Contains(err.Error(), "test_cases") {
		t.Errorf("RunTests = %+v, %v; want an error naming the parameterized test", rs, err)
	}
}

// TestRunTestsStrictBuiltinErrors: the Rego tests run with strict builtin
// errors, as the rules do on every path, so a test over an input that makes
// a rule's builtin fail is a failure naming the error, where opa test (no
// strict mode) passes it (docs/compatibility.md): at admission that object
// gets the error, not a pass.
func TestRunTestsStrictBuiltinErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r.rego", "package meshguard.validation\ndeny contains \"too few\" if to_number(input.object.spec.n) < 1\n")
	write(t, dir, "r_test.rego", "package meshguard.validation_test\nimport data.meshguard.validation\ntest_text_not_denied if { count(validation.deny) == 0 with input as {\"object\": {\"spec\": {\"n\": \"abc\"}}} }\n")
	rs, err := RunTests(t.Context(), dir)
	if err != nil || len(rs) != 1 || rs[0].Passed || !strings.Contains(rs[0].Detail, "r.rego:2: eval_builtin_error: to_number") {
		t.Errorf("RunTests = %+v, %v; want the test failed with the builtin error", rs, err)
	}
	r, err := Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Evaluate(t.Context(), Input{Object: map[string]any{"spec": map[string]any{"n": "abc"}}}); err == nil {
		t.Error("the rule evaluated without the builtin error the test reports")
	}
}

func write(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// RunTests agrees with OPA's own runner (package tester, as `opa test`) on
// every test's name and outcome, for the examples, a failing test and
// several rules of one test name, which opa test runs one by one (the later
// ones as test_x#01, ...): queried together a failing one passed.
func TestRunTestsAgreesWithOPATester(t *testing.T) {
	failing := t.TempDir()
	write(t, failing, "r.rego", "package meshguard.validation\ndeny contains \"x\" if input.kind == \"A\"\n")
	write(t, failing, "r_test.rego", "package meshguard.validation_test\nimport data.meshguard.validation\ntest_never if { count(validation.deny) == 0 with input as {\"kind\": \"A\"} }\ntest_yes if { count(validation.deny) == 1 with input as {\"kind\": \"A\"} }\n")
	dup := t.TempDir()
	write(t, dup, "r.rego", "package meshguard.validation\ndeny contains \"x\" if input.kind == \"A\"\n")
	write(t, dup, "r_test.rego", "package meshguard.validation_test\nimport data.meshguard.validation\ntest_deny if { count(validation.deny) == 1 with input as {\"kind\": \"B\"} }\ntest_deny if { count(validation.deny) == 1 with input as {\"kind\": \"A\"} }\ntest_deny if true\ntest_other if true\n")
	rs, err := RunTests(t.Context(), dup)
	if err != nil || len(rs) != 4 || rs[0].Name != "data.meshguard.validation_test.test_deny" || rs[0].Passed {
		t.Errorf("RunTests = %+v, %v; want test_deny failing and test_deny#01, test_deny#02, test_other", rs, err)
	}
	for _, dir := range []string{examples, failing, dup} {
		ours, err := RunTests(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		results, err := tester.Run(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			want[r.Package+"."+r.Name] = r.Pass()
		}
		if len(ours) != len(want) {
			t.Fatalf("%s: ran %d tests, opa test ran %d", dir, len(ours), len(want))
		}
		for _, r := range ours {
			if p, ok := want[r.Name]; !ok || p != r.Passed {
				t.Errorf("%s: %s passed=%v, opa test: present=%v passed=%v", dir, r.Name, r.Passed, ok, p)
			}
		}
	}
}

// InputFor gives a rule the object with its namespace filled in, the
// namespace's labels and the referenced objects of the index; an object
// judged alone (nil index) gets neither, and the caller's map is not changed.
func TestInputFor(t *testing.T) {
	ix := crossref.NewIndex("")
	ix.SetNamespace("shop", map[string]string{"environment": "production"}, true)
	ix.SetService("shop", "reviews", true)
	ix.SetDestinationRule(crossref.Key{Namespace: "shop", Name: "reviews"}, &networking.DestinationRule{Host: "reviews"})
	ix.SetReady()
	spec := &networking.VirtualService{Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}}
	obj := map[string]any{"kind": "VirtualService", "metadata": map[string]any{"name": "r"}}
	in, err := InputFor(ix, "VirtualService", "shop", "r", spec, obj, Admission{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Object["metadata"].(map[string]any)["namespace"] != "shop" || in.NamespaceLabels["environment"] != "production" {
		t.Errorf("namespace or labels missing: %+v", in)
	}
	if _, ok := obj["metadata"].(map[string]any)["namespace"]; ok {
		t.Error("InputFor modified the caller's object")
	}
	var kinds []string
	for _, r := range in.Referenced {
		kinds = append(kinds, r["kind"].(string)+" "+r["metadata"].(map[string]any)["name"].(string))
	}
	if strings.Join(kinds, ",") != "DestinationRule reviews,Service reviews" {
		t.Errorf("referenced: %v", kinds)
	}
	alone, err := InputFor(nil, "VirtualService", "shop", "r", spec, obj, Admission{})
	if err != nil || alone.NamespaceLabels != nil || alone.Referenced != nil || alone.Object["metadata"].(map[string]any)["namespace"] != "shop" {
		t.Errorf("alone: %+v, %v", alone, err)
	}
}

// Rules see the admission operation and the old object of an UPDATE, with
// its namespace filled in as the object's; offline (a zero Admission: validate,
// analyze, the audit) both are empty, so a rule on what an UPDATE changes
// never fires there.
func TestCheckOperationAndOldObject(t *testing.T) {
	rules, err := Compile(t.Context(), []Module{{Name: "r.rego", Source: `package meshguard.validation

deny contains msg if {
	input.kind == "VirtualService"
	input.oldObject.spec.hosts != input.object.spec.hosts
	msg := sprintf("%s/%s: spec.hosts is immutable", [input.oldObject.metadata.namespace, input.oldObject.metadata.name])
}

warn contains sprintf("operation %q", [input.operation])

# As an AdmissionRequest's oldObject (Gatekeeper's input.review.oldObject),
# absent outside an UPDATE: not null, not {}.
deny contains "oldObject present outside an UPDATE" if {
	input.operation != "UPDATE"
	"oldObject" in object.keys(input)
}
`}})
	if err != nil {
		t.Fatal(err)
	}
	vs := func(hosts ...any) map[string]any {
		return map[string]any{"kind": "VirtualService", "metadata": map[string]any{"name": "r"}, "spec": map[string]any{"hosts": hosts}}
	}
	for _, tc := range []struct {
		name       string
		obj        map[string]any
		adm        Admission
		deny, warn string
	}{
		{"offline", vs("a"), Admission{}, "", `operation ""`},
		{"create", vs("a"), Admission{Operation: "CREATE"}, "", `operation "CREATE"`},
		{"update keeping hosts", vs("a"), Admission{Operation: "UPDATE", OldObject: vs("a")}, "", `operation "UPDATE"`},
		{"update changing hosts", vs("a", "b"), Admission{Operation: "UPDATE", OldObject: vs("a")}, "shop/r: spec.hosts is immutable", `operation "UPDATE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := Check(t.Context(), rules, nil, "VirtualService", "shop", "r", nil, tc.obj, tc.adm)
			var deny, warn string
			if len(errs) > 0 {
				deny = strings.TrimPrefix(errs[0].Message, ProblemPrefix)
			}
			if len(warns) > 0 {
				warn = strings.TrimPrefix(warns[0].Message, ProblemPrefix)
			}
			if len(errs) > 1 || len(warns) > 1 || deny != tc.deny || warn != tc.warn {
				t.Errorf("errors %v warnings %v, want deny %q warn %q", errs, warns, tc.deny, tc.warn)
			}
		})
	}
}

// TestIsModule: one rule for which names are rule modules, in a directory
// and in a rule ConfigMap alike.
func TestIsModule(t *testing.T) {
	for name, want := range map[string]bool{
		"rules.rego": true, "Rules.REGO": true, "sub/r.rego": true,
		"rules_test.rego": false, "RULES_TEST.REGO": false, "rules.yaml": false, "rego": false, "x.rego.bak": false,
	} {
		if got := IsModule(name); got != want {
			t.Errorf("IsModule(%q) = %v, want %v", name, got, want)
		}
	}
}

// Compile compiles the modules once for both queries: its allocations stay
// near those of one rego.PrepareForEval of the modules (preparing deny and
// warn each from the modules compiled them twice, about twice as many).
func TestCompileCompilesModulesOnce(t *testing.T) {
	var src strings.Builder
	src.WriteString("package meshguard.validation\n")
	for i := range 200 {
		fmt.Fprintf(&src, "deny contains \"d%[1]d\" if { input.object.spec.f%[1]d == %[1]d }\nwarn contains \"w%[1]d\" if { input.object.spec.g%[1]d == %[1]d }\n", i)
	}
	mods := []Module{{Name: "r.rego", Source: src.String()}}
	ctx := t.Context()
	once := testing.AllocsPerRun(3, func() {
		if _, err := rego.New(rego.Module("r.rego", src.String()), rego.Query("data.meshguard.validation.deny"),
			rego.StrictBuiltinErrors(true), rego.Capabilities(capabilities)).PrepareForEval(ctx); err != nil {
			t.Fatal(err)
		}
	})
	got := testing.AllocsPerRun(3, func() {
		if _, err := Compile(ctx, mods); err != nil {
			t.Fatal(err)
		}
	})
	if got > 1.3*once {
		t.Errorf("Compile allocates %.0f times, one PrepareForEval of the modules %.0f: modules compiled more than once", got, once)
	}
}

// deny and warn are read as conftest reads them (policy/engine.go
// Engine.query: any collection of messages): a set (deny contains msg) or an
// array (deny := [...]), de-duplicated and sorted alike; any other value, or
// a message that is not a string, fails the evaluation (where conftest
// would count it as passed).
func TestRuleResultShapes(t *testing.T) {
	for _, tc := range []struct {
		name, rules string
		deny        []string
		err         string
	}{
		{"set", `deny contains "b"
deny contains "a"`, []string{"a", "b"}, ""},
		{"array", `deny := ["b", "a", "b"]`, []string{"a", "b"}, ""},
		{"empty array", `deny := []`, nil, ""},
		{"undefined", `deny := ["a"] if false`, nil, ""},
		{"string", `deny := "a"`, nil, "must be a set (or array) of strings"},
		{"object", `deny := {"msg": "a"}`, nil, "must be a set (or array) of strings"},
		{"array of numbers", `deny := [1]`, nil, "is not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(t.Context(), []Module{{Name: "r.rego", Source: "package meshguard.validation\n" + tc.rules + "\n"}})
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.Evaluate(t.Context(), Input{Kind: "VirtualService"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", v, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(v.Deny, tc.deny) {
				t.Fatalf("got %+v, %v; want deny %q", v, err, tc.deny)
			}
		})
	}
}

// RunTests compiles the modules once, as opa test does, not once per test:
// thirty tests over a module of many rules cost about what one does.
func TestRunTestsCompilesOnce(t *testing.T) {
	dir := func(tests int) string {
		d := t.TempDir()
		var src strings.Builder
		src.WriteString("package meshguard.validation\n")
		for i := range 200 {
			fmt.Fprintf(&src, "deny contains \"d%[1]d\" if { input.object.spec.f%[1]d == %[1]d }\n", i)
		}
		for i := range tests {
			fmt.Fprintf(&src, "test_%d if { count(deny) == 0 }\n", i)
		}
		write(t, d, "r.rego", src.String())
		return d
	}
	allocs := func(d string) float64 {
		return testing.AllocsPerRun(2, func() {
			if rs, err := RunTests(t.Context(), d); err != nil || len(rs) == 0 || !rs[0].Passed {
				t.Fatalf("%+v, %v", rs, err)
			}
		})
	}
	one, thirty := allocs(dir(1)), allocs(dir(30))
	if thirty > 2*one {
		t.Errorf("30 tests allocate %.0f times, 1 test %.0f: modules compiled per test", thirty, one)
	}
}
