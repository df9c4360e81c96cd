package validation

import (
	"strings"
	"testing"
)

// Istio's own unit-test tables for the security, telemetry and extension
// kinds (istio/istio pkg/config/validation/validation_test.go:
// TestValidateAuthorizationPolicy, TestValidateRequestAuthentication,
// TestValidatePeerAuthentication, TestValidateTelemetry,
// TestValidateTelemetryFilter, TestValidateProxyConfig,
// TestValidateWasmPlugin), each row re-expressed as a whole object and run
// through ValidateObject, the entry point the webhook, `meshguard validate`
// and the ext_authz loader share. Row names are "<upstream function>/<row>"
// (TestValidateTelemetryFilter's rows have no names upstream: named by their
// expression). The rows are those of validation_test.go at istio/istio
// 91fbb814 (its fields, serviceAccounts and targetRefs among them, are all in
// meshguard's pinned istio.io/api v1.31.1).
//
// Istio's rows call the kind's Go validator only; here the CRD schema runs
// too, as the API server would before Istio's webhook. A row is asserted
// with Istio's verdict; where Istio's row checks a warning (or its absence)
// or an error substring, that is asserted too. err holds meshguard's
// wording where it differs: for targetRef, the selector/targetRef exclusion,
// WasmPlugin's URL scheme and ProxyConfig's concurrency the CRD's schema and
// CEL rules reject the object first, with the API server's message, so
// Istio's Go message is never reached in a cluster either.
//
// Rows not asserted, with the reason:
//   - TestValidateTelemetry "invalid message", TestValidateWasmPlugin
//     "invalid message": a networking Server passed as the spec, a Go type
//     error that no object can express.
//   - TestValidateTelemetry "tracing with a nil custom tag": a nil message in
//     the customTags map. Written as an object (`clusterID: null`) the API
//     server prunes the null map value before any webhook sees it
//     (PruneNonNullableNullsWithoutDefaults; the schema's value is not
//     nullable), leaving `customTags: {}`, which Istio accepts too.
//   - TestValidateEnvoyFilter "happy config", "deprecated type" and
//     "duration marshal": they add a
//     Cluster and filters without a name, which meshguard deliberately refuses
//     (docs/compatibility.md, EnvoyFilter: complete patch values must pass
//     Envoy's own proto constraints; Envoy would reject the config). Each is
//     asserted with its values named, Istio's verdict and warning unchanged.

type istioSecRow struct {
	name  string
	doc   string
	valid bool
	// err: a substring of some error line ("" = not checked beyond valid).
	err string
	// warn: "" = no warning expected; otherwise a substring of some warning.
	warn string
	// extra: substrings of warnings beyond those of the function Istio's row
	// calls: meshguard-only warnings docs/compatibility.md lists as
	// deliberate, or the standing warning Istio's outer ValidateEnvoyFilter
	// adds to every EnvoyFilter (the row calls the inner
	// validateEnvoyFilter). Each must appear in some warning, and the
	// warnings containing one are not counted against warn.
	extra []string
}

func runIstioSecRows(t *testing.T, rows []istioSecRow) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.name] {
			t.Fatalf("duplicate row name %q", r.name)
		}
		seen[r.name] = true
		t.Run(r.name, func(t *testing.T) {
			res := validateNetYAML(t, r.doc)
			errs := strings.Join(res.ErrorLines(), "\n")
			var kept []string
			found := make([]bool, len(r.extra))
		next:
			for _, w := range res.WarningLines() {
				for i, x := range r.extra {
					if strings.Contains(w, x) {
						found[i] = true
						continue next
					}
				}
				kept = append(kept, w)
			}
			for i, x := range r.extra {
				if !found[i] {
					t.Errorf("want the extra warning %q, got:\n%s", x, strings.Join(res.WarningLines(), "\n"))
				}
			}
			warns := strings.Join(kept, "\n")
			if res.Valid() != r.valid {
				t.Fatalf("valid %v, want %v (Istio's verdict)\nerrors:\n%s", res.Valid(), r.valid, errs)
			}
			if r.err != "" && !strings.Contains(errs, r.err) {
				t.Errorf("want an error containing %q, got:\n%s", r.err, errs)
			}
			switch {
			case r.warn == "" && warns != "":
				t.Errorf("unexpected warnings (Istio's row expects none):\n%s", warns)
			case r.warn != "" && !strings.Contains(warns, r.warn):
				t.Errorf("want a warning containing %q, got:\n%s", r.warn, warns)
			}
		})
	}
}

func istioObj(apiVersion, kind, meta, spec string) string {
	return "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: " + meta + "\nspec:\n" + spec
}

// TestIstioTableAuthorizationPolicy: Istio's TestValidateAuthorizationPolicy
// (object name "name", namespace "namespace").
func TestIstioTableAuthorizationPolicy(t *testing.T) {
	const meta = "{name: name, namespace: namespace}"
	ap := func(spec string) string { return istioObj("security.istio.io/v1", "AuthorizationPolicy", meta, spec) }
	apAnn := func(dry, spec string) string {
		return istioObj("security.istio.io/v1", "AuthorizationPolicy",
			"{name: name, namespace: namespace, annotations: {istio.io/dry-run: \""+dry+"\"}}", spec)
	}
	const (
		gw    = "{group: gateway.networking.k8s.io, kind: Gateway, name: foo}"
		l7    = "  rules: [{from: [{source: {principals: [temp]}}], to: [{operation: {ports: [\"8080\"], methods: [GET, DELETE]}}]}]\n"
		l7Sel = "  selector: {matchLabels: {app: httpbin}}\n"
	)
	const denyTCP = "will deny all traffic to TCP ports"
	// notForm: meshguard's warning for principals not of the SPIFFE form and
	// request principals without "/" (docs/compatibility.md, stricter checks:
	// such values never match); Istio's rows use them freely.
	const notForm = "is not of the form"
	const f = "TestValidateAuthorizationPolicy/"
	runIstioSecRows(t, []istioSecRow{
		{name: f + "good", extra: []string{notForm}, valid: true, doc: ap(`  selector: {matchLabels: {app: httpbin, version: v1}}
  rules:
  - from: [{source: {principals: [sa1]}}, {source: {principals: [sa2]}}]
    to: [{operation: {methods: [GET]}}, {operation: {methods: [POST]}}]
    when: [{key: source.ip, values: [1.2.3.4, 5.6.7.0/24]}, {key: "request.headers[:authority]", values: [v1, v2]}]
`)},
		{name: f + "good serviceAccounts", extra: []string{notForm}, valid: true, doc: ap(`  selector: {matchLabels: {app: httpbin, version: v1}}
  rules: [{from: [{source: {serviceAccounts: [ns1/sa1, ns2/sa2]}}, {source: {principals: [sa2]}}]}]
`)},
		{name: f + "serviceAccounts and namespaces", valid: false, doc: ap(`  selector: {matchLabels: {app: httpbin, version: v1}}
  rules: [{from: [{source: {serviceAccounts: [ns1/sa1, ns2/sa2], namespaces: [ns]}}]}]
`)},
		{name: f + "custom-good", valid: true, doc: ap("  action: CUSTOM\n  provider: {name: my-custom-authz}\n  rules: [{}]\n")},
		{name: f + "custom-empty-provider", valid: false, doc: ap("  action: CUSTOM\n  provider: {name: \"\"}\n  rules: [{}]\n")},
		{name: f + "custom-nil-provider", valid: false, doc: ap("  action: CUSTOM\n  rules: [{}]\n")},
		{name: f + "custom-invalid-rule", extra: []string{notForm}, valid: false, doc: ap(`  action: CUSTOM
  provider: {name: my-custom-authz}
  rules:
  - from: [{source: {namespaces: [ns], notNamespaces: [ns], principals: [id], notPrincipals: [id], requestPrincipals: [req], notRequestPrincipals: [req]}}]
    when:
    - {key: source.namespace, values: [source.namespace1], notValues: [source.namespace2]}
    - {key: source.principal, values: [source.principal1], notValues: [source.principal2]}
    - {key: "request.auth.claims[a]", values: [claims1], notValues: [claims2]}
`)},
		{name: f + "provider-wrong-action", valid: false, doc: ap("  action: ALLOW\n  provider: {name: \"\"}\n  rules: [{}]\n")},
		{name: f + "allow-rules-nil", valid: true, doc: ap("  action: ALLOW\n")},
		{name: f + "dry-run-valid-allow", valid: true, doc: apAnn("true", "  action: ALLOW\n")},
		{name: f + "dry-run-valid-deny", valid: true, doc: apAnn("false", "  action: DENY\n  rules: [{}]\n")},
		{name: f + "dry-run-invalid-value", valid: false, doc: apAnn("foo", "  action: ALLOW\n")},
		{name: f + "dry-run-invalid-action-custom", valid: false, doc: apAnn("true", "  action: CUSTOM\n")},
		{name: f + "dry-run-invalid-action-audit", valid: false, doc: apAnn("true", "  action: AUDIT\n")},
		{name: f + "deny-rules-nil", valid: false, doc: ap("  action: DENY\n")},
		{name: f + "selector-empty-value", valid: true, doc: ap("  selector: {matchLabels: {app: \"\", version: v1}}\n")},
		{name: f + "selector-empty-key", valid: false, doc: ap("  selector: {matchLabels: {app: httpbin, \"\": v1}}\n")},
		{name: f + "selector-empty-labels", valid: true, warn: "selector", doc: ap("  selector: {}\n")},
		{name: f + "selector-wildcard-value", valid: false, doc: ap("  selector: {matchLabels: {app: httpbin-*}}\n")},
		{name: f + "selector-wildcard-key", valid: false, doc: ap("  selector: {matchLabels: {app-*: httpbin}}\n")},
		{name: f + "target-ref-good", extra: []string{notForm}, valid: true, doc: ap("  action: DENY\n  targetRef: " + gw + "\n" + l7)},
		{name: f + "target-refs-good", extra: []string{notForm}, valid: true, doc: ap("  action: DENY\n  targetRefs: [" + gw + "]\n" + l7)},
		{name: f + "target-refs-good-service", extra: []string{notForm}, valid: true, doc: ap("  action: DENY\n  targetRefs: [{group: \"\", kind: Service, name: foo}]\n" + l7)},
		{name: f + "target-ref-non-empty-namespace", extra: []string{notForm}, valid: false, doc: ap("  action: DENY\n  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo, namespace: bar}\n" + l7)},
		{name: f + "target-ref-empty-name", extra: []string{notForm}, valid: false, doc: ap("  action: DENY\n  targetRef: {group: gateway.networking.k8s.io, kind: Gateway}\n" + l7)},
		{name: f + "target-ref-wrong-group", extra: []string{notForm}, valid: false, doc: ap("  action: DENY\n  targetRef: {group: wrong-group, kind: Gateway, name: foo}\n" + l7)},
		{name: f + "target-ref-wrong-kind", extra: []string{notForm}, valid: false, doc: ap("  action: DENY\n  targetRef: {group: gateway.networking.k8s.io, kind: wrong-kind, name: foo}\n" + l7)},
		{name: f + "target-ref-and-selector-cannot-both-be-set", extra: []string{notForm}, valid: false, doc: ap("  action: DENY\n  targetRef: " + gw + "\n" + l7Sel + l7)},
		{name: f + "target-refs-and-selector-cannot-both-be-set", extra: []string{notForm}, valid: false, doc: ap("  action: DENY\n  targetRefs: [" + gw + "]\n" + l7Sel + l7)},
		{name: f + "from-empty", valid: false, doc: ap("  rules: [{from: []}]\n")},
		{name: f + "source-nil", valid: false, doc: ap("  rules: [{from: [{}]}]\n")},
		{name: f + "source-empty", valid: false, doc: ap("  rules: [{from: [{source: {}}]}]\n")},
		{name: f + "to-empty", valid: false, doc: ap("  rules: [{to: []}]\n")},
		{name: f + "operation-nil", valid: false, doc: ap("  rules: [{to: [{}]}]\n")},
		{name: f + "operation-empty", valid: false, doc: ap("  rules: [{to: [{operation: {}}]}]\n")},
		{name: f + "Principals-empty", extra: []string{notForm}, valid: false, doc: ap("  rules: [{from: [{source: {principals: [p1, \"\"]}}]}]\n")},
		{name: f + "NotPrincipals-empty", extra: []string{notForm}, valid: false, doc: ap("  rules: [{from: [{source: {notPrincipals: [p1, \"\"]}}]}]\n")},
		{name: f + "RequestPrincipals-empty", extra: []string{notForm}, valid: false, doc: ap("  rules: [{from: [{source: {requestPrincipals: [p1, \"\"]}}]}]\n")},
		{name: f + "NotRequestPrincipals-empty", extra: []string{notForm}, valid: false, doc: ap("  rules: [{from: [{source: {notRequestPrincipals: [p1, \"\"]}}]}]\n")},
		{name: f + "Namespaces-empty", valid: false, doc: ap("  rules: [{from: [{source: {namespaces: [ns, \"\"]}}]}]\n")},
		{name: f + "ServiceAccounts-empty", valid: false, doc: ap("  rules: [{from: [{source: {serviceAccounts: [ns/sa, \"\"]}}]}]\n")},
		{name: f + "NotNamespaces-empty", valid: false, doc: ap("  rules: [{from: [{source: {notNamespaces: [ns, \"\"]}}]}]\n")},
		{name: f + "IpBlocks-empty", valid: false, doc: ap("  rules: [{from: [{source: {ipBlocks: [1.2.3.4, \"\"]}}]}]\n")},
		{name: f + "NotIpBlocks-empty", valid: false, doc: ap("  rules: [{from: [{source: {notIpBlocks: [1.2.3.4, \"\"]}}]}]\n")},
		{name: f + "RemoteIpBlocks-empty", valid: false, doc: ap("  rules: [{from: [{source: {remoteIpBlocks: [1.2.3.4, \"\"]}}]}]\n")},
		{name: f + "NotRemoteIpBlocks-empty", valid: false, doc: ap("  rules: [{from: [{source: {notRemoteIpBlocks: [1.2.3.4, \"\"]}}]}]\n")},
		{name: f + "Hosts-empty", valid: false, doc: ap("  rules: [{to: [{operation: {hosts: [host, \"\"]}}]}]\n")},
		{name: f + "NotHosts-empty", valid: false, doc: ap("  rules: [{to: [{operation: {notHosts: [host, \"\"]}}]}]\n")},
		{name: f + "Ports-empty", valid: false, doc: ap("  rules: [{to: [{operation: {ports: [\"80\", \"\"]}}]}]\n")},
		{name: f + "NotPorts-empty", valid: false, doc: ap("  rules: [{to: [{operation: {notPorts: [\"80\", \"\"]}}]}]\n")},
		{name: f + "Methods-empty", valid: false, doc: ap("  rules: [{to: [{operation: {methods: [GET, \"\"]}}]}]\n")},
		{name: f + "NotMethods-empty", valid: false, doc: ap("  rules: [{to: [{operation: {notMethods: [GET, \"\"]}}]}]\n")},
		{name: f + "Paths-empty", valid: false, doc: ap("  rules: [{to: [{operation: {paths: [/path, \"\"]}}]}]\n")},
		{name: f + "NotPaths-empty", valid: false, doc: ap("  rules: [{to: [{operation: {notPaths: [/path, \"\"]}}]}]\n")},
		{name: f + "value-empty", valid: false, doc: ap("  rules: [{when: [{key: \"request.headers[:authority]\", values: [v1, \"\"]}]}]\n")},
		{name: f + "invalid ip and port in ipBlocks", valid: false, doc: ap(`  rules:
  - from: [{source: {ipBlocks: [1.2.3.4, ip1], notIpBlocks: [5.6.7.8, ip2]}}]
    to: [{operation: {ports: ["80", port1], notPorts: ["90", port2]}}]
`)},
		{name: f + "invalid ip and port in remoteIpBlocks", valid: false, doc: ap(`  rules:
  - from: [{source: {remoteIpBlocks: [1.2.3.4, ip1], notRemoteIpBlocks: [5.6.7.8, ip2]}}]
    to: [{operation: {ports: ["80", port1], notPorts: ["90", port2]}}]
`)},
		{name: f + "condition-key-missing", valid: false, doc: ap("  selector: {matchLabels: {app: httpbin}}\n  rules: [{when: [{values: [v1, v2]}]}]\n")},
		{name: f + "condition-key-empty", valid: false, doc: ap("  selector: {matchLabels: {app: httpbin}}\n  rules: [{when: [{key: \"\", values: [v1, v2]}]}]\n")},
		{name: f + "condition-value-missing", valid: false, doc: ap("  selector: {matchLabels: {app: httpbin}}\n  rules: [{when: [{key: source.principal}]}]\n")},
		{name: f + "condition-value-invalid", valid: false, doc: ap("  rules: [{when: [{key: source.ip, values: [a.b.c.d]}]}]\n")},
		{name: f + "condition-notValue-invalid", valid: false, doc: ap("  rules: [{when: [{key: source.ip, notValues: [a.b.c.d]}]}]\n")},
		{name: f + "condition-unknown", valid: false, doc: ap("  selector: {matchLabels: {app: httpbin}}\n  rules: [{when: [{key: key1, values: [v1]}]}]\n")},
		{name: f + "L7DenyWithFrom", valid: true, warn: denyTCP, doc: ap("  action: DENY\n" + l7Sel + "  rules: [{from: [{source: {requestPrincipals: [example.com/sub-1]}}]}]\n")},
		{name: f + "L7DenyWithTo", valid: true, warn: denyTCP, doc: ap("  action: DENY\n" + l7Sel + "  rules: [{to: [{operation: {methods: [GET, DELETE]}}]}]\n")},
		{name: f + "L7DenyWithFromAndTo", extra: []string{notForm}, valid: true, warn: denyTCP, doc: ap("  action: DENY\n" + l7Sel + "  rules: [{from: [{source: {principals: [temp]}}], to: [{operation: {methods: [GET, DELETE]}}]}]\n")},
		{name: f + "L7DenyWithFromAndToWithPort", extra: []string{notForm}, valid: true, doc: ap("  action: DENY\n" + l7Sel + l7)},
	})
}

// TestIstioTableRequestAuthentication: Istio's TestValidateRequestAuthentication
// (namespace "bar"; "default" is constants.DefaultAuthenticationPolicyName).
func TestIstioTableRequestAuthentication(t *testing.T) {
	ra := func(name, spec string) string {
		return istioObj("security.istio.io/v1", "RequestAuthentication", "{name: "+name+", namespace: bar}", spec)
	}
	const (
		rule = "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com/cert\"}]\n"
		jwks = `{ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}`
	)
	const f = "TestValidateRequestAuthentication/"
	runIstioSecRows(t, []istioSecRow{
		{name: f + "empty spec", valid: true, doc: ra("default", "  {}\n")},
		{name: f + "another empty spec", valid: true, warn: "selector", doc: ra("default", "  selector: {}\n")},
		{name: f + "empty spec with non default name", valid: true, doc: ra("foo", "  {}\n")},
		{name: f + "dry run annotation not supported", valid: false, doc: istioObj("security.istio.io/v1", "RequestAuthentication",
			"{name: foo, namespace: bar, annotations: {istio.io/dry-run: \"true\"}}", "  {}\n")},
		{name: f + "default name with non empty selector", valid: true, doc: ra("default", "  selector: {matchLabels: {app: httpbin}}\n")},
		{name: f + "empty jwt rule", valid: false, doc: ra("foo", "  jwtRules: [{}]\n")},
		{name: f + "empty issuer", valid: false, doc: ra("foo", "  jwtRules: [{issuer: \"\"}]\n")},
		{name: f + "bad JwksUri - no protocol", valid: false, doc: ra("foo", "  jwtRules: [{issuer: foo.com, jwksUri: foo.com}]\n")},
		{name: f + "bad JwksUri - invalid port", valid: false, doc: ra("foo", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com:not-a-number\"}]\n")},
		{name: f + "empty value", valid: true, doc: ra("foo", "  selector: {matchLabels: {app: httpbin, version: \"\"}}\n"+rule)},
		{name: f + "bad workload selector - empty key", valid: false, doc: ra("foo", "  selector: {matchLabels: {app: httpbin, \"\": v1}}\n"+rule)},
		{name: f + "good targetRef", valid: true, doc: ra("foo", "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo}\n"+rule)},
		{name: f + "bad targetRef - empty name", valid: false, doc: ra("foo", "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway}\n"+rule)},
		{name: f + "bad targetRef - non-empty namespace", valid: false, doc: ra("foo", "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo, namespace: bar}\n"+rule)},
		{name: f + "bad targetRef - wrong group", valid: false, doc: ra("foo", "  targetRef: {group: wrong-group, kind: Gateway, name: foo}\n"+rule)},
		{name: f + "bad targetRef - wrong kind", valid: false, doc: ra("foo", "  targetRef: {group: gateway.networking.k8s.io, kind: wrong-kind, name: foo}\n"+rule)},
		{name: f + "targetRef and selector cannot both be set", valid: false, doc: ra("foo", "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo}\n"+rule+"  selector: {matchLabels: {app: httpbin}}\n")},
		{name: f + "bad header location", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", fromHeaders: [{name: \"\", prefix: \"Bearer \"}]}]\n")},
		{name: f + "bad param location", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", fromParams: [\"\"]}]\n")},
		{name: f + "good", valid: true, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", fromHeaders: [{name: x-foo, prefix: \"Bearer \"}]}]\n")},
		{name: f + "bad cookie location", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", fromCookies: [\"\", foo]}]\n")},
		{name: f + "jwks ok", valid: true, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwks: '"+jwks+"', fromHeaders: [{name: x-foo, prefix: \"Bearer \"}]}]\n")},
		{name: f + "jwks error", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwks: foo, fromHeaders: [{name: x-foo, prefix: \"Bearer \"}]}]\n")},
		{name: f + "null outputClaimToHeader", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", outputClaimToHeaders: [{}]}]\n")},
		{name: f + "null claim value in outputClaimToHeader", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", outputClaimToHeaders: [{header: x-jwt-claim, claim: \"\"}]}]\n")},
		{name: f + "null header value in outputClaimToHeader", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", outputClaimToHeaders: [{header: \"\", claim: sub}]}]\n")},
		{name: f + "invalid header value in outputClaimToHeader", valid: false, doc: ra("default", "  jwtRules: [{issuer: foo.com, jwksUri: \"https://foo.com\", outputClaimToHeaders: [{header: \"abc%123\", claim: sub}]}]\n")},
	})
}

// TestIstioTablePeerAuthentication: Istio's TestValidatePeerAuthentication.
func TestIstioTablePeerAuthentication(t *testing.T) {
	pa := func(name, spec string) string {
		return istioObj("security.istio.io/v1", "PeerAuthentication", "{name: "+name+", namespace: bar}", spec)
	}
	const f = "TestValidatePeerAuthentication/"
	runIstioSecRows(t, []istioSecRow{
		{name: f + "empty spec", valid: true, doc: pa("default", "  {}\n")},
		{name: f + "empty mtls with selector of empty labels", valid: true, warn: "selector", doc: pa("default", "  selector: {}\n")},
		{name: f + "empty spec with non default name", valid: true, doc: pa("foo", "  {}\n")},
		{name: f + "default name with non empty selector", valid: true, doc: pa("default", "  selector: {matchLabels: {app: httpbin}}\n")},
		{name: f + "empty port level mtls", valid: false, doc: pa("foo", "  selector: {matchLabels: {app: httpbin}}\n  portLevelMtls: {}\n")},
		{name: f + "empty selector with port level mtls", valid: false, doc: pa("default", "  portLevelMtls: {\"8080\": {mode: UNSET}}\n")},
		{name: f + "port 0", valid: false, doc: pa("foo", "  portLevelMtls: {\"0\": {mode: UNSET}}\n")},
		{name: f + "unset mode", valid: true, doc: pa("default", "  mtls: {mode: UNSET}\n")},
		{name: f + "port level", valid: true, doc: pa("port-level", "  selector: {matchLabels: {app: httpbin}}\n  portLevelMtls: {\"8080\": {mode: UNSET}}\n")},
	})
}

// TestIstioTableTelemetry: Istio's TestValidateTelemetry and
// TestValidateTelemetryFilter (the filter rows as an access-logging filter).
func TestIstioTableTelemetry(t *testing.T) {
	tm := func(spec string) string {
		return istioObj("telemetry.istio.io/v1", "Telemetry", "{name: foo, namespace: bar}", spec)
	}
	const (
		tag = "  tracing: [{customTags: {clusterID: {environment: {name: FOO}}}}]\n"
		f   = "TestValidateTelemetry/"
		ff  = "TestValidateTelemetryFilter/"
	)
	runIstioSecRows(t, []istioSecRow{
		{name: f + "empty", valid: true, doc: tm("  {}\n")},
		{name: f + "multiple providers", valid: true, warn: "multiple providers", doc: tm("  tracing: [{providers: [{name: a}, {name: b}]}]\n")},
		{name: f + "multiple tracers", valid: true, warn: "multiple tracing", doc: tm("  tracing: [{}, {}]\n")},
		{name: f + "bad randomSamplingPercentage", valid: false, err: "randomSamplingPercentage", doc: tm("  tracing: [{randomSamplingPercentage: 101}]\n")},
		{name: f + "tracing with a good custom tag", valid: true, doc: tm(tag)},
		{name: f + "bad metrics operation", valid: false, err: "must be set when operation is UPSERT", doc: tm("  metrics: [{overrides: [{tagOverrides: {my-tag: {operation: UPSERT, value: \"\"}}}]}]\n")},
		{name: f + "good metrics operation", valid: true, doc: tm("  metrics: [{overrides: [{tagOverrides: {my-tag: {operation: UPSERT, value: some-cel-expression}}}]}]\n")},
		{name: f + "multi-accessloggings", valid: true, doc: tm("  accessLogging: [{providers: [{name: envoy}]}, {providers: [{name: otel}]}]\n")},
		{name: f + "multi-accesslogging-providers", valid: true, doc: tm("  accessLogging: [{providers: [{name: envoy}, {name: otel}]}]\n")},
		{name: f + "good targetRef", valid: true, doc: tm(tag + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo}\n")},
		{name: f + "bad targetRef - empty name", valid: false, err: "spec.targetRef.name: Required value", doc: tm(tag + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway}\n")},
		{name: f + "bad targetRef - non-empty namespace", valid: false, err: "spec.targetRef.namespace: Invalid value: \"string\": cross namespace referencing is not currently supported", doc: tm(tag + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo, namespace: bar}\n")},
		{name: f + "bad targetRef - wrong group", valid: false, err: "targetRef must be to one of", doc: tm(tag + "  targetRef: {group: wrong-group, kind: Gateway, name: foo}\n")},
		{name: f + "bad targetRef - wrong kind", valid: false, err: "targetRef must be to one of", doc: tm(tag + "  targetRef: {group: gateway.networking.k8s.io, kind: wrong-kind, name: foo}\n")},
		{name: f + "targetRef and selector cannot both be set", valid: false, err: "only one of targetRefs or selector can be set", doc: tm(tag + "  targetRef: {group: gateway.networking.k8s.io, kind: wrong-kind, name: foo}\n  selector: {matchLabels: {app: httpbin}}\n")},
		{name: ff + "response.code >= 400", valid: true, doc: tm("  accessLogging: [{filter: {expression: \"response.code >= 400\"}}]\n")},
		{name: ff + "mtls and url_path contains", valid: true, doc: tm("  accessLogging: [{filter: {expression: \"connection.mtls && request.url_path.contains('v1beta3')\"}}]\n")},
		{name: ff + "response.code", valid: true, doc: tm("  accessLogging: [{filter: {expression: response.code}}]\n")},
		{name: ff + ")++++", valid: false, doc: tm("  accessLogging: [{filter: {expression: \")++++\"}}]\n")},
	})
}

// TestIstioTableProxyConfig: Istio's TestValidateProxyConfig (the CRD).
func TestIstioTableProxyConfig(t *testing.T) {
	pc := func(spec string) string {
		return istioObj("networking.istio.io/v1beta1", "ProxyConfig", "{name: foo, namespace: bar}", spec)
	}
	const f = "TestValidateProxyConfig/"
	runIstioSecRows(t, []istioSecRow{
		{name: f + "empty", valid: true, doc: pc("  {}\n")},
		{name: f + "invalid concurrency", valid: false, err: "spec.concurrency in body should be greater than or equal to 0", doc: pc("  concurrency: -1\n")},
	})
}

// TestIstioTableWasmPlugin: Istio's TestValidateWasmPlugin.
func TestIstioTableWasmPlugin(t *testing.T) {
	wp := func(spec string) string {
		return istioObj("extensions.istio.io/v1alpha1", "WasmPlugin", "{name: foo, namespace: bar}", spec)
	}
	const (
		f   = "TestValidateWasmPlugin/"
		url = "  url: \"http://test.com/test\"\n"
	)
	runIstioSecRows(t, []istioSecRow{
		{name: f + "empty", valid: false, err: "url", doc: wp("  {}\n")},
		{name: f + "wrong scheme", valid: false, err: "url must have schema one of [http, https, file, oci]", doc: wp("  url: \"ftp://test.com/test\"\n")},
		{name: f + "valid http", valid: true, doc: wp(url)},
		{name: f + "valid http w/ sha", valid: true, doc: wp(url + "  sha256: 01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b\n")},
		{name: f + "short sha", valid: false, err: "sha256", doc: wp(url + "  sha256: 01ba47\n")},
		{name: f + "invalid sha", valid: false, err: "sha256", doc: wp(url + "  sha256: test\n")},
		{name: f + "invalid sha characters", valid: false, err: "sha256", doc: wp(url + "  sha256: 01Ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b\n")},
		{name: f + "valid oci", valid: true, doc: wp("  url: \"oci://test.com/test\"\n")},
		{name: f + "valid oci no scheme", valid: true, doc: wp("  url: test.com/test\n")},
		{name: f + "invalid vm config - invalid env name", valid: false, err: "vmConfig.env", doc: wp("  url: test.com/test\n  vmConfig: {env: [{name: \"\", valueFrom: HOST}]}\n")},
		{name: f + "invalid vm config - duplicate env", valid: false, err: "duplicate env", doc: wp("  url: test.com/test\n  vmConfig: {env: [{name: ENV1, value: VAL1}, {name: ENV1, value: VAL1}]}\n")},
		{name: f + "target-ref-good", valid: true, doc: wp(url + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo}\n")},
		{name: f + "target-ref-good-service", valid: true, doc: wp(url + "  targetRef: {group: \"\", kind: Service, name: foo}\n")},
		{name: f + "target-ref-non-empty-namespace", valid: false, err: "spec.targetRef.namespace: Invalid value: \"string\": cross namespace referencing is not currently supported", doc: wp(url + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo, namespace: bar}\n")},
		{name: f + "target-ref-empty-name", valid: false, err: "spec.targetRef.name: Required value", doc: wp(url + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway}\n")},
		{name: f + "target-ref-wrong-group", valid: false, err: "targetRef must be to one of", doc: wp(url + "  targetRef: {group: wrong-group, kind: Gateway, name: foo}\n")},
		{name: f + "target-ref-wrong-kind", valid: false, err: "targetRef must be to one of", doc: wp(url + "  targetRef: {group: gateway.networking.k8s.io, kind: wrong-kind, name: foo}\n")},
		{name: f + "target-ref-and-selector-cannot-both-be-set", valid: false, err: "only one of targetRefs or selector can be set", doc: wp(url + "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo}\n  selector: {matchLabels: {app: httpbin}}\n")},
	})
}

// TestIstioTableEnvoyFilter: Istio's TestValidateEnvoyFilter
// (pkg/config/validation/envoyfilter/envoyfilter_test.go).
func TestIstioTableEnvoyFilter(t *testing.T) {
	ef := func(spec string) string {
		return istioObj("networking.istio.io/v1alpha3", "EnvoyFilter", "{name: foo, namespace: bar}", spec)
	}
	const (
		f      = "TestValidateEnvoyFilter/"
		remove = "    patch: {operation: REMOVE}\n"
		extV3  = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
		// efDeprecatedField: meshguard's deliberate warning for a deprecated
		// Envoy field in a patch value (docs/compatibility.md, EnvoyFilter).
		efDeprecatedField = "Cluster.dns_refresh_rate is deprecated"
	)
	runIstioSecRows(t, []istioSecRow{
		{extra: []string{efWarning}, name: f + "empty filters", valid: true, doc: ef("  {}\n")},
		{extra: []string{efWarning}, name: f + "labels not defined in workload selector", valid: true, warn: "workload selector specified without labels", doc: ef("  workloadSelector: {}\n")},
		{extra: []string{efWarning}, name: f + "invalid applyTo", valid: false, doc: ef("  configPatches: [{applyTo: INVALID}]\n")},
		{extra: []string{efWarning}, name: f + "nil patch", valid: false, doc: ef("  configPatches: [{applyTo: LISTENER}]\n")},
		{extra: []string{efWarning}, name: f + "invalid patch operation", valid: false, doc: ef("  configPatches: [{applyTo: LISTENER, patch: {}}]\n")},
		{extra: []string{efWarning}, name: f + "nil patch value", valid: false, doc: ef("  configPatches: [{applyTo: LISTENER, patch: {operation: ADD}}]\n")},
		{extra: []string{efWarning}, name: f + "match with invalid regex", valid: false, err: "invalid regex for proxy version", doc: ef("  configPatches:\n  - applyTo: LISTENER\n    match: {proxy: {proxyVersion: \"%#@~++==`24c234`\"}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "match with valid regex", valid: true, doc: ef("  configPatches:\n  - applyTo: LISTENER\n    match: {proxy: {proxyVersion: 'release-1\\.2-23434'}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "listener with invalid match", valid: false, doc: ef("  configPatches:\n  - applyTo: LISTENER\n    match: {cluster: {}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "listener with invalid filter match", valid: false, doc: ef("  configPatches:\n  - applyTo: NETWORK_FILTER\n    match: {listener: {filterChain: {sni: \"124\", filter: {}}}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "listener with sub filter match and invalid applyTo", valid: false, doc: ef("  configPatches:\n  - applyTo: NETWORK_FILTER\n    match: {listener: {filterChain: {filter: {name: random, subFilter: {}}}}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "listener with sub filter match and invalid filter name", valid: false, doc: ef("  configPatches:\n  - applyTo: HTTP_FILTER\n    match: {listener: {filterChain: {filter: {name: random, subFilter: {}}}}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "listener with sub filter match and no sub filter name", valid: false, doc: ef("  configPatches:\n  - applyTo: HTTP_FILTER\n    match: {listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager, subFilter: {}}}}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "route configuration with invalid match", valid: false, doc: ef("  configPatches:\n  - applyTo: VIRTUAL_HOST\n    match: {cluster: {}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "cluster with invalid match", valid: false, doc: ef("  configPatches:\n  - applyTo: CLUSTER\n    match: {listener: {}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "upstream http filter with invalid match", valid: false, doc: ef("  configPatches:\n  - applyTo: UPSTREAM_HTTP_FILTER\n    match: {listener: {}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "cluster with invalid filter match", valid: false, doc: ef("  configPatches:\n  - applyTo: CLUSTER\n    match: {cluster: {filter: {name: random}}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "upstream http filter with invalid filter match", valid: false, doc: ef("  configPatches:\n  - applyTo: UPSTREAM_HTTP_FILTER\n    match: {cluster: {filter: {name: \"\"}}}\n" + remove)},
		{extra: []string{efWarning}, name: f + "invalid patch value", valid: false, doc: ef("  configPatches:\n  - applyTo: CLUSTER\n    match: {cluster: {}}\n    patch: {operation: ADD, value: {name: false}}\n")},
		// "happy config" with each added value named (see the list above).
		{extra: []string{efWarning}, name: f + "happy config (values named)", valid: true, doc: ef(`  configPatches:
  - applyTo: CLUSTER
    match: {cluster: {}}
    patch: {operation: ADD, value: {name: c, lb_policy: RING_HASH}}
  - applyTo: NETWORK_FILTER
    match: {listener: {filterChain: {name: envoy.tcp_proxy}}}
    patch: {operation: INSERT_BEFORE, value: {name: a, typed_config: {"@type": ` + extV3 + `}}}
  - applyTo: NETWORK_FILTER
    match: {listener: {filterChain: {name: envoy.tcp_proxy}}}
    patch: {operation: INSERT_FIRST, value: {name: b, typed_config: {"@type": ` + extV3 + `}}}
`)},
		{extra: []string{efWarning}, name: f + "deprecated config", valid: false, doc: ef(`  configPatches:
  - applyTo: NETWORK_FILTER
    match: {listener: {filterChain: {name: envoy.tcp_proxy}}}
    patch: {operation: INSERT_FIRST, value: {typed_config: {"@type": type.googleapis.com/envoy.config.filter.network.ext_authz.v2.ExtAuthz}}}
`)},
		// "deprecated type" with the added filter named (see the list above).
		{extra: []string{efWarning}, name: f + "deprecated type (value named)", valid: true, warn: "using deprecated filter name", doc: ef(`  configPatches:
  - applyTo: HTTP_FILTER
    match: {listener: {filterChain: {filter: {name: envoy.http_connection_manager}}}}
    patch: {operation: INSERT_FIRST, value: {name: f}}
`)},
		// "duration marshal" with the added Cluster named (see the list above):
		// a Go duration ("500ms") where a google.protobuf.Duration is read.
		{extra: []string{efWarning, efDeprecatedField}, name: f + "duration marshal (value named)", valid: true, doc: ef("  configPatches:\n  - applyTo: CLUSTER\n    patch: {operation: ADD, value: {name: c, dns_refresh_rate: 500ms}}\n")},
	})
}
