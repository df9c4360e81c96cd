// Package policy evaluates Istio AuthorizationPolicy and PeerAuthentication
// for Envoy ext_authz CheckRequests through OPA. Each policy set is
// translated (translate.go) and rendered into Rego v1 modules, one per shard
// of namespaces (regogen.go, each after the embedded prelude
// rego/authz.rego), whose rules OPA's rule index selects by destination
// namespace and workload labels; they are compiled and prepared into an
// immutable Snapshot, a shard unchanged since the previous snapshot is
// reused rather than compiled again (CompileNext), and Engine swaps
// snapshots atomically so no request waits on a compile. docs/benchmarks.md has the
// measurements behind the design.
package policy

import (
	"context"
	"crypto/sha256"
	"embed"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/internal/regocaps"
	"github.com/meshguard/meshguard/internal/submap"
	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/reload"
)

//go:embed rego/authz.rego
var regoFS embed.FS

// UserPackage is the package user modules must declare (docs/authz-user-rego.md).
const UserPackage = "meshguard.user"

const query = "data.meshguard.authz.result"

// Set is one complete policy state.
type Set struct {
	AuthorizationPolicies []*secv1.AuthorizationPolicy
	PeerAuthentications   []*secv1.PeerAuthentication
	// RequestAuthentications: read only for the headers their jwt_authn
	// providers change before Istio's RBAC filter (jwtheaders.go).
	RequestAuthentications []*secv1.RequestAuthentication
	Pods                   []*corev1.Pod
	// UserModules: file name → Rego v1 source in package meshguard.user.
	UserModules map[string]string

	// verdicts: `meshguard validate`'s verdict on the raw document of the
	// objects AddYAML and AddStored decoded ("" = valid); the others, given as
	// Go values, are validated in their typed form (validateStored).
	verdicts map[any]string
	// docValidations: documents AddYAML ran the validation rules on (not
	// accepted from the memo, validateDocMemo).
	docValidations int
}

// Hit names a policy and the index of its first matching rule.
type Hit struct {
	Policy string `json:"policy"`
	Rule   int    `json:"rule"`
}

// Verdict is the outcome of one Check. The JSON form is the contract of
// `meshguard authz check` (cmd/meshguard/authz_test.go); the other fields
// feed headers, logs and metrics.
type Verdict struct {
	Allowed bool   `json:"allowed"`
	Status  int    `json:"status"`
	Action  string `json:"action"` // ALLOW, DENY, AUDIT, NONE
	Policy  string `json:"policy"`
	Rule    int    `json:"rule"`
	Reason  string `json:"reason"`

	Mode            string            `json:"-"` // effective PeerAuthentication mode (a gateway's pods: the one selected, not enforced)
	ModePolicy      string            `json:"-"` // the PeerAuthentication ("ns/name") the mode came from; "" = mesh default PERMISSIVE
	Audit           []Hit             `json:"-"`
	Custom          []Hit             `json:"-"` // CUSTOM policies that matched (reported, not enforced)
	DryRunDeny      []Hit             `json:"-"`
	DryRunAllow     []Hit             `json:"-"`
	ResponseHeaders map[string]string `json:"-"` // from user modules
	Version         uint64            `json:"-"`
}

// Snapshot is an immutable, prepared policy generation.
type Snapshot struct {
	Version  uint64
	Warnings []string
	Policies int // AuthorizationPolicies (incl. CUSTOM/dry-run)
	Peers    int
	Pods     int
	// Failed: stored policies that cannot be evaluated; the workloads an
	// ALLOW, DENY or PeerAuthentication among them selects are denied
	// (Verdict.Rule FailClosedRule), an AUDIT, CUSTOM or dry-run one is
	// reported for every request and denies nothing (FailedPolicy.Denies);
	// the rest serves.
	Failed []FailedPolicy
	// Shards: compiled modules the policy set was generated into; Compiled:
	// how many of them this snapshot compiled (the others were reused,
	// byte-identical, from the previous snapshot, see CompileNext);
	// Generated: how many modules it generated (the others were reused by
	// their inputs, without generating them, see shardInputKey).
	Shards, Compiled, Generated int
	// Translated: AuthorizationPolicies this snapshot translated (the others'
	// translations were reused from the previous snapshot, translatememo.go).
	Translated int

	failedReason map[string]string
	// selectsByLabel: the views (namespaces of views, and viewDefault)
	// where a request to a destination missing from the Pod index cannot
	// be decided (see undecidable).
	selectsByLabel map[string]bool
	// userReads: what of the destination user modules read (undecidable).
	userReads destReads
	// jwtRewrites: the headers RequestAuthentications' jwt_authn providers
	// change before Istio's RBAC filter (jwtHeadersUnknown).
	jwtRewrites []jwtRewrite
	mesh        Mesh
	pods        map[string]*workload
	// unindexedProxied says why a destination not in the Pod index may be a
	// gateway taking PROXY protocol headers though the mesh's default does
	// not (podIndex), or "".
	unindexedProxied string
	// views: namespaces with own policies (input.view) and their shard;
	// every other namespace is evaluated in dflt, the shard of view "*".
	views     map[string]viewShard
	dflt      *shard
	dfltReads *viewReads // dflt's reads of view "*"
	// shards: by shardOf(view, len(shards)); nil where no view falls.
	shards []*shard
	// byInput: the shards by shardInputKey, for CompileNext to reuse a
	// shard whose inputs did not change without generating its module.
	byInput map[[sha256.Size]byte]*shard
	// translated: each AuthorizationPolicy's translation, for CompileNext
	// to reuse (translatememo.go).
	translated map[*secv1.AuthorizationPolicy]*translatedAP
	// withoutUser: this snapshot's policies without the user modules,
	// answering for it when its evaluation fails under --fail-open
	// (failopen.go); nil without user modules or fallback.
	withoutUser *Snapshot
	// policyOnly: this is a withoutUser, which evaluates the shards'
	// direct query (the generated verdict) even where they have user modules.
	policyOnly bool
}

type viewShard struct {
	term  *ast.Term
	sh    *shard
	reads *viewReads // sh.attrReads of this view
}

// shard is one compiled module (shardGen) with everything evaluation needs.
// Shards are shared by successive snapshots (CompileNext), so a shard holds
// nothing of one snapshot (version, pods, failed policies, mesh settings
// are the Snapshot's) and is never written after compileShard.
type shard struct {
	key    [sha256.Size]byte      // shardKey: mesh settings, module text, user modules
	module string                 // generated Rego, kept only with keepModuleText
	needs  inputNeeds             // the input fields this module reads
	user   bool                   // compiled with user modules: pq answers
	pq     rego.PreparedEvalQuery // with user modules only
	// Per-request OPA overhead avoided (OPA's v1/rego Go docs: EvalParsedInput,
	// EvalTransaction): one read
	// transaction on the shard's private, never-written empty store, and
	// a shared never-cancelled Cancel instead of a goroutine per query
	// (for the direct query; pq's evaluation UserEvalTimeout bounds).
	txn    storage.Transaction
	cancel topdown.Cancel
	// compiler/query/store: the prepared module for direct topdown queries.
	// query reads the generated verdict only: without user modules the
	// shard's one query, with them the --fail-open fallback's, which then
	// shares the compiled module with pq instead of a second compile
	// (failopen.go).
	compiler *ast.Compiler
	query    ast.Body
	store    storage.Store
	// paConst: the effective PeerAuthentication when it is the same for every
	// request (genInfo.paConst); the query then does not evaluate pa_eff.
	paConst *ast.Term
	// userReads: what of the destination the user modules read (see
	// userDestinationReads); zero without user modules.
	userReads destReads
	// attrReads: per view of the shard, the attributes of attrReads its
	// policies match on (viewAttrReads), taken when the shard is generated:
	// a shard reused for unchanged inputs is not translated again, and its
	// reused policies carry no rules in the next snapshot's data.
	attrReads map[string]*viewReads
	queries   sync.Pool // *queryState
}

var varD, varM, varX = ast.Var("d"), ast.Var("m"), ast.Var("x")

var noMetrics = metrics.NoOp()

// Compile translates and prepares a Set. It is pure: no shared state.
func Compile(ctx context.Context, mesh Mesh, set *Set, version uint64) (*Snapshot, error) {
	return CompileNext(ctx, nil, mesh, set, version)
}

// CompileNext is Compile reusing prev's compiled shards: a shard made from
// the same inputs as one of prev (shardInputKey) is shared without
// generating its module, and one whose generated module (and mesh settings
// and user modules) is byte-identical to one of prev is shared, not parsed
// and compiled again, so a rebuild after a change costs about what changed
// (docs/benchmarks.md "ext_authz: what the evaluation does and what
// changed"). prev may be nil.
func CompileNext(ctx context.Context, prev *Snapshot, mesh Mesh, set *Set, version uint64) (*Snapshot, error) {
	k := maxShards
	if len(set.UserModules) > 0 {
		k = 1 // user modules see one package, as the rego package evaluates it
	}
	return compileShards(ctx, prev, mesh, set, version, k)
}

func compileShards(ctx context.Context, prev *Snapshot, mesh Mesh, set *Set, version uint64, k int) (*Snapshot, error) {
	mesh = mesh.withDefaults()
	pn, err := ParsePathNormalization(mesh.PathNormalization)
	if err != nil {
		return nil, fmt.Errorf("mesh pathNormalization %w", err)
	}
	mesh.PathNormalization = pn
	t := newTranslator(mesh)
	var reuse map[*secv1.AuthorizationPolicy]*translatedAP
	if prev != nil && prev.mesh.sameTranslation(mesh) {
		reuse = prev.translated
	}
	t.memo = newTranslationMemo(reuse, len(set.AuthorizationPolicies))
	// Every object runs `meshguard validate`'s rules; one it rejects (stored
	// before the webhook, or by an older meshguard) fails closed.
	t.invalidAP = map[*secv1.AuthorizationPolicy]string{}
	for _, ap := range set.AuthorizationPolicies {
		if r := validateStored(set, "AuthorizationPolicy", ap); r != "" {
			t.invalidAP[ap] = r
		}
	}
	t.invalidPA = map[*secv1.PeerAuthentication]string{}
	for _, pa := range set.PeerAuthentications {
		if r := validateStored(set, "PeerAuthentication", pa); r != "" {
			t.invalidPA[pa] = r
		}
	}
	d := t.build(set.AuthorizationPolicies, set.PeerAuthentications)
	prelude, err := regoFS.ReadFile("rego/authz.rego")
	if err != nil {
		return nil, fmt.Errorf("read embedded rego/authz.rego: %w", err)
	}
	gen := planShards(d, len(set.UserModules) > 0, k)
	var paConst *ast.Term
	if gen.paConst != "" {
		if paConst, err = ast.ParseTerm(gen.paConst); err != nil {
			return nil, fmt.Errorf("parse constant PeerAuthentication %s: %w", gen.paConst, err)
		}
	}
	settings := settingsKey(mesh, set.UserModules, string(prelude))
	common, commonErr := commonInputKey(settings, gen.paConst, d)
	reusable := map[[sha256.Size]byte]*shard{}
	var byInput map[[sha256.Size]byte]*shard
	if prev != nil {
		for _, sh := range prev.shards {
			if sh != nil {
				reusable[sh.key] = sh
			}
		}
		byInput = prev.byInput
	}
	snap := &Snapshot{Version: version, mesh: mesh, shards: make([]*shard, k), views: make(map[string]viewShard, len(gen.views)),
		byInput: map[[sha256.Size]byte]*shard{}, translated: t.memo.next}
	for i := range gen.shards {
		sg := &gen.shards[i]
		if len(sg.views) == 0 {
			continue
		}
		// A shard made from the same inputs as one of prev is reused
		// without generating its module; otherwise it is generated, and
		// reused if its module is byte-identical to one of prev's.
		inputKey, keyErr := shardInputKey(common, d, sg.views)
		if commonErr != nil {
			keyErr = commonErr
		}
		var sh *shard
		if keyErr == nil { // else the inputs cannot be identified: generate
			sh = byInput[inputKey]
		}
		if sh == nil {
			for _, vn := range sg.views {
				if err := t.materialize(d.view(vn)); err != nil {
					return nil, fmt.Errorf("translate: %w", err)
				}
			}
			if err := generateShard(string(prelude), d.view, gen.paConst, len(set.UserModules) > 0, sg); err != nil {
				return nil, fmt.Errorf("generate rego: %w", err)
			}
			snap.Generated++
			key := shardKey(settings, sg.modText)
			// A byte-identical module has the same conditions, so a
			// reused shard's attrReads are this one's.
			if sh = reusable[key]; sh == nil {
				if sh, err = compileShard(ctx, sg, set.UserModules, paConst); err != nil {
					return nil, err
				}
				sh.key = key
				sh.attrReads = make(map[string]*viewReads, len(sg.views))
				for _, vn := range sg.views {
					sh.attrReads[vn] = viewAttrReads(d.view(vn))
				}
				snap.Compiled++
			}
		}
		if keyErr == nil {
			snap.byInput[inputKey] = sh
		}
		snap.shards[i] = sh
		snap.Shards++
		snap.userReads |= sh.userReads
		for _, v := range sg.views {
			if v == viewDefault {
				snap.dflt, snap.dfltReads = sh, sh.attrReads[v]
				continue
			}
			snap.views[v] = viewShard{term: ast.StringTerm(v), sh: sh, reads: sh.attrReads[v]}
		}
	}
	pods, warn, unindexedProxied := podIndex(set.Pods)
	snap.unindexedProxied = unindexedProxied
	failedReason := map[string]string{}
	for i := range t.failed {
		f := &t.failed[i]
		failedReason[f.ID] = f.Object + " cannot be evaluated (fail closed): " + f.Reason
	}
	snap.Failed, snap.failedReason, snap.Translated = t.failed, failedReason, t.memo.translated
	snap.selectsByLabel = selectsByLabel(d)
	snap.jwtRewrites = jwtRewrites(mesh, set)
	snap.Warnings = append(t.warnings, warn...)
	snap.Policies, snap.Peers, snap.Pods, snap.pods = len(set.AuthorizationPolicies), len(set.PeerAuthentications), len(pods), pods
	return snap, nil
}

// shardKey identifies a compiled shard: everything its compiled form
// depends on. The settings (settingsKey) are included although the mesh
// reaches the module only through its text, so a mesh change never reuses
// a shard.
func shardKey(settings [sha256.Size]byte, module string) [sha256.Size]byte {
	w := &keyWriter{h: sha256.New()}
	w.buf = append(w.buf, settings[:]...)
	w.str(module)
	return w.sum()
}

// generatedModuleName is the generated module's name among the user
// modules, which are named by their path relative to their directory: a
// relative path never starts with "/", so no user file can take it (one
// that did had replaced the generated module, and every check failed
// "undefined result"). compileShard refuses the name for a Set built
// otherwise.
const generatedModuleName = "/generated/meshguard/authz.rego"

// compileShard parses, compiles and prepares one generated module (plus the
// user modules, which come with one shard only).
func compileShard(ctx context.Context, sg *shardGen, userModules map[string]string, paConst *ast.Term) (*shard, error) {
	mod, err := ast.ParseModuleWithOpts(generatedModuleName, sg.modText, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("parse generated rego: %w", err)
	}
	shareRuleLocations(mod)
	modules := map[string]*ast.Module{generatedModuleName: mod}
	var userReads destReads
	names := make([]string, 0, len(userModules))
	for n := range userModules {
		names = append(names, n)
	}
	sort.Strings(names) // the first bad module reported is always the same
	user := make(map[string]*ast.Module, len(userModules))
	for _, n := range names {
		if n == generatedModuleName {
			return nil, fmt.Errorf("user rego module %s: the name of the generated module: rename it", n)
		}
		m, err := ast.ParseModuleWithOpts(n, userModules[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("user rego module %s: %w", n, err)
		}
		if got := strings.TrimPrefix(m.Package.Path.String(), "data."); got != UserPackage {
			return nil, fmt.Errorf("user rego module %s: package %s: must be %s", n, got, UserPackage)
		}
		modules[n], user[n] = m, m
		userReads |= userDestinationReads(m)
	}
	if len(user) > 0 {
		if err := checkUserOutputs(user); err != nil {
			return nil, err
		}
	}
	// Compiled here rather than by the rego package, so the compiled form
	// can be compacted before anything else sees it.
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if len(userModules) == 0 {
		compiler = compiler.WithCapabilities(generatedCapabilities)
	} else {
		// A user module runs on every request: no call may leave the process.
		compiler = compiler.WithCapabilities(regocaps.WithoutNetwork())
	}
	compiler.Compile(modules)
	mod, modules = nil, nil
	if compiler.Failed() {
		return nil, fmt.Errorf("compile rego: %w", compiler.Errors)
	}
	compactCompiled(compiler)
	store := inmem.New()
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("open store transaction: %w", err)
	}
	sh := &shard{needs: sg.needs, compiler: compiler, store: store, txn: txn, paConst: paConst, userReads: userReads,
		user: len(userModules) > 0, cancel: topdown.NewCancel()}
	if keepModuleText {
		sh.module = sg.modText
	}
	// The same compiled module, queried through topdown directly (see
	// eval). Decision, mode and reports are separate bindings, so no
	// result array is built per request. With user modules it is the
	// verdict without them (failopen.go): user_deny, the decision's one
	// reference to them (regogen.go generateShard), is replaced by an empty
	// list, and OPA evaluates only the rules a query depends on, so no
	// user rule runs.
	qs := "d = data.meshguard.authz.decision"
	if sh.user {
		qs += " with data.meshguard.authz.user_deny as []"
	}
	if paConst == nil {
		qs += "; m = data.meshguard.authz.pa_eff"
	}
	if sg.extras {
		qs += "; x = data.meshguard.authz.extras"
	}
	if sh.query, err = compiler.QueryCompiler().Compile(ast.MustParseBody(qs)); err != nil {
		return nil, fmt.Errorf("compile query %s: %w", qs, err)
	}
	if sh.user {
		sh.pq, err = rego.New(
			rego.Query(query),
			rego.Compiler(compiler),
			// No policy data: everything is compiled into the module.
			rego.Store(store),
			rego.SetRegoVersion(ast.RegoV1),
			// A builtin error in a user module (base64.decode or to_number of
			// a header a client sent) fails the evaluation instead of
			// leaving its deny undefined and the request allowed: answered
			// as an evaluation error (503, or the --fail-open fallback),
			// as organisation rules are (orgrules.prepare). The generated
			// rules, evaluated with them, never fail on a request's values
			// (TestGeneratedRulesUnchangedByStrictBuiltinErrors).
			rego.StrictBuiltinErrors(true),
			// Keep the result as AST: avoids converting it to Go maps per request.
			rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("prepare rego: %w", err)
		}
		return sh, nil
	}
	// The rule dependency graph serves the compiler's own stages (ordering,
	// recursion and type checks) and nothing after them: topdown never reads
	// it. Dropped, it is ≈ 4.5 MB less for the GC to mark at 10,000 policies.
	compiler.Graph = nil
	return sh, nil
}

// generatedBuiltins: every function and operator the prelude and the
// generator (regogen.go) write, after OPA's rewriting (`x in {…}` is
// internal.member_2). A compiler keeps a type tree of all the builtins its
// capabilities allow, rebuilt per compiler (OPA's ast.Compiler init and
// typeChecker Env, ≈ 85 kB each): with one compiler per shard, limiting it
// to these keeps a sharded snapshot's heap near one module's. A builtin
// missing here is a compile error (fail closed), never a changed meaning;
// user modules get OPA's full set less the builtins that reach another host.
var generatedBuiltins = []string{
	"eq", "assign", "equal", "neq", "gt", "count", "internal.member_2",
	"startswith", "endswith", "strings.any_prefix_match", "strings.any_suffix_match",
	"regex.match", "net.cidr_contains", "is_string", "is_array", "object.get", "indexof",
}

var generatedCapabilities = func() *ast.Capabilities {
	c := *ast.CapabilitiesForThisVersion()
	keep := map[string]bool{}
	for _, n := range generatedBuiltins {
		keep[n] = true
	}
	c.Builtins = nil
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if keep[b.Name] {
			c.Builtins = append(c.Builtins, b)
		}
	}
	return &c
}()

// keepModuleText keeps each shard's generated Rego for moduleText (the
// package's tests set it). Serving needs only the compiled form, and OPA's
// parser keeps its own copy of the text, which the parsed strings point
// into: a second one cost 4.4 MB at 10,000 policies (docs/benchmarks.md).
var keepModuleText bool

// moduleText is every shard's generated Rego (with keepModuleText).
func (s *Snapshot) moduleText() string {
	var b strings.Builder
	for _, sh := range s.shards {
		if sh != nil {
			b.WriteString(sh.module)
		}
	}
	return b.String()
}

// shareRuleLocations points every term and expression of the generated
// module at its rule's source location. OPA's parser gives each term its own
// Location (about a fifth of a 10,000-policy snapshot's heap, all of it
// pointers the GC marks on every cycle); errors about the generated module
// still name its rule's line.
func shareRuleLocations(mod *ast.Module) {
	for _, r := range mod.Rules {
		loc := r.Location
		for e := r; e != nil; e = e.Else {
			ast.WalkTerms(e.Head, func(t *ast.Term) bool { t.Location = loc; return false })
			ast.WalkExprs(e.Body, func(x *ast.Expr) bool { x.Location = loc; return false })
			ast.WalkTerms(e.Body, func(t *ast.Term) bool { t.Location = loc; return false })
		}
	}
}

// podIndex indexes pods by IP (indexPod) and says why a destination missing
// from the index may take PROXY protocol headers (ownProxyProtocol), reading
// each Pod's proxy config once for both (proxyWorkload).
func podIndex(pods []*corev1.Pod) (map[string]*workload, []string, string) {
	idx := make(map[string]*workload, len(pods))
	var warn []string
	var unindexedProxied string
	ws := make([]*workload, len(pods))
	for i, p := range pods {
		var err error
		ws[i], err = proxyWorkload(p)
		if unindexedProxied == "" {
			unindexedProxied = ownProxyProtocol(p, ws[i], err)
		}
	}
	// A terminating Pod still serves until its containers stop, so it stays
	// in the index (a request to a Pod missing from it may be denied, see
	// Snapshot.undecidable), but a running Pod that has its IP since wins:
	// terminating Pods first, and without a warning when one is replaced.
	// Two live (not terminating) Pods of other namespaces or labels on one
	// IP make it ambiguous (indexPod).
	var running []int
	ambiguous := map[string]bool{}
	for i, p := range pods {
		if p.DeletionTimestamp == nil {
			running = append(running, i)
			continue
		}
		warn = indexPod(idx, ambiguous, warn, p, ws[i])
	}
	for _, i := range running {
		warn = indexPod(idx, ambiguous, warn, pods[i], ws[i])
	}
	return idx, warn, unindexedProxied
}

// proxyWorkload is p's workload without its labels' term (indexPod adds it
// to the Pods it indexes): namespace, labels, proxy type and, for a gateway,
// its proxy.istio.io/config (setProxyConfig), or why that cannot be read
// (err, and xffErr naming the Pod).
func proxyWorkload(p *corev1.Pod) (*workload, error) {
	w := &workload{ns: p.Namespace, labels: p.Labels, terminating: p.DeletionTimestamp != nil, router: runsRouter(p), sidecar: runsSidecar(p)}
	if v, ok := p.Annotations[ProxyConfigAnnotation]; ok && w.gateway() {
		if err := w.setProxyConfig(v); err != nil {
			w.xffErr = fmt.Sprintf("Pod %s/%s: annotation %s: %v", p.Namespace, p.Name, ProxyConfigAnnotation, err)
			return w, err
		}
	}
	return w, nil
}

// indexPod adds p's IPs to idx; warn gets a live Pod's IP collision.
//
// Two live Pods whose namespace or labels differ on one IP (an IP reused
// while the informer still shows the old Pod, e.g. after a lost node) make
// the IP ambiguous: it leaves idx and stays out (ambiguous), whatever the
// order of pods, so a request to it is decided as one to an unknown
// destination (Snapshot.undecidable): denied wherever the policies in force
// depend on the workload's labels. Istio's sidecar knows its own workload
// (namespace and labels come with its node metadata; istiod's Pod cache keeps
// every Pod of an IP, pilot/pkg/serviceregistry/kube/controller/pod.go
// PodCache.getPodsByIP, and never picks one); meshguard can only infer the
// workload from the destination IP, and picking one Pod by list order (the
// informer cache's order is not fixed) could serve a STRICT or DENY-selected
// workload as another (fail open). Failing closed is the one safe reading.
// Pods of identical namespace and labels select the same policies: the IP
// stays. A terminating Pod still gives way to a live one without a warning.
func indexPod(idx map[string]*workload, ambiguous map[string]bool, warn []string, p *corev1.Pod, w *workload) []string {
	if p.Spec.HostNetwork {
		return warn // shares the node IP: cannot identify the workload
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		// Its containers have stopped and its IP may be a new Pod's; istiod
		// indexes only Pending and Running Pods by IP (pilot/pkg/
		// serviceregistry/kube/controller/pod.go PodCache.onEvent).
		return warn
	}
	ips := []string{}
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	terms := make([][2]*ast.Term, 0, len(p.Labels))
	for k, v := range p.Labels {
		terms = append(terms, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
	}
	w.labelsTerm = ast.ObjectTerm(terms...)
	if w.xffErr != "" {
		warn = append(warn, w.xffErr+"; remote.ip of requests to it with X-Forwarded-For, and source.ip over gRPC, are unknown (fail closed)")
	}
	for _, ip := range ips {
		ip = addrIP(ip)
		if ip == "" {
			continue
		}
		if ambiguous[ip] {
			warn = append(warn, fmt.Sprintf("Pod %s/%s: status.podIP %s: also used by live Pods of other namespaces or labels; "+
				"the IP stays out of the Pod index (requests to it fail closed where policies depend on labels)", p.Namespace, p.Name, ip))
			continue
		}
		if prev, ok := idx[ip]; ok && !prev.terminating && (prev.ns != w.ns || !maps.Equal(prev.labels, w.labels)) {
			warn = append(warn, fmt.Sprintf("Pod %s/%s: status.podIP %s: also used by another live Pod in %s with other namespace or labels; "+
				"the IP is ambiguous and left out of the Pod index (requests to it fail closed where policies depend on labels)", p.Namespace, p.Name, ip, prev.ns))
			delete(idx, ip)
			ambiguous[ip] = true
			continue
		}
		idx[ip] = w
	}
	return warn
}

// ownProxyProtocol says why a destination missing from the Pod index may be
// gateway Pod p, w its proxyWorkload (err: its proxy.istio.io/config cannot
// be read), whose listeners take PROXY protocol headers by that annotation,
// or "" (podIndex keeps the first Pod's reason). Such a Pod may be missing
// from the index for good (hostNetwork: it shares its node's IP; an
// ambiguous IP) or for a while, and a request to it then has Envoy's remote
// address, the PROXY header's client, as source.address
// (behindProxyProtocol): source.ip is unknown for every destination not in
// the index while the mesh has such a gateway (fail closed; the mesh's own
// default is behindProxyProtocol's other case).
func ownProxyProtocol(p *corev1.Pod, w *workload, err error) string {
	switch {
	case !w.gateway():
		return ""
	case err != nil:
		return fmt.Sprintf("the destination is not in the Pod index and may be gateway Pod %s/%s, whose annotation %s "+
			"cannot be read (%v): whether its listeners take the client address from a PROXY protocol header is unknown",
			p.Namespace, p.Name, ProxyConfigAnnotation, err)
	case w.ownXFFHops && w.proxyProtocol:
		return fmt.Sprintf("the destination is not in the Pod index and may be gateway Pod %s/%s, whose listeners take "+
			"the client address from a PROXY protocol header, its %s gatewayTopology.proxyProtocol",
			p.Namespace, p.Name, ProxyConfigAnnotation)
	}
	return ""
}

// ProxyConfigAnnotation is the Pod annotation whose ProxyConfig pilot-agent
// lays over the mesh's defaultConfig (pilot/cmd/pilot-agent/config
// getMeshConfig); a gateway's gatewayTopology comes from it.
const ProxyConfigAnnotation = "proxy.istio.io/config"

// setProxyConfig reads a gateway's trusted X-Forwarded-For hops and whether
// its listeners take PROXY protocol headers from its proxy.istio.io/config
// annotation v. pilot-agent applies the annotation
// last, replacing each field it sets (pkg/config/mesh ApplyProxyConfig,
// meshconfig.ParseProxyConfig): a gatewayTopology there replaces the mesh's
// whole, numTrustedProxies 0 when it leaves it out; without one the mesh's
// default stays (requestRemoteIP).
func (w *workload) setProxyConfig(v string) error {
	pc, err := meshconfig.ParseProxyConfig(&meshv1alpha1.ProxyConfig{}, v)
	if err != nil {
		return err
	}
	if gt := pc.GetGatewayTopology(); gt != nil {
		w.xffHops, w.ownXFFHops = int(gt.GetNumTrustedProxies()), true
		// Replaced with the rest of gatewayTopology: no proxyProtocol here
		// is none, whatever the mesh's (behindProxyProtocol).
		w.proxyProtocol = gt.GetProxyProtocol() != nil
	}
	return nil
}

// runsRouter: p is a gateway to Istio, whose proxy type is the one its
// istio-proxy container runs, `proxy router` in the gateway and kube-gateway
// injection templates (`proxy sidecar` for a sidecar).
func runsRouter(p *corev1.Pod) bool { return runsProxy(p.Spec.Containers, "router") }

// runsSidecar: p's istio-proxy, a container or a native sidecar (an init
// container), runs `proxy sidecar`, as the sidecar injection template writes it.
func runsSidecar(p *corev1.Pod) bool {
	return runsProxy(p.Spec.Containers, "sidecar") || runsProxy(p.Spec.InitContainers, "sidecar")
}

// runsProxy: an istio-proxy among cs runs `proxy <typ> ...`.
func runsProxy(cs []corev1.Container, typ string) bool {
	for _, c := range cs {
		if c.Name == "istio-proxy" && len(c.Args) >= 2 && c.Args[0] == "proxy" && c.Args[1] == typ {
			return true
		}
	}
	return false
}

// Check evaluates one request. A malformed request yields a 400 verdict, not
// an error; errors are internal failures (the caller maps them to 503).
func (s *Snapshot) Check(ctx context.Context, req *authv3.CheckRequest) (Verdict, error) {
	r, wl, err := decode(req, s.mesh, s.pods, s.unindexedProxied)
	if err != nil {
		return Verdict{Allowed: false, Status: 400, Action: "DENY", Rule: -1, Reason: "bad request: " + err.Error(), Version: s.Version}, nil
	}
	if wl == nil {
		if reason := s.undecidable(&r); reason != "" {
			return Verdict{Allowed: false, Status: 403, Action: "DENY", Rule: -1, Reason: reason, Version: s.Version}, nil
		}
	}
	return s.eval(ctx, &r, wl)
}

// attrReads: which request attributes policies match on that a request can
// lack. Envoy always knows the connection's addresses and port and sends
// them in a gRPC CheckRequest; HTTP ext_authz has them only from headers the
// operator adds, and never the JWT metadata (authz/http.go); the SNI of a
// TLS connection comes only with include_tls_session (Request.SNIUnknown).
// Matched against a missing one, an ipBlocks, ports, requestPrincipals or
// connection.sni DENY would never apply and a notIpBlocks ALLOW always would.
type attrReads uint8

const (
	readsSrcIP attrReads = 1 << iota
	readsRemoteIP
	readsDstIP
	readsDstPort
	readsJWT // requestPrincipals, request.auth.*
	readsSNI // connection.sni
	// readsContentLength: request.headers[content-length], which the HTTP
	// protocol does not have (Request.ContentLengthUnknown).
	readsContentLength
)

// attrFields: the cond fields (and their input attributes) of each.
var attrFields = map[string]attrReads{"srcip": readsSrcIP, "remoteip": readsRemoteIP, "dstip": readsDstIP, "port": readsDstPort,
	"reqp": readsJWT, "claim": readsJWT, "sni": readsSNI}

// decidingBuckets are the buckets whose policies can decide a request here:
// ALLOW and DENY, and with them every policy failed closed that denies (a
// failed ALLOW, DENY or PeerAuthentication goes to "deny", failBucket). The
// others never change a verdict: AUDIT (Istio: an RBAC filter with action
// LOG, pilot/pkg/security/authz/builder/builder.go build), CUSTOM (only
// reported: meshguard is the ext_authz server CUSTOM calls) and dry-run
// policies (Istio's shadow rules, builder.go isDryRun), so what they read
// or select never makes a request undecidable.
var decidingBuckets = [...]string{"allow", "deny"}

// viewReads is what of attrReads the deciding policies (decidingBuckets)
// and port-level PeerAuthentications of a view match on, by whom they may
// apply to: a request is undecidable only where a policy that may apply to
// its workload reads what it lacks (a requestPrincipals ALLOW selecting one
// workload does not make a namespace's every request without JWT metadata
// a denial). May apply: no selector (a failed PeerAuthentication's sidecar
// restriction ignored, an over-approximation that only denies more), or
// matchLabels its labels hold (a targetRefs policy's copies select their
// gateway's pods by GatewayNameLabel, translate.go); every policy when the
// workload is unknown.
type viewReads struct {
	all attrReads     // policies without a selector, port-level PeerAuthentications
	sel []selectReads // policies with a selector reading something
	any attrReads     // all and every sel's: nothing else can be missing
	// The request headers the policies match on (request.headers[...]),
	// which jwt_authn may change before Istio's RBAC filter reads them
	// (jwtHeadersUnknown): allHeaders those without a selector.
	allHeaders []string
	anyHeader  bool
}

type selectReads struct {
	sel     map[string]string
	reads   attrReads
	headers []string
}

// forWorkload is what the policies that may apply to a workload of labels
// (known: from the Pod index) read.
func (v *viewReads) forWorkload(labels map[string]string, known bool) attrReads {
	if v == nil {
		return 0
	}
	reads := v.all
	for _, s := range v.sel {
		if reads&s.reads == s.reads {
			continue
		}
		if !known || submap.Contains(labels, s.sel) {
			reads |= s.reads
		}
	}
	return reads
}

// headersFor is the request headers the policies that may apply to a
// workload of labels (known: from the Pod index) match on, sorted.
func (v *viewReads) headersFor(labels map[string]string, known bool) []string {
	hs := slices.Clone(v.allHeaders)
	for _, s := range v.sel {
		if len(s.headers) > 0 && (!known || submap.Contains(labels, s.sel)) {
			hs = append(hs, s.headers...)
		}
	}
	slices.Sort(hs)
	return slices.Compact(hs)
}

// viewAttrReads is view v's viewReads.
func viewAttrReads(v *view) *viewReads {
	out := &viewReads{}
	policyReads := func(p compiledPolicy) (attrReads, []string) {
		var reads attrReads
		var headers []string
		for _, rs := range [][]rule{p.Rules, p.TRules} {
			for _, r := range rs {
				reads |= ruleAttrReads(r)
				headers = ruleHeaders(r, headers)
			}
		}
		return reads, headers
	}
	for _, name := range decidingBuckets {
		b := v.B[name]
		if b == nil {
			continue
		}
		for _, p := range b.Any {
			reads, headers := policyReads(p)
			out.all |= reads
			out.allHeaders = append(out.allHeaders, headers...)
		}
		for _, byValue := range b.By {
			for _, ps := range byValue {
				for _, p := range ps {
					if reads, headers := policyReads(p); reads != 0 || len(headers) > 0 {
						out.sel = append(out.sel, selectReads{sel: p.Sel, reads: reads, headers: headers})
						out.any |= reads
						out.anyHeader = out.anyHeader || len(headers) > 0
					}
				}
			}
		}
	}
	slices.Sort(out.allHeaders)
	out.allHeaders = slices.Compact(out.allHeaders)
	out.anyHeader = out.anyHeader || len(out.allHeaders) > 0
	for _, w := range v.WL {
		if len(w.Ports) > 0 {
			out.all |= readsDstPort
		}
	}
	out.any |= out.all
	return out
}

// ruleAttrReads is what of attrReads rule r's conditions match on.
func ruleAttrReads(r rule) attrReads {
	var reads attrReads
	for _, og := range r.C {
		for _, ag := range og {
			for _, c := range ag {
				reads |= attrFields[c.F]
				if c.F == "header" && c.K == "content-length" {
					reads |= readsContentLength
				}
			}
		}
	}
	return reads
}

// ruleHeaders appends to hs the request headers rule r's conditions match on.
func ruleHeaders(r rule, hs []string) []string {
	for _, og := range r.C {
		for _, ag := range og {
			for _, c := range ag {
				if h, ok := c.K.(string); ok && c.F == "header" && !slices.Contains(hs, h) {
					hs = append(hs, h)
				}
			}
		}
	}
	return hs
}

// unknownAttribute says why r cannot get Envoy's verdict, or "": an
// attribute that a deciding policy of its view which may apply to its
// workload wl (nil: unknown, every policy may) matches on is missing (fail
// closed; docs/compatibility.md "Dynamic metadata and the HTTP protocol").
func unknownAttribute(r *Request, vr *viewReads, wl *workload) string {
	if vr == nil || vr.any == 0 {
		return ""
	}
	// Each attribute once: the read bit, whether r lacks it, and its name
	// for the reason (built only when it is reported).
	attrs := [...]struct {
		read    attrReads
		unknown bool
		name    func() string
	}{
		{readsSrcIP, r.SrcIP == "", func() string { return "source address" + r.srcIPUnknown }},
		{readsRemoteIP, r.RemoteIP == "", func() string { return "remote address" + r.remoteIPUnknown }},
		{readsDstIP, r.DstIP == "", func() string { return "destination address" }},
		{readsDstPort, r.DstPort == 0, func() string { return "destination port" }},
		{readsJWT, r.NoMetadata, func() string { return jwtUnknown(r) }},
		{readsSNI, r.SNIUnknown, func() string { return "SNI (connection.sni; no tls_session on a connection that is or may be TLS)" }},
		{readsContentLength, r.ContentLengthUnknown, func() string {
			return "content-length header (request.headers[content-length]; Envoy's HTTP ext_authz client sends its own)"
		}},
	}
	var lacks attrReads
	for _, a := range attrs {
		if a.unknown {
			lacks |= a.read
		}
	}
	if lacks&vr.any == 0 {
		return ""
	}
	var labels map[string]string
	if wl != nil {
		labels = wl.labels
	}
	reads := vr.forWorkload(labels, wl != nil) & lacks
	if reads == 0 {
		return ""
	}
	var missing []string
	for _, a := range attrs {
		if reads&a.read != 0 {
			missing = append(missing, a.name())
		}
	}
	return "the request has no " + strings.Join(missing, ", ") + ", which policies in force match on (fail closed)"
}

// jwtUnknown names the missing JWT in a deny reason (unknownAttribute):
// with why, where the CheckRequest lacked jwt_authn's metadata.
func jwtUnknown(r *Request) string {
	if r.jwtNotForwarded {
		return "JWT metadata (request.auth.*, requestPrincipals; no metadata_context from " + JWTAuthnFilter +
			": Istio's CUSTOM provider runs ext_authz before jwt_authn, see --authz-jwt-metadata)"
	}
	return "JWT metadata (request.auth.*, requestPrincipals)"
}

// selectsByLabel records, per view (a namespace with policies of its own,
// or viewDefault), whether a deciding policy (decidingBuckets) or
// a PeerAuthentication selects workloads by label, root-namespace policies
// included, or a DISABLE mode may apply (it hides the peer identity from a
// sidecar, not from a gateway's pods, which the labels tell apart: the
// generated `sidecar` rule). Istio's sidecar always knows its namespace and labels (it is the
// workload); meshguard finds them by the destination IP in its Pod index,
// and for a Pod it does not (yet) know it has at most the namespace, from
// destination.principal (mTLS only).
func selectsByLabel(d *data) map[string]bool {
	bySelector := func(v *view) bool {
		if len(v.WL) > 0 || hasDisable(v) {
			return true
		}
		for _, name := range decidingBuckets {
			if b := v.B[name]; b != nil && len(b.By) > 0 {
				return true
			}
		}
		return false
	}
	out := make(map[string]bool, len(d.NS)+1)
	for ns, v := range d.NS {
		out[ns] = bySelector(v)
	}
	out[viewDefault] = bySelector(d.Dflt)
	return out
}

// undecidable says why a request to a destination missing from the Pod
// index cannot get Istio's verdict, or "" when the policies in force do
// not depend on what is missing: evaluating it without labels would skip
// every policy that selects the workload, a DENY failing open. Denied
// instead (fail closed); docs/compatibility.md "Attribute sources".
func (s *Snapshot) undecidable(r *Request) string {
	dst := r.DstIP
	if dst == "" {
		dst = "(no address)"
	}
	if r.Namespace == "" {
		if len(s.views) > 0 || s.selectsByLabel[viewDefault] || s.userReads != 0 {
			return "destination " + dst + " unknown: no Pod with this IP and no namespace in destination.principal, " +
				"and policies apply by namespace or label (fail closed)"
		}
		return ""
	}
	view := r.Namespace
	if _, ok := s.views[view]; !ok {
		view = viewDefault
	}
	if s.selectsByLabel[view] {
		return "destination " + dst + " in namespace " + r.Namespace + " unknown: no Pod with this IP, " +
			"and policies select workloads by label (fail closed)"
	}
	if s.userReads&readsLabels != 0 {
		return "destination " + dst + " in namespace " + r.Namespace + " unknown: no Pod with this IP, " +
			"and a user Rego module reads the workload's labels (fail closed)"
	}
	return ""
}

// destReads: what of the destination workload a user module reads.
type destReads uint8

const (
	readsNamespace destReads = 1 << iota // input.ns, input.view
	readsLabels                          // input.labels or input.router, or input or the generated package as a whole
	// readsUserJWT: input.jwt, or input or the generated package as a
	// whole. Not of the destination, but found by the same walk: a request
	// whose JWT is unknown cannot be decided by such a module (eval).
	readsUserJWT
	readsAll = readsNamespace | readsLabels | readsUserJWT
)

// userDestinationReads finds, in a user module, the references that make
// its verdict depend on the destination's namespace or labels, which a
// request to a Pod missing from the index does not have. Anything it
// cannot see through (input as a whole, a computed key of input, the
// generated package's rules) counts as reading both.
func userDestinationReads(m *ast.Module) destReads {
	var reads destReads
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case ast.Ref:
			rest := x[1:]
			switch {
			case x[0].Equal(ast.InputRootDocument):
				key, ok := ast.String(""), len(x) > 1
				if ok {
					key, ok = x[1].Value.(ast.String)
				}
				switch {
				case !ok:
					reads |= readsAll
				case key == "labels" || key == "router": // router: from the Pod, like the labels
					reads |= readsNamespace | readsLabels
				case key == "ns" || key == "view": // the view is the namespace or "*"
					reads |= readsNamespace
				case key == "jwt":
					reads |= readsUserJWT
				}
				if len(x) > 1 {
					rest = x[2:]
				}
			case x[0].Equal(ast.DefaultRootDocument) && !x.HasPrefix(userPackageRef):
				reads |= readsAll
			default:
				if _, local := x[0].Value.(ast.Var); !local { // a composite or call head: {"a": input}.a
					vis.Walk(x[0])
				}
			}
			for _, t := range rest { // computed keys may read input themselves
				vis.Walk(t)
			}
			return true
		case *ast.Head:
			// GenericVisitor walks a head's name, key and value but not its
			// reference: h[input.labels.app].x := 1, h[input.ns] contains 1.
			for _, t := range x.Ref()[1:] {
				vis.Walk(t)
			}
			return false
		case ast.Var:
			// input or data outside a reference: anything may be read.
			if x.Equal(ast.InputRootDocument.Value) || x.Equal(ast.DefaultRootDocument.Value) {
				reads |= readsAll
			}
		}
		return false
	})
	vis.Walk(m)
	return reads
}

var userPackageRef = ast.MustParseRef("data." + UserPackage)

// CheckRequest evaluates already-decoded attributes (used by tests and tools).
func (s *Snapshot) CheckRequest(ctx context.Context, r *Request) (Verdict, error) {
	rc := *r // header names lower-cased as Envoy does, without changing the caller's map
	if len(r.Headers) > 0 {
		rc.Headers = lowerKeys(r.Headers)
	}
	// Addresses as decode gives them: canonical, or "" where not an
	// address, which is what the generated net.cidr_contains expects.
	rc.SrcIP, rc.RemoteIP, rc.DstIP = addrIP(r.SrcIP), addrIP(r.RemoteIP), addrIP(r.DstIP)
	r = &rc
	var wl *workload
	if r.Labels != nil {
		terms := make([][2]*ast.Term, 0, len(r.Labels))
		for k, v := range r.Labels {
			terms = append(terms, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
		}
		wl = &workload{ns: r.Namespace, labels: r.Labels, labelsTerm: ast.ObjectTerm(terms...)}
	}
	return s.eval(ctx, r, wl)
}

func (s *Snapshot) eval(ctx context.Context, r *Request, wl *workload) (Verdict, error) {
	view, sh, reads := s.view(r.Namespace)
	if reason := unknownAttribute(r, reads, wl); reason != "" {
		return Verdict{Allowed: false, Status: 403, Action: "DENY", Rule: -1, Reason: reason, Version: s.Version}, nil
	}
	if reason := s.jwtHeadersUnknown(r, reads, wl); reason != "" {
		return Verdict{Allowed: false, Status: 403, Action: "DENY", Rule: -1, Reason: reason, Version: s.Version}, nil
	}
	if sh == nil {
		return Verdict{}, fmt.Errorf("evaluate policy snapshot %d: no module for view %v", s.Version, view)
	}
	if sh.user && !s.policyOnly && sh.userReads&readsUserJWT != 0 && r.NoMetadata && !r.TCP {
		// input.jwt absent reads as "no token" to a module: an unknown JWT
		// cannot be told from none, so the module's verdict is unknown, as
		// a built-in policy's on request.auth.* is (unknownAttribute).
		return Verdict{Allowed: false, Status: 403, Action: "DENY", Rule: -1, Version: s.Version,
			Reason: "the request has no " + jwtUnknown(r) + ", which a user Rego module reads (input.jwt) (fail closed)"}, nil
	}
	in := r.value(wl, view, &sh.needs)
	if !sh.user || s.policyOnly {
		// Generated verdict only (bounded evaluation): topdown directly, which
		// skips the rego package's per-call result set, bindings and
		// cancellation goroutine; the query, its input term, virtual cache
		// and result slots are pooled per shard (see queryState).
		st := sh.getQueryState()
		defer sh.putQueryState(st)
		st.in.Value = in
		err := st.q.WithVirtualCache(st.vc).Iter(ctx, st.onResult)
		if err != nil {
			return Verdict{}, fmt.Errorf("evaluate policy snapshot %d: %w", s.Version, err)
		}
		d, m, x := st.d, st.m, st.x
		if sh.paConst != nil {
			m = sh.paConst
		}
		if st.n != 1 || d == nil || m == nil {
			return Verdict{}, fmt.Errorf("evaluate policy snapshot %d: undefined result", s.Version)
		}
		v, err := readParts(d, m, x, nil, s.Version)
		return s.explainFailure(v), err
	}
	vc := getCache()
	defer putCache(vc)
	// With user modules: bounded by UserEvalTimeout as well as the caller.
	uctx, cancel := context.WithTimeout(ctx, UserEvalTimeout)
	defer cancel()
	rs, err := sh.pq.Eval(uctx, rego.EvalParsedInput(in), rego.EvalTransaction(sh.txn), rego.EvalMetrics(noMetrics),
		rego.EvalVirtualCache(vc), rego.EvalBaseCache(noBaseCache{}))
	if err != nil {
		switch cerr := ctx.Err(); {
		case cerr != nil && topdown.IsCancel(err):
			// The caller's context ended it (context.Canceled: the client
			// went away; DeadlineExceeded: the call's deadline passed).
			err = fmt.Errorf("%w: %w", cerr, err)
		case uctx.Err() != nil && topdown.IsCancel(err):
			err = fmt.Errorf("user Rego modules did not finish within %s (policy.UserEvalTimeout): %w: %w", UserEvalTimeout, uctx.Err(), err)
		}
		return Verdict{}, fmt.Errorf("evaluate policy snapshot %d: %w", s.Version, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Verdict{}, fmt.Errorf("evaluate policy snapshot %d: undefined result", s.Version)
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Verdict{}, fmt.Errorf("evaluate policy snapshot %d: unexpected result %T", s.Version, rs[0].Expressions[0].Value)
	}
	v, err := readResult(t, s.Version)
	return s.explainFailure(v), err
}

// queryState is one pooled evaluation of the generated module: a prepared
// topdown query (its input term points at this state's term), the virtual
// cache and the result slots Iter fills. Pooled per shard because the
// query is bound to the shard's compiler, store and transaction; reusing
// it saves the per-request query, input term and closure allocations.
type queryState struct {
	q        *topdown.Query
	vc       *flatCache
	in       ast.Term
	n        int
	d, m, x  *ast.Term
	onResult func(topdown.QueryResult) error
}

func (s *shard) getQueryState() *queryState {
	if st, ok := s.queries.Get().(*queryState); ok {
		return st
	}
	st := &queryState{vc: getCache()}
	st.q = topdown.NewQuery(s.query).WithCompiler(s.compiler).WithStore(s.store).WithTransaction(s.txn).
		WithInput(&st.in).WithMetrics(noMetrics).WithCancel(s.cancel).WithIndexing(true).WithEarlyExit(true).
		WithBaseCache(noBaseCache{}).
		// Iter makes a request-metadata map per query when none is set; it is
		// only handed to builtins for wrapping projects and OPA's standard
		// builtins (all the generated module calls) never write it, so one
		// map per pooled state serves.
		WithRequestMetadata(map[string]any{})
	st.onResult = func(qr topdown.QueryResult) error {
		st.n++
		st.d, st.m, st.x = qr[varD], qr[varM], qr[varX]
		return nil
	}
	return st
}

func (s *shard) putQueryState(st *queryState) {
	st.vc.reset()
	st.q.WithTime(time.Time{}) // Iter sets the evaluation time when it is zero
	st.in.Value = nil
	st.n, st.d, st.m, st.x = 0, nil, nil, nil
	s.queries.Put(st)
}

// explainFailure names the policy and field of a fail-closed denial.
func (s *Snapshot) explainFailure(v Verdict) Verdict {
	if v.Action == "DENY" && v.Rule == FailClosedRule {
		if r, ok := s.failedReason[v.Policy]; ok {
			v.Reason = r
		}
	}
	return v
}

var (
	rAudit, rCustom     = ast.StringTerm("audit"), ast.StringTerm("custom")
	rDryAllow, rDryDeny = ast.StringTerm("dry_allow"), ast.StringTerm("dry_deny")
	rID, rMode          = ast.StringTerm("id"), ast.StringTerm("mode")
)

// readResult reads `result` = [decision, mode, reports?, user headers?]
// (see generateShard). decision is the PeerAuthentication object for "mTLS
// required", ["deny"|"allow", policy, rule], ["user", reason], or the
// strings "noallow" / "open".
func readResult(t *ast.Term, version uint64) (Verdict, error) {
	arr, ok := t.Value.(*ast.Array)
	if !ok || arr.Len() < 2 {
		return Verdict{}, fmt.Errorf("policy result: not an array")
	}
	var x, h *ast.Term
	if arr.Len() > 2 {
		x = arr.Elem(2)
	}
	if arr.Len() > 3 {
		h = arr.Elem(3)
	}
	return readParts(arr.Elem(0), arr.Elem(1), x, h, version)
}

// readParts reads the decision, the PeerAuthentication mode and the optional
// reports (extras) and user response headers.
func readParts(dt, mt, xt, ht *ast.Term, version uint64) (Verdict, error) {
	v := Verdict{Version: version, Rule: -1}
	// mt is the effective PeerAuthentication {"mode", "id"}.
	if o, ok := mt.Value.(ast.Object); ok {
		if t := o.Get(rMode); t != nil {
			ms, _ := t.Value.(ast.String)
			v.Mode = string(ms)
		}
		if t := o.Get(rID); t != nil {
			id, _ := t.Value.(ast.String)
			v.ModePolicy = string(id)
		}
	}
	switch d := dt.Value.(type) {
	case ast.Object:
		v.Action, v.Reason = "DENY", "mTLS required"
		if id, ok := d.Get(rID).Value.(ast.String); ok {
			v.Policy = string(id)
		}
	case *ast.Array:
		tag, _ := d.Elem(0).Value.(ast.String)
		switch {
		case tag == "user" && d.Len() == 2:
			r, _ := d.Elem(1).Value.(ast.String)
			v.Action, v.Policy, v.Reason = "DENY", "user", string(r)
		case (tag == "deny" || tag == "allow") && d.Len() == 3:
			id, _ := d.Elem(1).Value.(ast.String)
			v.Policy = string(id)
			if n, ok := d.Elem(2).Value.(ast.Number); ok {
				v.Rule, _ = n.Int()
			}
			if tag == "deny" {
				v.Action, v.Reason = "DENY", "denied by DENY policy"
			} else {
				v.Allowed, v.Action, v.Reason = true, "ALLOW", "allowed by ALLOW policy"
			}
		default:
			return Verdict{}, fmt.Errorf("policy result: unexpected decision %v", d)
		}
	case ast.String:
		switch d {
		case "noallow":
			v.Action, v.Reason = "NONE", "no matching ALLOW policy"
		case "open":
			v.Allowed, v.Action, v.Reason = true, "NONE", "no ALLOW policy for workload"
		default:
			return Verdict{}, fmt.Errorf("policy result: unexpected decision %v", d)
		}
	default:
		return Verdict{}, fmt.Errorf("policy result: unexpected decision %v", d)
	}
	if xt != nil {
		if x, ok := xt.Value.(ast.Object); ok {
			v.Audit = getHits(x, rAudit)
			v.Custom = getHits(x, rCustom)
			v.DryRunAllow = getHits(x, rDryAllow)
			v.DryRunDeny = getHits(x, rDryDeny)
		}
	}
	if ht != nil {
		if h, ok := ht.Value.(ast.Object); ok && h.Len() > 0 {
			v.ResponseHeaders = make(map[string]string, h.Len())
			h.Foreach(func(k, val *ast.Term) {
				ks, _ := k.Value.(ast.String)
				vs, _ := val.Value.(ast.String)
				v.ResponseHeaders[string(ks)] = string(vs)
			})
		}
	}
	if v.Allowed {
		v.Status = 200
		// AUDIT never changes the decision; it is reported when nothing else decided.
		if v.Action == "NONE" && len(v.Audit) > 0 {
			v.Action, v.Policy, v.Rule, v.Reason = "AUDIT", v.Audit[0].Policy, v.Audit[0].Rule, "audited; no ALLOW policy for workload"
		}
	} else {
		v.Status = 403
	}
	return v, nil
}

// getHits reads a reporting set of [age, policy, rule]: oldest policy first,
// one hit (its first matching rule) per policy.
func getHits(o ast.Object, k *ast.Term) []Hit {
	t := o.Get(k)
	if t == nil {
		return nil
	}
	set, ok := t.Value.(ast.Set)
	if !ok || set.Len() == 0 {
		return nil
	}
	var out []Hit
	sorted := set.Sorted()
	for i := 0; i < sorted.Len(); i++ {
		e := sorted.Elem(i)
		tr, ok := e.Value.(*ast.Array)
		if !ok || tr.Len() != 3 {
			continue
		}
		var h Hit
		if s, ok := tr.Elem(1).Value.(ast.String); ok {
			h.Policy = string(s)
		}
		if n, ok := tr.Elem(2).Value.(ast.Number); ok {
			h.Rule, _ = n.Int()
		}
		if len(out) > 0 && out[len(out)-1].Policy == h.Policy {
			continue
		}
		out = append(out, h)
	}
	return out
}

// view is the input.view key (the namespace if it has own policies, else
// "*") and the shard that holds its rules.
func (s *Snapshot) view(ns string) (*ast.Term, *shard, *viewReads) {
	if v, ok := s.views[ns]; ok {
		return v.term, v.sh, v.reads
	}
	return viewDefaultTerm, s.dflt, s.dfltReads
}

var viewDefaultTerm = ast.StringTerm(viewDefault)

// Engine holds the current snapshot. Update compiles a new one and swaps it
// in atomically; a failed update keeps the last good snapshot (reload.Store).
type Engine struct {
	mesh    atomic.Pointer[Mesh]
	cur     *reload.Store[Snapshot]
	version atomic.Uint64
	// fallback: compile each snapshot with user modules also without them
	// (EnableFailOpenFallback).
	fallback atomic.Bool
}

// EngineOption configures NewEngine.
type EngineOption func(*Engine)

// ReportUpdates makes the engine count, log and report its updates as r
// says (reload.Reporting); without it they are not reported.
func ReportUpdates(r reload.Reporting) EngineOption {
	return func(e *Engine) { e.cur = reload.NewStore[Snapshot](nil, r) }
}

// NewEngine returns an Engine with no snapshot; Check fails until Update succeeds.
func NewEngine(mesh Mesh, opts ...EngineOption) *Engine {
	// Validation loads its schemas on first use (~0.5 s): do it now, not when
	// the first policy arrives.
	go validateTyped("security.istio.io/v1", "PeerAuthentication", &secv1.PeerAuthentication{})
	e := &Engine{}
	e.SetMesh(mesh)
	for _, o := range opts {
		o(e)
	}
	if e.cur == nil {
		e.cur = reload.NewStore[Snapshot](nil, reload.Reporting{})
	}
	return e
}

// Mesh returns the mesh settings the engine compiles with.
func (e *Engine) Mesh() Mesh { return *e.mesh.Load() }

// SetMesh changes the mesh settings the next Update compiles with (a
// reloaded mesh config); the current snapshot keeps its own until then.
func (e *Engine) SetMesh(mesh Mesh) {
	m := mesh.withDefaults()
	e.mesh.Store(&m)
}

// Update compiles set and, on success, makes it current.
func (e *Engine) Update(ctx context.Context, set *Set) (*Snapshot, error) {
	return e.UpdateFrom(ctx, func(context.Context) (*Set, error) { return set, nil })
}

// UpdateFrom loads a set and compiles it; on success the snapshot becomes
// current. A failed load or compile keeps the last good snapshot and is
// reported once (ReportUpdates).
func (e *Engine) UpdateFrom(ctx context.Context, load func(context.Context) (*Set, error)) (*Snapshot, error) {
	return e.cur.Update(func() (*Snapshot, error) {
		set, err := load(ctx)
		if err != nil {
			return nil, err
		}
		// The current snapshot's unchanged shards are reused (CompileNext).
		prev, mesh := e.cur.Load(), e.Mesh()
		snap, err := CompileNext(ctx, prev, mesh, set, e.version.Add(1))
		if err == nil && e.fallback.Load() {
			snap.addFallback()
		}
		return snap, err
	})
}

// Snapshot returns the current snapshot or nil before the first Update.
func (e *Engine) Snapshot() *Snapshot { return e.cur.Load() }

// ErrNoSnapshot: no policy state loaded yet.
var ErrNoSnapshot = fmt.Errorf("no policy snapshot loaded yet")

// Check evaluates against the current snapshot.
func (e *Engine) Check(ctx context.Context, req *authv3.CheckRequest) (Verdict, error) {
	s := e.cur.Load()
	if s == nil {
		return Verdict{}, ErrNoSnapshot
	}
	return s.Check(ctx, req)
}
