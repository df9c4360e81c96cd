package authzref

// ---- headers jwt_authn changes, as the ext_authz server sees them -------
//
// docs/compatibility.md, the "request.headers[h] that jwt_authn changes"
// row: where a request's JWT is unknown (the CheckRequest has no jwt_authn
// metadata and Envoy is not known to forward it, or carries the context
// extension meshguard.io/no-metadata), the CheckRequest may come before
// jwt_authn, which then appends each outputClaimToHeaders and
// outputPayloadToHeader header and, unless forwardOriginalToken, removes
// the token's header (fromHeaders; none of fromHeaders, fromParams,
// fromCookies: Authorization) and cuts the token's query parameter out of
// :path (fromParams; none given: access_token) before Istio's RBAC filter
// reads them. Such a
// header of a RequestAuthentication that applies to the workload (its
// namespace's or the root namespace's, selector matching, or targetRefs
// naming the workload's Gateway) is unknown, and so is the JWT itself: the
// request is denied (403) where an enforced ALLOW or DENY policy that
// applies to the workload matches on it (request.headers[h], values or
// notValues; requestPrincipals, notRequestPrincipals, request.auth.*).
// Written from that text, not from meshguard's code.

import (
	"strings"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
)

// jwtUnknownDenies: r, whose JWT is unknown (Request.JWTUnknown), cannot
// be decided on its JWT or on headers jwt_authn changes.
func jwtUnknownDenies(mesh Mesh, aps []*secv1.AuthorizationPolicy, ras []*secv1.RequestAuthentication, r Request) bool {
	if !r.JWTUnknown || r.TCP {
		return false
	}
	changed := map[string]bool{}
	for _, ra := range ras {
		if !raApplies(mesh, ra, r.Dest) {
			continue
		}
		for _, rule := range ra.Spec.GetJwtRules() {
			for _, c := range rule.GetOutputClaimToHeaders() {
				changed[headerNameLower(c.GetHeader())] = true
			}
			if h := rule.GetOutputPayloadToHeader(); h != "" {
				changed[headerNameLower(h)] = true
			}
			if rule.GetForwardOriginalToken() {
				continue
			}
			for _, h := range rule.GetFromHeaders() {
				changed[headerNameLower(h.GetName())] = true
			}
			defaults := len(rule.GetFromHeaders()) == 0 && len(rule.GetFromParams()) == 0 && len(rule.GetFromCookies()) == 0
			if defaults {
				changed["authorization"] = true
			}
			if defaults || len(rule.GetFromParams()) > 0 {
				changed[":path"] = true
			}
		}
	}
	for _, ap := range aps {
		a := ap.Spec.GetAction().String()
		if (a != "ALLOW" && a != "DENY") || isDryRun(ap) || !applies(mesh, ap, r.Dest) {
			continue
		}
		for _, rule := range ap.Spec.GetRules() {
			for _, f := range rule.GetFrom() {
				if s := f.GetSource(); len(s.GetRequestPrincipals()) > 0 || len(s.GetNotRequestPrincipals()) > 0 {
					return true
				}
			}
			for _, c := range rule.GetWhen() {
				k := c.GetKey()
				if strings.HasPrefix(k, "request.auth.") {
					return true
				}
				for _, prefix := range []string{"request.headers[", "request.experimental.inline.headers["} {
					if h, ok := strings.CutPrefix(k, prefix); ok && changed[headerNameLower(strings.TrimSuffix(h, "]"))] {
						return true
					}
				}
			}
		}
	}
	return false
}

// raApplies: Istio's getConfigsForWorkload (pilot/pkg/model/authentication.go)
// with ShouldAttachPolicy, the rule AuthorizationPolicies attach by.
func raApplies(mesh Mesh, ra *secv1.RequestAuthentication, w Workload) bool {
	ap := &secv1.AuthorizationPolicy{}
	ap.Namespace = ra.Namespace
	ap.Spec.Selector, ap.Spec.TargetRef, ap.Spec.TargetRefs = ra.Spec.GetSelector(), ra.Spec.GetTargetRef(), ra.Spec.GetTargetRefs()
	return applies(mesh, ap, w)
}

// headerNameLower: Envoy's header names are ASCII lower case, and its
// header map reads "host" as ":authority".
func headerNameLower(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if b.String() == "host" {
		return ":authority"
	}
	return b.String()
}
