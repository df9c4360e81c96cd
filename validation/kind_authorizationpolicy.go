package validation

import (
	"fmt"
	"regexp"
	"strings"

	security "istio.io/api/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/secpolicy"
)

// validateAuthorizationPolicy implements Istio's ValidateAuthorizationPolicy
// (pkg/config/validation/validation.go). Every error carries
// Istio's prefix "invalid policy <name>.<namespace>: ". Beyond Istio (docs/compatibility.md
// "Stricter than Istio"):
// ports must be 1..65535 (Istio accepts 0), and principals, request
// principals and methods that can never match get a warning (not an error:
// Istio's own CRD corpus uses free-form values there).
func validateAuthorizationPolicy(meta metav1.ObjectMeta, ap *security.AuthorizationPolicy, f *Findings) {
	apDryRun(meta, ap.GetAction(), f)
	var local Findings
	apCheck(ap, &local)
	prefix := fmt.Sprintf("invalid policy %s.%s: ", meta.Name, meta.Namespace)
	for _, e := range local.Errors {
		e.Detail = prefix + e.Detail
	}
	f.Add(local)
}

// apDryRun: the istio.io/dry-run annotation is only honoured for ALLOW and
// DENY policies (Istio's validateMetadata). Istio checks it with the metadata, before the
// kind rules, so the message carries no "invalid policy" prefix; the
// boolean-value check is in validateMetadata, which has no spec.
func apDryRun(meta metav1.ObjectMeta, action security.AuthorizationPolicy_Action, f *Findings) {
	v, ok := meta.Annotations[annotationDryRun]
	if !ok {
		return
	}
	switch action {
	case security.AuthorizationPolicy_ALLOW, security.AuthorizationPolicy_DENY:
	default:
		f.Error(field.NewPath("metadata", "annotations").Key(annotationDryRun), v,
			fmt.Sprintf("annotation %s is only supported for ALLOW and DENY actions, found %s", annotationDryRun, action))
	}
}

func apCheck(ap *security.AuthorizationPolicy, f *Findings) {
	sp := field.NewPath("spec")
	khPolicyTargets(sp, ap.GetSelector(), ap.GetTargetRef(), ap.GetTargetRefs(), f)

	action := ap.GetAction()
	rp := sp.Child("rules")
	switch action {
	case security.AuthorizationPolicy_DENY, security.AuthorizationPolicy_CUSTOM:
		if len(ap.GetRules()) == 0 {
			f.Error(rp, nil, fmt.Sprintf("%s action without `rules` is meaningless as it will never be triggered, "+
				"add an empty rule `{}` if you want it be triggered for every request", action))
		}
	}
	provider := ap.GetProvider()
	if action == security.AuthorizationPolicy_CUSTOM {
		if len(ap.GetRules()) > 0 && provider.GetName() == "" {
			f.Required(sp.Child("provider", "name"), "`provider.name` must not be empty")
		}
	} else if provider != nil {
		f.Error(sp.Child("provider"), nil, fmt.Sprintf("`provider` must not be with non CUSTOM action, found %s", action))
	}

	for i, r := range ap.GetRules() {
		apRule(rp.Index(i), i, r, action, f)
	}
}

func apRule(p *field.Path, idx int, r *security.Rule, action security.AuthorizationPolicy_Action, f *Findings) {
	if r == nil {
		f.Required(p, "rule must not be null")
		return
	}
	custom := action == security.AuthorizationPolicy_CUSTOM
	httpOnly, hasPorts := false, false
	for j, from := range r.GetFrom() {
		fp := p.Child("from").Index(j)
		if from == nil {
			f.Required(fp, "`from` must not be null")
			continue
		}
		if from.GetSource() == nil {
			f.Required(fp.Child("source"), "`from.source` must not be nil")
			continue
		}
		s := from.GetSource()
		if len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals()) > 0 {
			httpOnly = true
		}
		apSource(fp.Child("source"), idx, s, custom, f)
	}
	for j, to := range r.GetTo() {
		tp := p.Child("to").Index(j)
		if to == nil {
			f.Required(tp, "`to` must not be null")
			continue
		}
		op := to.GetOperation()
		if op == nil {
			f.Required(tp.Child("operation"), "`to.operation` must not be nil")
			continue
		}
		if len(op.GetHosts())+len(op.GetNotHosts())+len(op.GetMethods())+len(op.GetNotMethods())+
			len(op.GetPaths())+len(op.GetNotPaths()) > 0 {
			httpOnly = true
		}
		if len(op.GetPorts())+len(op.GetNotPorts()) > 0 {
			hasPorts = true
		}
		apOperation(tp.Child("operation"), op, f)
	}
	for j, c := range r.GetWhen() {
		cp := p.Child("when").Index(j)
		if c == nil {
			f.Required(cp, "condition must not be null")
			continue
		}
		k := c.GetKey()
		// One rule for HTTP-only keys: secpolicy's, the compiler's (a key it
		// cannot parse is reported by apCondition).
		if ck, err := secpolicy.ParseConditionKey(k); err == nil && ck.HTTPOnly() {
			httpOnly = true
		}
		if k == "destination.port" {
			hasPorts = true
		}
		apCondition(cp, c, custom, f)
	}
	if action == security.AuthorizationPolicy_DENY && httpOnly && !hasPorts {
		f.Warn(p, nil, "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of "+
			"only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port")
	}
}

// apStringList is one string list of a Source or Operation with its Go name
// (used in Istio-style messages), JSON name (used in the path) and the check
// each of its values gets after the non-empty one (nil: none).
type apStringList struct {
	goName, jsonName string
	vals             []string
	check            func(*field.Path, string, *Findings)
}

// apAllEmpty reports, naming what, when every list is empty.
func apAllEmpty(p *field.Path, what string, lists []apStringList, f *Findings) bool {
	for _, l := range lists {
		if len(l.vals) > 0 {
			return false
		}
	}
	f.Error(p, nil, "`"+what+"` must not be empty")
	return true
}

// checkValues reports empty values and runs l.check on the others.
func (l apStringList) checkValues(lp *field.Path, f *Findings) {
	for i, v := range l.vals {
		vp := lp.Index(i)
		switch {
		case v == "":
			f.Error(vp, v, "empty value not allowed, found in "+l.goName)
		case l.check != nil:
			l.check(vp, v, f)
		}
	}
}

func apSource(p *field.Path, idx int, s *security.Source, custom bool, f *Findings) {
	lists := []apStringList{
		{"Principals", "principals", s.GetPrincipals(), apPrincipalFormat},
		{"NotPrincipals", "notPrincipals", s.GetNotPrincipals(), apPrincipalFormat},
		{"RequestPrincipals", "requestPrincipals", s.GetRequestPrincipals(), apRequestPrincipalFormat},
		{"NotRequestPrincipals", "notRequestPrincipals", s.GetNotRequestPrincipals(), apRequestPrincipalFormat},
		{"Namespaces", "namespaces", s.GetNamespaces(), nil},
		{"NotNamespaces", "notNamespaces", s.GetNotNamespaces(), nil},
		{"ServiceAccounts", "serviceAccounts", s.GetServiceAccounts(), apServiceAccount},
		{"NotServiceAccounts", "notServiceAccounts", s.GetNotServiceAccounts(), apServiceAccount},
		{"IpBlocks", "ipBlocks", s.GetIpBlocks(), apIPOrCIDR},
		{"NotIpBlocks", "notIpBlocks", s.GetNotIpBlocks(), apIPOrCIDR},
		{"RemoteIpBlocks", "remoteIpBlocks", s.GetRemoteIpBlocks(), apIPOrCIDR},
		{"NotRemoteIpBlocks", "notRemoteIpBlocks", s.GetNotRemoteIpBlocks(), apIPOrCIDR},
		{"TrustDomains", "trustDomains", s.GetTrustDomains(), apTrustDomain},
		{"NotTrustDomains", "notTrustDomains", s.GetNotTrustDomains(), apTrustDomain},
	}
	if apAllEmpty(p, "from.source", lists, f) {
		return
	}
	if len(s.GetServiceAccounts())+len(s.GetNotServiceAccounts()) > 0 &&
		len(s.GetPrincipals())+len(s.GetNotPrincipals())+len(s.GetNamespaces())+len(s.GetNotNamespaces()) > 0 {
		f.Error(p, nil, fmt.Sprintf("Cannot set serviceAccounts with namespaces or principals, found at rule %d", idx))
	}
	for _, l := range lists {
		lp := p.Child(l.jsonName)
		if custom && len(l.vals) > 0 && !strings.Contains(l.goName, "IpBlocks") {
			f.Error(lp, nil, fmt.Sprintf("From.%s is currently not supported with CUSTOM action", l.goName))
		}
		l.checkValues(lp, f)
		if strings.HasSuffix(l.goName, "ServiceAccounts") && len(l.vals) > 16 {
			f.Error(lp, nil, fmt.Sprintf("at most 16 %s are allowed, found %d", l.jsonName, len(l.vals)))
		}
	}
}

func apOperation(p *field.Path, op *security.Operation, f *Findings) {
	lists := []apStringList{
		{"Hosts", "hosts", op.GetHosts(), nil},
		{"NotHosts", "notHosts", op.GetNotHosts(), nil},
		{"Ports", "ports", op.GetPorts(), apPort},
		{"NotPorts", "notPorts", op.GetNotPorts(), apPort},
		{"Methods", "methods", op.GetMethods(), apMethod},
		{"NotMethods", "notMethods", op.GetNotMethods(), apMethod},
		{"Paths", "paths", op.GetPaths(), apPathTemplate},
		{"NotPaths", "notPaths", op.GetNotPaths(), apPathTemplate},
	}
	if apAllEmpty(p, "to.operation", lists, f) {
		return
	}
	for _, l := range lists {
		l.checkValues(p.Child(l.jsonName), f)
	}
}

// The value parsers below are secpolicy's, shared with policy/ (the
// ext_authz compiler), so a value accepted here always compiles there.

// apPort accepts 1..65535; Istio also accepts 0, which matches nothing
// (docs/compatibility.md "Stricter than Istio").
func apPort(p *field.Path, v string, f *Findings) {
	if _, err := secpolicy.ParsePort(v); err != nil {
		f.Error(p, v, err.Error())
	}
}

func apIPOrCIDR(p *field.Path, v string, f *Findings) {
	if _, err := secpolicy.ParseCIDR(v); err != nil {
		f.Error(p, v, err.Error())
	}
}

// apServiceAccount checks "sa" or "ns/sa" (Istio's ValidateAuthorizationPolicy, since 1.25).
func apServiceAccount(p *field.Path, v string, f *Findings) {
	if _, err := secpolicy.ParseServiceAccount(v, "default"); err != nil {
		f.Error(p, v, err.Error())
	}
}

// apTrustDomain: at most one "*", only at the start or end, and no "/" (since Istio 1.30).
func apTrustDomain(p *field.Path, v string, f *Findings) {
	if err := secpolicy.CheckTrustDomain(v); err != nil {
		f.Error(p, v, err.Error())
	}
}

// apPrincipal is a workload identity: <trust-domain>/ns/<namespace>/sa/<service-account>.
var apPrincipal = regexp.MustCompile(`^[^/]+/ns/[^/]+/sa/[^/]+$`)

// apPrincipalFormat warns about principals that can never match a peer
// identity (Istio accepts any string; docs/compatibility.md "Stricter than Istio").
func apPrincipalFormat(p *field.Path, v string, f *Findings) {
	switch {
	case strings.HasPrefix(v, "spiffe://"):
		f.Warn(p, v, "principal must not start with \"spiffe://\" (Istio adds it): this value never matches")
	case strings.HasPrefix(v, "*"):
		// "*" or a suffix match (its value quoted, secpolicy.PrincipalSuffixRegex).
	case strings.Contains(v, "*"):
		if v != "*" && !strings.HasSuffix(v, "*") {
			f.Warn(p, v, "\"*\" is only a wildcard at the start or the end of a principal; elsewhere it matches literally, unless trustDomainAliases rewrite a trust domain it matches")
		}
	case !apPrincipal.MatchString(v):
		f.Warn(p, v, "principal is not of the form <trust-domain>/ns/<namespace>/sa/<service-account>; it never matches a mesh workload identity")
	}
}

// apRequestPrincipalFormat warns about request principals without the <issuer>/<subject> form.
func apRequestPrincipalFormat(p *field.Path, v string, f *Findings) {
	if !strings.Contains(v, "*") && !strings.Contains(v, "/") {
		// Istio's requestPrincipalGenerator (model/generator.go) then
		// matches the whole value as the issuer and "" as the subject.
		f.Warn(p, v, "request principal is not of the form <issuer>/<subject>; it matches only a JWT with this issuer and an empty sub claim")
	}
}

// apHTTPMethods are the methods a request can carry (gRPC requests are POST).
var apHTTPMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// apMethod warns about a method that no request will carry: methods are
// matched case-sensitively, so "get" never matches (Istio does not check;
// docs/compatibility.md "Stricter than Istio").
func apMethod(p *field.Path, v string, f *Findings) {
	if strings.Contains(v, "*") || apHTTPMethods[v] {
		return
	}
	if apHTTPMethods[strings.ToUpper(v)] {
		f.Warn(p, v, fmt.Sprintf("methods are case-sensitive: %q never matches, use %q", v, strings.ToUpper(v)))
		return
	}
	f.Warn(p, v, "not a standard HTTP method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH); only clients sending exactly this method match")
}

// apPathTemplate checks a path value as Istio's CheckValidPathTemplate
// (secpolicy.CheckPath).
func apPathTemplate(p *field.Path, v string, f *Findings) {
	if err := secpolicy.CheckPath(v); err != nil {
		f.Error(p, v, err.Error())
	}
}

// apCondition checks one `when` condition (Istio's
// pkg/config/security/security.go ValidateAttribute); the key is parsed
// by secpolicy.ParseConditionKey, the compiler's parser.
func apCondition(p *field.Path, c *security.Condition, custom bool, f *Findings) {
	key := c.GetKey()
	kp := p.Child("key")
	if key == "" {
		f.Required(kp, "`key` must not be empty")
		return
	}
	if len(c.GetValues()) == 0 && len(c.GetNotValues()) == 0 {
		f.Error(p, nil, fmt.Sprintf("at least one of `values` or `notValues` must be set for key %s", key))
	}
	forEachValue := func(fn func(*field.Path, string)) {
		for i, v := range c.GetValues() {
			fn(p.Child("values").Index(i), v)
		}
		for i, v := range c.GetNotValues() {
			fn(p.Child("notValues").Index(i), v)
		}
	}
	// Istio's ValidateAttribute: CheckEmptyValues for every key, on values
	// and notValues each (notValues: [""] in an ALLOW would match every request).
	forEachValue(func(vp *field.Path, v string) {
		if v == "" {
			f.Error(vp, v, "empty value not allowed, found in "+key)
		}
	})
	k, err := secpolicy.ParseConditionKey(key)
	if err != nil {
		f.Error(kp, key, err.Error())
		return
	}
	if custom && (k.PeerIdentity() || k.RequestAuth()) {
		f.Error(kp, key, fmt.Sprintf("condition key %s is currently not supported with CUSTOM action", key))
	}
	each := func(check func(*field.Path, string, *Findings)) {
		forEachValue(func(vp *field.Path, v string) {
			if v != "" { // reported above
				check(vp, v, f)
			}
		})
	}
	switch k.Kind {
	case secpolicy.KeySourceIP, secpolicy.KeyRemoteIP, secpolicy.KeyDestinationIP:
		each(apIPOrCIDR)
	case secpolicy.KeyDestinationPort:
		each(apPort)
	case secpolicy.KeySourceServiceAccount:
		// Istio's CheckServiceAccount, on values and notValues each.
		for _, l := range []struct {
			name string
			n    int
		}{{"values", len(c.GetValues())}, {"notValues", len(c.GetNotValues())}} {
			if l.n > 16 {
				f.Error(p.Child(l.name), nil, fmt.Sprintf("may not have more than 16 %s for %s, found %d", l.name, key, l.n))
			}
		}
		each(apServiceAccount)
	case secpolicy.KeySourceTrustDomain:
		each(apTrustDomain)
	case secpolicy.KeySourcePrincipal:
		each(apPrincipalFormat)
	case secpolicy.KeyEnvoyFilter:
		// Valid for Istio; the Envoy filter metadata never reaches ext_authz
		// (policy/translate.go), so meshguard's ext_authz fails closed.
		f.Warn(kp, key, "Envoy filter metadata is not sent to ext_authz: "+authzFailsClosed)
	}
}

// apRawMatches names what a rule without the list matches.
var apRawMatches = map[string]string{"from": "source", "to": "operation", "when": "request"}

// validateAuthorizationPolicyRaw reports rules whose `from`, `to` or `when`
// list is present but empty (Istio's ValidateAuthorizationPolicy for from/to;
// `when: []` is beyond Istio, docs/compatibility.md "Checked on the raw spec,
// not the proto"). Decoding into the proto loses the difference between `from: []`
// and no `from` (the slice stays nil), and a rule without `from` matches every
// source: for an ALLOW policy that silently widens access. So this runs on the
// raw (decoded JSON) spec, registered with registerRaw; ValidateObject calls
// it before decoding.
func validateAuthorizationPolicyRaw(meta metav1.ObjectMeta, spec map[string]any, f *Findings) {
	rules, _ := spec["rules"].([]any)
	prefix := fmt.Sprintf("invalid policy %s.%s: ", meta.Name, meta.Namespace)
	for i, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			continue
		}
		for _, k := range []string{"from", "to", "when"} {
			// An explicit null is pruned before (prune: the API server
			// stores no such field), so only [] is left to refuse.
			if l, present := rule[k]; present {
				if list, ok := l.([]any); ok && len(list) == 0 {
					f.Error(field.NewPath("spec", "rules").Index(i).Child(k), nil,
						fmt.Sprintf("%s`%s` must not be empty: remove it, or it would match every %s",
							prefix, k, apRawMatches[k]))
				}
			}
		}
	}
}
