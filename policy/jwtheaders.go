package policy

import (
	"fmt"
	"slices"
	"sort"

	"github.com/meshguard/meshguard/internal/submap"
)

// Istio's CUSTOM provider runs ext_authz before jwt_authn, and its RBAC
// filters after it (pilot/pkg/networking/core/listener_builder.go
// buildHTTPConnectionManager: the CUSTOM filters, then the authn filters,
// then RBAC). jwt_authn changes the request's headers in between: for a
// verified token it appends each outputClaimToHeaders header and the
// outputPayloadToHeader header (Envoy jwt_authn authenticator.cc
// handleGoodJwt, addCopy: a value the client sent stays, and RBAC's header
// matcher reads the values joined with ",",
// HeaderUtility::getAllOfHeaderAsString), and unless forwardOriginalToken it
// removes the token's header (Istio: pilot/pkg/security/authn/policy_applier.go
// convertToEnvoyJwtConfig sets forward from it). A CheckRequest sent before
// jwt_authn carries the headers as the client sent them, so a policy
// matching one of those headers cannot get Istio's verdict there: the
// request is denied where such a policy may apply (fail closed, as for an
// unknown attribute). A CheckRequest sent after jwt_authn (its metadata
// forwarded) has the rewritten headers: nothing changes.

// jwtRewrite is what one RequestAuthentication's jwt_authn provider may
// change of a request's headers, and to which workloads it applies.
type jwtRewrite struct {
	obj  string // "RequestAuthentication ns/name"
	ns   string
	root bool              // in the root namespace: its selector applies mesh-wide
	sel  map[string]string // spec.selector.matchLabels
	// targeted: it has targetRefs, and attaches to the pods of gateways
	// (GatewayNameLabel) of its namespace only (gatewayTargets).
	targeted bool
	gateways []string
	headers  map[string]string // header name (headerName) → the field that writes or removes it
	// invalid: why `meshguard validate` rejects it: what it changes cannot
	// be read, so any header may be one (fail closed).
	invalid string
}

// jwtRewrites reads the RequestAuthentications of set, in name order. As in
// Istio's pilot/pkg/model/authentication.go getConfigsForWorkload and
// policyattachment.go ShouldAttachPolicy, one applies to the workloads of
// its namespace (the root namespace's to every namespace's) its selector
// matches, or with targetRefs to the named Gateways' pods; one naming no
// Gateway (waypoints) applies to nothing meshguard serves.
func jwtRewrites(mesh Mesh, set *Set) []jwtRewrite {
	var out []jwtRewrite
	for _, ra := range set.RequestAuthentications {
		spec := &ra.Spec
		w := jwtRewrite{obj: "RequestAuthentication " + ra.Namespace + "/" + ra.Name, ns: ra.Namespace,
			root: ra.Namespace == mesh.RootNamespace, sel: spec.GetSelector().GetMatchLabels()}
		if spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
			w.targeted, w.gateways = true, gatewayTargets(ra.Namespace, spec.GetTargetRef(), spec.GetTargetRefs())
			if len(w.gateways) == 0 {
				continue
			}
		}
		// The checks every RequestAuthentication gets (validation's
		// validateRequestAuthentication, as `meshguard validate` runs them).
		if w.invalid = validateStored(set, "RequestAuthentication", ra); w.invalid != "" {
			out = append(out, w)
			continue
		}
		w.headers = map[string]string{}
		for i, r := range spec.GetJwtRules() {
			at := fmt.Sprintf("spec.jwtRules[%d]", i)
			for j, c := range r.GetOutputClaimToHeaders() {
				w.headers[headerName(c.GetHeader())] = fmt.Sprintf("%s.outputClaimToHeaders[%d] (appended)", at, j)
			}
			if h := r.GetOutputPayloadToHeader(); h != "" {
				w.headers[headerName(h)] = at + ".outputPayloadToHeader (appended)"
			}
			if r.GetForwardOriginalToken() {
				continue
			}
			for j, h := range r.GetFromHeaders() {
				w.headers[headerName(h.GetName())] = fmt.Sprintf("%s.fromHeaders[%d] (the token's header, removed: forwardOriginalToken false)", at, j)
			}
			// No location given: Envoy's defaults, the Authorization header
			// and the access_token query parameter.
			noLocation := len(r.GetFromHeaders()) == 0 && len(r.GetFromParams()) == 0 && len(r.GetFromCookies()) == 0
			if noLocation {
				w.headers["authorization"] = at + " (the default token header, removed: forwardOriginalToken false)"
			}
			// A token parameter is cut out of :path (Envoy jwt_authn
			// extractor.cc JwtParamLocation::removeJwt, setPath); cookies
			// are left in place (JwtCookieLocation::removeJwt does nothing).
			if len(r.GetFromParams()) > 0 || noLocation {
				w.headers[":path"] = at + " (the token's query parameter, removed from the path: forwardOriginalToken false)"
			}
		}
		if len(w.headers) > 0 {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].obj < out[j].obj })
	return out
}

// mayApply: w may apply to a workload of namespace ns ("" unknown) whose
// labels are those of wl (nil: unknown, any of the namespace).
func (w *jwtRewrite) mayApply(ns string, wl *workload) bool {
	if w.targeted {
		if ns != "" && ns != w.ns {
			return false
		}
		if wl == nil {
			return true
		}
		name, ok := wl.labels[GatewayNameLabel]
		return ok && slices.Contains(w.gateways, name)
	}
	if ns != "" && !w.root && ns != w.ns {
		return false
	}
	return wl == nil || submap.Contains(wl.labels, w.sel)
}

// jwtHeadersUnknown says why r's headers are not those Istio's RBAC filter
// matches, or "": its JWT is unknown (no jwt_authn metadata, so the
// CheckRequest may come before jwt_authn), a RequestAuthentication that may
// apply to its workload changes a header, and a deciding policy that may
// apply matches on that header (docs/compatibility.md "Attribute sources").
func (s *Snapshot) jwtHeadersUnknown(r *Request, vr *viewReads, wl *workload) string {
	if !r.NoMetadata || r.TCP || len(s.jwtRewrites) == 0 || vr == nil || !vr.anyHeader {
		return ""
	}
	var labels map[string]string
	if wl != nil {
		labels = wl.labels
	}
	for _, h := range vr.headersFor(labels, wl != nil) {
		for i := range s.jwtRewrites {
			w := &s.jwtRewrites[i]
			if !w.mayApply(r.Namespace, wl) {
				continue
			}
			what, ok := w.headers[h]
			if w.invalid != "" {
				what, ok = "cannot be read, so any header may be one jwt_authn writes or removes: "+w.invalid, true
			}
			if ok {
				why := "it may come before jwt_authn: it has no " + JWTAuthnFilter + " metadata"
				if r.jwtNotForwarded {
					why += " (Istio's CUSTOM provider runs ext_authz before jwt_authn, see --authz-jwt-metadata)"
				}
				return fmt.Sprintf("the request has no header %s as Istio's RBAC filter matches it after jwt_authn, "+
					"which policies in force match on (fail closed): %s %s, and %s", h, w.obj, what, why)
			}
		}
	}
	return ""
}
