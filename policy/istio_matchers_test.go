package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMatchersAsIstioBuildsThem: verdicts where Istio's translation of a
// value differs from a literal reading of it. Each case names the Istio
// source that decides it; each failed before the fix it guards.
func TestMatchersAsIstioBuildsThem(t *testing.T) {
	const allowGet = `rules: [{to: [{operation: {methods: [GET]}}]}]`
	runCases(t, Mesh{}, []tc{
		// pilot/pkg/security/authz/builder/builder.go isDryRun: strconv.ParseBool.
		{"dry-run \"1\" DENY is not enforced", apAnn("foo", "d", `istio.io/dry-run: "1"`, "action: DENY\nrules: [{}]"),
			http(), open},
		{"dry-run \"t\" ALLOW does not allow", ap("foo", "get", allowGet) + apAnn("foo", "dry", `istio.io/dry-run: "t"`, "rules: [{}]"),
			http(method("POST")), noAllow},
		{"dry-run \"false\" ALLOW is enforced", ap("foo", "get", allowGet) + apAnn("foo", "all", `istio.io/dry-run: "false"`, "rules: [{}]"),
			http(method("POST")), allowedBy("foo/all", 0)},
		// matcher/string.go StringMatcherWithPrefix: "*x" is the regex
		// spiffe://.*x, x quoted since Istio's 1.29.3 / 1.28.7 security fix
		// (istio/istio#59992): unquoted, a DENY on "*/sa/a.b" missed "aXb".
		{"principal suffix is quoted", ap("foo", "d", `action: DENY
rules: [{from: [{source: {principals: ["*/sa/a.b"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/a.b")), deniedBy("foo/d", 0)},
		{"principal suffix: '.' is a literal dot", ap("foo", "p", `rules: [{from: [{source: {principals: ["*/sa/a.b"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/aXb")), noAllow},
		{"principal suffix: '(' is a literal", ap("foo", "p", `rules: [{from: [{source: {principals: ["*/sa/a(b"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/a(b")), allowedBy("foo/p", 0)},
		{"principal suffix regex matches the whole principal", ap("foo", "d", `action: DENY
rules: [{from: [{source: {principals: ["*/sa/a.b"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/a.bc")), open},
		// Envoy's safe_regex is RE2 with dot_nl off: ".*" stops at a newline,
		// alone or beside other values (an exact one made the generator merge
		// them into one regex with the s flag, which let this ALLOW match).
		{"principal suffix regex: '.' is not a newline", ap("foo", "p", `rules: [{from: [{source: {principals: ["*/ns/foo/sa/x"]}}]}]`),
			http(from("spiffe://evil\n/ns/foo/sa/x")), noAllow},
		{"principal suffix regex beside an exact value: '.' is not a newline", ap("foo", "p", `rules: [{from: [{source: {principals: ["*/ns/foo/sa/x", "a/b"]}}]}]`),
			http(from("spiffe://evil\n/ns/foo/sa/x")), noAllow},
		{"principal suffix regex beside an exact value", ap("foo", "p", `rules: [{from: [{source: {principals: ["*/ns/foo/sa/x", "a/b"]}}]}]`),
			http(from("spiffe://evil/ns/foo/sa/x")), allowedBy("foo/p", 0)},
		{"principal prefix beside a suffix regex: a newline is any character", ap("foo", "p", `rules: [{from: [{source: {principals: ["*/ns/foo/sa/x", "cluster.local/ns/foo/*"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/\ny")), allowedBy("foo/p", 0)},
		// model/generator.go srcNamespaceGenerator, serviceAccountRegex: Envoy
		// matches the regex against the whole principal; the values are
		// quoted (istio/istio#59700, #59992), so '|' is no alternation.
		{"namespace with '|': neither alternative is the whole principal", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["foo|bar"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/x")), noAllow},
		{"namespace with '|': second alternative", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["foo|bar"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foozz/sa/x")), noAllow},
		{"namespace with '|' in a mixed list", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["foo|bar", "*east"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo/sa/x")), noAllow},
		{"namespace with '|' is a literal", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["foo|bar"]}}]}]`),
			http(from("spiffe://cluster.local/ns/foo|bar/sa/x")), allowedBy("foo/p", 0)},
		{"namespace: '.' is a literal dot, '*' any run", ap("foo", "d", "action: DENY\nrules: [{from: [{source: {namespaces: [\"f.*\"]}}]}]"),
			http(from("spiffe://cluster.local/ns/fxoo/sa/x")), open},
		{"namespace: '*' after a literal dot", ap("foo", "d", "action: DENY\nrules: [{from: [{source: {namespaces: [\"f.*\"]}}]}]"),
			http(from("spiffe://cluster.local/ns/f.oo/sa/x")), deniedBy("foo/d", 0)},
		// "*" alone: split on '*' and quoted, still ".*/ns/.*/.*" (#59992 left
		// it so); principals "*" is ".+". Both need a peer principal
		// (principalAuthenticated): plaintext never matches.
		{"namespaces *: plaintext", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["*"]}}]}]`),
			http(), noAllow},
		{"namespaces *: a principal without /ns/", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["*"]}}]}]`),
			http(from("spiffe://cluster.local/sa/x")), noAllow},
		{"namespaces *: an empty namespace segment", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["*"]}}]}]`),
			http(from("spiffe://cluster.local/ns//sa/x")), allowedBy("foo/p", 0)},
		{"namespaces *: '.' stops at a newline", ap("foo", "p", `rules: [{from: [{source: {namespaces: ["*"]}}]}]`),
			http(from("spiffe://cluster.local/ns/a\nb/sa/x")), noAllow},
		{"principals *: a principal that is not SPIFFE", ap("foo", "p", `rules: [{from: [{source: {principals: ["*"]}}]}]`),
			http(from("CN=client")), allowedBy("foo/p", 0)},
		{"principals *: plaintext", ap("foo", "p", `rules: [{from: [{source: {principals: ["*"]}}]}]`),
			http(), noAllow},
		{"source.namespace condition: '.' is a literal dot", ap("foo", "p", `rules: [{when: [{key: source.namespace, values: ["f.o"]}]}]`),
			http(from("spiffe://cluster.local/ns/fxo/sa/x")), noAllow},
		{"serviceAccount with '|'", ap("foo", "p", `rules: [{from: [{source: {serviceAccounts: ["foo/x|b"]}}]}]`),
			http(from("spiffe://cluster.local/ns/zzz/sa/b")), noAllow},
		// model/generator.go requestPrincipalGenerator: exact "" on a missing claim fails.
		{"requestPrincipal with an empty subject, token without sub", ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["https://iss/"]}}]}]`),
			http(jwt(map[string]any{"iss": "https://iss"})), noAllow},
		{"notRequestPrincipals with an empty subject, token without sub", ap("foo", "d", `action: DENY
rules: [{from: [{source: {notRequestPrincipals: ["https://iss/"]}}]}]`),
			http(jwt(map[string]any{"iss": "https://iss"})), deniedBy("foo/d", 0)},
		{"requestPrincipal with an empty subject, token with sub \"\"", ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["https://iss/"]}}]}]`),
			http(jwt(map[string]any{"iss": "https://iss", "sub": ""})), allowedBy("foo/p", 0)},
		{"requestPrincipal \"*\", token without sub", ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]`),
			http(jwt(map[string]any{"iss": "https://iss"})), noAllow},
		// model.go attrRequestInlineHeader, matcher/header.go HeaderMatcherWithRegex:
		// one element of a comma-separated value, spaces not trimmed.
		{"inline header: an element", ap("foo", "p", `rules: [{when: [{key: "request.experimental.inline.headers[X-A]", values: [b]}]}]`),
			http(hdr("x-a", "a,b,c")), allowedBy("foo/p", 0)},
		{"inline header: not a substring", ap("foo", "p", `rules: [{when: [{key: "request.experimental.inline.headers[x-a]", values: [b]}]}]`),
			http(hdr("x-a", "ab,c")), noAllow},
		{"inline header: prefix", ap("foo", "p", `rules: [{when: [{key: "request.experimental.inline.headers[x-a]", values: ["b*"]}]}]`),
			http(hdr("x-a", "a,bc")), allowedBy("foo/p", 0)},
		{"inline header: '*' is present", ap("foo", "p", `rules: [{when: [{key: "request.experimental.inline.headers[x-a]", values: ["*"]}]}]`),
			http(hdr("x-a", "")), allowedBy("foo/p", 0)},
		{"inline header: a space is part of the element", ap("foo", "d", `action: DENY
rules: [{when: [{key: "request.experimental.inline.headers[x-a]", notValues: [b]}]}]`),
			http(hdr("x-a", "a, b")), deniedBy("foo/d", 0)},
		{"inline header: regex characters are literal", ap("foo", "p", `rules: [{when: [{key: "request.experimental.inline.headers[x-a]", values: [a.c]}]}]`),
			http(hdr("x-a", "abc")), noAllow},
		{"sub that is not a string", ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["https://iss/*"]}}]}]`),
			http(jwt(map[string]any{"iss": "https://iss", "sub": 5})), noAllow},
	})
}

// TestTrustDomainPatternsInPrincipals: trustdomain/util.go stringMatch takes
// the pattern from either side, so a principal whose trust domain is a
// pattern matching a bundle member is rewritten for every member
// (trustdomain/bundle.go ReplaceTrustDomainAliases, replaceTrustDomains).
func TestTrustDomainPatternsInPrincipals(t *testing.T) {
	runCases(t, Mesh{TrustDomain: "cluster.local", TrustDomainAliases: []string{"td2"}}, []tc{
		{"*local principal covers the alias", ap("foo", "d", `action: DENY
rules: [{from: [{source: {principals: ["*local/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://td2/ns/foo/sa/sleep")), deniedBy("foo/d", 0)},
		{"*local principal still matches its own suffix", ap("foo", "d", `action: DENY
rules: [{from: [{source: {principals: ["*local/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://other.local/ns/foo/sa/sleep")), deniedBy("foo/d", 0)},
		{"when source.principal too", ap("foo", "d", `action: DENY
rules: [{when: [{key: source.principal, values: ["*local/ns/foo/sa/sleep"]}]}]`),
			http(from("spiffe://td2/ns/foo/sa/sleep")), deniedBy("foo/d", 0)},
	})
	runCases(t, Mesh{TrustDomain: "td-new", TrustDomainAliases: []string{"td-old"}}, []tc{
		{"td* principal becomes each member", ap("foo", "p", `rules: [{from: [{source: {principals: ["td*/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://td-old/ns/foo/sa/sleep")), allowedBy("foo/p", 0)},
		{"td* principal no longer matches other trust domains", ap("foo", "p", `rules: [{from: [{source: {principals: ["td*/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://tdx/ns/foo/sa/sleep")), noAllow},
	})
}

// TestHostFoldsASCIIOnly: Istio's host matcher is an Envoy ignore_case
// string matcher (matcher/header.go HostMatcher), which folds ASCII only.
func TestHostFoldsASCIIOnly(t *testing.T) {
	policy := ap("foo", "p", `rules: [{to: [{operation: {hosts: ["K.example"]}}]}]`)
	runBothPaths(t, Mesh{}, []tc{
		{"policy in upper case", policy, http(host("k.example")), allowedBy("foo/p", 0)},
		{"Kelvin sign is not k", policy, http(host("\u212a.example")), noAllow},
	})
	// The request's host is folded where the CheckRequest is decoded.
	s := compileCase(t, Mesh{}, policy, webPod())
	if v, err := s.Check(context.Background(), envoyRequest(http(host("k.EXAMPLE")))); err != nil || !v.Allowed {
		t.Errorf("host k.EXAMPLE: %+v %v, want allowed", v, err)
	}
}

// TestStoredDryRunIstioCannotParse: a stored DENY whose istio.io/dry-run
// value strconv.ParseBool refuses is enforced by Istio (isDryRun is false);
// the validator rejects the value, so meshguard fails the policy closed, and
// a failed-closed policy that is not a dry run denies.
func TestStoredDryRunIstioCannotParse(t *testing.T) {
	obj := storedJSON(t, "AuthorizationPolicy", "deny-all", `{"action": "DENY", "rules": [{}]}`)
	obj["metadata"].(map[string]any)["annotations"] = map[string]any{"istio.io/dry-run": "tRuE"}
	st, err := DecodeStored("AuthorizationPolicy", obj)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Invalid, "istio.io/dry-run") {
		t.Fatalf("Invalid %q, want it to name the annotation", st.Invalid)
	}
	set := &Set{}
	set.AddStored(st)
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CheckRequest(context.Background(), http())
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || v.Rule != FailClosedRule || len(v.DryRunDeny) != 0 {
		t.Fatalf("verdict %+v, want a fail-closed denial (Istio enforces the DENY)", v)
	}
}

// `request.headers[host]` is the request's authority: Envoy's header map
// reads a legacy "host" as ":authority" (source/common/http/header_map_impl.cc),
// so Istio's HeaderMatcher{name: "host"} (generator.go requestHeaderGenerator)
// sees it, while ext_authz sends only ":authority" (and http.host). Checked
// with the CheckRequest Envoy sends for `Host: admin.example.com`.
func TestHostHeaderIsAuthority(t *testing.T) {
	set := &Set{Pods: []*corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "foo", Labels: map[string]string{"app": "web"}},
		Status:     corev1.PodStatus{PodIP: "10.0.1.1"},
	}}}
	policies := ap("foo", "deny-host", "action: DENY\nrules:\n- when:\n  - key: request.headers[Host]\n    values: [\"admin.example.com*\"]") +
		"---\n" + ap("foo", "deny-inline", "action: DENY\nrules:\n- when:\n  - key: request.experimental.inline.headers[host]\n    values: [\"inline.example.com\"]")
	if _, err := set.AddYAML("p", []byte(policies)); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, policy string
	}{{"admin.example.com", "foo/deny-host"}, {"inline.example.com", "foo/deny-inline"}, {"www.example.com", ""}} {
		req := checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", map[string]string{
			":authority": c.host, ":method": "GET", ":path": "/", ":scheme": "http"})
		req.Attributes.Request.Http.Host = c.host
		v, err := s.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if v.Allowed != (c.policy == "") || (!v.Allowed && v.Policy != c.policy) {
			t.Errorf("Host %s: %+v, want denied by %q (\"\": allowed)", c.host, v, c.policy)
		}
	}
}

// TestHeaderNamesFoldASCIIOnly: Istio's requestHeaderGenerator
// (model/generator.go) passes the name of request.headers[<name>] to
// Envoy's HeaderMatcher, whose name is an Http::LowerCaseString, lowered in
// ASCII only; a header name with a non-ASCII letter never names an ASCII
// header, however Unicode folds it ("\u212a", the Kelvin sign, is "k" to
// strings.ToLower).
func TestHeaderNamesFoldASCIIOnly(t *testing.T) {
	allowKey := ap("foo", "p", "rules: [{when: [{key: \"request.headers[\u212aey]\", values: [x]}]}]")
	denyKey := ap("foo", "d", "action: DENY\nrules: [{when: [{key: \"request.headers[\u212aey]\", values: [x]}]}]")
	allowKeyASCII := ap("foo", "p", `rules: [{when: [{key: "request.headers[KEY]", values: [x]}]}]`)
	runBothPaths(t, Mesh{}, []tc{
		{"Kelvin-sign header name does not name key (ALLOW)", allowKey, http(hdr("key", "x")), noAllow},
		{"Kelvin-sign header name does not name key (DENY)", denyKey, http(hdr("key", "x")), open},
		{"ASCII upper case names key", allowKeyASCII, http(hdr("key", "x")), allowedBy("foo/p", 0)},
		{"a request header named with a Kelvin sign is not key", allowKeyASCII, http(hdr("\u212aEY", "x")), noAllow},
	})
}

// TestPathTemplatesEnvoyRefuses: Istio's validation (pkg/config/security
// CheckValidPathTemplate) accepts templates whose Envoy form (matcher
// PathTemplateMatcher: {*} → *, {**} → **) Envoy's uri_template refuses
// (uri_template_internal.cc parsePathPatternSyntax: "^/[[:graph:]]*$" and
// validateNoDoublePathSeparator; UriTemplateMatchConfig.path_template at
// most 256 characters), so the listener is NACKed. meshguard's validator
// refuses them, and the compiler fails exactly the values the validator
// refuses (before, "a/{*}" passed the webhook and then failed closed in
// ext_authz, and "//a/{*}" passed both and matched "//a/x").
func TestPathTemplatesEnvoyRefuses(t *testing.T) {
	long := "/{*}/" + strings.Repeat("a", 253) // 256 characters once {*} is *
	for _, c := range []struct {
		path  string
		valid bool
	}{
		{"/a/{*}", true},
		{"/a/{*}/", true},
		{"/{**}", true},
		{long, true},
		{long + "b", false},
		{"a/{*}", false},
		{"{**}", false},
		{"//a/{*}", false},
		{"/a/{*}//", false},
		{"/a//{*}", false},
		{"a/*", true}, // not a template: a prefix, as Istio's StringMatcher
		{"//a*", true},
	} {
		doc := ap("foo", "p", fmt.Sprintf("rules: [{to: [{operation: {paths: [%q]}}]}]", c.path))
		if got := validateAccepts(t, []byte(doc)); got != c.valid {
			t.Errorf("validate %q: accepts=%v, want %v", c.path, got, c.valid)
		}
		if _, err := pathCond([]string{c.path}, false); (err == nil) != c.valid {
			t.Errorf("compile %q: %v, want valid=%v", c.path, err, c.valid)
		}
	}
}

// TestScopedIPv6Addresses: Envoy writes a scoped (link-local) address as
// "fe80::1%3" (source/common/network/address_impl.cc
// Ipv6Helper::makeFriendlyAddress, which ext_authz's source and
// destination addresses carry) and Istio's ipBlocks / source.ip /
// remoteIpBlocks become CidrRange matchers (model/generator.go
// srcIPGenerator, remoteIPGenerator; util.AddrStrToCidrRange), whose
// isInRange compares the address bits only. OPA's net.cidr_contains fails
// on a zone, which left the match undefined: the DENY did not apply. An
// X-Forwarded-For entry whose zone is an interface name is refused: Envoy
// reads it only where the proxy has that interface.
func TestScopedIPv6Addresses(t *testing.T) {
	s := compileCase(t, Mesh{}, ap("foo", "d", "action: DENY\nrules: [{from: [{source: {ipBlocks: [\"fe80::/10\"]}}]}]")+
		ap("foo", "r", "action: DENY\nrules: [{from: [{source: {remoteIpBlocks: [\"fe80::/10\"]}}]}]")+
		ap("foo", "dst", "action: DENY\nrules: [{when: [{key: destination.ip, notValues: [\"fe80::1:1\"]}]}]"),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-6", Namespace: "foo", Labels: map[string]string{"app": "web"}},
			Status: corev1.PodStatus{PodIP: "fe80::1:1"}})
	for _, c := range []struct {
		name          string
		src, dst, xff string
		status        int
		policy        string
	}{
		{"scoped source in ipBlocks", "fe80::5%3", "fe80::1:1", "", 403, "foo/d"},
		{"scoped destination is the address", "10.0.0.5", "fe80::1:1%3", "", 200, ""},
		{"numeric zone in X-Forwarded-For", "10.0.0.5", "fe80::1:1", "fe80::9%2", 403, "foo/r"},
		{"interface name in X-Forwarded-For", "10.0.0.5", "fe80::1:1", "fe80::9%eth0", 400, ""},
	} {
		var hdrs map[string]string
		if c.xff != "" {
			hdrs = map[string]string{"x-forwarded-for": c.xff}
		}
		v, err := s.Check(context.Background(), checkReq("", c.src, c.dst, 8080, "GET", "/", hdrs))
		if err != nil || v.Status != c.status || v.Policy != c.policy {
			t.Errorf("%s: %+v %v, want status %d policy %q", c.name, v, err, c.status, c.policy)
		}
	}
}

// TestAttributesAsEnvoyMatchesThem: values read from an Envoy CheckRequest,
// with the verdict Istio's matchers give: ipBlocks are CidrRange matchers
// (model/generator.go srcIPGenerator, util.AddrStrToCidrRange: the address
// kept as written, isInRange masking it and never matching across IP
// versions), a header matcher sees the values of a repeated header joined
// by ',' (model/generator.go requestHeaderGenerator, Envoy's
// HeaderUtility::getAllOfHeaderAsString), and paths match url_path,
// normalised, without query or fragment (matcher/header.go PathMatcher,
// Envoy's PathUtil::removeQueryAndFragment).
func TestAttributesAsEnvoyMatchesThem(t *testing.T) {
	s := compileCase(t, Mesh{}, ap("foo", "d1", "action: DENY\nrules: [{from: [{source: {ipBlocks: [\"10.0.0.1/8\"]}}]}]")+
		ap("foo", "d2", "action: DENY\nrules: [{from: [{source: {ipBlocks: [\"2001:db8::/32\"]}}]}]")+
		ap("foo", "d3", "action: DENY\nrules: [{from: [{source: {notIpBlocks: [\"0.0.0.0/0\"]}}]}]")+
		ap("foo", "d4", "action: DENY\nrules: [{when: [{key: \"request.headers[X-A]\", values: [\"1,2\"]}]}]")+
		ap("foo", "d5", "action: DENY\nrules: [{to: [{operation: {paths: [\"/admin\"]}}]}]"), webPod())
	for _, c := range []struct {
		name, src, path string
		headerMap       [][2]string
		policy          string
	}{
		{"a CIDR with host bits set is masked", "10.200.0.1", "/", nil, "foo/d1"},
		{"an IPv6 peer in its long form", "2001:0db8:0:0::1", "/", nil, "foo/d2"},
		{"an IPv6 peer is not in 0.0.0.0/0", "fd00::1", "/", nil, "foo/d3"},
		{"a repeated header is its values joined by ','", "192.168.0.1", "/", [][2]string{{"X-A", "1"}, {"x-a", "2"}}, "foo/d4"},
		{"query stripped", "192.168.0.1", "/admin?x=1", nil, "foo/d5"},
		{"fragment stripped", "192.168.0.1", "/admin#x", nil, "foo/d5"},
		{"unreserved escape decoded", "192.168.0.1", "/ad%6Din", nil, "foo/d5"},
		{"dot segments removed", "192.168.0.1", "/x/../admin", nil, "foo/d5"},
		{"exact path is exact", "192.168.0.1", "/admin/", nil, ""},
	} {
		req := checkReq("", c.src, "10.0.1.1", 8080, "GET", c.path, nil)
		if c.headerMap != nil {
			hm := &corev3.HeaderMap{}
			for _, kv := range c.headerMap {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], Value: kv[1]})
			}
			req.Attributes.Request.Http.HeaderMap = hm
		}
		v, err := s.Check(context.Background(), req)
		if err != nil || v.Policy != c.policy {
			t.Errorf("%s: %+v %v, want policy %q", c.name, v, err, c.policy)
		}
	}
}

// TestStarIsRegexDotPlus: Istio's "*" is the regex ".+" wherever it builds a
// StringMatcher (matcher/string.go StringMatcherWithPrefix: principals,
// paths, connection.sni, request.auth.claims/audiences/presenter; and
// model/generator.go matchAny for both halves of requestPrincipals), which
// Envoy's safe_regex matches as RE2 FullMatch with dot_nl off: a value
// holding a newline is not matched. Headers and hosts are different: "*"
// there is a present_match (matcher/header.go HeaderMatcher, HostMatcher).
func TestStarIsRegexDotPlus(t *testing.T) {
	allowSNI := ap("foo", "p", `rules: [{when: [{key: connection.sni, values: ["*"]}]}]`)
	denyNoSNI := ap("foo", "d", "action: DENY\nrules: [{when: [{key: connection.sni, notValues: [\"*\"]}]}]")
	anyJWT := ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]`)
	anyEmail := ap("foo", "p", `rules: [{when: [{key: "request.auth.claims[email]", values: ["*"]}]}]`)
	anyPeer := ap("foo", "p", `rules: [{from: [{source: {principals: ["*"]}}]}]`)
	anyHeader := ap("foo", "p", `rules: [{when: [{key: "request.headers[x-a]", values: ["*"]}]}]`)
	runCases(t, Mesh{}, []tc{
		{"sni *: a value", allowSNI, http(sni("a.example")), allowedBy("foo/p", 0)},
		{"sni *: a newline is not matched", allowSNI, http(sni("a\nb")), noAllow},
		{"sni notValues *: a newline is not matched, so the DENY applies", denyNoSNI, http(sni("\n")), deniedBy("foo/d", 0)},
		{"sni notValues *: a value", denyNoSNI, http(sni("a")), open},
		{"requestPrincipals *: a subject with a newline", anyJWT, http(jwt(map[string]any{"iss": "i", "sub": "a\nb"})), noAllow},
		{"requestPrincipals *", anyJWT, http(jwt(map[string]any{"iss": "i", "sub": "a"})), allowedBy("foo/p", 0)},
		{"claim *: a newline", anyEmail, http(jwt(map[string]any{"iss": "i", "email": "x\ny"})), noAllow},
		{"claim *: one list element without one", anyEmail, http(jwt(map[string]any{"iss": "i", "email": []any{"x\ny", "z"}})), allowedBy("foo/p", 0)},
		{"principals *: a newline", anyPeer, http(from("spiffe://a\nb")), noAllow},
		{"header *: present, whatever the value", anyHeader, http(hdr("x-a", "a\nb")), allowedBy("foo/p", 0)},
	})
}

// TestServiceAccountsAreLiteral: CVE-2026-39350 (GHSA-9gcg-w975-3rjh, fixed
// in Istio 1.27.9, 1.28.6 and 1.29.2 by istio/istio#59700 "Quote
// metacharacters in SA regex"): generator.go serviceAccountRegex wrote the
// namespace and name into its regex unquoted, so serviceAccounts
// "cert-manager.io" also matched "cert-manager-io" (an ALLOW wider than
// written, a DENY narrower). They are literal now, in serviceAccounts,
// notServiceAccounts and source.serviceAccount alike.
func TestServiceAccountsAreLiteral(t *testing.T) {
	const dotted, dashed = "spiffe://cluster.local/ns/foo/sa/cert-manager.io", "spiffe://cluster.local/ns/foo/sa/cert-manager-io"
	allow := ap("foo", "p", `rules: [{from: [{source: {serviceAccounts: ["foo/cert-manager.io"]}}]}]`)
	deny := ap("foo", "d", "action: DENY\nrules: [{from: [{source: {serviceAccounts: [\"cert-manager.io\"]}}]}]")
	notDeny := ap("foo", "d", "action: DENY\nrules: [{from: [{source: {notServiceAccounts: [\"foo/cert-manager.io\"]}}]}]")
	when := ap("foo", "p", `rules: [{when: [{key: source.serviceAccount, values: ["foo/cert-manager.io"]}]}]`)
	odd := ap("foo", "p", `rules: [{from: [{source: {serviceAccounts: ["foo/a(b"]}}]}]`)
	runCases(t, Mesh{}, []tc{
		{"ALLOW: the name itself", allow, http(from(dotted)), allowedBy("foo/p", 0)},
		{"ALLOW: '.' is not any character", allow, http(from(dashed)), noAllow},
		{"DENY: '.' is not any character", deny, http(from(dashed)), open},
		{"DENY: the name itself", deny, http(from(dotted)), deniedBy("foo/d", 0)},
		{"notServiceAccounts: '.' is not any character", notDeny, http(from(dashed)), deniedBy("foo/d", 0)},
		{"source.serviceAccount: '.' is not any character", when, http(from(dashed)), noAllow},
		{"a metacharacter that is no regex is a literal", odd, http(from("spiffe://cluster.local/ns/foo/sa/a(b")), allowedBy("foo/p", 0)},
	})
}

// TestJWTMatchersAsEnvoyMatchesThem: request.auth.* as Istio builds them
// and Envoy matches them, on the payload jwt_authn writes. Istio
// (pilot/pkg/security/authz/model/generator.go): requestClaimGenerator,
// requestAudiencesGenerator and requestPresenterGenerator match
// MetadataListValueMatcherForJWTClaims (model/principal.go; matcher/metadata.go
// MetadataListValueMatcher with useExtendedJwt: or_match of list_match.one_of
// and the value itself) over the path payload.<claim>...;
// requestPrincipalGenerator matches iss and sub each with
// MetadataStringMatcherForJWTClaim; model.go rule.principal wraps notValues
// in principalNot. Envoy: Metadata::metadataValue yields an empty Value when
// a path segment is missing or not a struct, a string matcher matches only
// a string_value, list_match.one_of any element of a list.
func TestJWTMatchersAsEnvoyMatchesThem(t *testing.T) {
	when := func(action, key, field, vals string) string {
		a := ""
		if action != "" {
			a = "action: " + action + "\n"
		}
		return ap("foo", "p", a+"rules:\n- when:\n  - key: \""+key+"\"\n    "+field+": "+vals)
	}
	ok, denied := allowedBy("foo/p", 0), deniedBy("foo/p", 0)
	type m = map[string]any
	// Envoy's RBAC filter runs after jwt_authn: a request without its
	// metadata has no token (JWTMetadataForwarded; without it the
	// CheckRequest path denies those rows as "JWT unknown").
	runBothPaths(t, Mesh{JWTMetadataForwarded: true}, []tc{
		{"claim notValues, claim missing: NOT(no match)", when("DENY", "request.auth.claims[g]", "notValues", `["a"]`), http(jwt(m{"iss": "i"})), denied},
		{"claim notValues, no token", when("", "request.auth.claims[g]", "notValues", `["a"]`), http(), ok},
		{"claim values, claim missing", when("DENY", "request.auth.claims[g]", "values", `["*"]`), http(jwt(m{"iss": "i"})), open},
		{"nested path through a list: not a struct", when("", "request.auth.claims[a][b]", "values", `["x"]`), http(jwt(m{"a": []any{m{"b": "x"}}})), noAllow},
		{"nested path through a string", when("", "request.auth.claims[a][b]", "values", `["x"]`), http(jwt(m{"a": "x"})), noAllow},
		{"nested path through a string, notValues", when("DENY", "request.auth.claims[a][b]", "notValues", `["x"]`), http(jwt(m{"a": "x"})), denied},
		{"a path segment is a key, never a list index", when("", "request.auth.claims[a][0]", "values", `["x"]`), http(jwt(m{"a": []any{"x"}})), noAllow},
		{"a key with a dot is one key", when("", "request.auth.claims[a.b]", "values", `["x"]`), http(jwt(m{"a.b": "x"})), ok},
		{"a key with a dot is not a path", when("", "request.auth.claims[a.b]", "values", `["x"]`), http(jwt(m{"a": m{"b": "x"}})), noAllow},
		{"list element of a list: one_of takes strings only", when("", "request.auth.claims[a]", "values", `["x"]`), http(jwt(m{"a": []any{[]any{"x"}}})), noAllow},
		{"bool claim: a string matcher does not match", when("", "request.auth.claims[a]", "values", `["true"]`), http(jwt(m{"a": true})), noAllow},
		{"bool claim, notValues", when("DENY", "request.auth.claims[a]", "notValues", `["true"]`), http(jwt(m{"a": true})), denied},
		{"number claim, *", when("", "request.auth.claims[a]", "values", `["*"]`), http(jwt(m{"a": 1.0})), noAllow},
		{"object claim, *", when("", "request.auth.claims[a]", "values", `["*"]`), http(jwt(m{"a": m{"b": "x"}})), noAllow},
		{"null claim, notValues *", when("DENY", "request.auth.claims[a]", "notValues", `["*"]`), http(jwt(m{"a": nil})), denied},
		{"empty string claim, *: .+ needs a character", when("", "request.auth.claims[a]", "values", `["*"]`), http(jwt(m{"a": ""})), noAllow},
		{"list with a number and a match", when("", "request.auth.claims[a]", "values", `["x*"]`), http(jwt(m{"a": []any{1.0, "xy"}})), ok},
		{"audiences as a string", when("", "request.auth.audiences", "values", `["x"]`), http(jwt(m{"aud": "x"})), ok},
		{"audiences as a list", when("", "request.auth.audiences", "values", `["*y"]`), http(jwt(m{"aud": []any{"a", "xy"}})), ok},
		{"audiences empty list, *", when("", "request.auth.audiences", "values", `["*"]`), http(jwt(m{"aud": []any{}})), noAllow},
		{"audiences notValues, an element matches", when("DENY", "request.auth.audiences", "notValues", `["a"]`), http(jwt(m{"aud": []any{"a", "b"}})), open},
		{"presenter prefix", when("", "request.auth.presenter", "values", `["cl*"]`), http(jwt(m{"azp": "cli"})), ok},
		{"presenter missing, notValues", when("DENY", "request.auth.presenter", "notValues", `["cli"]`), http(jwt(m{"iss": "i"})), denied},
		{"principal: issuer with '/', split at the last one", when("", "request.auth.principal", "values", `["https://a/b/c"]`), http(jwt(m{"iss": "https://a/b", "sub": "c"})), ok},
		{"principal: subject with '/' is not split there", when("", "request.auth.principal", "values", `["https://a/b/c"]`), http(jwt(m{"iss": "https://a", "sub": "b/c"})), noAllow},
		{"principal: iss as a list is no string", when("", "request.auth.principal", "values", `["a/b"]`), http(jwt(m{"iss": []any{"a"}, "sub": "b"})), noAllow},
		{"principal notValues, no token", when("DENY", "request.auth.principal", "notValues", `["https://a/b/c"]`), http(), denied},
		{"notRequestPrincipals, token without sub", ap("foo", "p", "action: DENY\nrules: [{from: [{source: {notRequestPrincipals: [\"i/*\"]}}]}]"),
			http(jwt(m{"iss": "i"})), denied},
		{"requestPrincipals *: an empty issuer", ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]`),
			http(jwt(m{"iss": "", "sub": "s"})), noAllow},
		{"requestPrincipals without '/': an exact empty subject", ap("foo", "p", `rules: [{from: [{source: {requestPrincipals: ["i"]}}]}]`),
			http(jwt(m{"iss": "i", "sub": ""})), ok},
	})
}
