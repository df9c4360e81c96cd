package validation

import "testing"

// TestIstioValidationReview: inputs outside Istio's conformance data where a
// review against pkg/config/validation (validation.go, agent/validation.go)
// found meshguard judging otherwise; each now as Istio judges it.
func TestIstioValidationReview(t *testing.T) {
	const (
		dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\nspec:\n"
		vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: shop}\nspec:\n"
		se = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: r, namespace: shop}\nspec:\n"
		we = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: r, namespace: shop}\nspec:\n"
	)
	for _, c := range []struct {
		name, doc string
		valid     bool
	}{
		// validateSubsetName: labels.IsDNS1123Label, which allows upper case.
		{"subset name with capitals", dr + "  host: reviews\n  subsets: [{name: Canary, labels: {v: c}}]\n", true},
		{"destination subset with capitals", vs + "  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews, subset: Canary}}]}]\n", true},
		// validateLoadBalancer: aggression must be >= 1.
		{"warmup aggression below 1", dr + "  host: reviews\n  trafficPolicy: {loadBalancer: {warmup: {duration: 10s, aggression: 0.5}}}\n", false},
		{"warmup aggression 1", dr + "  host: reviews\n  trafficPolicy: {loadBalancer: {warmup: {duration: 10s, aggression: 1}}}\n", true},
		// ValidateServiceEntry, DNS: every endpoint address must be an IP or an FQDN.
		{"DNS endpoint with only a network", se + "  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n  endpoints: [{network: n1}]\n", false},
		{"DNS without endpoints, numeric host", se + "  hosts: [\"123\"]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n", false},
		// ValidateDNS1123Labels: a lone all-numeric label is not an FQDN.
		{"WorkloadEntry address all-numeric", we + "  address: \"123\"\n", false},
		{"WorkloadEntry address with trailing dot", we + "  address: \"123.\"\n", true},
		// isPrime as Envoy's: 1 counts.
		{"maglev table size 1", dr + "  host: reviews\n  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 1}}}}\n", true},
		// validateHTTPRouteConflict: a root route checks only redirect and route.
		{"root route with directResponse and fault", vs + "  hosts: [reviews]\n  http: [{delegate: {name: d}, directResponse: {status: 503}, fault: {abort: {httpStatus: 500, percentage: {value: 1}}}}]\n", true},
		// jwt.ToRoutingClaim: the prefix in any case, then .key or [key].
		{"claim prefix alone", vs + "  hosts: [reviews]\n  gateways: [gw]\n  http: [{match: [{headers: {\"@request.auth.claims\": {exact: x}}}], route: [{destination: {host: reviews}}]}]\n", false},
		{"claim prefix in capitals", vs + "  hosts: [reviews]\n  gateways: [gw]\n  http: [{match: [{headers: {\"@Request.Auth.Claims.sub\": {exact: x}}}], route: [{destination: {host: reviews}}]}]\n", true},
		// validateSniHost: the auto-SNI form only on a gateway, always a subset of a VS host.
		{"auto-SNI on the mesh", vs + "  hosts: [\"*.x.com\"]\n  tls: [{match: [{sniHosts: [\"outbound_.80_._.a.x.com\"]}], route: [{destination: {host: a.x.com}}]}]\n", false},
		{"auto-SNI outside the gateway VS hosts", vs + "  hosts: [a.x.com]\n  gateways: [gw]\n  tls: [{match: [{sniHosts: [\"outbound_.80_._.b.x.com\"]}], route: [{destination: {host: b.x.com}}]}]\n", false},
		{"auto-SNI on a gateway within its hosts", vs + "  hosts: [\"*.x.com\"]\n  gateways: [gw]\n  tls: [{match: [{sniHosts: [\"outbound_.80_._.b.x.com\"]}], route: [{destination: {host: b.x.com}}]}]\n", true},
		// host.Name.Matches: "*foo.com" matches "foo.com".
		{"wildcard host overlapping its suffix", vs + "  hosts: [\"*foo.com\", foo.com]\n  http: [{route: [{destination: {host: reviews}}]}]\n", false},
	} {
		res := validateNetYAML(t, c.doc)
		if res.Valid() != c.valid {
			t.Errorf("%s: valid %v, want %v: %v", c.name, res.Valid(), c.valid, res.ErrorLines())
		}
	}
}
