package policy

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The Rego generator turns one translated policy set (translate.go, model.go)
// into Rego v1 modules, one per shard of views (see planShards, generateShard). Every policy rule becomes a rule body
// whose first expressions are equalities on ground input refs
// (`input.view == "ns"`, `input.labels["app"] == "web"`, `input.tcp == false`),
// so OPA's rule index selects the candidate policies of the destination
// workload without evaluating the others, and the match conditions are
// inlined as literal comparisons (OPA's policy-performance docs, "Use indexed
// statements" and the linear fragment). ALLOW and DENY
// are else-chains ordered oldest policy first, so evaluation stops at the
// first matching rule; reporting-only buckets (AUDIT, CUSTOM, dry-run) are
// partial sets because every hit is reported.
//
// input.view is the namespace when it has own policies (any AP or PA), else
// "*": the view for namespaces with only mesh-wide policies.

const viewDefault = "*"

// regoAttr maps an atom attribute (model.go atoms/fieldAttr) to a Rego ref.
// Peer-certificate attributes (input.peer_*) are present only when the
// request has a principal; they need mTLS (Envoy's RBAC
// `authenticated` matcher never matches a non-TLS connection), so in a view where
// the PeerAuthentication mode can be DISABLE they are also guarded by `mtls`.
var regoAttr = map[string]string{
	"principal": "input.peer_spiffe", "praw": "input.peer_principal",
	"src_ns": "input.peer_ns", "src_sa": "input.peer_sa", "src_td": "input.peer_td",
	"host": "input.host", "method": "input.method", "path": "input.path", "port": "input.dport",
	"srcip": "input.src_ip", "remoteip": "input.remote_ip", "dstip": "input.dst_ip", "sni": "input.sni",
}

type regoGen struct {
	b       strings.Builder
	helpers map[string]string // helper body set text → name
	hb      strings.Builder   // helper rules
	nvar    int
	err     error
	headers map[string]bool // header names the conditions read
	disable bool            // the current view has a DISABLE PeerAuthentication
}

// hasDisable: can the effective PeerAuthentication mode of a request in v be DISABLE?
func hasDisable(v *view) bool {
	if v.PA.Mode == "DISABLE" {
		return true
	}
	for _, w := range v.WL {
		if w.Mode == "DISABLE" {
			return true
		}
		for _, m := range w.Ports {
			if m == "DISABLE" {
				return true
			}
		}
	}
	return false
}

// q quotes s as a Rego (JSON) string literal, byte for byte as
// encoding/json writes it. Most generated strings (names, paths, label
// values) need no escaping and skip json.Marshal, about a tenth of the
// generation time at 10,000 policies.
func q(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return string(b)
		}
	}
	return `"` + s + `"`
}

func qList(vs []string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = q(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func strs(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case map[string]bool:
		out := make([]string, 0, len(x))
		for k := range x {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return nil
}

// atomExprs renders one atom over the Rego term x as alternatives (OR), each
// a conjunction of expressions.
func atomExprs(a atom, x string) [][]string {
	vs := strs(a.V)
	switch a.T {
	case "e":
		if len(vs) == 1 {
			return [][]string{{x + " == " + q(vs[0])}}
		}
		set := qList(vs)
		return [][]string{{x + " in {" + set[1:len(set)-1] + "}"}}
	case "p":
		if len(vs) == 1 {
			return [][]string{{"startswith(" + x + ", " + q(vs[0]) + ")"}}
		}
		return [][]string{{"strings.any_prefix_match(" + x + ", " + qList(vs) + ")"}}
	case "s":
		if len(vs) == 1 {
			return [][]string{{"endswith(" + x + ", " + q(vs[0]) + ")"}}
		}
		return [][]string{{"strings.any_suffix_match(" + x + ", " + qList(vs) + ")"}}
	case "a":
		// Istio's "*" is the regex ".+" (matcher/string.go
		// StringMatcherWithPrefix, generator.go matchAny), which Envoy's RE2
		// matches whole with dot_nl off: non-empty and without a newline.
		return [][]string{{x + ` != ""`, "indexof(" + x + `, "\n") == -1`}}
	case "x", "n":
		return [][]string{{"is_string(" + x + ")"}}
	case "r":
		alts := make([]string, len(vs))
		for i, r := range vs {
			alts[i] = "(?:" + r + ")"
		}
		// Envoy's safe_regex matches the whole value: each regex is
		// anchored as a whole, so a '|' inside one cannot escape it.
		return [][]string{{"regex.match(" + q("^(?:"+strings.Join(alts, "|")+")$") + ", " + x + ")"}}
	case "c":
		// net.cidr_contains fails on a value that is not an address, which
		// under strict builtin errors (user modules, compileShard) would
		// turn the verdict into an evaluation error. The input's addresses
		// are canonical or "" (addrIP, also for CheckRequest's), and ""
		// (unknown) matches no range: tested first, so no request value
		// makes the call fail (TestGeneratedRulesUnchangedByStrictBuiltinErrors).
		out := make([][]string, 0, len(vs))
		for _, c := range vs {
			out = append(out, []string{x + ` != ""`, "net.cidr_contains(" + q(c) + ", " + x + ")"})
		}
		return out
	}
	return nil
}

func (g *regoGen) v() string {
	g.nvar++
	return "v" + strconv.Itoa(g.nvar)
}

// condAlts renders a cond (before negation) as alternatives.
func (g *regoGen) condAlts(c cond) [][]string {
	j, err := c.atomsJSON()
	if err != nil {
		g.err = err
		return nil
	}
	var out [][]string
	switch j.Kind {
	case "rp":
		// requestPrincipals: issuer and subject matched separately (as Istio's
		// pilot/pkg/security/authz translation does).
		for _, rp := range j.RP {
			for _, ia := range rp.Iss {
				for _, sa := range rp.Sub {
					for _, ie := range atomExprs(ia, "input.jwt.iss") {
						for _, se := range atomExprs(sa, "input.jwt.sub") {
							out = append(out, append(append([]string{}, ie...), se...))
						}
					}
				}
			}
		}
	case "cl":
		// JWT claims: a string, or a list with a matching string element (as Istio's
		// pilot/pkg/security/authz translation does).
		path := qList(c.K.([]string))
		for _, a := range j.A {
			v := g.v()
			get := v + " := object.get(input.jwt.claims, " + path + ", null)"
			for _, e := range atomExprs(a, v) {
				out = append(out, append([]string{get, "is_string(" + v + ")"}, e...))
			}
			x := g.v()
			for _, e := range atomExprs(a, x) {
				out = append(out, append([]string{get, "is_array(" + v + ")", "some " + x + " in " + v, "is_string(" + x + ")"}, e...))
			}
		}
	default:
		if re, x, ok := g.mergedRegex(c, j.A); ok {
			return [][]string{{"regex.match(" + q(re) + ", " + x + ")"}}
		}
		for _, a := range j.A {
			x := regoAttr[a.F]
			if a.F == "header" {
				// Referenced headers are flat input keys (see Request.value).
				x = "input[" + q(headerKey(c.K.(string))) + "]"
				g.headers[c.K.(string)] = true
			}
			if x == "" {
				g.err = fmt.Errorf("cond: no Rego attribute for %q", a.F)
				return nil
			}
			for _, e := range atomExprs(a, x) {
				if g.disable && strings.HasPrefix(x, "input.peer_") {
					e = append([]string{"mtls"}, e...)
				}
				out = append(out, e)
			}
		}
	}
	return out
}

// helper returns the name of a boolean rule that holds when any alternative holds.
func (g *regoGen) helper(alts [][]string) string {
	var key strings.Builder
	for _, a := range alts {
		key.WriteString(strings.Join(a, "; "))
		key.WriteString("\n")
	}
	if n, ok := g.helpers[key.String()]; ok {
		return n
	}
	n := "h" + strconv.Itoa(len(g.helpers))
	g.helpers[key.String()] = n
	for _, a := range alts {
		fmt.Fprintf(&g.hb, "%s if {\n\t%s\n}\n\n", n, strings.Join(a, "\n\t"))
	}
	return n
}

// condExprs renders a cond, with negation (notX: a NOR of the values).
func (g *regoGen) condExprs(c cond) []string {
	alts := g.condAlts(c)
	if len(alts) == 0 {
		// No atoms: the positive form never holds.
		if c.Neg {
			return nil
		}
		return []string{"false"}
	}
	// Only a plain equality may be negated inline: OPA makes `not f(x)`
	// undefined (not true) when x is undefined, so other negations go
	// through a helper rule.
	if len(alts) == 1 && (!c.Neg || (len(alts[0]) == 1 && isEq(alts[0][0]))) {
		if c.Neg {
			return []string{"not " + alts[0][0]}
		}
		return alts[0]
	}
	h := g.helper(alts)
	if c.Neg {
		return []string{"not " + h}
	}
	return []string{h}
}

// maxDNF bounds how many chain branches one policy rule may expand into.
// Expanding a positive OR (e.g. paths: [/api/*, /healthz]) into separate
// branches saves a helper-rule evaluation per request; beyond the bound
// the OR goes into a helper rule.
const maxDNF = 8

// ruleAlts: rule = AND over or-groups (from, to, when), each an OR of
// AND-groups, rendered as alternative bodies (their OR is the rule).
func (g *regoGen) ruleAlts(r rule) [][]string {
	out := [][]string{nil}
	and := func(alts [][]string) {
		if len(alts) > 1 && len(out)*len(alts) > maxDNF {
			alts = [][]string{{g.helper(alts)}}
		}
		next := make([][]string, 0, len(out)*len(alts))
		for _, o := range out {
			for _, a := range alts {
				next = append(next, append(append([]string{}, o...), a...))
			}
		}
		out = next
	}
	for _, og := range r.C {
		if len(og) == 1 {
			for _, c := range og[0] {
				and(g.condDNF(c))
			}
			continue
		}
		alts := make([][]string, 0, len(og))
		for _, ag := range og {
			var e []string
			for _, c := range ag {
				e = append(e, g.condExprs(c)...)
			}
			if len(e) == 0 {
				e = []string{"true"}
			}
			alts = append(alts, e)
		}
		and(alts)
	}
	return out
}

// condDNF: a positive cond's alternatives (expanded by the caller), else
// the single conjunction condExprs renders.
func (g *regoGen) condDNF(c cond) [][]string {
	if !c.Neg {
		if alts := g.condAlts(c); len(alts) > 1 && len(alts) <= maxDNF {
			return alts
		}
	}
	return [][]string{g.condExprs(c)}
}

func altsText(a [][]string) string {
	var b strings.Builder
	for _, x := range a {
		b.WriteString(strings.Join(x, "\n"))
		b.WriteString("\n--\n")
	}
	return b.String()
}

func scopeExprs(view string, sel map[string]string) []string {
	out := []string{"input.view == " + q(view)}
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, "input.labels["+q(k)+"] == "+q(sel[k]))
	}
	return out
}

type branch struct {
	body []string
	p    *compiledPolicy
	i    int
}

// branches: one per rule and transport variant, oldest policy first.
func (g *regoGen) branches(view string, pols []compiledPolicy) []branch {
	var out []branch
	for pi := range pols {
		p := &pols[pi]
		scope := scopeExprs(view, p.Sel)
		if p.Sidecars {
			scope = append(scope, "sidecar")
		}
		tcp := map[int]rule{}
		for _, r := range p.TRules {
			tcp[r.I] = r
		}
		for _, r := range p.Rules {
			h := g.ruleAlts(r)
			tr, hasTCP := tcp[r.I]
			var t [][]string
			if hasTCP {
				t = g.ruleAlts(tr)
			}
			emit := func(extra []string, alts [][]string) {
				for _, a := range alts {
					body := append(append(append([]string{}, scope...), extra...), a...)
					out = append(out, branch{body, p, r.I})
				}
			}
			if hasTCP && altsText(h) == altsText(t) {
				emit(nil, h)
				continue
			}
			emit([]string{"input.tcp == false"}, h)
			if hasTCP {
				emit([]string{"input.tcp == true"}, t)
			}
		}
	}
	return out
}

func bodyText(body []string) string { return "{\n\t" + strings.Join(body, "\n\t") + "\n}" }

func bucketPolicies(b *bucket) []compiledPolicy {
	out := append([]compiledPolicy{}, b.Any...)
	for _, vs := range b.By {
		for _, l := range vs {
			out = append(out, l...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].O < out[j].O })
	return out
}

// genInfo is one planned policy set (planShards): its shards, whose module
// text generateShard fills in where a shard is not reused, and what Go needs
// to read the results.
type genInfo struct {
	views map[string]bool // namespaces with own policies
	// paConst: the effective PeerAuthentication as a Rego object when it is
	// the same for every request (see generate); "" when it depends on the view.
	paConst string
	user    bool
	// shards[shardOf(view, len(shards))] holds the view's rules; a shard no
	// view falls in has no text and is not compiled.
	shards []shardGen
}

// shardGen is one generated module: the prelude plus the PeerAuthentication
// chains, decision chains, report rules and condition helpers of its views.
type shardGen struct {
	views   []string
	needs   inputNeeds
	extras  bool // reporting-only buckets exist (rule `extras`)
	modText string
}

// maxShards bounds how many modules a policy set is generated into. A
// view's shard is fnv32a(view) mod maxShards, fixed whatever the number of
// views, so adding or removing a namespace regenerates only its own shard
// (with K = min(64, views) a change in the number of views below 64 would
// move every view). 64: at 10,000 policies over 100 namespaces one shard
// holds about 1/64 of the rules, so a one-policy change recompiles ~160
// policies; more shards would add per-module overhead (each compiles the
// prelude and keeps its own compiler) for little gain.
const maxShards = 64

func shardOf(view string, k int) int {
	h := fnv.New32a()
	h.Write([]byte(view))
	return int(h.Sum32() % uint32(k))
}

const userRules = `
user_deny := [m | some m in data.meshguard.user.deny]

user_headers := {k: v | some k, v in data.meshguard.user.response_headers; is_string(k); is_string(v)}

user_reason := r if {
	r := user_deny[0]
	is_string(r)
} else := "denied by user policy"
`

var reportBuckets = []string{"audit", "custom", "dry_allow", "dry_deny"}

// view is the translated view vn (viewDefault: the default view).
func (d *data) view(vn string) *view {
	if vn == viewDefault {
		return d.Dflt
	}
	return d.NS[vn]
}

// planShards assigns the views to k shards (k = 1: one module, as user
// modules need) and finds the PeerAuthentication constant, without
// generating any module text (generateShard does, from the prelude,
// rego/authz.rego, every shard starts with).
func planShards(d *data, user bool, k int) genInfo {
	info := genInfo{views: map[string]bool{}, user: user, shards: make([]shardGen, k)}
	views := make([]string, 0, len(d.NS)+1)
	for ns := range d.NS {
		views = append(views, ns)
		info.views[ns] = true
	}
	sort.Strings(views)
	views = append(views, viewDefault)
	// PeerAuthentication (Istio's pilot/pkg/security/authn/policy_applier.go
	// ComposePeerAuthentication): oldest matching workload policy (port
	// entry, else its mode; UNSET inherits), else namespace, else mesh.
	// When no view has a workload-level policy and all views resolve to the
	// same namespace/mesh policy (no PeerAuthentication, or only mesh-wide
	// ones), the mode is one constant over all views (so in every shard):
	// pa_eff is that value, the decision inlines it and Go reads it without
	// a query (genInfo.paConst).
	info.paConst = paJSON(d.Dflt.PA)
	for _, vn := range views {
		if v := d.view(vn); len(v.WL) > 0 || paJSON(v.PA) != info.paConst {
			info.paConst = ""
			break
		}
	}
	for _, vn := range views {
		i := shardOf(vn, k)
		info.shards[i].views = append(info.shards[i].views, vn)
	}
	return info
}

func paJSON(m paMode) string { return fmt.Sprintf(`{"mode": %s, "id": %s}`, q(m.Mode), q(m.ID)) }

// generateShard renders the module of sh.views. Its helper and variable
// names are numbered per shard, so a shard's text depends only on its own
// views (an unchanged shard is byte-identical and its compiled form reused).
func generateShard(prelude string, viewOf func(string) *view, paConst string, user bool, sh *shardGen) error {
	g := &regoGen{helpers: map[string]string{}, headers: map[string]bool{}}
	views := sh.views
	b := &g.b
	b.WriteString(prelude)

	b.WriteString("\n# ---- generated: PeerAuthentication, one else-chain per view\n\n")
	// PeerAuthentication configures a sidecar's inbound listeners only
	// (Istio's pilot/pkg/networking/core/listener_inbound.go,
	// authnBuilder.ForPort); a gateway's listeners take their TLS from its
	// Gateway (gateway.go buildGatewayListeners). A gateway is a Pod whose
	// proxy runs as a router or, when only the labels are known, a Gateway
	// API gateway's: input.router (workload.gateway).
	b.WriteString("sidecar if not input.router\n\n")
	if paConst != "" {
		fmt.Fprintf(b, "pa_eff := %s\n\n", paConst)
	}
	for _, vn := range views {
		if paConst != "" {
			break
		}
		v := viewOf(vn)
		ns := paJSON(v.PA)
		first := true
		emit := func(val string, body []string) {
			if first {
				fmt.Fprintf(b, "pa_eff := %s if %s", val, bodyText(body))
				first = false
				return
			}
			fmt.Fprintf(b, " else := %s if %s", val, bodyText(body))
		}
		for _, w := range v.WL {
			scope := scopeExprs(vn, w.Sel)
			ports := make([]string, 0, len(w.Ports))
			for p := range w.Ports {
				ports = append(ports, p)
			}
			sort.Strings(ports)
			for _, p := range ports {
				if m := w.Ports[p]; m != "UNSET" {
					emit(fmt.Sprintf(`{"mode": %s, "id": %s}`, q(m), q(w.ID)), append(append([]string{}, scope...), "input.dport == "+q(p)))
				}
			}
			if w.Mode != "UNSET" {
				emit(fmt.Sprintf(`{"mode": %s, "id": %s}`, q(w.Mode), q(w.ID)), scope)
			} else {
				emit(ns, scope)
			}
		}
		emit(ns, scopeExprs(vn, nil))
		b.WriteString("\n\n")
	}

	// The decision: one else-chain per view, every branch keyed by
	// input.view (so exactly one chain answers and OPA's rule index skips the
	// others' branches): PeerAuthentication, DENY, user deny, ALLOW, a
	// selecting ALLOW policy without a match, open (the order documented in
	// istio/api security/v1beta1/authorization_policy.proto). DENY and ALLOW
	// are the policies' rule branches, oldest policy first, so evaluation
	// stops at the first matching rule. One chain instead of separate DENY
	// and ALLOW rules: a request evaluates one virtual rule, not three.
	has := map[string]bool{}
	b.WriteString("# ---- generated: decision, one else-chain per view\n\n")
	for _, vn := range views {
		v := viewOf(vn)
		g.disable = hasDisable(v)
		viewEq := "input.view == " + q(vn)
		first := true
		emit := func(val string, body []string) {
			if first {
				fmt.Fprintf(b, "decision := %s if %s", val, bodyText(body))
				first = false
				return
			}
			fmt.Fprintf(b, " else := %s if %s", val, bodyText(body))
		}
		switch {
		case paConst == "":
			emit("pa_eff", []string{viewEq, `input.principal == ""`, `pa_eff.mode == "STRICT"`, "sidecar"})
		case viewOf(viewDefault).PA.Mode == "STRICT":
			emit(paConst, []string{viewEq, `input.principal == ""`, "sidecar"})
		}
		for _, bn := range []string{"deny", "allow"} {
			if bn == "allow" && user {
				// user_deny is the chain's one reference to the user
				// modules: the --fail-open fallback replaces it by an empty
				// list to evaluate this compiled chain without them
				// (compileShard, failopen.go).
				emit(`["user", user_reason]`, []string{viewEq, "count(user_deny) > 0"})
			}
			for _, br := range g.branches(vn, bucketPolicies(v.B[bn])) {
				emit(fmt.Sprintf("[%s, %s, %d]", q(bn), q(br.p.ID), br.i), br.body)
			}
		}
		// An ALLOW policy selecting the workload makes it deny-by-default,
		// even with no rules (as in Istio's pilot/pkg/security/authz).
		seen := map[string]bool{}
		for _, p := range bucketPolicies(v.B["allow"]) {
			scope := scopeExprs(vn, p.Sel)
			if t := bodyText(scope); !seen[t] {
				seen[t] = true
				emit(`"noallow"`, scope)
			}
		}
		emit(`"open"`, []string{viewEq})
		b.WriteString("\n\n")
	}
	// Reporting-only buckets: every matching policy (rule index of each hit),
	// ranked oldest first within the view (getHits orders by it): a rank
	// local to the view rather than the policy's rank in the whole set, so
	// adding an older policy elsewhere leaves this shard's text unchanged.
	rank := make(map[string]map[int]int, len(views))
	for _, vn := range views {
		var ages []int
		for _, bn := range reportBuckets {
			for _, p := range bucketPolicies(viewOf(vn).B[bn]) {
				ages = append(ages, p.O)
			}
		}
		sort.Ints(ages)
		rank[vn] = make(map[int]int, len(ages))
		for _, o := range ages {
			if _, ok := rank[vn][o]; !ok {
				rank[vn][o] = len(rank[vn])
			}
		}
	}
	for _, bn := range reportBuckets {
		for _, vn := range views {
			g.disable = hasDisable(viewOf(vn))
			for _, br := range g.branches(vn, bucketPolicies(viewOf(vn).B[bn])) {
				fmt.Fprintf(b, "%s contains [%d, %s, %d] if %s\n\n", bn, rank[vn][br.p.O], q(br.p.ID), br.i, bodyText(br.body))
				has[bn] = true
			}
		}
	}
	if g.err != nil {
		return g.err
	}

	var ex []string
	for _, bn := range reportBuckets {
		if has[bn] {
			ex = append(ex, fmt.Sprintf("%s: %s", q(bn), bn))
		} else {
			ex = append(ex, fmt.Sprintf("%s: set()", q(bn)))
		}
	}
	sh.extras = has["audit"] || has["custom"] || has["dry_allow"] || has["dry_deny"]
	switch {
	case user:
		// Evaluated through the rego package (see Snapshot.eval); extras
		// only for the --fail-open fallback's query (failopen.go), the
		// result keeps its own object, one rule evaluation less per request.
		fmt.Fprintf(b, "result := [decision, pa_eff, {%s}, user_headers]\n", strings.Join(ex, ", "))
		b.WriteString(userRules)
		if sh.extras {
			fmt.Fprintf(b, "\nextras := {%s}\n", strings.Join(ex, ", "))
		}
	case sh.extras:
		fmt.Fprintf(b, "extras := {%s}\n\n", strings.Join(ex, ", "))
		b.WriteString("result := [decision, pa_eff, extras]\n")
	default:
		b.WriteString("result := [decision, pa_eff]\n")
	}
	b.WriteString("\n# ---- generated: condition helpers\n\n")
	b.WriteString(g.hb.String())
	sh.modText = b.String()
	sh.needs = needsOf(sh.modText, g.headers, user)
	return nil
}

// isEq: `<ref> == "<string>"` as rendered by atomExprs.
func isEq(e string) bool {
	i := strings.Index(e, " == ")
	return i > 0 && !strings.ContainsAny(e[:i], "( ") && strings.HasPrefix(e[i+4:], `"`)
}

// needsOf lists the input fields the module reads (see inputNeeds).
func needsOf(mod string, headers map[string]bool, user bool) inputNeeds {
	has := func(s string) bool { return strings.Contains(mod, s) }
	n := inputNeeds{
		all:        user,
		peerSpiffe: has("input.peer_spiffe"), peerPrincipal: has("input.peer_principal"),
		peerNS: has("input.peer_ns"), peerSA: has("input.peer_sa"), peerTD: has("input.peer_td"), srcIP: has("input.src_ip"), remoteIP: has("input.remote_ip"), dstIP: has("input.dst_ip"),
		dport: has("input.dport"), sni: has("input.sni"), method: has("input.method"), path: has("input.path"),
		host: has("input.host"), jwt: has("input.jwt"),
	}
	if len(headers) > 0 {
		n.headers = make(map[string]*ast.Term, len(headers))
		for h := range headers {
			n.headers[h] = ast.StringTerm(headerKey(h))
		}
	}
	return n
}

// headerKey is the flat input key of a header a policy condition reads.
func headerKey(name string) string { return "hdr:" + name }

// mergedRegex: a cond whose values mix string forms (exact, prefix, suffix,
// regex) on one attribute becomes one anchored regex, so the OR needs
// neither a helper rule nor extra branches. (?s): the ".*" of a prefix or
// suffix also matches newlines, as startswith/endswith do; a value's own
// regex is kept in (?-s:...).
func (g *regoGen) mergedRegex(c cond, as []atom) (string, string, bool) {
	if len(as) < 2 {
		return "", "", false
	}
	var alts []string
	for _, a := range as {
		if a.F != as[0].F || a.F == "header" || (g.disable && strings.HasPrefix(regoAttr[a.F], "input.peer_")) {
			return "", "", false
		}
		switch a.T {
		case "e", "p", "s", "r":
		default:
			return "", "", false // presence and CIDR forms have no values to merge
		}
		for _, v := range strs(a.V) {
			switch a.T {
			case "e":
				alts = append(alts, regexp.QuoteMeta(v))
			case "p":
				alts = append(alts, regexp.QuoteMeta(v)+".*")
			case "s":
				alts = append(alts, ".*"+regexp.QuoteMeta(v))
			case "r":
				// Without the s flag, as matched alone and by Envoy's
				// safe_regex (RE2's dot_nl is off): '.' stops at a newline.
				alts = append(alts, "(?-s:"+v+")")
			default:
				return "", "", false
			}
		}
	}
	x := regoAttr[as[0].F]
	if x == "" {
		return "", "", false
	}
	return "(?s)^(?:" + strings.Join(alts, "|") + ")$", x, true
}
