package policy

import (
	"fmt"
	"sort"
)

// The types below are the translated policy set: built once per snapshot by
// translate.go and rendered into Rego by regogen.go (the JSON names are what
// the match atoms are called there).

// matcher is one field's value list pre-split by match kind (Istio's
// value syntax, the Rule comment in istio/api authorization_policy.proto), so Rego does object lookups and startswith/endswith, and only
// the genuinely glob-like forms (namespaces, trust domains, path templates)
// use regex.match.
type matcher struct {
	E  map[string]bool `json:"e,omitempty"`  // exact values
	P  []string        `json:"p,omitempty"`  // prefixes ("abc*")
	S  []string        `json:"s,omitempty"`  // suffixes ("*abc")
	A  bool            `json:"a,omitempty"`  // "*": Istio's regex ".+", any non-empty value without a newline
	X  bool            `json:"x,omitempty"`  // "*" on headers/hosts/methods: present, may be empty
	N  bool            `json:"n,omitempty"`  // anything, even empty (requestPrincipals halves)
	R  []string        `json:"r,omitempty"`  // regexes over the whole value (Envoy's safe_regex; anchored again where rendered)
	C  []string        `json:"c,omitempty"`  // CIDRs
	RP []reqPrincipal  `json:"rp,omitempty"` // requestPrincipals split at the last '/'
}

type reqPrincipal struct {
	Iss matcher `json:"iss"`
	Sub matcher `json:"sub"`
}

func (m *matcher) empty() bool {
	return len(m.E) == 0 && len(m.P) == 0 && len(m.S) == 0 && !m.A && !m.X && !m.N &&
		len(m.R) == 0 && len(m.C) == 0 && len(m.RP) == 0
}

// cond is one field (or one half of a `when` condition) of a rule. The
// generator renders it from its atoms (atomsJSON), each one match kind over
// one input attribute.
type cond struct {
	F   string  // field kind
	K   any     // header name (string) or claim path ([]string)
	M   matcher // values
	Neg bool    // notX / notValues: NOR of the values
	H   bool    // HTTP-only field (ignored on TCP for DENY/AUDIT/CUSTOM)
}

type atom struct {
	F string `json:"f"` // input attribute, see regoAttr in regogen.go
	T string `json:"t"` // match kind: e p s a x n r c
	V any    `json:"v"` // values for the kind (null for a, x, n)
}

type rpAtoms struct {
	Iss []atom `json:"iss"`
	Sub []atom `json:"sub"`
}

type condJSON struct {
	Kind string    `json:"kind"` // g (generic), cl (JWT claim), rp (request principal)
	Neg  bool      `json:"neg"`
	K    any       `json:"k"`
	A    []atom    `json:"a"`
	RP   []rpAtoms `json:"rp"`
}

// attribute each field's plain values are matched against.
var fieldAttr = map[string]string{
	"principal": "principal", "namespace": "src_ns", "sa": "src_sa", "td": "src_td",
	"claim": "claim", "header": "header", "host": "host", "method": "method", "path": "path",
	"port": "port", "srcip": "srcip", "remoteip": "remoteip", "dstip": "dstip", "sni": "sni",
}

func atoms(attr string, m matcher) []atom {
	var out []atom
	if len(m.E) > 0 {
		out = append(out, atom{attr, "e", m.E})
	}
	if len(m.P) > 0 {
		out = append(out, atom{attr, "p", m.P})
	}
	if len(m.S) > 0 {
		out = append(out, atom{attr, "s", m.S})
	}
	if m.A {
		out = append(out, atom{F: attr, T: "a"})
	}
	if m.X {
		out = append(out, atom{F: attr, T: "x"})
	}
	if m.N {
		out = append(out, atom{F: attr, T: "n"})
	}
	if len(m.R) > 0 {
		out = append(out, atom{attr, "r", m.R})
	}
	if len(m.C) > 0 {
		out = append(out, atom{attr, "c", m.C})
	}
	return out
}

// atomsJSON is the cond as match atoms, the input of the Rego generator.
func (c cond) atomsJSON() (condJSON, error) {
	j := condJSON{Kind: "g", Neg: c.Neg, K: c.K, A: []atom{}, RP: []rpAtoms{}}
	if j.K == nil {
		j.K = ""
	}
	switch c.F {
	case "reqp":
		j.Kind = "rp"
		for _, rp := range c.M.RP {
			j.RP = append(j.RP, rpAtoms{Iss: append([]atom{}, atoms("", rp.Iss)...), Sub: append([]atom{}, atoms("", rp.Sub)...)})
		}
	case "claim":
		j.Kind = "cl"
		j.A = atoms("", c.M)
	case "principal", "namespace", "sa", "td":
		// Matched like Envoy's authenticated.principal_name: against the
		// peer's full principal ("*" is any non-empty one, SPIFFE or not).
		j.A = atoms("praw", c.M)
	default:
		attr, ok := fieldAttr[c.F]
		if !ok {
			return j, fmt.Errorf("cond: unknown field %q", c.F)
		}
		j.A = atoms(attr, c.M)
	}
	return j, nil
}

type rule struct {
	I    int      `json:"i"` // index in spec.rules, for decision logs
	From [][]cond `json:"-"`
	To   [][]cond `json:"-"`
	When []cond   `json:"-"`
	// C is the serialised shape: AND over or-groups, each an OR of
	// AND-groups (from entries, to entries, all when conditions).
	C [][][]cond `json:"c"`
	// Flat: every or-group has one AND-group (the common case), so the
	// rule is just the AND of F; saves two levels of evaluation in Rego.
	Flat bool   `json:"flat"`
	F    []cond `json:"f"`
}

// shape fills C from From/To/When; empty from/to mean "any" and are omitted.
func (r *rule) shape() {
	r.C = make([][][]cond, 0, 3)
	if len(r.From) > 0 {
		r.C = append(r.C, r.From)
	}
	if len(r.To) > 0 {
		r.C = append(r.C, r.To)
	}
	if len(r.When) > 0 {
		r.C = append(r.C, [][]cond{r.When})
	}
	n := 0
	for _, og := range r.C {
		if len(og) != 1 {
			r.Flat, r.F = false, []cond{}
			return
		}
		n += len(og[0])
	}
	// Sized once: a cond is large and a rebuild shapes every rule twice.
	r.Flat, r.F = true, make([]cond, 0, n)
	for _, og := range r.C {
		r.F = append(r.F, og[0]...)
	}
}

type compiledPolicy struct {
	O     int               `json:"o"` // age rank: oldest first (creation time, name, namespace)
	ID    string            `json:"id"`
	Sel   map[string]string `json:"sel"` // the object's own matchLabels, not a copy (see paWorkload.Sel)
	Rules []rule            `json:"rules"`
	// TRules is the TCP variant (as Istio's pilot/pkg/security/authz
	// model.go and builder.go): ALLOW rules with HTTP-only
	// fields dropped, HTTP-only fields removed from DENY/AUDIT/CUSTOM rules.
	TRules []rule `json:"trules"`
	// Gateways: the Gateway API gateways of its namespace the policy's
	// targetRefs attach it to (Sel nil; build places one copy per gateway,
	// selecting its pods by GatewayNameLabel).
	Gateways []string `json:"gws,omitempty"`
	// Sidecars: a failed PeerAuthentication's; it denies only the sidecars
	// it selects (the generated sidecar rule): PeerAuthentication never
	// configures a gateway's pods.
	Sidecars bool `json:"sc,omitempty"`
	// not serialised: reporting
	name string
	// digest: policyDigest, set when translated (translatememo.go); it
	// stands for every field but O in shard input keys, so a field set
	// after translation must be hashed beside it (keyWriter.value).
	digest string
}

type paMode struct {
	Mode string `json:"mode"`
	ID   string `json:"id"`
}

type paWorkload struct {
	// Sel is the object's own matchLabels map: objects are read-only once
	// loaded (an update replaces the object, no loader changes one), and a
	// snapshot keeps every policy's translation (translatememo.go), so a
	// copy would be one more map per policy for the GC to mark.
	Sel   map[string]string `json:"sel"`
	Mode  string            `json:"mode"`
	ID    string            `json:"id"`
	Ports map[string]string `json:"ports"`
}

// bucket indexes policies by their first (sorted) selector label so Rego only
// visits policies that can select the destination workload.
type bucket struct {
	N   int                                    `json:"n"` // policies in the bucket: empty buckets are skipped
	Any []compiledPolicy                       `json:"any"`
	By  map[string]map[string][]compiledPolicy `json:"by"`
}

func (bs buckets) add(name string, p compiledPolicy) {
	bs[name].add(p)
}

// sortByAge keeps each list oldest first (root policies are appended last).
func (b *bucket) sortByAge() {
	sort.SliceStable(b.Any, func(i, j int) bool { return b.Any[i].O < b.Any[j].O })
	for _, vs := range b.By {
		for _, l := range vs {
			sort.SliceStable(l, func(i, j int) bool { return l[i].O < l[j].O })
		}
	}
}

func (b *bucket) add(p compiledPolicy) {
	b.N++
	if len(p.Sel) == 0 {
		b.Any = append(b.Any, p)
		return
	}
	k, first := "", true // the first selector key in sorted order
	for sk := range p.Sel {
		if first || sk < k {
			k, first = sk, false
		}
	}
	if b.By[k] == nil {
		b.By[k] = map[string][]compiledPolicy{}
	}
	b.By[k][p.Sel[k]] = append(b.By[k][p.Sel[k]], p)
}

// buckets of one namespace, keyed by bucket name.
type buckets map[string]*bucket

// No dry_audit: a dry-run AUDIT policy is filed as "audit" (bucketOf).
var bucketNames = []string{"allow", "deny", "audit", "custom", "dry_allow", "dry_deny"}

// newBuckets has every bucket present (see condJSON on why shapes are fixed).
func newBuckets() buckets {
	bs := buckets{}
	for _, n := range bucketNames {
		bs[n] = &bucket{Any: []compiledPolicy{}, By: map[string]map[string][]compiledPolicy{}}
	}
	return bs
}

// view is everything one namespace's requests need (root-namespace policies
// and mesh PeerAuthentication merged in).
type view struct {
	B  buckets      `json:"b"`
	X  bool         `json:"x"`
	PA paMode       `json:"pa"`
	WL []paWorkload `json:"wl"`
}

type data struct {
	NS   map[string]*view `json:"ns"`
	Dflt *view            `json:"dflt"`
}
