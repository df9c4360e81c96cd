package policy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	secapi "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"

	"github.com/meshguard/meshguard/secpolicy"
)

// Mesh holds the MeshConfig inputs the semantics depend on.
type Mesh struct {
	// RootNamespace: policies here apply mesh-wide (MeshConfig rootNamespace). Default istio-system.
	RootNamespace string
	// TrustDomain and TrustDomainAliases form the trust-domain bundle (Istio's
	// pilot/pkg/security/trustdomain/bundle.go).
	TrustDomain        string
	TrustDomainAliases []string
	// PathNormalization: BASE (default), MERGE_SLASHES, DECODE_AND_MERGE_SLASHES, NONE (MeshConfig pathNormalization).
	PathNormalization string
	// NumTrustedProxies: X-Forwarded-For hops a gateway trusts when deriving
	// remote.ip (ProxyConfig gatewayTopology.numTrustedProxies) unless its
	// Pod's proxy.istio.io/config sets gatewayTopology; sidecars trust none
	// (requestRemoteIP).
	NumTrustedProxies int
	// GatewayProxyProtocol: the mesh's defaultConfig.gatewayTopology sets
	// proxyProtocol, so a gateway's listeners run Envoy's proxy_protocol
	// listener filter unless its Pod's proxy.istio.io/config sets a
	// gatewayTopology of its own (behindProxyProtocol).
	GatewayProxyProtocol bool
	// JWTMetadataForwarded: Envoy runs ext_authz after jwt_authn and
	// forwards its dynamic metadata (metadata_context_namespaces), so a
	// gRPC CheckRequest without jwt_authn metadata has no token. False (the
	// default, fail closed): the JWT of such a request is unknown (decode),
	// as in Istio's own CUSTOM wiring, which puts ext_authz before jwt_authn
	// and forwards nothing (Istio: pilot/pkg/networking/core/listener_builder.go
	// buildHTTPConnectionManager, pilot/pkg/security/authz/builder/extauthz.go
	// generateGRPCConfig). Not a MeshConfig field: how Envoy is wired
	// (authz --authz-jwt-metadata).
	JWTMetadataForwarded bool
}

func (m Mesh) withDefaults() Mesh {
	if m.RootNamespace == "" {
		m.RootNamespace = "istio-system"
	}
	if m.TrustDomain == "" {
		m.TrustDomain = "cluster.local"
	}
	if m.PathNormalization == "" {
		m.PathNormalization = "BASE"
	}
	return m
}

// translator turns the typed policies into data (see model.go). It never
// fails on a single bad value: like istiod it drops the rule (ALLOW) or the
// field (DENY/AUDIT/CUSTOM) and records a warning naming object and field.
type translator struct {
	mesh     Mesh
	bundle   []string
	warnings []string
	// objects validation rejects, with the problems (see Compile).
	invalidAP map[*secv1.AuthorizationPolicy]string
	invalidPA map[*secv1.PeerAuthentication]string
	failed    []FailedPolicy
	memo      translationMemo
}

func (t *translator) warnf(format string, args ...any) {
	t.warnings = append(t.warnings, fmt.Sprintf(format, args...))
}

func newTranslator(m Mesh) *translator {
	m = m.withDefaults()
	b := []string{m.TrustDomain}
	// An empty alias is kept, as trustdomain.NewBundle keeps it: it puts the
	// trust domain "" (spiffe:///…) in the bundle.
	for _, a := range m.TrustDomainAliases {
		if a != m.TrustDomain {
			b = append(b, a)
		}
	}
	return &translator{mesh: m, bundle: b}
}

// dryRunAnnotation makes an AuthorizationPolicy report instead of enforce.
const dryRunAnnotation = "istio.io/dry-run"

func bucketOf(action secapi.AuthorizationPolicy_Action, dry bool) string {
	var b string
	switch action {
	case secapi.AuthorizationPolicy_DENY:
		b = "deny"
	case secapi.AuthorizationPolicy_AUDIT:
		// Validation rejects the dry-run annotation on AUDIT (Istio:
		// pkg/config/validation/validation.go checkDryRunAnnotation, ALLOW
		// and DENY only), so a dry-run AUDIT always fails closed; filed
		// with the AUDIT policies, it reports a hit for every request, as
		// a failed AUDIT does, and never denies. (Istio would put its rules
		// in the LOG filter's shadow rules, builder.go build: no verdict.)
		return "audit"
	case secapi.AuthorizationPolicy_CUSTOM:
		// Istio: a dry-run CUSTOM policy still triggers the call (a known
		// limitation noted in Istio's authz builder.go);
		// here CUSTOM is only reported anyway.
		return "custom"
	default:
		b = "allow"
	}
	if dry {
		return "dry_" + b
	}
	return b
}

func (t *translator) build(aps []*secv1.AuthorizationPolicy, pas []*secv1.PeerAuthentication) *data {
	type nsState struct {
		b  buckets
		pa *paMode
		wl []paWorkload
	}
	state := map[string]*nsState{}
	get := func(ns string) *nsState {
		s := state[ns]
		if s == nil {
			s = &nsState{b: newBuckets(), wl: []paWorkload{}}
			state[ns] = s
		}
		return s
	}
	root := &nsState{b: newBuckets(), wl: []paWorkload{}}

	sortAPs := append([]*secv1.AuthorizationPolicy(nil), aps...)
	sort.SliceStable(sortAPs, func(i, j int) bool { return olderAP(sortAPs[i], sortAPs[j]) })
	var rootPols []struct {
		b string
		p compiledPolicy
	}
	type nsPolicy struct {
		ns, b string
		p     compiledPolicy
	}
	var gatewayPols []nsPolicy
	for i, ap := range sortAPs {
		cp, bname, ok := t.policyMemo(ap)
		if !ok {
			continue
		}
		cp.O = i
		if len(cp.Gateways) > 0 {
			// Attached to its own namespace's gateways only, the root
			// namespace's too (ShouldAttachPolicy compares namespaces).
			gatewayPols = append(gatewayPols, nsPolicy{ap.Namespace, bname, cp})
			continue
		}
		if ap.Namespace == t.mesh.RootNamespace {
			rootPols = append(rootPols, struct {
				b string
				p compiledPolicy
			}{bname, cp})
			continue
		}
		get(ap.Namespace).b.add(bname, cp)
	}

	sortPAs := append([]*secv1.PeerAuthentication(nil), pas...)
	sort.SliceStable(sortPAs, func(i, j int) bool { return olderPA(sortPAs[i], sortPAs[j]) })
	var mesh *paMode
	for _, pa := range sortPAs {
		if reason := t.invalidPA[pa]; reason != "" {
			// Fail closed: deny every workload the PeerAuthentication selects.
			sel := pa.Spec.GetSelector().GetMatchLabels()
			if pa.Namespace == t.mesh.RootNamespace && len(sel) > 0 {
				continue // never applies (Istio ignores it)
			}
			id := pa.Namespace + "/" + pa.Name
			cp := t.failClosed(compiledPolicy{ID: id, Sel: sel, Sidecars: true, name: pa.Name},
				"PeerAuthentication "+id, reason, true)
			cp.O = -1 // before every AuthorizationPolicy: it decides first
			if pa.Namespace == t.mesh.RootNamespace {
				rootPols = append(rootPols, struct {
					b string
					p compiledPolicy
				}{"deny", cp})
			} else {
				get(pa.Namespace).b.add("deny", cp)
			}
			continue
		}
		t.peerAuthn(pa, &mesh, func(ns string) (**paMode, *[]paWorkload) {
			s := get(ns)
			return &s.pa, &s.wl
		})
	}
	delete(state, t.mesh.RootNamespace) // root-namespace policies live in every view
	for _, gp := range gatewayPols {
		b := get(gp.ns).b // the root namespace gets a view of its own here
		for _, name := range gp.p.Gateways {
			c := gp.p
			c.Sel = map[string]string{GatewayNameLabel: name}
			b.add(gp.b, c)
		}
	}

	// Mesh, then namespace: a selected policy whose mode is UNSET inherits
	// the mode (and so the deciding policy) of the level above.
	meshPA := paMode{Mode: "PERMISSIVE"}
	if mesh != nil && mesh.Mode != "UNSET" {
		meshPA = *mesh
	}
	mkView := func(s *nsState) *view {
		v := &view{B: s.b, PA: meshPA, WL: s.wl}
		if s.pa != nil && s.pa.Mode != "UNSET" {
			v.PA = *s.pa
		}
		for _, rp := range rootPols {
			v.B.add(rp.b, rp.p)
		}
		for name, b := range v.B {
			b.sortByAge()
			if name != "allow" && name != "deny" && (len(b.Any) > 0 || len(b.By) > 0) {
				v.X = true
			}
		}
		return v
	}
	d := &data{NS: map[string]*view{}}
	for ns, s := range state {
		d.NS[ns] = mkView(s)
	}
	d.Dflt = mkView(root)
	return d
}

// Oldest first; ties by name then namespace (Istio's pilot/pkg/model/config.go
// and pkg/config/model.go sortConfigByCreationTime: CreationTimestamp.Compare,
// then name, then namespace). The times compare as time.Time: UnixNano
// overflows outside 1678-2262, which a creationTimestamp given in a file or a
// Set built in code can be.
func olderAP(a, b *secv1.AuthorizationPolicy) bool {
	return older(a.CreationTimestamp.Time, b.CreationTimestamp.Time, a.Name, b.Name, a.Namespace, b.Namespace)
}

func olderPA(a, b *secv1.PeerAuthentication) bool {
	return older(a.CreationTimestamp.Time, b.CreationTimestamp.Time, a.Name, b.Name, a.Namespace, b.Namespace)
}

func older(ta, tb time.Time, na, nb, nsa, nsb string) bool {
	if c := ta.Compare(tb); c != 0 {
		return c < 0
	}
	if na != nb {
		return na < nb
	}
	return nsa < nsb
}

func modeName(m *secapi.PeerAuthentication_MutualTLS) string {
	if m == nil {
		return "UNSET"
	}
	return m.GetMode().String()
}

// peerAuthn records one PeerAuthentication (called oldest first). As in
// Istio's pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication,
// the OLDEST policy of each level (mesh, namespace) is selected first, mode
// UNSET included; only then does an UNSET mode inherit from the level above
// (resolved in build and in the generated Rego).
func (t *translator) peerAuthn(pa *secv1.PeerAuthentication, mesh **paMode, nsOf func(string) (**paMode, *[]paWorkload)) {
	id := pa.Namespace + "/" + pa.Name
	obj := "PeerAuthentication " + id
	spec := &pa.Spec
	sel := spec.GetSelector().GetMatchLabels()
	mode := modeName(spec.GetMtls())
	if len(sel) == 0 {
		if pa.Namespace == t.mesh.RootNamespace {
			if *mesh != nil {
				t.warnf("%s: ignored: older mesh-wide PeerAuthentication %s wins", obj, (*mesh).ID)
				return
			}
			*mesh = &paMode{Mode: mode, ID: id}
			return
		}
		cur, _ := nsOf(pa.Namespace)
		if *cur != nil {
			t.warnf("%s: ignored: older namespace PeerAuthentication %s wins", obj, (*cur).ID)
			return
		}
		*cur = &paMode{Mode: mode, ID: id}
		return
	}
	if pa.Namespace == t.mesh.RootNamespace {
		// Root-namespace PA with a selector is ignored (Istio's ComposePeerAuthentication).
		t.warnf("%s: spec.selector: ignored in the root namespace %s", obj, t.mesh.RootNamespace)
		return
	}
	// Port keys are valid here: Compile fails closed any PeerAuthentication
	// validation rejects (secpolicy.CheckPortLevelPort, selector required).
	w := paWorkload{Sel: sel, Mode: mode, ID: id, Ports: map[string]string{}}
	for port, m := range spec.GetPortLevelMtls() {
		w.Ports[strconv.FormatUint(uint64(port), 10)] = modeName(m)
	}
	_, wl := nsOf(pa.Namespace)
	*wl = append(*wl, w)
}

// GatewayNameLabel marks the pods of a Gateway API gateway with its name.
const GatewayNameLabel = "gateway.networking.k8s.io/gateway-name"

// gatewayTargets returns the names of the Gateways of the policy's own
// namespace ns that its targetRefs (or legacy targetRef) name. As Istio's
// pilot/pkg/model/policyattachment.go ShouldAttachPolicy: a policy with
// targetRefs attaches to no sidecar workload, to the pods of a named
// Gateway (gateway.networking.k8s.io, the policy's namespace), and to
// waypoints through Service, ServiceEntry and GatewayClass references,
// which meshguard does not serve (docs/compatibility.md). The same rule
// attaches AuthorizationPolicies and RequestAuthentications.
func gatewayTargets(ns string, ref *typev1beta1.PolicyTargetReference, refs []*typev1beta1.PolicyTargetReference) []string {
	if len(refs) == 0 && ref != nil {
		refs = []*typev1beta1.PolicyTargetReference{ref}
	}
	var names []string
	for _, r := range refs {
		if r.GetGroup() == "gateway.networking.k8s.io" && r.GetKind() == "Gateway" &&
			(r.GetNamespace() == "" || r.GetNamespace() == ns) && !slices.Contains(names, r.GetName()) {
			names = append(names, r.GetName())
		}
	}
	return names
}

// policy compiles one AuthorizationPolicy. ok=false: it never applies to a
// workload meshguard serves (targetRefs naming no Gateway of its namespace).
func (t *translator) policy(ap *secv1.AuthorizationPolicy) (compiledPolicy, string, bool) {
	id := ap.Namespace + "/" + ap.Name
	obj := "AuthorizationPolicy " + id
	spec := &ap.Spec
	var gateways []string
	if spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
		if gateways = gatewayTargets(ap.Namespace, spec.GetTargetRef(), spec.GetTargetRefs()); len(gateways) == 0 {
			// Invalid first: a policy that cannot be evaluated is never
			// dropped unseen. It selects no workload meshguard serves (as
			// istiod would not attach it), so it denies nothing, and is
			// reported in Snapshot.Failed with Denies false.
			if reason := strings.TrimPrefix(t.invalidAP[ap], obj+": "); reason != "" {
				t.warnf("%s: spec.targetRefs: policy ignored (it names no Gateway of its namespace; waypoint references are not served by meshguard); it cannot be evaluated, reported as failed, nothing is denied for it: %s", obj, reason)
				t.failed = append(t.failed, FailedPolicy{ID: id, Object: obj, Reason: reason, Denies: false})
				return compiledPolicy{}, "", false
			}
			t.warnf("%s: spec.targetRefs: policy ignored (it names no Gateway of its namespace; waypoint references are not served by meshguard)", obj)
			return compiledPolicy{}, "", false
		}
	}
	// Istio's pilot/pkg/security/authz/builder/builder.go isDryRun:
	// strconv.ParseBool, and a value it cannot parse is not a dry run (the
	// policy is enforced, so a policy failed closed for it denies).
	dry, _ := strconv.ParseBool(ap.Annotations[dryRunAnnotation])
	action := spec.GetAction()
	bucket := bucketOf(action, dry)
	cp := compiledPolicy{ID: id, Sel: spec.GetSelector().GetMatchLabels(), Rules: []rule{}, TRules: []rule{}, name: ap.Name,
		Gateways: gateways}
	if reason := t.invalidAP[ap]; reason != "" {
		fb := failBucket(bucket)
		return t.failClosed(cp, obj, reason, fb == "deny"), fb, true
	}
	isAllow := action == secapi.AuthorizationPolicy_ALLOW
	for i, r := range spec.GetRules() {
		cr, err := t.rule(fmt.Sprintf("spec.rules[%d]", i), ap.Namespace, r)
		if err != nil {
			fb := failBucket(bucket)
			return t.failClosed(cp, obj, err.Error(), fb == "deny"), fb, true
		}
		cr.I = i
		tcp := withoutHTTP(cr)
		cr.shape()
		cp.Rules = append(cp.Rules, cr)
		if isAllow && hasHTTP(cr) {
			continue // dropped on TCP
		}
		tcp.shape()
		cp.TRules = append(cp.TRules, tcp)
	}
	return cp, bucket, true
}

// FailClosedRule is the Verdict.Rule of a denial by a policy that cannot be
// evaluated (see failClosed).
const FailClosedRule = -2

// failClosed replaces a policy that cannot be evaluated as written (invalid
// as stored in the API server, a value or `when` key meshguard cannot
// evaluate) by one rule matching every request: filed as a DENY (denies,
// failBucket) every workload it selects is denied, naming the policy and
// the field, instead of dropping a field (a wider DENY) or the rule (a
// vanished ALLOW) as istiod would. AUDIT, CUSTOM and dry-run policies, which
// never decide, stay reporting-only (denies false): their hit is reported
// for every request to the workloads they select, none is denied.
func (t *translator) failClosed(cp compiledPolicy, obj, reason string, denies bool) compiledPolicy {
	// A reason from meshguard validate's rules (validateStored) starts with
	// the object already: FailedPolicy.Reason is the field and why.
	reason = strings.TrimPrefix(reason, obj+": ")
	if denies {
		t.warnf("%s: cannot be evaluated, every workload it selects is denied: %s", obj, reason)
	} else {
		t.warnf("%s: cannot be evaluated, reported as matching every request to the workloads it selects (it never decides, nothing is denied for it): %s", obj, reason)
	}
	t.failed = append(t.failed, FailedPolicy{ID: cp.ID, Object: obj, Reason: reason, Denies: denies})
	all := rule{I: FailClosedRule, From: [][]cond{}, To: [][]cond{}, When: []cond{}}
	all.shape()
	cp.Rules, cp.TRules = []rule{all}, []rule{all}
	return cp
}

// failBucket: a failed policy denies, unless it is reporting-only (CUSTOM
// included: it never decides here, see bucketOf).
func failBucket(bucket string) string {
	switch bucket {
	case "audit", "custom", "dry_allow", "dry_deny":
		return bucket
	}
	return "deny"
}

// FailedPolicy is a stored policy the snapshot cannot evaluate (see
// failClosed).
type FailedPolicy struct {
	ID     string // "ns/name", as in Verdict.Policy
	Object string // "AuthorizationPolicy ns/name" or "PeerAuthentication ns/name"
	Reason string // the field and why
	// Denies: the workloads it selects are denied (an ALLOW, DENY or
	// PeerAuthentication); false for an AUDIT, CUSTOM or dry-run policy,
	// reported as matching every request and never denying.
	Denies bool
}

// rule compiles one rule; any value that cannot be compiled is an error
// naming its field (the caller fails the policy closed).
func (t *translator) rule(path, policyNS string, r *secapi.Rule) (rule, error) {
	out := rule{From: [][]cond{}, To: [][]cond{}, When: []cond{}}
	var errs []string
	add := func(dst *[]cond, c []cond, errPath string, err error) {
		if err != nil {
			errs = append(errs, errPath+": "+err.Error())
			return
		}
		*dst = append(*dst, c...)
	}
	for i, f := range r.GetFrom() {
		p := fmt.Sprintf("%s.from[%d].source", path, i)
		s := f.GetSource()
		g := []cond{}
		c, err := t.principals(s.GetPrincipals(), false)
		add(&g, c, p+".principals", err)
		c, err = t.principals(s.GetNotPrincipals(), true)
		add(&g, c, p+".notPrincipals", err)
		c, err = reqPrincipalsCond(s.GetRequestPrincipals(), false)
		add(&g, c, p+".requestPrincipals", err)
		c, err = reqPrincipalsCond(s.GetNotRequestPrincipals(), true)
		add(&g, c, p+".notRequestPrincipals", err)
		add(&g, nsCond(s.GetNamespaces(), false), p+".namespaces", nil)
		add(&g, nsCond(s.GetNotNamespaces(), true), p+".notNamespaces", nil)
		c, err = saCond(s.GetServiceAccounts(), policyNS, false)
		add(&g, c, p+".serviceAccounts", err)
		c, err = saCond(s.GetNotServiceAccounts(), policyNS, true)
		add(&g, c, p+".notServiceAccounts", err)
		c, err = t.tdCond(s.GetTrustDomains(), false)
		add(&g, c, p+".trustDomains", err)
		c, err = t.tdCond(s.GetNotTrustDomains(), true)
		add(&g, c, p+".notTrustDomains", err)
		c, err = cidrCond("srcip", s.GetIpBlocks(), false)
		add(&g, c, p+".ipBlocks", err)
		c, err = cidrCond("srcip", s.GetNotIpBlocks(), true)
		add(&g, c, p+".notIpBlocks", err)
		c, err = cidrCond("remoteip", s.GetRemoteIpBlocks(), false)
		add(&g, c, p+".remoteIpBlocks", err)
		c, err = cidrCond("remoteip", s.GetNotRemoteIpBlocks(), true)
		add(&g, c, p+".notRemoteIpBlocks", err)
		out.From = append(out.From, g)
	}
	for i, to := range r.GetTo() {
		p := fmt.Sprintf("%s.to[%d].operation", path, i)
		o := to.GetOperation()
		g := []cond{}
		add(&g, strCond("host", o.GetHosts(), false, true, true), "", nil)
		add(&g, strCond("host", o.GetNotHosts(), true, true, true), "", nil)
		c, err := portCond(o.GetPorts(), false)
		add(&g, c, p+".ports", err)
		c, err = portCond(o.GetNotPorts(), true)
		add(&g, c, p+".notPorts", err)
		add(&g, strCond("method", o.GetMethods(), false, true, false), "", nil)
		add(&g, strCond("method", o.GetNotMethods(), true, true, false), "", nil)
		c, err = pathCond(o.GetPaths(), false)
		add(&g, c, p+".paths", err)
		c, err = pathCond(o.GetNotPaths(), true)
		add(&g, c, p+".notPaths", err)
		out.To = append(out.To, g)
	}
	for i, w := range r.GetWhen() {
		p := fmt.Sprintf("%s.when[%d]", path, i)
		c, err := t.whenCond(w, policyNS)
		if err != nil {
			// Unknown or unevaluated keys included: istiod would skip the
			// rule (a DENY failing open); here the policy fails closed.
			errs = append(errs, p+": "+err.Error())
			continue
		}
		out.When = append(out.When, c...)
	}
	if len(errs) > 0 {
		return rule{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func hasHTTP(r rule) bool {
	for _, gs := range [][][]cond{r.From, r.To, {r.When}} {
		for _, g := range gs {
			for _, c := range g {
				if c.H {
					return true
				}
			}
		}
	}
	return false
}

func withoutHTTP(r rule) rule {
	strip := func(g []cond) []cond {
		out := make([]cond, 0, len(g))
		for _, c := range g {
			if !c.H {
				out = append(out, c)
			}
		}
		return out
	}
	t := rule{I: r.I, From: make([][]cond, 0, len(r.From)), To: make([][]cond, 0, len(r.To)), When: strip(r.When)}
	for _, g := range r.From {
		t.From = append(t.From, strip(g))
	}
	for _, g := range r.To {
		t.To = append(t.To, strip(g))
	}
	return t
}

// --------------------------------------------------------------- matchers

// generic builds a matcher with the generic string syntax: exact, "abc*",
// "*abc", "*" (the Rule comment in istio/api authorization_policy.proto). Only one leading or trailing '*' is honoured.
func generic(values []string, fold bool, presenceExists bool) matcher {
	var m matcher
	for _, v := range values {
		if fold {
			v = asciiLower(v)
		}
		switch {
		case v == "*":
			if presenceExists {
				m.X = true
			} else {
				m.A = true
			}
		case strings.HasPrefix(v, "*"):
			m.S = append(m.S, v[1:])
		case strings.HasSuffix(v, "*"):
			m.P = append(m.P, v[:len(v)-1])
		default:
			if m.E == nil {
				m.E = map[string]bool{}
			}
			m.E[v] = true
		}
	}
	return m
}

// headerName is the name a request header is read by, in policies'
// conditions and in what jwt_authn writes (jwtheaders.go). Envoy lower-cases
// header names in ASCII only (Http::LowerCaseString), so a non-ASCII name
// such as "\u212aey" (Kelvin sign) never names "key"; its header map reads
// a legacy "host" as ":authority" (header_map_impl.cc), and ext_authz sends
// only ":authority".
func headerName(h string) string {
	name := asciiLower(h)
	if name == "host" {
		return ":authority"
	}
	return name
}

// asciiLower folds A-Z only: Envoy's ignore_case string matchers (Istio's
// host matcher) compare ASCII case-insensitively and its header names are
// lower-cased in ASCII (Http::LowerCaseString), so "K" (Kelvin) is not "k".
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func single(f string, m matcher, neg, http bool) []cond {
	if m.empty() {
		return nil
	}
	return []cond{{F: f, M: m, Neg: neg, H: http}}
}

func strCond(f string, values []string, neg, http, fold bool) []cond {
	if len(values) == 0 {
		return nil
	}
	// Hosts and methods (a HeaderMatcher on ":method", generator.go
	// methodGenerator): '*' is Envoy present_match, as in Istio's translation.
	return single(f, generic(values, fold, f == "host" || f == "method"), neg, http)
}

// principals: values are written without "spiffe://" and matched against
// the peer's full principal as Istio's matcher.StringMatcherWithPrefix builds
// them (pilot/pkg/security/authz/model/generator.go srcPrincipalGenerator):
// exact "spiffe://v", prefix "spiffe://v", the regex "spiffe://.*v" with v
// quoted (secpolicy.PrincipalSuffixRegex), "*" the regex ".+".
// Values are first expanded with the trust-domain bundle
// (trustdomain/bundle.go ReplaceTrustDomainAliases).
func (t *translator) principals(values []string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	var m matcher
	for _, v := range t.expandPrincipals(values) {
		switch {
		case v == "*":
			m.A = true
		case strings.HasPrefix(v, "*"):
			m.R = append(m.R, secpolicy.PrincipalSuffixRegex(v))
		case strings.HasSuffix(v, "*"):
			m.P = append(m.P, "spiffe://"+v[:len(v)-1])
		default:
			if m.E == nil {
				m.E = map[string]bool{}
			}
			m.E["spiffe://"+v] = true
		}
	}
	return single("principal", m, neg, false), nil
}

// expandPrincipals is Istio's pilot/pkg/security/trustdomain/bundle.go
// ReplaceTrustDomainAliases: only a principal of exactly five "/"-separated
// parts (<td>/ns/<ns>/sa/<sa>, any part may hold a '*') whose trust domain is
// not "*" is rewritten, and only when its trust domain is in the bundle (by
// the bundle's exact/prefix/suffix/"*" match, stringMatch) or is
// "cluster.local" (a "*x" or "x*" trust domain is matched against the bundle
// as a pattern too); each bundle member replaces the trust domain, except a
// member the principal's "*x" trust domain already suffix-matches, which keeps
// the principal as is. Everything else is kept unchanged.
func (t *translator) expandPrincipals(values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		parts := strings.Split(v, "/")
		if len(parts) != 5 || parts[0] == "*" {
			out = append(out, v)
			continue
		}
		td := parts[0]
		if td != "cluster.local" && !tdStringMatch(td, t.bundle) {
			out = append(out, v)
			continue
		}
		var gen []string
		for _, b := range t.bundle {
			np := v
			if !tdSuffixMatch(b, td) {
				np = b + "/" + strings.Join(parts[1:], "/")
			}
			if !contains(gen, np) {
				gen = append(gen, np)
			}
		}
		out = append(out, gen...)
	}
	return out
}

// tdStringMatch is trustdomain/util.go stringMatch: a equals one element of
// list, or one is a "*", "x*" or "*x" pattern the other matches (the
// pattern may be the principal's trust domain or the bundle member).
func tdStringMatch(a string, list []string) bool {
	for _, s := range list {
		if a == s || s == "*" || tdPrefixMatch(a, s) || tdPrefixMatch(s, a) || tdSuffixMatch(a, s) || tdSuffixMatch(s, a) {
			return true
		}
	}
	return false
}

// tdPrefixMatch is trustdomain/util.go prefixMatch: pattern "x*" and a starts with x.
func tdPrefixMatch(a, pattern string) bool {
	return strings.HasSuffix(pattern, "*") && strings.HasPrefix(a, strings.TrimSuffix(pattern, "*"))
}

// tdSuffixMatch is trustdomain/util.go suffixMatch: pattern "*x" and a ends in x.
func tdSuffixMatch(a, pattern string) bool {
	return strings.HasPrefix(pattern, "*") && strings.HasSuffix(a, strings.TrimPrefix(pattern, "*"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// namespaces: Istio's regex over the full principal, ".*/ns/<v>/.*" with
// every '*' of v turned into ".*" and the rest quoted
// (pilot/pkg/security/authz/model/generator.go srcNamespaceGenerator,
// secpolicy.NamespaceRegex), so a SPIFFE ID with extra segments matches any
// of its "/ns/<x>/" parts.
func nsCond(values []string, neg bool) []cond {
	if len(values) == 0 {
		return nil
	}
	var m matcher
	for _, v := range values {
		m.R = append(m.R, secpolicy.NamespaceRegex(v))
	}
	return single("namespace", m, neg, false)
}

// serviceAccounts: "ns/sa" or "sa" (policy namespace); no wildcards. Matched
// with Istio's regex over the full principal,
// "spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?" (generator.go serviceAccountRegex).
func saCond(values []string, policyNS string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	var m matcher
	for i, v := range values {
		sa, err := secpolicy.ParseServiceAccount(v, policyNS)
		if err != nil {
			return nil, fmt.Errorf("value [%d] %q: %w", i, v, err)
		}
		m.R = append(m.R, sa.Regex())
	}
	return single("sa", m, neg, false), nil
}

// trustDomains: '*' alone = any SPIFFE id; one '*' anywhere is a wildcard;
// bundle members expand to the whole bundle (Istio's
// pilot/pkg/security/trustdomain/bundle.go).
func (t *translator) tdCond(values []string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	for i, v := range values {
		if err := secpolicy.CheckTrustDomain(v); err != nil {
			return nil, fmt.Errorf("value [%d]: %w", i, err)
		}
	}
	// Over the full principal: "*" is prefix "spiffe://", an exact value
	// prefix "spiffe://<td>/", one wildcard the regex
	// "spiffe://<p>[^/]*<s>/.*"; bundle members expand to the whole bundle
	// (trustdomain/bundle.go ExpandTrustDomainAliases).
	var m matcher
	for _, v := range values {
		switch {
		case v == "*":
			m.P = append(m.P, "spiffe://")
		case strings.Contains(v, "*"):
			pre, suf, _ := strings.Cut(v, "*")
			m.R = append(m.R, "^spiffe://"+regexp.QuoteMeta(pre)+"[^/]*"+regexp.QuoteMeta(strings.ReplaceAll(suf, "*", ""))+"/.*$")
		case contains(t.bundle, v):
			for _, b := range t.bundle {
				m.P = append(m.P, "spiffe://"+b+"/")
			}
		default:
			m.P = append(m.P, "spiffe://"+v+"/")
		}
	}
	return single("td", m, neg, false), nil
}

// requestPrincipals: split at the LAST '/' into iss and sub, as Istio does (the
// issuer may be a URL containing '/').
func reqPrincipalsCond(values []string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	var m matcher
	for _, v := range values {
		m.RP = append(m.RP, splitReqPrincipal(v))
	}
	return single("reqp", m, neg, true), nil
}

// splitReqPrincipal is Istio's requestPrincipalGenerator
// (pilot/pkg/security/authz/model/generator.go): split at the last '/', and
// the leading/trailing '*' decides which half is a suffix/prefix/any match;
// "any" is the regex ".+" (a present, non-empty claim).
func splitReqPrincipal(v string) reqPrincipal {
	exact := func(s string) matcher { return matcher{E: map[string]bool{s: true}} }
	anyNonEmpty := matcher{A: true}
	idx := strings.LastIndex(v, "/")
	found := idx >= 0
	iss, sub := v, ""
	if found {
		iss, sub = v[:idx], v[idx+1:]
	}
	switch {
	case v == "*":
		return reqPrincipal{Iss: anyNonEmpty, Sub: anyNonEmpty}
	case strings.HasPrefix(v, "*"):
		if !found {
			return reqPrincipal{Iss: anyNonEmpty, Sub: matcher{S: []string{v[1:]}}}
		}
		rp := reqPrincipal{Iss: matcher{S: []string{iss[1:]}}, Sub: exact(sub)}
		if iss == "*" {
			rp.Iss = anyNonEmpty
		}
		return rp
	case strings.HasSuffix(v, "*"):
		if !found {
			return reqPrincipal{Iss: matcher{P: []string{v[:len(v)-1]}}, Sub: anyNonEmpty}
		}
		rp := reqPrincipal{Iss: exact(iss), Sub: matcher{P: []string{sub[:len(sub)-1]}}}
		if sub == "*" {
			rp.Sub = anyNonEmpty
		}
		return rp
	}
	return reqPrincipal{Iss: exact(iss), Sub: exact(sub)}
}

func cidrCond(f string, values []string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	var m matcher
	for i, v := range values {
		c, err := secpolicy.ParseCIDR(v)
		if err != nil {
			return nil, fmt.Errorf("value [%d]: %w", i, err)
		}
		m.C = append(m.C, c.String())
	}
	return single(f, m, neg, false), nil
}

func portCond(values []string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	m := matcher{E: map[string]bool{}}
	for i, v := range values {
		p, err := secpolicy.ParsePort(v)
		if err != nil {
			return nil, fmt.Errorf("value [%d]: %w", i, err)
		}
		m.E[strconv.FormatUint(uint64(p), 10)] = true
	}
	return single("port", m, neg, false), nil
}

func pathCond(values []string, neg bool) ([]cond, error) {
	if len(values) == 0 {
		return nil, nil
	}
	var plain []string
	var m matcher
	for i, v := range values {
		if err := secpolicy.CheckPath(v); err != nil {
			return nil, fmt.Errorf("value [%d]: %w", i, err)
		}
		if secpolicy.ContainsPathTemplate(v) {
			re, err := secpolicy.PathTemplateRegex(v)
			if err != nil {
				return nil, fmt.Errorf("value [%d]: %w", i, err)
			}
			m.R = append(m.R, re)
			continue
		}
		plain = append(plain, v)
	}
	g := generic(plain, false, false)
	g.R = m.R
	return single("path", g, neg, true), nil
}

// whenCond maps one condition key to a field (the keys of istio.io's
// "Authorization Policy Conditions" reference).
func (t *translator) whenCond(w *secapi.Condition, policyNS string) ([]cond, error) {
	key := w.GetKey()
	vals, nots := w.GetValues(), w.GetNotValues()
	if len(vals) == 0 && len(nots) == 0 {
		return nil, fmt.Errorf("one of values or notValues is required")
	}
	both := func(f func([]string, bool) ([]cond, error)) ([]cond, error) {
		a, err := f(vals, false)
		if err != nil {
			return nil, fmt.Errorf("values: %w", err)
		}
		b, err := f(nots, true)
		if err != nil {
			return nil, fmt.Errorf("notValues: %w", err)
		}
		return append(a, b...), nil
	}
	noErr := func(f func([]string, bool) []cond) func([]string, bool) ([]cond, error) {
		return func(v []string, n bool) ([]cond, error) { return f(v, n), nil }
	}
	k, err := secpolicy.ParseConditionKey(key)
	if err != nil {
		return nil, err
	}
	switch k.Kind {
	case secpolicy.KeySourceIP:
		return both(func(v []string, n bool) ([]cond, error) { return cidrCond("srcip", v, n) })
	case secpolicy.KeyRemoteIP:
		return both(func(v []string, n bool) ([]cond, error) { return cidrCond("remoteip", v, n) })
	case secpolicy.KeyDestinationIP:
		return both(func(v []string, n bool) ([]cond, error) { return cidrCond("dstip", v, n) })
	case secpolicy.KeyDestinationPort:
		return both(portCond)
	case secpolicy.KeySourceNamespace:
		return both(noErr(nsCond))
	case secpolicy.KeySourcePrincipal:
		return both(t.principals)
	case secpolicy.KeySourceServiceAccount:
		return both(func(v []string, n bool) ([]cond, error) { return saCond(v, policyNS, n) })
	case secpolicy.KeySourceTrustDomain:
		return both(t.tdCond)
	case secpolicy.KeyConnectionSNI:
		return both(noErr(func(v []string, n bool) []cond { return strCond("sni", v, n, false, false) }))
	case secpolicy.KeyRequestPrincipal:
		return both(reqPrincipalsCond)
	case secpolicy.KeyRequestAudiences:
		return both(noErr(claimCond([]string{"aud"})))
	case secpolicy.KeyRequestPresenter:
		return both(noErr(claimCond([]string{"azp"})))
	case secpolicy.KeyRequestClaims:
		return both(noErr(claimCond(k.Path)))
	case secpolicy.KeyRequestHeader, secpolicy.KeyRequestInlineHeader:
		name := headerName(k.Header)
		match := func(v []string) matcher { return generic(v, false, true) }
		if k.Kind == secpolicy.KeyRequestInlineHeader {
			match = inlineHeader
		}
		return both(noErr(func(v []string, n bool) []cond {
			if len(v) == 0 {
				return nil
			}
			return []cond{{F: "header", K: name, M: match(v), Neg: n, H: true}}
		}))
	}
	// experimental.envoy.filters.*: valid, but its metadata never reaches ext_authz.
	return nil, fmt.Errorf("key %s: not evaluated by meshguard (Envoy filter metadata is not sent to ext_authz)", key)
}

// inlineHeader is Istio's matcher.HeaderMatcherWithRegex: "*" is a present
// header; any other value v (exact, "x*" or "*x", quoted) matches one
// element of the comma-separated header value, as the regex
// ^v$|^v,.*|.*,v,.*|.*,v$ matched against the whole value.
func inlineHeader(values []string) matcher {
	var m matcher
	for _, v := range values {
		var re string
		switch {
		case v == "*":
			m.X = true
			continue
		case strings.HasPrefix(v, "*"):
			re = ".*" + regexp.QuoteMeta(v[1:])
		case strings.HasSuffix(v, "*"):
			re = regexp.QuoteMeta(v[:len(v)-1]) + ".*"
		default:
			re = regexp.QuoteMeta(v)
		}
		m.R = append(m.R, "^(?:"+re+"|"+re+",.*|.*,"+re+",.*|.*,"+re+")$")
	}
	return m
}

func claimCond(path []string) func([]string, bool) []cond {
	return func(v []string, n bool) []cond {
		if len(v) == 0 {
			return nil
		}
		return []cond{{F: "claim", K: path, M: generic(v, false, false), Neg: n, H: true}}
	}
}
