package validation

import (
	"context"
	"strings"
	"testing"

	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func apFrom(s *security.Source) *security.Rule {
	return &security.Rule{From: []*security.Rule_From{{Source: s}}}
}

func apTo(o *security.Operation) *security.Rule {
	return &security.Rule{To: []*security.Rule_To{{Operation: o}}}
}

func apRules(rs ...*security.Rule) *security.AuthorizationPolicy {
	return &security.AuthorizationPolicy{Rules: rs}
}

func TestValidateAuthorizationPolicy(t *testing.T) {
	const pfx = "invalid policy test.default: "
	custom := func(rs ...*security.Rule) *security.AuthorizationPolicy {
		return &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_CUSTOM, Rules: rs,
			ActionDetail: &security.AuthorizationPolicy_Provider{Provider: &security.AuthorizationPolicy_ExtensionProvider{Name: "ext"}}}
	}
	runKindCases(t, validateAuthorizationPolicy, []kindCase{
		{name: "allow nothing (deny all) is fine", spec: &security.AuthorizationPolicy{}},
		{name: "docs example", spec: &security.AuthorizationPolicy{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "httpbin"}},
			Rules: []*security.Rule{{
				From: []*security.Rule_From{{Source: &security.Source{Principals: []string{"cluster.local/ns/default/sa/sleep"}}},
					{Source: &security.Source{Namespaces: []string{"test"}}}},
				To:   []*security.Rule_To{{Operation: &security.Operation{Methods: []string{"GET"}, Paths: []string{"/info*"}}}},
				When: []*security.Condition{{Key: "request.auth.claims[iss]", Values: []string{"https://accounts.google.com"}}},
			}}}},
		{name: "prefix on every error", spec: apRules(nil),
			errs: []string{"spec.rules[0]: Required value: " + pfx + "rule must not be null"}},
		{name: "selector and targetRef", spec: &security.AuthorizationPolicy{
			Selector:  &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"a": "b"}},
			TargetRef: &typev1beta1.PolicyTargetReference{Kind: "Service", Name: "s"}},
			errs: []string{pfx + "only one of targetRefs or selector can be set"}},
		{name: "DENY without rules", spec: &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_DENY},
			errs: []string{pfx + "DENY action without `rules` is meaningless"}},
		{name: "CUSTOM without rules", spec: &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_CUSTOM,
			ActionDetail: &security.AuthorizationPolicy_Provider{Provider: &security.AuthorizationPolicy_ExtensionProvider{Name: "x"}}},
			errs: []string{"CUSTOM action without `rules` is meaningless"}},
		{name: "CUSTOM without provider name", spec: &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_CUSTOM,
			Rules: []*security.Rule{{}}},
			errs: []string{"spec.provider.name: Required value: " + pfx + "`provider.name` must not be empty"}},
		{name: "provider with ALLOW", spec: &security.AuthorizationPolicy{Rules: []*security.Rule{{}},
			ActionDetail: &security.AuthorizationPolicy_Provider{Provider: &security.AuthorizationPolicy_ExtensionProvider{Name: "x"}}},
			errs: []string{"`provider` must not be with non CUSTOM action, found ALLOW"}},
		{name: "CUSTOM with source identities and auth conditions", spec: custom(
			&security.Rule{From: []*security.Rule_From{{Source: &security.Source{Principals: []string{"td/ns/a/sa/b"}, Namespaces: []string{"a"},
				IpBlocks: []string{"10.0.0.0/8"}}}},
				When: []*security.Condition{{Key: "request.auth.claims[iss]", Values: []string{"x"}}, {Key: "source.namespace", Values: []string{"a"}}}}),
			errs: []string{"From.Principals is currently not supported with CUSTOM action", "From.Namespaces is currently not supported with CUSTOM action",
				"condition key request.auth.claims[iss] is currently not supported with CUSTOM action",
				"condition key source.namespace is currently not supported with CUSTOM action"}},
		{name: "CUSTOM with ip blocks and paths ok", spec: custom(&security.Rule{
			From: []*security.Rule_From{{Source: &security.Source{IpBlocks: []string{"10.0.0.0/8"}}}},
			To:   []*security.Rule_To{{Operation: &security.Operation{Paths: []string{"/admin"}}}}})},
		{name: "DENY with only HTTP attributes warns", spec: &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_DENY,
			Rules: []*security.Rule{apTo(&security.Operation{Methods: []string{"POST"}})}},
			warns: []string{"spec.rules[0]: Invalid value: configured AuthorizationPolicy will deny all traffic to TCP ports"}},
		{name: "DENY with HTTP attributes and ports is quiet", spec: &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_DENY,
			Rules: []*security.Rule{apTo(&security.Operation{Methods: []string{"POST"}, Ports: []string{"8080"}})}}},
		{name: "null from and empty source", spec: apRules(&security.Rule{From: []*security.Rule_From{nil, {}, {Source: &security.Source{}}}}),
			errs: []string{"spec.rules[0].from[0]: Required value", "spec.rules[0].from[1].source: Required value: " + pfx + "`from.source` must not be nil",
				"spec.rules[0].from[2].source: Invalid value: " + pfx + "`from.source` must not be empty"}},
		{name: "null to and empty operation", spec: apRules(&security.Rule{To: []*security.Rule_To{nil, {}, {Operation: &security.Operation{}}}}),
			errs: []string{"spec.rules[0].to[0]", "`to.operation` must not be nil", "`to.operation` must not be empty"}},
		{name: "serviceAccounts with namespaces", spec: apRules(apFrom(&security.Source{ServiceAccounts: []string{"bar/sa"}, Namespaces: []string{"bar"}})),
			errs: []string{"Cannot set serviceAccounts with namespaces or principals, found at rule 0"}},
		{name: "serviceAccounts with principals", spec: apRules(nil, apFrom(&security.Source{NotServiceAccounts: []string{"sa"}, Principals: []string{"td/ns/a/sa/b"}})),
			errs: []string{"rule must not be null", "found at rule 1"}},
		// Istio's ValidateAuthorizationPolicy (pkg/config/validation/validation.go)
		// counts the negated lists too: principals, notPrincipals, namespaces
		// and notNamespaces against serviceAccounts and notServiceAccounts.
		{name: "serviceAccounts with notNamespaces", spec: apRules(apFrom(&security.Source{ServiceAccounts: []string{"bar/sa"}, NotNamespaces: []string{"bar"}})),
			errs: []string{"Cannot set serviceAccounts with namespaces or principals, found at rule 0"}},
		{name: "notServiceAccounts with notPrincipals", spec: apRules(apFrom(&security.Source{NotServiceAccounts: []string{"sa"}, NotPrincipals: []string{"td/ns/a/sa/b"}})),
			errs: []string{"Cannot set serviceAccounts with namespaces or principals, found at rule 0"}},
		{name: "serviceAccount format", spec: apRules(apFrom(&security.Source{ServiceAccounts: []string{"ns/sa", "sa", "/sa", "ns/", "a/b/c", "s*", strings.Repeat("a", 321)}})),
			errs: []string{"serviceAccounts[2]", "serviceAccounts[3]", "serviceAccounts[4]", "serviceAccounts[5]: Invalid value: \"s*\": " + pfx + "wildcard is not supported",
				"serviceAccounts[6]"}},
		{name: "too many serviceAccounts", spec: apRules(apFrom(&security.Source{ServiceAccounts: strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", ",")})),
			errs: []string{"at most 16 serviceAccounts are allowed, found 17"}},
		{name: "ip blocks", spec: apRules(apFrom(&security.Source{IpBlocks: []string{"1.2.3.4", "10.0.0.0/33"}, NotRemoteIpBlocks: []string{"1.2.3", "::1"}})),
			errs: []string{"spec.rules[0].from[0].source.ipBlocks[1]: Invalid value: \"10.0.0.0/33\": " + pfx + "bad CIDR range (10.0.0.0/33)",
				"notRemoteIpBlocks[0]: Invalid value: \"1.2.3\": " + pfx + "bad IP address (1.2.3)"}},
		{name: "empty values", spec: apRules(apFrom(&security.Source{Namespaces: []string{""}, RequestPrincipals: []string{""}}),
			apTo(&security.Operation{Hosts: []string{""}, Methods: []string{""}, Paths: []string{""}, Ports: []string{""}})),
			errs: []string{"empty value not allowed, found in Namespaces", "empty value not allowed, found in RequestPrincipals",
				"found in Hosts", "found in Methods", "found in Paths", "found in Ports"}},
		{name: "trust domains", spec: apRules(apFrom(&security.Source{TrustDomains: []string{"cluster.local", "*.local", "td-*", "a*b", "**", "a/b"}})),
			errs: []string{"trustDomains[3]", "trustDomains[4]", "trustDomains[5]"}},
		{name: "notTrustDomains: the same rules", spec: apRules(apFrom(&security.Source{NotTrustDomains: []string{"*.local", "a*b", "a/b"}})),
			errs: []string{"notTrustDomains[1]", "notTrustDomains[2]"}},
		{name: "ports: 0 and 99999 rejected", spec: apRules(apTo(&security.Operation{Ports: []string{"80", "0"}, NotPorts: []string{"99999", "http"}})),
			errs: []string{`ports[1]: Invalid value: "0": ` + pfx + "bad port (0): must be an integer in 1..65535", "notPorts[0]", "notPorts[1]"}},
		// The bounds themselves: Istio's ValidatePorts (pkg/config/security/security.go)
		// rejects p > 65535; 65536 must not wrap to port 0 in the uint16 conversion.
		{name: "ports: 65535 accepted, 65536 rejected", spec: apRules(apTo(&security.Operation{Ports: []string{"65535", "65536"}}),
			&security.Rule{When: []*security.Condition{{Key: "destination.port", Values: []string{"1", "65536"}}}}),
			errs: []string{`ports[1]: Invalid value: "65536": ` + pfx + "bad port (65536)", `when[0].values[1]: Invalid value: "65536"`}},
		{name: "principal format warnings", spec: apRules(apFrom(&security.Source{
			Principals:    []string{"cluster.local/ns/a/sa/b", "*", "cluster.local/ns/a/*", "*/sa/b", "spiffe://cluster.local/ns/a/sa/b", "not a spiffe id", "a*b"},
			NotPrincipals: []string{"bad"}, RequestPrincipals: []string{"https://issuer/sub", "*", "nosub"}})),
			warns: []string{`principals[4]: Invalid value: "spiffe://cluster.local/ns/a/sa/b": principal must not start with "spiffe://"`,
				`principals[5]: Invalid value: "not a spiffe id": principal is not of the form`,
				`principals[6]: Invalid value: "a*b"`, `notPrincipals[0]`, `requestPrincipals[2]: Invalid value: "nosub": request principal is not of the form <issuer>/<subject>`}},
		// Quoted since Istio's 1.29.3 security fix (istio/istio#59992): no
		// value is an invalid regex any more.
		{name: "principal suffixes and namespaces are literals", spec: apRules(apFrom(&security.Source{
			Principals: []string{"*/sa/a.b", "*/sa/a(b"}, NotPrincipals: []string{"*x|y"}, Namespaces: []string{"a(b", "x|*"}}))},
		{name: "method warnings", spec: apRules(apTo(&security.Operation{Methods: []string{"GET", "get", "BREW", "GET*"}, NotMethods: []string{"patch"}})),
			warns: []string{`methods[1]: Invalid value: "get": methods are case-sensitive: "get" never matches, use "GET"`,
				`methods[2]: Invalid value: "BREW": not a standard HTTP method`, `notMethods[0]`}},
		{name: "path templates", spec: apRules(apTo(&security.Operation{Paths: []string{"/a/{*}", "/{**}/b", "/a/{**}", "/{**}/{*}", "/a/{x}/{*}", "/a{*}/b", "/%zz/{*}", "/ok%20/{*}"}})),
			// "/%zz/{*}" is valid: Istio's IsValidLiteral and Envoy's kLiteral check the character set only.
			errs: []string{`paths[3]: Invalid value: "/{**}/{*}": ` + pfx + "invalid or unsupported path /{**}/{*}: {**} is not the last operator",
				`paths[4]`, `paths[5]`}},
		{name: "path templates: literal segments after {**}, braces outside templates, '*' in a template literal",
			spec: apRules(apTo(&security.Operation{Paths: []string{"/admin/{**}/secret", "/api/{*}/{**}/edit", "/a{b", "/a/*/{*}"}})),
			errs: []string{`paths[2]`, `paths[3]`}},
		// Istio's ValidateAuthorizationPolicy: CheckValidPathTemplate on Paths and NotPaths.
		{name: "path templates in notPaths", spec: apRules(apTo(&security.Operation{NotPaths: []string{"/a/{*}", "/{**}/{*}", "/a{b"}})),
			errs: []string{`notPaths[1]: Invalid value: "/{**}/{*}"`, `notPaths[2]`}},
		// ValidateAttribute (pkg/config/security/security.go): source.ip,
		// remote.ip and destination.ip values are ValidateIPs, values and notValues alike.
		{name: "conditions: IP keys", spec: apRules(&security.Rule{When: []*security.Condition{
			{Key: "source.ip", Values: []string{"10.0.0.0/33"}},
			{Key: "remote.ip", NotValues: []string{"x"}},
			{Key: "destination.ip", Values: []string{"1.1.1.1", "1.2.3"}},
			{Key: "destination.ip", NotValues: []string{"host"}},
		}}), errs: []string{"when[0].values[0]", "when[1].notValues[0]", `when[2].values[1]: Invalid value: "1.2.3"`, "when[3].notValues[0]"}},
		{name: "conditions: valid keys", spec: apRules(&security.Rule{When: []*security.Condition{
			{Key: "request.headers[X-Foo]", Values: []string{"a"}},
			{Key: "request.auth.claims[groups][nested]", NotValues: []string{"a"}},
			{Key: "source.ip", Values: []string{"10.0.0.1", "10.0.0.0/8"}},
			{Key: "remote.ip", Values: []string{"::1"}},
			{Key: "destination.ip", NotValues: []string{"1.1.1.1"}},
			{Key: "destination.port", Values: []string{"443"}},
			{Key: "source.namespace", Values: []string{"ns"}},
			{Key: "source.principal", Values: []string{"td/ns/a/sa/b"}},
			{Key: "source.serviceAccount", Values: []string{"ns/sa"}},
			{Key: "source.trustDomain", Values: []string{"*.local"}},
			{Key: "request.auth.principal", Values: []string{"iss/sub"}},
			{Key: "request.auth.audiences", Values: []string{"a"}},
			{Key: "request.auth.presenter", Values: []string{"a"}},
			{Key: "connection.sni", Values: []string{"a.com"}},
			{Key: "experimental.envoy.filters.a.b[c]", Values: []string{"x"}},
			{Key: "request.experimental.inline.headers[X-Foo]", Values: []string{"a", "b*"}},
		}}),
			warns: []string{`when[14].key: Invalid value: "experimental.envoy.filters.a.b[c]": Envoy filter metadata is not sent to ext_authz: meshguard's ext_authz denies every workload this policy selects`}},
		{name: "conditions: invalid", spec: apRules(&security.Rule{When: []*security.Condition{
			nil,
			{Values: []string{"a"}},
			{Key: "source.ip"},
			{Key: "request.headers", Values: []string{"a"}},
			{Key: "request.auth.claims[]", Values: []string{"a"}},
			{Key: "source.ip", Values: []string{"1.2.3"}},
			{Key: "destination.port", NotValues: []string{"0"}},
			{Key: "source.serviceAccount", Values: []string{"a/b/c"}},
			{Key: "source.trustDomain", Values: []string{"a*b"}},
			{Key: "destination.namespace", Values: []string{"a"}},
			{Key: "destination.labels[app]", Values: []string{"a"}},
			{Key: "foo.bar", Values: []string{"a"}},
			{Key: "request.experimental.inline.headers[]", Values: []string{"a"}},
			{Key: "request.headers[x-a]", Values: []string{""}},
			{Key: "source.namespace", NotValues: []string{"ok", ""}},
			{Key: "source.serviceAccount", Values: []string{"ns/a", "ns/b", "ns/c", "ns/d", "ns/e", "ns/f", "ns/g", "ns/h", "ns/i",
				"ns/j", "ns/k", "ns/l", "ns/m", "ns/n", "ns/o", "ns/p", "ns/q"}},
		}}),
			errs: []string{"spec.rules[0].when[0]: Required value", "spec.rules[0].when[1].key: Required value: " + pfx + "`key` must not be empty",
				"when[2]: Invalid value: " + pfx + "at least one of `values` or `notValues` must be set for key source.ip",
				`when[3].key: Invalid value: "request.headers": ` + pfx + "bad key (request.headers): should have format request.headers[b]",
				"when[4].key", "when[5].values[0]", "when[6].notValues[0]", "when[7].values[0]", "when[8].values[0]",
				"when[9].key", "when[10].key: Invalid value: \"destination.labels[app]\": " + pfx + "attribute destination.labels[app] is no longer supported",
				`when[11].key: Invalid value: "foo.bar": ` + pfx + "unknown attribute: foo.bar",
				`when[12].key: Invalid value: "request.experimental.inline.headers[]": ` + pfx + "bad key (request.experimental.inline.headers[]): should have format request.experimental.inline.headers[b]",
				// Istio's ValidateAttribute: CheckEmptyValues, CheckServiceAccount's 16.
				`when[13].values[0]: Invalid value: "": ` + pfx + "empty value not allowed, found in request.headers[x-a]",
				`when[14].notValues[1]: Invalid value: "": ` + pfx + "empty value not allowed, found in source.namespace",
				"when[15].values: Invalid value: " + pfx + "may not have more than 16 values for source.serviceAccount, found 17"}},
	})
}

func TestAuthorizationPolicyPrefixUsesObjectName(t *testing.T) {
	var f Findings
	validateAuthorizationPolicy(metav1.ObjectMeta{Name: "deny-all", Namespace: "prod"},
		&security.AuthorizationPolicy{Action: security.AuthorizationPolicy_DENY}, &f)
	if len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Detail, "invalid policy deny-all.prod: DENY action") {
		t.Fatalf("want prefixed DENY error, got %v", f.Errors)
	}
}

func TestAuthorizationPolicyYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid", doc: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {methods: ["GET"], ports: ["8000"]}}]
`},
		{name: "port zero and lowercase method", doc: `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  rules:
  - to: [{operation: {methods: ["get"], ports: ["0"]}}]
`, errs: []string{"AuthorizationPolicy foo/httpbin", "spec.rules[0].to[0].operation.ports[0]", "invalid policy httpbin.foo: bad port (0)"},
			warns: []string{"methods are case-sensitive"}},
	})
}

func TestValidateAuthorizationPolicyRaw(t *testing.T) {
	cases := []struct {
		name string
		spec map[string]any
		errs []string
	}{
		{"no rules", map[string]any{}, nil},
		{"absent from/to", map[string]any{"rules": []any{map[string]any{}}}, nil},
		{"non-empty", map[string]any{"rules": []any{map[string]any{"from": []any{map[string]any{}}, "to": []any{map[string]any{}}}}}, nil},
		{"empty from", map[string]any{"rules": []any{map[string]any{}, map[string]any{"from": []any{}}}},
			[]string{"spec.rules[1].from: Invalid value: invalid policy test.default: `from` must not be empty"}},
		{"garbage shapes ignored", map[string]any{"rules": []any{"x", 3}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f Findings
			validateAuthorizationPolicyRaw(metav1.ObjectMeta{Name: "test", Namespace: "default"}, c.spec, &f)
			checkFindings(t, "error", f.Errors, c.errs)
		})
	}
}

// TestAuthorizationPolicyRawAndDryRun goes through ValidateJSON: the empty
// lists are only visible before proto decoding, and the dry-run rule needs
// both the annotations and the action.
func TestAuthorizationPolicyRawAndDryRun(t *testing.T) {
	const pfx = "invalid policy ap.ns: "
	doc := func(annotations, spec string) string {
		return `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"ap","namespace":"ns"` +
			annotations + `},"spec":` + spec + `}`
	}
	dry := func(v string) string { return `,"annotations":{"istio.io/dry-run":"` + v + `"}` }
	cases := []struct {
		name string
		json string
		errs []string // substrings, each must appear in some error line
	}{
		{name: "empty from widens ALLOW", json: doc("", `{"rules":[{"from":[],"to":[{"operation":{"methods":["GET"]}}]}]}`),
			errs: []string{"spec.rules[0].from: Invalid value: " + pfx + "`from` must not be empty: remove it, or it would match every source"}},
		{name: "empty to", json: doc("", `{"rules":[{"from":[{"source":{"namespaces":["a"]}}],"to":[]}]}`),
			errs: []string{"spec.rules[0].to: Invalid value: " + pfx + "`to` must not be empty"}},
		{name: "empty when in second rule", json: doc("", `{"action":"DENY","rules":[{"to":[{"operation":{"ports":["80"]}}]},{"when":[]}]}`),
			errs: []string{"spec.rules[1].when: Invalid value: " + pfx + "`when` must not be empty"}},
		{name: "all three empty", json: doc("", `{"rules":[{"from":[],"to":[],"when":[]}]}`),
			errs: []string{"spec.rules[0].from:", "spec.rules[0].to:", "spec.rules[0].when:"}},
		{name: "empty rule is an explicit allow-all and fine", json: doc("", `{"rules":[{}]}`)},
		{name: "no rules is deny-all and fine", json: doc("", `{}`)},
		{name: "non-empty lists fine", json: doc("", `{"rules":[{"from":[{"source":{"namespaces":["a"]}}],"to":[{"operation":{"ports":["8080"]}}],"when":[{"key":"source.ip","values":["10.0.0.1"]}]}]}`)},
		{name: "dry-run on ALLOW (default action)", json: doc(dry("true"), `{"rules":[{}]}`)},
		{name: "dry-run on DENY", json: doc(dry("false"), `{"action":"DENY","rules":[{"to":[{"operation":{"ports":["80"]}}]}]}`)},
		{name: "dry-run on AUDIT", json: doc(dry("true"), `{"action":"AUDIT","rules":[{}]}`),
			errs: []string{`metadata.annotations[istio.io/dry-run]: Invalid value: "true": annotation istio.io/dry-run is only supported for ALLOW and DENY actions, found AUDIT`}},
		{name: "dry-run on CUSTOM", json: doc(dry("true"), `{"action":"CUSTOM","provider":{"name":"ext"},"rules":[{"to":[{"operation":{"paths":["/a"]}}]}]}`),
			errs: []string{"only supported for ALLOW and DENY actions, found CUSTOM"}},
		{name: "dry-run not a bool", json: doc(dry("maybe"), `{"rules":[{}]}`),
			errs: []string{"metadata.annotations[istio.io/dry-run]", "must be a boolean"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ValidateJSON(context.Background(), []byte(tc.json), Options{})
			if err != nil {
				t.Fatalf("ValidateJSON: %v", err)
			}
			lines := strings.Join(res.ErrorLines(), "\n")
			if len(tc.errs) == 0 && !res.Valid() {
				t.Fatalf("want valid, got errors:\n%s", lines)
			}
			if len(tc.errs) > 0 && res.Valid() {
				t.Fatalf("want errors %q, got none", tc.errs)
			}
			for _, want := range tc.errs {
				if !strings.Contains(lines, want) {
					t.Errorf("missing error %q in:\n%s", want, lines)
				}
			}
			if !strings.HasPrefix(res.Object(), "AuthorizationPolicy ns/ap") {
				t.Errorf("object name: %q", res.Object())
			}
		})
	}
}

// An explicit null `from` is pruned as the API server prunes it (the stored
// policy has no `from`), so the rule is its `to`; `from: []` is refused.
func TestAuthorizationPolicyNullFromPruned(t *testing.T) {
	doc := func(from string) string {
		return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: ns}\nspec:\n  rules:\n  - from: " + from + "\n    to: [{operation: {methods: [GET]}}]\n"
	}
	res, err := ValidateJSON(context.Background(), []byte(doc("null")), Options{DefaultNamespace: "default"})
	if err != nil || len(res.ErrorLines()) != 0 {
		t.Errorf("from: null: err %v, errors %q; want accepted", err, res.ErrorLines())
	}
	res, err = ValidateJSON(context.Background(), []byte(doc("[]")), Options{DefaultNamespace: "default"})
	if err != nil || len(res.ErrorLines()) != 1 || !strings.Contains(res.ErrorLines()[0], "`from` must not be empty") {
		t.Errorf("from: []: err %v, errors %q; want the empty-from error", err, res.ErrorLines())
	}
}
