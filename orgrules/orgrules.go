// Package orgrules evaluates an organisation's own rules over mesh config:
// Rego v1 modules in package meshguard.validation defining
//
//	deny contains msg if { ... }
//	warn contains msg if { ... }
//
// over an input of the object, its kind, its namespace's labels, the
// objects it refers to and, at admission, the operation and the old object.
// The modules are parsed and compiled once per Load (rego.PrepareForEval);
// Evaluate only evaluates.
package orgrules

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"google.golang.org/protobuf/proto"

	"github.com/meshguard/meshguard/internal/dirwalk"
	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/internal/regocaps"
	"github.com/meshguard/meshguard/internal/textcut"
	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

// Package is the Rego package the rules must use.
const Package = "meshguard.validation"

// MaxModuleBytes bounds one .rego file read by Load.
const MaxModuleBytes = 1 << 20

// Input is what a rule sees as `input`.
type Input struct {
	Kind string `json:"kind"`
	// Object is the whole object (apiVersion, kind, metadata, spec).
	Object map[string]any `json:"object"`
	// NamespaceLabels are the labels of the object's namespace (empty when unknown).
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	// Referenced are the objects this one refers to that exist in the set
	// analysed (DestinationRules, Gateways, ...); empty for a lone object.
	Referenced []map[string]any `json:"referenced"`
	Admission
}

// Admission is what an admission request adds to a rule's input, as
// Gatekeeper's input.review.operation and input.review.oldObject: the zero
// value judges an object as it stands (validate, analyze, the audit).
type Admission struct {
	// Operation is CREATE or UPDATE.
	Operation string `json:"operation"`
	// OldObject is the object before an UPDATE, as Object; absent otherwise.
	OldObject map[string]any `json:"oldObject,omitempty"`
}

// Verdict is the rules' answer for one object: sorted, de-duplicated messages.
type Verdict struct {
	Deny []string `json:"deny,omitempty"`
	Warn []string `json:"warn,omitempty"`
}

// Rules is a prepared set of organisation rules; safe for concurrent use.
type Rules struct {
	deny, warn rego.PreparedEvalQuery
	Files      []string
}

// Module is one Rego source file: Name (a path, or "ConfigMap ns/name key")
// names it in compile errors.
type Module struct {
	Name, Source string
}

// Load reads every *.rego file of dir (not *_test.rego) and compiles them
// (Compile). A file that does not parse, or no module in package
// meshguard.validation, is an error naming the file.
func Load(ctx context.Context, dir string) (*Rules, error) {
	mods, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	r, err := Compile(ctx, mods)
	if err != nil {
		return nil, fmt.Errorf("loading organisation rules from %s: %w", dir, err)
	}
	return r, nil
}

// ReadDir reads the rule modules of dir: every *.rego file under it except
// the tests (*_test.rego), each at most MaxModuleBytes.
func ReadDir(dir string) ([]Module, error) {
	mods, err := readModules(dir, false)
	if err != nil {
		return nil, fmt.Errorf("loading organisation rules from %s: %w", dir, err)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("loading organisation rules from %s: no .rego module found", dir)
	}
	return mods, nil
}

// Compile compiles the modules as Rego v1 and prepares the deny and warn
// queries (rego.PrepareForEval): each module is parsed and compiled once, the
// warn query prepared on the compiler of the deny one; evaluation never
// compiles again.
func Compile(ctx context.Context, mods []Module) (*Rules, error) {
	if len(mods) == 0 {
		return nil, fmt.Errorf("no organisation rule module")
	}
	parsed := make([]*ast.Module, 0, len(mods))
	r := &Rules{}
	for _, m := range mods {
		if err := checkModuleSize(m.Name, len(m.Source)); err != nil {
			return nil, err
		}
		pm, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: capabilities})
		if err != nil {
			return nil, fmt.Errorf("compiling organisation rules: %w", err)
		}
		r.Files = append(r.Files, m.Name)
		parsed = append(parsed, pm)
	}
	if err := checkRulesDefined(parsed); err != nil {
		return nil, err
	}
	pqs, err := prepare(ctx, parsed, "data."+Package+".deny", "data."+Package+".warn")
	if err != nil {
		return nil, fmt.Errorf("compiling organisation rules: %w", err)
	}
	r.deny, r.warn = pqs[0], pqs[1]
	return r, nil
}

// prepare compiles mods once and prepares each query on that compiler, with
// strict builtin errors and the rules' capabilities: rego.New creates the
// compiler of the first query (kept by the hook), and OPA compiles again only
// for a Rego given modules (rego.go, compileModules).
func prepare(ctx context.Context, mods []*ast.Module, queries ...string) ([]rego.PreparedEvalQuery, error) {
	var compiler *ast.Compiler
	out := make([]rego.PreparedEvalQuery, len(queries))
	for i, q := range queries {
		opts := []func(*rego.Rego){rego.Query(q), rego.StrictBuiltinErrors(true), rego.Capabilities(capabilities)}
		if compiler == nil {
			opts = append(opts, rego.CompilerHook(func(c *ast.Compiler) { compiler = c }))
			for _, m := range mods {
				opts = append(opts, rego.ParsedModule(m))
			}
		} else {
			opts = append(opts, rego.Compiler(compiler))
		}
		pq, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = pq
	}
	return out, nil
}

// capabilities are OPA's builtins less those reaching another host
// (regocaps.Network), for the rules and their Rego tests alike.
var capabilities = regocaps.WithoutNetwork()

// checkRulesDefined refuses modules that define no deny or warn rule in
// Package: a misspelt package (meshguard.validaton) or Gatekeeper's rule name
// (violation) would otherwise load and enforce nothing, failing open.
// Modules of other packages stay allowed: they are the rules' libraries.
func checkRulesDefined(mods []*ast.Module) error {
	var others []string
	for _, m := range mods {
		if pkg := strings.TrimPrefix(m.Package.Path.String(), "data."); pkg != Package {
			others = append(others, fmt.Sprintf("%s (package %s)", m.Package.Location.File, pkg))
			continue
		}
		for _, rule := range m.Rules {
			if name := rule.Head.Ref()[0].String(); name == "deny" || name == "warn" {
				return nil
			}
		}
	}
	msg := fmt.Sprintf("no module defines deny or warn in package %s", Package)
	if len(others) > 0 {
		msg += "; modules of other packages: " + strings.Join(others, ", ")
	}
	return fmt.Errorf("organisation rules: %s", msg)
}

// MaxMessages bounds the deny (and the warn) messages one object gets from
// the rules: a rule that yields thousands (a loop over numbers.range) would
// otherwise make a denial or a PolicyReport larger than the API server takes.
const MaxMessages = 100

// MaxMessageBytes bounds one message: MaxMessages messages of a rule that
// prints whole objects (sprintf("%v", [input.object])) would otherwise make a
// denial of megabytes. A longer message is cut at a character boundary and
// says how much was left out.
const MaxMessageBytes = 2048

// EvalTimeout bounds the rules' evaluation of one object on every path:
// validate and analyze have no request deadline, and a rule that does not
// end would stall an audit run. Past it, Evaluate fails (fail closed). A
// variable for the tests only.
var EvalTimeout = 5 * time.Second

// Evaluate runs the prepared rules on one object, within EvalTimeout. An
// evaluation error (a builtin failing, a rule producing a non-string
// message, the timeout) is returned: callers fail closed.
func (r *Rules) Evaluate(ctx context.Context, in Input) (Verdict, error) {
	var v Verdict
	err := bounded(ctx, func(ctx context.Context) (err error) {
		v, err = r.evaluate(ctx, in)
		return err
	})
	return v, err
}

// bounded runs f within EvalTimeout; an error past it says so. An error's
// text is cut as a message is (truncateMessage): OPA's errors quote the
// values they fail on (to_number of a 1 MiB field, a message that is an
// object), which would otherwise make a denial, an audit finding or a test's
// detail of megabytes.
func bounded(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, EvalTimeout)
	defer cancel()
	err := f(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("organisation rules did not finish within %s: %w", EvalTimeout, err)
	}
	if err != nil {
		if msg := truncateMessage(err.Error()); msg != err.Error() {
			err = cutError{msg, err}
		}
	}
	return err
}

// cutError is an error whose text was cut (bounded); it still unwraps to it.
type cutError struct {
	msg string
	err error
}

func (e cutError) Error() string { return e.msg }
func (e cutError) Unwrap() error { return e.err }

func (r *Rules) evaluate(ctx context.Context, in Input) (Verdict, error) {
	if in.NamespaceLabels == nil {
		in.NamespaceLabels = map[string]string{}
	}
	if in.Referenced == nil {
		in.Referenced = []map[string]any{}
	}
	// Convert the input to a Rego value once for both queries (rego.EvalInput
	// would convert it, through a JSON round trip, once per query).
	var object any
	if in.Object != nil {
		object = in.Object
	}
	refs := make([]any, len(in.Referenced))
	for i, ref := range in.Referenced {
		refs[i] = ref
	}
	doc := map[string]any{
		"kind": in.Kind, "object": object, "namespaceLabels": in.NamespaceLabels, "referenced": refs,
		"operation": in.Operation,
	}
	// Absent rather than null, as an AdmissionRequest's oldObject on CREATE.
	if in.OldObject != nil {
		doc["oldObject"] = in.OldObject
	}
	value, err := ast.InterfaceToValue(doc)
	if err != nil {
		return Verdict{}, fmt.Errorf("organisation rules: converting the input: %w", err)
	}
	var v Verdict
	if v.Deny, err = eval(ctx, r.deny, value, "deny"); err != nil {
		return Verdict{}, err
	}
	if v.Warn, err = eval(ctx, r.warn, value, "warn"); err != nil {
		return Verdict{}, err
	}
	return v, nil
}

func eval(ctx context.Context, q rego.PreparedEvalQuery, input ast.Value, rule string) ([]string, error) {
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluating organisation rule %s: %w", rule, err)
	}
	var out []string
	for _, res := range rs {
		for _, e := range res.Expressions {
			// A set and an array both come as []any: both are accepted,
			// as conftest accepts them (policy/engine.go Engine.query).
			set, ok := e.Value.([]any)
			if !ok {
				return nil, fmt.Errorf("organisation rule %s: must be a set (or array) of strings, got %T", rule, e.Value)
			}
			for _, m := range set {
				s, ok := m.(string)
				if !ok {
					return nil, fmt.Errorf("organisation rule %s: message %v is not a string", rule, m)
				}
				out = append(out, truncateMessage(s))
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxMessages {
		out = append(out[:MaxMessages-1], fmt.Sprintf("… and %d more %s messages of the organisation rules", len(out)-MaxMessages+1, rule))
	}
	return out, nil
}

func truncateMessage(s string) string { return textcut.Marked(s, MaxMessageBytes) }

// TestResult is one Rego unit test's outcome.
type TestResult struct {
	Name   string
	Passed bool
	Detail string
}

// IsModule reports whether a file or ConfigMap key name is a rule module:
// *.rego, matched case-insensitively as directories are listed
// (dirwalk.Files), and not a Rego test (*_test.rego). One rule for a rules
// directory and the rule ConfigMaps, so a ConfigMap reads the same whether it
// is mounted or watched.
func IsModule(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".rego") && !strings.HasSuffix(n, "_test.rego")
}

// readModules reads every *.rego file under dir (the *_test.rego ones only
// with tests), each at most MaxModuleBytes, by the rules of every directory
// input (dirwalk.Files: hidden entries skipped; a mounted ConfigMap read
// from the content directory its ..data link points at, so each key is one
// module and all are of one version; links only to files inside dir).
func readModules(dir string, tests bool) ([]Module, error) {
	root, files, err := dirwalk.Files(dir, dirwalk.Options{Exts: []string{".rego"}, Confine: true})
	if err != nil {
		return nil, err
	}
	var mods []Module
	for _, rel := range files {
		if !tests && !IsModule(rel) {
			continue
		}
		// A regular file only (manifest.ReadFile): a FIFO put in its place
		// since the listing would block the load for good.
		name := filepath.Join(dir, rel)
		src, err := manifest.ReadFile(filepath.Join(root, rel), MaxModuleBytes)
		if errors.Is(err, manifest.ErrTooLarge) {
			return nil, checkModuleSize(name, MaxModuleBytes+1)
		}
		if err != nil {
			return nil, err
		}
		mods = append(mods, Module{Name: name, Source: string(src)})
	}
	return mods, nil
}

func checkModuleSize(name string, n int) error {
	if n > MaxModuleBytes {
		return fmt.Errorf("%s: over the %d-byte limit of a rule module", name, MaxModuleBytes)
	}
	return nil
}

// RunTests runs the Rego unit tests of dir: every rule named test_* (in any
// package of any .rego file, usually *_test.rego) passes when it evaluates to
// true, as `opa test DIR` decides. OPA's own runner (package tester) is not
// used because it links the Go testing package, which the product binary must
// not (test/binary TestProductBinaryLinksNoTestCode); rules named todo_* are
// skipped by both, data files are not loaded here.
func RunTests(ctx context.Context, dir string) ([]TestResult, error) {
	modules, err := readModules(dir, true)
	if err != nil {
		return nil, fmt.Errorf("running Rego tests in %s: %w", dir, err)
	}
	var parsed []*ast.Module
	type test struct{ name, query string }
	var tests []test
	rules := map[string]int{} // the test rules of each name so far
	slices.SortFunc(modules, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	for _, mod := range modules {
		m, err := ast.ParseModuleWithOpts(mod.Name, mod.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("running Rego tests in %s: %w", dir, err)
		}
		parsed = append(parsed, m)
		for _, r := range m.Rules {
			// A test is a rule any of whose ground ref terms starts with
			// test_, as OPA's tester.Runner.shouldRun decides.
			ref := r.Head.Ref()
			ground := ref.GroundPrefix()
			i := slices.IndexFunc(ground, func(t *ast.Term) bool {
				return strings.HasPrefix(strings.Trim(t.Value.String(), `"`), "test_")
			})
			if i < 0 {
				continue
			}
			// opa test fails a parameterized test by tracing its cases; its
			// value alone does not show a failed case: refuse, never skip.
			if len(ground) < len(ref) {
				return nil, fmt.Errorf("running Rego tests in %s: %s: parameterized test %s is not supported (run opa test)", dir, r.Location, ref)
			}
			// opa test runs every rule of a test name on its own, the second
			// and later ones renamed name#01, name#02, ...
			// (tester.rewriteDuplicateTestNames): queried together they are
			// true when any one is, and a failing rule would pass.
			key := m.Package.Path.Extend(ground[:i+1]).String()
			if n := rules[key]; n > 0 {
				ground = ground.Copy()
				name := fmt.Sprintf("%s#%02d", strings.Trim(ground[i].Value.String(), `"`), n)
				if i == 0 {
					ground[i] = ast.VarTerm(name)
				} else {
					ground[i] = ast.StringTerm(name)
				}
				r.Head.SetRef(ground)
			}
			rules[key]++
			tests = append(tests, test{m.Package.Path.String() + "." + ground.String(), m.Package.Path.Extend(ground).String()})
		}
	}
	// The modules compiled once for every test, as opa test compiles them.
	queries := make([]string, len(tests))
	for i, t := range tests {
		queries[i] = t.query
	}
	pqs, err := prepare(ctx, parsed, queries...)
	if err != nil {
		return nil, fmt.Errorf("running Rego tests in %s: %w", dir, err)
	}
	out := make([]TestResult, 0, len(tests))
	for i, t := range tests {
		pq := pqs[i]
		tr := TestResult{Name: t.name}
		var rs rego.ResultSet
		// Each test within EvalTimeout, as opa test's per-test timeout (5 s).
		err = bounded(ctx, func(ctx context.Context) (err error) {
			rs, err = pq.Eval(ctx)
			return err
		})
		switch {
		case err != nil:
			tr.Detail = err.Error()
		case len(rs) == 1 && len(rs[0].Expressions) == 1 && rs[0].Expressions[0].Value == true:
			tr.Passed = true
		default:
			tr.Detail = "failed"
		}
		out = append(out, tr)
	}
	return out, nil
}

// InputFor builds a rule's input for one object (kind, namespace, name; its
// decoded spec and whole object) as it stands in the indexed set ix: the
// labels of its namespace and the objects it refers to, resolved by
// ix.References (the cross-reference checks' resolution), and adm's
// operation and old object (both empty outside admission). A nil ix (an
// object judged alone) gives neither labels nor referenced objects.
func InputFor(ix *crossref.Index, kind, namespace, name string, spec proto.Message, obj map[string]any, adm Admission) (Input, error) {
	in := Input{Kind: kind, Object: withNamespace(obj, namespace), Admission: adm}
	if adm.OldObject != nil {
		in.OldObject = withNamespace(adm.OldObject, namespace)
	}
	if ix == nil {
		return in, nil
	}
	in.NamespaceLabels = ix.NamespaceLabels(namespace)
	for _, ref := range ix.References(kind, crossref.Key{Namespace: namespace, Name: name}, spec) {
		o, err := ref.Object()
		if err != nil {
			return Input{}, fmt.Errorf("%s %s/%s: rendering referenced %s %s: %w", kind, namespace, name, ref.Kind, ref.Key, err)
		}
		in.Referenced = append(in.Referenced, o)
	}
	return in, nil
}

// ProblemPrefix starts every organisation-rule message in validate's and the
// webhook's output ("VirtualService ns/name: organisation rule: ...").
const ProblemPrefix = "organisation rule: "

// Check evaluates the rules on one object within ix (see InputFor) and
// words the verdict as validation problems: deny messages are errors, warn
// messages warnings, and a rule that fails to evaluate is an error (fail
// closed). `meshguard validate --rego` (a zero adm) and the webhook both use
// it, so they print the same lines.
func Check(ctx context.Context, r *Rules, ix *crossref.Index, kind, namespace, name string, spec proto.Message, obj map[string]any, adm Admission) (errs, warns []validation.Problem) {
	in, err := InputFor(ix, kind, namespace, name, spec, obj, adm)
	var v Verdict
	if err == nil {
		v, err = r.Evaluate(ctx, in)
	}
	if err != nil {
		return []validation.Problem{{Message: err.Error()}}, nil
	}
	for _, m := range v.Deny {
		errs = append(errs, validation.Problem{Message: ProblemPrefix + m})
	}
	for _, m := range v.Warn {
		warns = append(warns, validation.Problem{Message: ProblemPrefix + m})
	}
	return errs, warns
}

// withNamespace returns obj with metadata.namespace set to ns when it names
// none (a file applied with -n, an admission request whose object omits it),
// so rules read the namespace the object is in, on every path. obj is not
// modified.
func withNamespace(obj map[string]any, ns string) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	if have, _ := md["namespace"].(string); have != "" || ns == "" {
		return obj
	}
	out := maps.Clone(obj)
	md = maps.Clone(md)
	if md == nil {
		md = map[string]any{}
	}
	md["namespace"] = ns
	out["metadata"] = md
	return out
}
