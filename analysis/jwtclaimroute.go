package analysis

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/validation"
)

// JwtClaimBasedRoutingWithoutRequestAuthN is the code of Istio's JWT claim
// route analyzer (pkg/config/analysis/analyzers/virtualservice/jwtclaimroute.go
// JWTClaimRouteAnalyzer; level and text from
// pkg/config/analysis/msg/messages.gen.go JwtClaimBasedRoutingWithoutRequestAuthN).
const JwtClaimBasedRoutingWithoutRequestAuthN = "IST0149"

func init() {
	Types[JwtClaimBasedRoutingWithoutRequestAuthN] = MessageType{JwtClaimBasedRoutingWithoutRequestAuthN, "JwtClaimBasedRoutingWithoutRequestAuthN", Error}
}

// jwtClaimRoutes is Istio's JWTClaimRouteAnalyzer.Analyze (jwtclaimroute.go
// at istio/istio 0a617ca985f9 and its newest stored version, the one reading
// jwt.ToRoutingClaim) over the VirtualServices of in, in input order:
//
//   - a VirtualService routes on a JWT claim when a match of its http routes
//     has a headers or withoutHeaders key that is a routing claim
//     (validation.IsRoutingClaim, Istio's jwt.ToRoutingClaim(key).Match:
//     "@request.auth.claims.a" or "@request.auth.claims[a]", the prefix in
//     any case); the first such key, routes and matches in order, headers
//     before withoutHeaders, names it (Istio takes the first its map
//     iteration gives; meshguard the smallest key of the map, so the text is
//     stable);
//   - for each of its gateways but "mesh", named "ns/name" or "name" (the
//     VirtualService's namespace; Istio's resource.NewShortOrFullName), the
//     Gateway object of that name (none: nothing, the gateway analyzers
//     report it); its selector, an empty one matching every workload, as in
//     Istio;
//   - for each workload the selector matches, of any namespace: IST0149
//     unless a RequestAuthentication of the workload's namespace or of the
//     root namespace has a selector (matchLabels; none selects all) matching
//     it. One message per VirtualService, gateway and workload.
//
// The workloads are in.Workloads as given: a gateway whose pods are not in
// the input (files without them) gets no message, and none is needed for
// completeness (as gatewayWorkloadPorts' rule, nothing is reported of pods
// not seen). A Deployment read from a cluster does not count, as Istio
// reads Pods only and the cluster's pods are listed; from files a
// Deployment's pod template stands for its pods (Input.selectable).
//
// Difference from Istio: the root namespace is the mesh config's
// (Input.RootNamespace), where pilot applies RequestAuthentications to every
// workload (pilot/pkg/model/authentication.go GetJwtPoliciesForWorkload,
// getConfigsForWorkload with the mesh rootNamespace); Istio's analyzer reads
// istio-system (constants.IstioSystemNamespace) whatever the mesh config.
// Under the default mesh config the two are the same.
func jwtClaimRoutes(in *Input) []Message {
	gateways := map[string]*networking.Gateway{}
	raSelectors := map[string][]labels.Selector{}
	for _, o := range in.Objects {
		switch spec := o.Spec.(type) {
		case *networking.Gateway:
			gateways[o.Namespace+"/"+o.Name] = spec
		case *security.RequestAuthentication:
			raSelectors[o.Namespace] = append(raSelectors[o.Namespace], labels.SelectorFromSet(spec.GetSelector().GetMatchLabels()))
		}
	}
	root := in.RootNamespace()
	authenticated := func(w Workload) bool {
		set := labels.Set(w.Labels)
		sels := raSelectors[w.Namespace]
		if w.Namespace != root {
			sels = slices.Concat(sels, raSelectors[root])
		}
		return slices.ContainsFunc(sels, func(s labels.Selector) bool { return s.Matches(set) })
	}
	var out []Message
	for _, o := range in.Objects {
		vs, ok := o.Spec.(*networking.VirtualService)
		if !ok {
			continue
		}
		key, fieldPath := jwtClaimRouteKey(vs)
		if key == "" {
			continue
		}
		for _, name := range vs.GetGateways() {
			if name == meshGatewayName {
				continue
			}
			full := name
			if !strings.Contains(name, "/") {
				full = o.Namespace + "/" + name
			}
			gw, ok := gateways[full]
			if !ok {
				continue
			}
			for _, w := range in.selectedBy(gw.GetSelector()) {
				if authenticated(w) {
					continue
				}
				out = append(out, newMessage(o, JwtClaimBasedRoutingWithoutRequestAuthN, fieldPath,
					fmt.Sprintf("The virtual service uses the JWT claim based routing (key: %s) but found no request authentication for the gateway (%s) pod (%s). The request authentication must first be applied for the gateway pods to validate the JWT token and make the claims available for routing.",
						key, full, w.Name)))
			}
		}
	}
	return out
}

// meshGatewayName is the reserved gateway name of the sidecars (Istio's
// util.MeshGateway).
const meshGatewayName = "mesh"

// jwtClaimRouteKey is Istio's routeBasedOnJWTClaimKey (jwtclaimroute.go):
// the first header key of the http matches that is a JWT claim, and its
// field path; "" when none is.
func jwtClaimRouteKey(vs *networking.VirtualService) (string, string) {
	for i, route := range vs.GetHttp() {
		for j, m := range route.GetMatch() {
			p := field.NewPath("spec", "http").Index(i).Child("match").Index(j)
			for _, hs := range []struct {
				name    string
				headers map[string]*networking.StringMatch
			}{{"headers", m.GetHeaders()}, {"withoutHeaders", m.GetWithoutHeaders()}} {
				for _, k := range slices.Sorted(maps.Keys(hs.headers)) {
					if validation.IsRoutingClaim(k) {
						return k, p.Child(hs.name).Key(k).String()
					}
				}
			}
		}
	}
	return "", ""
}
