package policy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
)

const (
	pFoo  = "spiffe://cluster.local/ns/foo/sa/sleep"
	pBar  = "spiffe://cluster.local/ns/bar/sa/api"
	pProd = "spiffe://cluster.local/ns/prod-east/sa/web"
)

// ap renders a minimal AuthorizationPolicy; spec is YAML indented by 2.
func ap(ns, name, spec string) string {
	return fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: %s}\nspec:\n%s\n---\n", name, ns, indent(spec))
}

func apAnn(ns, name, ann, spec string) string {
	return fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: %s, annotations: {%s}}\nspec:\n%s\n---\n", name, ns, ann, indent(spec))
}

func pa(ns, name, created, spec string) string {
	return fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: %q, namespace: %s, creationTimestamp: %q}\nspec:\n%s\n---\n", name, ns, created, indent(spec))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}

// http builds a plaintext HTTP request to a workload in ns foo (labels app=web).
func http(mods ...func(*Request)) *Request {
	r := &Request{Namespace: "foo", Labels: map[string]string{"app": "web"}, Method: "GET", Path: "/", Host: "web.foo.svc",
		Headers: map[string]string{}, SrcIP: "10.0.0.5", RemoteIP: "10.0.0.5", DstIP: "10.0.1.1", DstPort: 8080}
	for _, m := range mods {
		m(r)
	}
	return r
}

func from(p string) func(*Request)   { return func(r *Request) { r.Principal = p } }
func method(m string) func(*Request) { return func(r *Request) { r.Method = m } }
func path(p string) func(*Request)   { return func(r *Request) { r.Path = p } }
func host(h string) func(*Request)   { return func(r *Request) { r.Host = h } }
func port(p uint32) func(*Request)   { return func(r *Request) { r.DstPort = p } }
func ns(n string, labels map[string]string) func(*Request) {
	return func(r *Request) { r.Namespace, r.Labels = n, labels }
}
func hdr(k, v string) func(*Request)  { return func(r *Request) { r.Headers[k] = v } }
func srcIP(ip string) func(*Request)  { return func(r *Request) { r.SrcIP, r.RemoteIP = ip, ip } }
func remote(ip string) func(*Request) { return func(r *Request) { r.RemoteIP = ip } }
func dstIP(ip string) func(*Request)  { return func(r *Request) { r.DstIP = ip } }
func sni(s string) func(*Request)     { return func(r *Request) { r.SNI = s } }
func tcp() func(*Request) {
	return func(r *Request) { r.TCP, r.Method, r.Path, r.Host, r.Headers = true, "", "", "", nil }
}
func jwt(claims map[string]any) func(*Request) {
	return func(r *Request) {
		s, err := structpb.NewStruct(claims)
		if err != nil {
			panic(err)
		}
		r.JWT = s
	}
}

type want struct {
	allowed bool
	action  string
	policy  string
	rule    int
}

var (
	allowedBy = func(p string, rule int) want { return want{true, "ALLOW", p, rule} }
	deniedBy  = func(p string, rule int) want { return want{false, "DENY", p, rule} }
	noAllow   = want{false, "NONE", "", -1} // ALLOW policies exist, none matched
	open      = want{true, "NONE", "", -1}  // no ALLOW policy for the workload
)

type tc struct {
	name     string
	policies string
	req      *Request
	want     want
}

// compileCase compiles a YAML policy set plus the Pods given.
func compileCase(t *testing.T, mesh Mesh, policies string, pods ...*corev1.Pod) *Snapshot {
	t.Helper()
	set := &Set{Pods: pods}
	if _, err := set.AddYAML(t.Name(), []byte(policies)); err != nil {
		t.Fatalf("policies: %v", err)
	}
	s, err := Compile(context.Background(), mesh, set, 1)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

func runCases(t *testing.T, mesh Mesh, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, mesh, c.policies)
			v, err := s.CheckRequest(context.Background(), c.req)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			got := want{v.Allowed, v.Action, v.Policy, v.Rule}
			if got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if (v.Status == 200) != v.Allowed {
				t.Errorf("status %d inconsistent with allowed=%v", v.Status, v.Allowed)
			}
			// The same set as one module (k = 1) decides identically.
			set := &Set{}
			if _, err := set.AddYAML(t.Name(), []byte(c.policies)); err != nil {
				t.Fatalf("policies: %v", err)
			}
			one, err := compileShards(context.Background(), nil, mesh, set, 1, 1)
			if err != nil {
				t.Fatalf("compile as one shard: %v", err)
			}
			if v1, err := one.CheckRequest(context.Background(), c.req); err != nil || !reflect.DeepEqual(v1, v) {
				t.Errorf("one shard: %+v %v; sharded: %+v", v1, err, v)
			}
		})
	}
}

func TestActionsAndPrecedence(t *testing.T) {
	allowGet := ap("foo", "allow-get", "rules:\n- to:\n  - operation: {methods: [GET]}")
	denyAdmin := ap("foo", "deny-admin", "action: DENY\nrules:\n- to:\n  - operation: {paths: [/admin*]}")
	runCases(t, Mesh{}, []tc{
		{"no policies allows", "", http(), open},
		{"allow-nothing spec {} denies", ap("foo", "none", "{}"), http(), noAllow},
		{"empty rules list never matches", ap("foo", "none", "rules: []"), http(), noAllow},
		{"allow-all empty rule", ap("foo", "all", "rules:\n- {}"), http(), allowedBy("foo/all", 0)},
		{"deny-all empty rule", ap("foo", "deny", "action: DENY\nrules:\n- {}"), http(), deniedBy("foo/deny", 0)},
		{"ALLOW matches", allowGet, http(), allowedBy("foo/allow-get", 0)},
		{"ALLOW no match", allowGet, http(method("POST")), noAllow},
		{"DENY beats ALLOW", allowGet + denyAdmin, http(path("/admin/x")), deniedBy("foo/deny-admin", 0)},
		{"DENY not matching then ALLOW", allowGet + denyAdmin, http(path("/x")), allowedBy("foo/allow-get", 0)},
		{"DENY alone, no match: allowed", denyAdmin, http(), open},
		{"AUDIT never decides (allowed)", ap("foo", "audit", "action: AUDIT\nrules:\n- {}"), http(),
			want{true, "AUDIT", "foo/audit", 0}},
		{"AUDIT never decides (denied)", ap("foo", "audit", "action: AUDIT\nrules:\n- {}") + ap("foo", "none", "{}"), http(), noAllow},
		{"CUSTOM reported, not deciding", ap("foo", "ext", "action: CUSTOM\nprovider: {name: ext}\nrules:\n- {}"), http(), open},
		{"second rule index reported", ap("foo", "two", "rules:\n- to:\n  - operation: {methods: [POST]}\n- to:\n  - operation: {methods: [GET]}"),
			http(), allowedBy("foo/two", 1)},
		{"other namespace policy ignored", ap("bar", "none", "{}"), http(), open},
		{"root namespace applies mesh-wide", ap("istio-system", "deny", "action: DENY\nrules:\n- to:\n  - operation: {methods: [DELETE]}"),
			http(method("DELETE")), deniedBy("istio-system/deny", 0)},
		{"root ALLOW makes workload deny-by-default", ap("istio-system", "a", "rules:\n- to:\n  - operation: {methods: [POST]}"),
			http(), noAllow},
		{"selector matches labels", ap("foo", "sel", "selector: {matchLabels: {app: web}}\nrules:\n- to:\n  - operation: {methods: [POST]}"),
			http(), noAllow},
		{"selector does not match", ap("foo", "sel", "selector: {matchLabels: {app: db}}\nrules:\n- to:\n  - operation: {methods: [POST]}"),
			http(), open},
		{"root selector matches any namespace", ap("istio-system", "sel", "selector: {matchLabels: {app: web}}\naction: DENY\nrules:\n- {}"),
			http(ns("other", map[string]string{"app": "web"})), deniedBy("istio-system/sel", 0)},
		{"targetRefs policy ignored for sidecars (gateway_attach_test.go)", ap("foo", "tr", "targetRefs:\n- {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\nrules: []"),
			http(), open},
		{"dry-run DENY not enforced", apAnn("foo", "dry", `istio.io/dry-run: "true"`, "action: DENY\nrules:\n- {}"), http(), open},
		{"dry-run ALLOW does not make deny-by-default", apAnn("foo", "dry", `istio.io/dry-run: "true"`, "rules:\n- to:\n  - operation: {methods: [POST]}"), http(), open},
	})
}

func TestSourceFields(t *testing.T) {
	pol := func(src string) string { return ap("foo", "p", "rules:\n- from:\n  - source: "+src) }
	deny := func(src string) string { return ap("foo", "d", "action: DENY\nrules:\n- from:\n  - source: "+src) }
	ok := allowedBy("foo/p", 0)
	runCases(t, Mesh{}, []tc{
		{"principals exact", pol(`{principals: ["cluster.local/ns/foo/sa/sleep"]}`), http(from(pFoo)), ok},
		{"principals exact miss", pol(`{principals: ["cluster.local/ns/foo/sa/other"]}`), http(from(pFoo)), noAllow},
		{"principals prefix", pol(`{principals: ["cluster.local/ns/foo/*"]}`), http(from(pFoo)), ok},
		{"principals suffix", pol(`{principals: ["*/sa/sleep"]}`), http(from(pFoo)), ok},
		{"principals presence", pol(`{principals: ["*"]}`), http(from(pFoo)), ok},
		{"principals presence plaintext", pol(`{principals: ["*"]}`), http(), noAllow},
		{"principals case sensitive", pol(`{principals: ["cluster.local/ns/FOO/sa/sleep"]}`), http(from(pFoo)), noAllow},
		{"principals middle * is literal", pol(`{principals: ["cluster.local/ns/*/sa/sleep"]}`), http(from(pFoo)), noAllow},
		{"notPrincipals", pol(`{notPrincipals: ["cluster.local/ns/bar/*"]}`), http(from(pFoo)), ok},
		{"notPrincipals miss", pol(`{notPrincipals: ["cluster.local/ns/foo/*"]}`), http(from(pFoo)), noAllow},
		{"deny plaintext idiom", deny(`{notPrincipals: ["*"]}`), http(), deniedBy("foo/d", 0)},
		{"deny plaintext idiom, mTLS passes", deny(`{notPrincipals: ["*"]}`), http(from(pFoo)), open},
		{"namespaces exact", pol(`{namespaces: [foo]}`), http(from(pFoo)), ok},
		{"namespaces miss", pol(`{namespaces: [bar]}`), http(from(pFoo)), noAllow},
		{"namespaces prefix", pol(`{namespaces: ["prod-*"]}`), http(from(pProd)), ok},
		{"namespaces suffix", pol(`{namespaces: ["*-east"]}`), http(from(pProd)), ok},
		{"namespaces middle * is a glob", pol(`{namespaces: ["prod*east"]}`), http(from(pProd)), ok},
		{"namespaces presence", pol(`{namespaces: ["*"]}`), http(from(pProd)), ok},
		{"namespaces plaintext never matches", pol(`{namespaces: [foo]}`), http(), noAllow},
		{"notNamespaces plaintext matches (ISTIO-SECURITY-2021-004)", pol(`{notNamespaces: [foo]}`), http(), ok},
		{"notNamespaces mTLS from foo", pol(`{notNamespaces: [foo]}`), http(from(pFoo)), noAllow},
		{"serviceAccounts ns/sa", pol(`{serviceAccounts: [foo/sleep]}`), http(from(pFoo)), ok},
		{"serviceAccounts bare sa uses policy namespace", pol(`{serviceAccounts: [sleep]}`), http(from(pFoo)), ok},
		{"serviceAccounts bare sa other namespace", pol(`{serviceAccounts: [api]}`), http(from(pBar)), noAllow},
		{"serviceAccounts no prefix match", pol(`{serviceAccounts: [foo/slee]}`), http(from(pFoo)), noAllow},
		{"notServiceAccounts", pol(`{notServiceAccounts: [foo/sleep]}`), http(from(pBar)), ok},
		{"trustDomains exact", pol(`{trustDomains: [cluster.local]}`), http(from(pFoo)), ok},
		{"trustDomains miss", pol(`{trustDomains: [other.td]}`), http(from(pFoo)), noAllow},
		{"trustDomains suffix wildcard", pol(`{trustDomains: ["*.local"]}`), http(from(pFoo)), ok},
		// The trust domain is the SPIFFE ID's authority: a wildcard never
		// spans a '/' ("spiffe://<p>[^/]*<s>/", TestTrustDomainsOddPrincipals).
		{"trustDomains wildcard stays in the trust domain", pol(`{trustDomains: ["*.local"]}`),
			http(from("spiffe://evil/x.local/ns/foo/sa/sleep")), noAllow},
		{"trustDomains presence", pol(`{trustDomains: ["*"]}`), http(from(pFoo)), ok},
		{"notTrustDomains", pol(`{notTrustDomains: [other.td]}`), http(from(pFoo)), ok},
		{"ipBlocks cidr", pol(`{ipBlocks: [10.0.0.0/24]}`), http(), ok},
		{"ipBlocks single ip", pol(`{ipBlocks: [10.0.0.5]}`), http(), ok},
		{"ipBlocks miss", pol(`{ipBlocks: [10.1.0.0/16]}`), http(), noAllow},
		{"notIpBlocks", pol(`{notIpBlocks: [10.1.0.0/16]}`), http(), ok},
		{"ipBlocks ipv6", pol(`{ipBlocks: ["fd00::/8"]}`), http(srcIP("fd00::1")), ok},
		{"remoteIpBlocks", pol(`{remoteIpBlocks: [192.168.0.0/16]}`), http(remote("192.168.1.1")), ok},
		{"notRemoteIpBlocks", pol(`{notRemoteIpBlocks: [192.168.0.0/16]}`), http(remote("192.168.1.1")), noAllow},
		{"requestPrincipals exact split at last /", pol(`{requestPrincipals: ["https://ex.com/a/b"]}`),
			http(jwt(map[string]any{"iss": "https://ex.com/a", "sub": "b"})), ok},
		{"requestPrincipals not a concatenation", pol(`{requestPrincipals: ["a/b/c"]}`),
			http(jwt(map[string]any{"iss": "a", "sub": "b/c"})), noAllow},
		{"requestPrincipals prefix", pol(`{requestPrincipals: ["https://ex.com/u*"]}`),
			http(jwt(map[string]any{"iss": "https://ex.com", "sub": "user1"})), ok},
		{"requestPrincipals presence", pol(`{requestPrincipals: ["*"]}`), http(jwt(map[string]any{"iss": "i", "sub": "s"})), ok},
		// generator.go requestPrincipalGenerator: a leading '*' makes the issuer a suffix and the subject EXACT.
		{"requestPrincipals *iss/sub*: sub is exact", pol(`{requestPrincipals: ["*ex.com/u*"]}`),
			http(jwt(map[string]any{"iss": "https://ex.com", "sub": "u1"})), noAllow},
		{"requestPrincipals *iss/sub*: literal sub", pol(`{requestPrincipals: ["*ex.com/u*"]}`),
			http(jwt(map[string]any{"iss": "https://ex.com", "sub": "u*"})), ok},
		{"requestPrincipals */sub: any non-empty issuer", pol(`{requestPrincipals: ["*/s"]}`),
			http(jwt(map[string]any{"iss": "", "sub": "s"})), noAllow},
		{"requestPrincipals iss/*: any non-empty subject", pol(`{requestPrincipals: ["i/*"]}`),
			http(jwt(map[string]any{"iss": "i", "sub": ""})), noAllow},
		{"requestPrincipals presence needs sub", pol(`{requestPrincipals: ["*"]}`), http(jwt(map[string]any{"iss": "i"})), noAllow},
		{"requestPrincipals no token", pol(`{requestPrincipals: ["*"]}`), http(), noAllow},
		{"requestPrincipals suffix iss", pol(`{requestPrincipals: ["*ex.com/alice"]}`),
			http(jwt(map[string]any{"iss": "https://ex.com", "sub": "alice"})), ok},
		{"notRequestPrincipals no token", pol(`{notRequestPrincipals: ["*"]}`), http(), ok},
		{"fields in one source are ANDed", pol(`{namespaces: [foo], ipBlocks: [10.9.0.0/16]}`), http(from(pFoo)), noAllow},
		{"from entries are ORed", ap("foo", "p", "rules:\n- from:\n  - source: {namespaces: [bar]}\n  - source: {namespaces: [foo]}"),
			http(from(pFoo)), ok},
		{"values and notValues both must hold", pol(`{principals: ["cluster.local/ns/foo/*"], notPrincipals: ["*/sa/sleep"]}`),
			http(from(pFoo)), noAllow},
		{"DISABLE hides the principal", pol(`{namespaces: [foo]}`) + pa("foo", "pa-off", "2020-01-01T00:00:00Z", "mtls: {mode: DISABLE}"),
			http(from(pFoo)), noAllow},
	})
}

func TestTrustDomainAliases(t *testing.T) {
	mesh := Mesh{TrustDomain: "new.td", TrustDomainAliases: []string{"old.td"}}
	runCases(t, mesh, []tc{
		{"cluster.local principal expands to bundle", ap("foo", "p", `rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://old.td/ns/foo/sa/sleep")), allowedBy("foo/p", 0)},
		{"alias principal expands", ap("foo", "p", `rules: [{from: [{source: {principals: ["old.td/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://new.td/ns/foo/sa/sleep")), allowedBy("foo/p", 0)},
		{"foreign trust domain kept", ap("foo", "p", `rules: [{from: [{source: {principals: ["x.td/ns/foo/sa/sleep"]}}]}]`),
			http(from("spiffe://new.td/ns/foo/sa/sleep")), noAllow},
		{"trustDomains alias expands", ap("foo", "p", `rules: [{from: [{source: {trustDomains: [old.td]}}]}]`),
			http(from("spiffe://new.td/ns/foo/sa/sleep")), allowedBy("foo/p", 0)},
	})
}

// TestTrustDomainsOddPrincipals: Istio's srcTrustDomainGenerator
// (pilot/pkg/security/authz/model/generator.go) matches the full principal
// by the prefix "spiffe://<td>/" ("*": "spiffe://", a wildcard the regex
// "spiffe://<p>[^/]*<s>/.*"), so a SPIFFE ID without a path and a principal
// that is no SPIFFE URI match no trust domain, and only "*" matches the
// former; notTrustDomains is the negation.
func TestTrustDomainsOddPrincipals(t *testing.T) {
	deny := func(src string) string {
		return ap("foo", "d", "action: DENY\nrules: [{from: [{source: "+src+"}]}]")
	}
	d := deniedBy("foo/d", 0)
	const pathless, notSpiffe = "spiffe://cluster.local", "cluster.local/ns/foo/sa/sleep"
	runCases(t, Mesh{}, []tc{
		{"pathless: exact", deny(`{trustDomains: [cluster.local]}`), http(from(pathless)), open},
		{"pathless: wildcard", deny(`{trustDomains: ["cluster.*"]}`), http(from(pathless)), open},
		{"pathless: *", deny(`{trustDomains: ["*"]}`), http(from(pathless)), d},
		{"pathless: notTrustDomains exact", deny(`{notTrustDomains: [cluster.local]}`), http(from(pathless)), d},
		{"pathless: notTrustDomains *", deny(`{notTrustDomains: ["*"]}`), http(from(pathless)), open},
		{"not SPIFFE: exact", deny(`{trustDomains: [cluster.local]}`), http(from(notSpiffe)), open},
		{"not SPIFFE: *", deny(`{trustDomains: ["*"]}`), http(from(notSpiffe)), open},
		{"not SPIFFE: notTrustDomains *", deny(`{notTrustDomains: ["*"]}`), http(from(notSpiffe)), d},
		{"not SPIFFE: notTrustDomains exact", deny(`{notTrustDomains: [cluster.local]}`), http(from(notSpiffe)), d},
	})
}

// TestEmptyTrustDomainAlias: Istio's trustdomain.NewBundle keeps every alias,
// "" too, so a principal of the trust domain "" (spiffe:///ns/foo/sa/sleep)
// is in the bundle: cluster.local principals and trustDomains values naming a
// bundle member cover it, and its own principals expand to the bundle
// (bundle.go ReplaceTrustDomainAliases, ExpandTrustDomainAliases). Dropping
// the alias let such a peer past these DENY policies. (Mesh config
// validation refuses an empty alias, as Istio's ValidateMeshConfig does.)
func TestEmptyTrustDomainAlias(t *testing.T) {
	deny := func(src string) string {
		return ap("foo", "d", "action: DENY\nrules: [{from: [{source: "+src+"}]}]")
	}
	d := deniedBy("foo/d", 0)
	const emptyTD = "spiffe:///ns/foo/sa/sleep"
	runCases(t, Mesh{TrustDomain: "new.td", TrustDomainAliases: []string{""}}, []tc{
		{"cluster.local principal", deny(`{principals: [cluster.local/ns/foo/sa/sleep]}`), http(from(emptyTD)), d},
		{"trustDomains naming the trust domain", deny(`{trustDomains: [new.td]}`), http(from(emptyTD)), d},
		{"principal of the empty trust domain", deny(`{principals: [/ns/foo/sa/sleep]}`), http(from("spiffe://new.td/ns/foo/sa/sleep")), d},
		{"other principals unchanged", deny(`{principals: [cluster.local/ns/foo/sa/sleep]}`), http(from("spiffe://x.td/ns/foo/sa/sleep")), open},
	})
}

func TestOperationFields(t *testing.T) {
	op := func(o string) string { return ap("foo", "p", "rules:\n- to:\n  - operation: "+o) }
	ok := allowedBy("foo/p", 0)
	runCases(t, Mesh{}, []tc{
		{"hosts exact", op(`{hosts: [web.foo.svc]}`), http(), ok},
		{"hosts case insensitive", op(`{hosts: [WEB.Foo.svc]}`), http(host("web.foo.svc")), ok},
		{"hosts exact does not strip port", op(`{hosts: [example.com]}`), http(host("example.com:8080")), noAllow},
		{"hosts with port wildcard", op(`{hosts: ["example.com:*"]}`), http(host("example.com:8080")), ok},
		{"hosts suffix", op(`{hosts: ["*.foo.svc"]}`), http(), ok},
		{"hosts presence", op(`{hosts: ["*"]}`), http(), ok},
		{"notHosts", op(`{notHosts: [evil.com]}`), http(), ok},
		{"notHosts match, case insensitive", op(`{notHosts: [WEB.foo.svc]}`), http(), noAllow},
		// matcher/header.go HostMatcher: "*" is Envoy's present_match, so an
		// empty :authority is a host too (not the ".+" of other fields).
		{"hosts presence matches an empty host", ap("foo", "d", "action: DENY\nrules:\n- to:\n  - operation: {hosts: [\"*\"]}"),
			http(host("")), deniedBy("foo/d", 0)},
		{"methods exact", op(`{methods: [GET, HEAD]}`), http(method("HEAD")), ok},
		{"methods case sensitive", op(`{methods: [get]}`), http(), noAllow},
		{"notMethods", op(`{notMethods: [DELETE]}`), http(method("DELETE")), noAllow},
		// generator.go methodGenerator is matcher.HeaderMatcher(":method"):
		// "*" is Envoy's present_match, which every HTTP request's :method
		// satisfies, whatever its value (not the ".+" of other fields).
		{"methods presence matches an empty method", ap("foo", "d", "action: DENY\nrules:\n- to:\n  - operation: {methods: [\"*\"]}"),
			http(method("")), deniedBy("foo/d", 0)},
		{"methods presence matches a method with a newline", ap("foo", "d", "action: DENY\nrules:\n- to:\n  - operation: {methods: [\"*\"]}"),
			http(method("G\nET")), deniedBy("foo/d", 0)},
		{"notMethods presence never matches", op(`{notMethods: ["*"]}`), http(method("")), noAllow},
		{"paths exact", op(`{paths: [/info]}`), http(path("/info")), ok},
		{"paths case sensitive", op(`{paths: [/Info]}`), http(path("/info")), noAllow},
		{"paths prefix includes itself", op(`{paths: ["/api*"]}`), http(path("/api")), ok},
		{"paths suffix", op(`{paths: ["*.png"]}`), http(path("/img/a.png")), ok},
		{"paths presence", op(`{paths: ["*"]}`), http(path("/x")), ok},
		{"paths template one segment", op(`{paths: ["/users/{*}/info"]}`), http(path("/users/7/info")), ok},
		{"paths template one segment only", op(`{paths: ["/users/{*}/info"]}`), http(path("/users/7/8/info")), noAllow},
		{"paths template many segments", op(`{paths: ["/files/{**}"]}`), http(path("/files/a/b/c")), ok},
		{"paths template mixed", op(`{paths: ["/a/{*}/b/{**}"]}`), http(path("/a/x/b/y/z")), ok},
		{"notPaths", op(`{notPaths: ["/admin*"]}`), http(path("/admin")), noAllow},
		{"ports", op(`{ports: ["8080"]}`), http(), ok},
		{"ports miss", op(`{ports: ["9090"]}`), http(), noAllow},
		{"notPorts", op(`{notPorts: ["9090"]}`), http(), ok},
		{"notPorts match", op(`{notPorts: ["8080"]}`), http(), noAllow},
		{"fields in one operation ANDed", op(`{methods: [GET], paths: [/x]}`), http(path("/y")), noAllow},
		{"to entries ORed", ap("foo", "p", "rules:\n- to:\n  - operation: {methods: [POST]}\n  - operation: {paths: [/]}"), http(), ok},
		{"from AND to", ap("foo", "p", "rules:\n- from:\n  - source: {namespaces: [foo]}\n  to:\n  - operation: {methods: [GET]}"), http(), noAllow},
	})
}

func TestTCP(t *testing.T) {
	runCases(t, Mesh{}, []tc{
		{"ALLOW with HTTP field dropped on TCP", ap("foo", "p", "rules:\n- to:\n  - operation: {methods: [GET], ports: [\"8080\"]}"),
			http(tcp()), noAllow},
		// model.go Generate (pilot/pkg/security/authz/model): an ALLOW rule
		// with an HTTP-only field is dropped on TCP, a negated one too.
		{"ALLOW with notMethods dropped on TCP", ap("foo", "p", "rules:\n- to:\n  - operation: {notMethods: [DELETE]}"),
			http(tcp()), noAllow},
		{"ALLOW with notPaths dropped on TCP", ap("foo", "p", "rules:\n- to:\n  - operation: {notPaths: [/admin]}"),
			http(tcp()), noAllow},
		{"ALLOW with port only works on TCP", ap("foo", "p", "rules:\n- to:\n  - operation: {ports: [\"8080\"]}"),
			http(tcp()), allowedBy("foo/p", 0)},
		{"DENY methods+ports denies all TCP on port", ap("foo", "d", "action: DENY\nrules:\n- to:\n  - operation: {methods: [GET], ports: [\"8080\"]}"),
			http(tcp()), deniedBy("foo/d", 0)},
		{"DENY other port", ap("foo", "d", "action: DENY\nrules:\n- to:\n  - operation: {methods: [GET], ports: [\"9090\"]}"),
			http(tcp()), open},
	})
}

func TestWhenKeys(t *testing.T) {
	when := func(key, field string, vals string) string {
		return ap("foo", "p", fmt.Sprintf("rules:\n- when:\n  - key: %q\n    %s: %s", key, field, vals))
	}
	ok := allowedBy("foo/p", 0)
	claims := jwt(map[string]any{"iss": "https://ex.com", "sub": "alice", "aud": []any{"a1", "a2"}, "azp": "cli",
		"groups": []any{"admin", "dev"}, "nested": map[string]any{"key": "v"}, "num": 3.0})
	runCases(t, Mesh{}, []tc{
		{"request.headers exact", when("request.headers[X-Token]", "values", "[abc]"), http(hdr("x-token", "abc")), ok},
		{"request.headers value case sensitive", when("request.headers[x-token]", "values", "[ABC]"), http(hdr("x-token", "abc")), noAllow},
		{"request.headers prefix", when("request.headers[x-token]", "values", `["ab*"]`), http(hdr("x-token", "abc")), ok},
		{"request.headers presence allows empty value", when("request.headers[x-token]", "values", `["*"]`), http(hdr("x-token", "")), ok},
		{"request.headers missing", when("request.headers[x-token]", "values", `["*"]`), http(), noAllow},
		{"request.headers notValues on missing", when("request.headers[x-token]", "notValues", `["abc"]`), http(), ok},
		{"source.ip", when("source.ip", "values", "[10.0.0.0/8]"), http(), ok},
		{"remote.ip", when("remote.ip", "values", "[192.168.1.1]"), http(remote("192.168.1.1")), ok},
		{"source.namespace", when("source.namespace", "values", "[foo]"), http(from(pFoo)), ok},
		{"source.namespace plaintext", when("source.namespace", "values", "[foo]"), http(), noAllow},
		{"source.namespace notValues plaintext", when("source.namespace", "notValues", "[foo]"), http(), ok},
		{"source.principal", when("source.principal", "values", `["cluster.local/ns/foo/sa/sleep"]`), http(from(pFoo)), ok},
		{"source.serviceAccount", when("source.serviceAccount", "values", `["foo/sleep"]`), http(from(pFoo)), ok},
		{"source.trustDomain", when("source.trustDomain", "values", `["cluster.local"]`), http(from(pFoo)), ok},
		{"request.auth.principal", when("request.auth.principal", "values", `["https://ex.com/alice"]`), http(claims), ok},
		{"request.auth.audiences list", when("request.auth.audiences", "values", `["a2"]`), http(claims), ok},
		{"request.auth.audiences miss", when("request.auth.audiences", "values", `["a3"]`), http(claims), noAllow},
		{"request.auth.presenter", when("request.auth.presenter", "values", `["cli"]`), http(claims), ok},
		{"request.auth.claims list", when("request.auth.claims[groups]", "values", `["admin"]`), http(claims), ok},
		{"request.auth.claims string", when("request.auth.claims[sub]", "values", `["ali*"]`), http(claims), ok},
		{"request.auth.claims nested", when("request.auth.claims[nested][key]", "values", `["v"]`), http(claims), ok},
		{"request.auth.claims non-string never matches", when("request.auth.claims[num]", "values", `["3"]`), http(claims), noAllow},
		{"request.auth.claims missing token", when("request.auth.claims[groups]", "values", `["admin"]`), http(), noAllow},
		{"destination.ip", when("destination.ip", "values", "[10.0.1.0/24]"), http(), ok},
		{"destination.port", when("destination.port", "values", `["8080"]`), http(), ok},
		{"destination.port notValues", when("destination.port", "notValues", `["8080"]`), http(), noAllow},
		{"destination.ip outside the CIDR", when("destination.ip", "values", "[10.0.1.0/24]"), http(dstIP("10.0.2.1")), noAllow},
		{"destination.port other port", when("destination.port", "values", `["8080"]`), http(port(9090)), noAllow},
		{"connection.sni", when("connection.sni", "values", `["*.example.com"]`), http(sni("a.example.com")), ok},
		// model/generator.go connSNIGenerator: matcher.StringMatcher, not ignore_case.
		{"connection.sni case sensitive", when("connection.sni", "values", `["*.Example.com"]`), http(sni("a.example.com")), noAllow},
		{"values and notValues ANDed", ap("foo", "p", "rules:\n- when:\n  - key: request.headers[x]\n    values: [\"a*\"]\n    notValues: [ab]"),
			http(hdr("x", "ab")), noAllow},
		{"all when conditions ANDed", ap("foo", "p", "rules:\n- when:\n  - key: request.headers[x]\n    values: [a]\n  - key: destination.port\n    values: [\"1\"]"),
			http(hdr("x", "a")), noAllow},
	})
}

func TestPeerAuthentication(t *testing.T) {
	const t1, t2 = "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"
	strict := want{false, "DENY", "", -1}
	deniedPA := func(id string) want { w := strict; w.policy = id; return w }
	runCases(t, Mesh{}, []tc{
		{"default PERMISSIVE plaintext", "", http(), open},
		{"mesh STRICT plaintext denied", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), http(), deniedPA("istio-system/default")},
		{"mesh STRICT mTLS passes", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), http(from(pFoo)), open},
		{"namespace overrides mesh", pa("istio-system", "default", t1, "mtls: {mode: STRICT}") + pa("foo", "p", t1, "mtls: {mode: PERMISSIVE}"), http(), open},
		{"namespace UNSET inherits mesh", pa("istio-system", "default", t1, "mtls: {mode: STRICT}") + pa("foo", "p", t1, "mtls: {mode: UNSET}"),
			http(), deniedPA("istio-system/default")},
		{"workload overrides namespace", pa("foo", "ns", t1, "mtls: {mode: STRICT}") + pa("foo", "wl", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}"),
			http(), open},
		{"workload selector not matching", pa("foo", "ns", t1, "mtls: {mode: STRICT}") + pa("foo", "wl", t1, "selector: {matchLabels: {app: db}}\nmtls: {mode: PERMISSIVE}"),
			http(), deniedPA("foo/ns")},
		{"port level STRICT", pa("foo", "wl", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}\nportLevelMtls:\n  8080: {mode: STRICT}"),
			http(), deniedPA("foo/wl")},
		{"port level other port", pa("foo", "wl", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  9090: {mode: DISABLE}"),
			http(), deniedPA("foo/wl")},
		{"port level DISABLE overrides", pa("foo", "wl", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: DISABLE}"),
			http(), open},
		{"port level UNSET inherits workload", pa("foo", "wl", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: UNSET}"),
			http(), deniedPA("foo/wl")},
		{"port level UNSET inherits namespace", pa("foo", "ns", t1, "mtls: {mode: STRICT}") + pa("foo", "wl", t1, "selector: {matchLabels: {app: web}}\nportLevelMtls:\n  8080: {mode: UNSET}"),
			http(), deniedPA("foo/ns")},
		{"oldest namespace policy wins", pa("foo", "new", t2, "mtls: {mode: PERMISSIVE}") + pa("foo", "old", t1, "mtls: {mode: STRICT}"),
			http(), deniedPA("foo/old")},
		{"oldest workload policy wins", pa("foo", "new", t2, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}") + pa("foo", "old", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}"),
			http(), open},
		{"root namespace selector ignored", pa("istio-system", "sel", t1, "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}"), http(), open},
		{"STRICT checked before ALLOW", pa("foo", "ns", t1, "mtls: {mode: STRICT}") + ap("foo", "all", "rules:\n- {}"), http(), deniedPA("foo/ns")},
		{"DISABLE allows plaintext", pa("foo", "ns", t1, "mtls: {mode: DISABLE}"), http(), open},
		// PeerAuthentication configures a sidecar's inbound listeners only
		// (pilot/pkg/networking/core/listener_inbound.go authnBuilder.ForPort);
		// a gateway's listeners take their TLS from its Gateway servers
		// (gateway.go buildGatewayListeners), so its pods (the Gateway API
		// gateway-name label) accept what the Gateway says, STRICT or not.
		{"mesh STRICT: gateway pod takes plaintext", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), http(gatewayPod), open},
		{"namespace STRICT: gateway pod takes plaintext", pa("foo", "ns", t1, "mtls: {mode: STRICT}"), http(gatewayPod), open},
		{"workload STRICT selecting a gateway pod: not applied", pa("foo", "w", t1, "selector: {matchLabels: {"+GatewayNameLabel+": gw}}\nmtls: {mode: STRICT}"),
			http(gatewayPod), open},
		{"mesh STRICT: gateway pod, mTLS client", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), http(gatewayPod, from(pFoo)), open},
		{"namespace DISABLE: gateway pod keeps the peer identity", pa("foo", "ns", t1, "mtls: {mode: DISABLE}") +
			ap("foo", "p", "rules:\n- from:\n  - source: {namespaces: [foo]}"), http(gatewayPod, from(pFoo)), allowedBy("foo/p", 0)},
		{"mesh DISABLE: gateway pod keeps the peer identity", pa("istio-system", "default", t1, "mtls: {mode: DISABLE}") +
			ap("foo", "p", "rules:\n- from:\n  - source: {namespaces: [foo]}"), http(gatewayPod, from(pFoo)), allowedBy("foo/p", 0)},
		{"mesh STRICT: sidecar beside the gateway still denied", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), http(), deniedPA("istio-system/default")},
	})
}

// gatewayPod makes the destination a pod of the Gateway API gateway gw in foo.
func gatewayPod(r *Request) { r.Namespace, r.Labels = "foo", map[string]string{GatewayNameLabel: "gw"} }

func TestUserRego(t *testing.T) {
	set := &Set{UserModules: map[string]string{"u.rego": `package meshguard.user
deny contains "no curl" if startswith(input.headers["user-agent"], "curl")
response_headers["x-user"] := "seen"
`}}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CheckRequest(context.Background(), http(hdr("user-agent", "curl/8")))
	if err != nil || v.Allowed || v.Reason != "no curl" || v.Policy != "user" {
		t.Fatalf("curl: %+v %v", v, err)
	}
	v, err = s.CheckRequest(context.Background(), http(hdr("user-agent", "firefox")))
	if err != nil || !v.Allowed || v.ResponseHeaders["x-user"] != "seen" {
		t.Fatalf("firefox: %+v %v", v, err)
	}
	for name, src := range map[string]string{
		"wrong package": "package other\nx := 1",
		"syntax":        "package meshguard.user\ndeny contains",
		// Evaluated on every request: nothing may reach another host.
		"http.send":          "package meshguard.user\ndeny contains \"x\" if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code != 200",
		"net.lookup_ip_addr": "package meshguard.user\ndeny contains \"x\" if count(net.lookup_ip_addr(\"localhost\")) > 0",
		"json.match_schema":  "package meshguard.user\ndeny contains \"x\" if not json.match_schema({}, {\"$ref\": \"http://127.0.0.1:1/s.json\"})[0]",
	} {
		_, err := Compile(context.Background(), Mesh{}, &Set{UserModules: map[string]string{"bad.rego": src}}, 1)
		if err == nil || !strings.Contains(err.Error(), "bad.rego") {
			t.Errorf("%s: err = %v, want an error naming bad.rego", name, err)
		}
	}
}

func TestDryRunReported(t *testing.T) {
	set := &Set{}
	_, err := set.AddYAML("x", []byte(apAnn("foo", "dry", `istio.io/dry-run: "true"`, "action: DENY\nrules:\n- {}")+
		ap("foo", "aud", "action: AUDIT\nrules:\n- {}")+ap("foo", "ext", "action: CUSTOM\nprovider: {name: x}\nrules:\n- {}")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CheckRequest(context.Background(), http())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Allowed || len(v.DryRunDeny) != 1 || v.DryRunDeny[0].Policy != "foo/dry" || len(v.Audit) != 1 || len(v.Custom) != 1 {
		t.Fatalf("verdict %+v", v)
	}
}

// TestPeerAuthenticationSkipsRouters: Istio knows a gateway by its proxy
// type, the `proxy router` its istio-proxy container runs (the gateway and
// kube-gateway injection templates), whatever its labels: a classic
// ingress gateway's pods are as exempt from PeerAuthentication as a Gateway
// API gateway's (TestPeerAuthentication). The destination is found by its
// Pod IP, as Envoy's CheckRequest gives it.
func TestPeerAuthenticationSkipsRouters(t *testing.T) {
	const t1 = "2020-01-01T00:00:00Z"
	proxy := func(args ...string) *corev1.Pod {
		p := webPod()
		p.Labels = map[string]string{"istio": "ingressgateway"}
		p.Spec.Containers = []corev1.Container{{Name: "istio-proxy", Args: args}}
		return p
	}
	router := proxy("proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local")
	sidecar := proxy("proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local")
	other := proxy("proxy", "router")
	other.Spec.Containers[0].Name = "app" // not Istio's proxy
	// A sidecar's Pod carrying the Gateway API label (its owner wrote it):
	// Istio applies PeerAuthentication by proxy type alone, so it is a
	// sidecar; the label counts only where no istio-proxy is known.
	labelledSidecar := proxy("proxy", "sidecar")
	labelledSidecar.Labels[GatewayNameLabel] = "gw"
	labelledNative := proxy("proxy", "sidecar")
	labelledNative.Labels[GatewayNameLabel] = "gw"
	labelledNative.Spec.InitContainers, labelledNative.Spec.Containers = labelledNative.Spec.Containers, []corev1.Container{{Name: "app"}}
	allowFoo := ap("foo", "p", "rules:\n- from:\n  - source: {namespaces: [foo]}")
	cases := []struct {
		name, policies string
		pod            *corev1.Pod
		req            *Request
		want           want
	}{
		{"mesh STRICT: router takes plaintext", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), router, http(), open},
		{"mesh STRICT: sidecar refuses plaintext", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), sidecar, http(),
			want{false, "DENY", "istio-system/default", -1}},
		{"mesh STRICT: router args in another container", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), other, http(),
			want{false, "DENY", "istio-system/default", -1}},
		{"namespace DISABLE: router keeps the peer identity", pa("foo", "off", t1, "mtls: {mode: DISABLE}") + allowFoo, router, http(from(pFoo)),
			allowedBy("foo/p", 0)},
		{"namespace DISABLE: sidecar hides it", pa("foo", "off", t1, "mtls: {mode: DISABLE}") + allowFoo, sidecar, http(from(pFoo)), noAllow},
		{"mesh STRICT: sidecar labelled as a gateway refuses plaintext", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), labelledSidecar, http(),
			want{false, "DENY", "istio-system/default", -1}},
		{"mesh STRICT: native sidecar labelled as a gateway refuses plaintext", pa("istio-system", "default", t1, "mtls: {mode: STRICT}"), labelledNative, http(),
			want{false, "DENY", "istio-system/default", -1}},
		{"namespace DISABLE: sidecar labelled as a gateway hides it", pa("foo", "off", t1, "mtls: {mode: DISABLE}") + allowFoo, labelledSidecar, http(from(pFoo)), noAllow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{}, c.policies, c.pod)
			v, err := s.Check(context.Background(), envoyRequest(c.req))
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
		})
	}
}

// TestNumTrustedProxiesGatewaysOnly: Istio's numTrustedProxies is a gateway
// setting (ProxyConfig gatewayTopology): only a gateway's connection manager
// gets xff_num_trusted_hops (pilot/pkg/networking/core/gateway.go
// buildGatewayConnectionManager); a sidecar's inbound one trusts no hop
// (listener_inbound.go buildSidecarInboundHTTPOpts), so its remote.ip is the
// last X-Forwarded-For entry whatever the setting. A destination meshguard
// does not know may be either: where the two readings differ, the remote
// address is unknown and policies matching on it deny (fail closed).
func TestNumTrustedProxiesGatewaysOnly(t *testing.T) {
	gw := webPod()
	gw.Spec.Containers = []corev1.Container{{Name: "istio-proxy", Args: []string{"proxy", "router"}}}
	gwByLabel := webPod()
	gwByLabel.Labels = map[string]string{GatewayNameLabel: "gw"}
	const xff = "203.0.113.9, 10.0.0.77" // client, then the load balancer the gateway trusts
	deny := ap("foo", "d", "action: DENY\nrules: [{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}]")
	allow := ap("foo", "a", "rules: [{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}]")
	unknownDst := func(r *Request) { r.DstIP = "10.9.9.9" }
	for _, c := range []struct {
		name, policies string
		pod            *corev1.Pod
		mod            func(*Request)
		want           want
	}{
		{"gateway: the client behind one trusted hop", deny, gw, nil, deniedBy("foo/d", 0)},
		{"Gateway API gateway known by its labels", deny, gwByLabel, nil, deniedBy("foo/d", 0)},
		{"sidecar: the last entry", deny, webPod(), nil, open},
		{"sidecar: an ALLOW on the client's range does not match", allow, webPod(), nil, noAllow},
		{"unknown destination: remote address unknown", deny, webPod(), unknownDst, want{false, "DENY", "", -1}},
		{"unknown destination, ALLOW: remote address unknown", allow, webPod(), unknownDst, want{false, "DENY", "", -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{NumTrustedProxies: 1}, c.policies, c.pod)
			req := envoyRequest(http(hdr("x-forwarded-for", xff)))
			if c.mod != nil {
				r := http(hdr("x-forwarded-for", xff))
				c.mod(r)
				req = envoyRequest(r)
				req.Attributes.Destination.Principal = "spiffe://cluster.local/ns/foo/sa/web"
			}
			v, err := s.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
		})
	}
}

// routerPod is webPod as a gateway (its istio-proxy runs `proxy router`)
// with annotation as its proxy.istio.io/config ("": none).
func routerPod(annotation string) *corev1.Pod {
	p := webPod()
	p.Spec.Containers = []corev1.Container{{Name: "istio-proxy", Args: []string{"proxy", "router"}}}
	if annotation != "" {
		p.Annotations = map[string]string{ProxyConfigAnnotation: annotation}
	}
	return p
}

// TestGatewayTrustedHopsPerPod: a gateway's numTrustedProxies is its own
// ProxyConfig's: pilot-agent lays the Pod's proxy.istio.io/config over the
// mesh's defaultConfig, replacing each field it sets (pilot/cmd/pilot-agent/
// config getMeshConfig, pkg/config/mesh ApplyProxyConfig), and istiod sets
// xff_num_trusted_hops from the result (gateway.go buildGatewayConnectionManager,
// ProxyConfigOrDefault). A sidecar trusts no hop whatever either says. Where
// the hops are unknown (destination not in the Pod index, annotation that
// cannot be read) remote.ip is unknown unless every hop count reads the same
// address, and the deny reason says why.
func TestGatewayTrustedHopsPerPod(t *testing.T) {
	gw := routerPod
	sidecar := webPod()
	sidecar.Annotations = map[string]string{ProxyConfigAnnotation: "gatewayTopology: {numTrustedProxies: 1}"}
	// A sidecar's Pod labelled as a Gateway API gateway's is still a
	// sidecar to Envoy: istiod builds gateway listeners by proxy type
	// (listener.go BuildListeners, model.Router), not by label.
	labelled := webPod()
	labelled.Labels = map[string]string{"app": "web", GatewayNameLabel: "gw"}
	labelled.Annotations = sidecar.Annotations
	labelled.Spec.Containers = []corev1.Container{{Name: "istio-proxy", Args: []string{"proxy", "sidecar"}}}
	labelledNative := labelled.DeepCopy()
	labelledNative.Spec.Containers = nil
	labelledNative.Spec.InitContainers = labelled.Spec.Containers
	labelledMesh := labelled.DeepCopy()
	labelledMesh.Annotations = nil
	const spoofed = "198.51.100.1, 203.0.113.9" // the client's own entry, then the one the last hop appended
	const xff = "203.0.113.9, 10.0.0.77"        // client, then the load balancer
	deny := ap("foo", "d", "action: DENY\nrules: [{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}]")
	unknownDst := func(r *Request) { r.DstIP = "10.9.9.9" }
	unknown := want{false, "DENY", "", -1}
	for _, c := range []struct {
		name     string
		meshHops int
		pod      *corev1.Pod
		xff      string
		mod      func(*Request)
		want     want
		reason   string // in the deny reason
		snapWarn string // in the snapshot's warnings
	}{
		{"mesh default only", 1, gw(""), xff, nil, deniedBy("foo/d", 0), "", ""},
		{"mesh default 0: the load balancer", 0, gw(""), xff, nil, open, "", ""},
		{"annotation overrides the mesh", 0, gw("gatewayTopology: {numTrustedProxies: 1}"), xff, nil, deniedBy("foo/d", 0), "", ""},
		{"annotation 0 overrides the mesh's 1", 1, gw("gatewayTopology: {numTrustedProxies: 0}"), xff, nil, open, "", ""},
		{"annotation gatewayTopology replaces the mesh's whole", 1, gw("gatewayTopology: {forwardClientCertDetails: SANITIZE}"), xff, nil, open, "", ""},
		{"annotation without gatewayTopology keeps the mesh's", 1, gw("concurrency: 2"), xff, nil, deniedBy("foo/d", 0), "", ""},
		{"sidecar ignores the mesh and its annotation", 1, sidecar, xff, nil, open, "", ""},
		{"labelled sidecar reads the last entry, not its annotation's hops", 0, labelled, spoofed, nil, deniedBy("foo/d", 0), "", ""},
		{"labelled sidecar reads the last entry, not the mesh's hops", 1, labelledMesh, spoofed, nil, deniedBy("foo/d", 0), "", ""},
		{"labelled native sidecar reads the last entry", 0, labelledNative, spoofed, nil, deniedBy("foo/d", 0), "", ""},
		{"unknown destination", 0, gw(""), xff, unknownDst, unknown, "the request has no remote address (the destination is not in the Pod index", ""},
		{"unknown destination, X-Forwarded-For names only the peer", 1, gw(""), "10.0.0.5", unknownDst, open, "", ""},
		{"bad annotation", 1, gw("gatewayTopology: [1"), xff, nil, unknown,
			"the request has no remote address (Pod foo/web-1: annotation proxy.istio.io/config: ", "Pod foo/web-1: annotation proxy.istio.io/config: "},
		{"bad annotation, no X-Forwarded-For: the peer", 1, gw("gatewayTopology: [1"), "", nil, open, "", ""},
		// No trusted hop at a gateway (use_remote_address) is the
		// connection's address, whatever Envoy appended: for a loopback
		// peer its own address (mutateRequestHeaders appendXff).
		{"gateway trusting none: the peer, not the last entry", 0, gw(""), "10.0.0.77, 10.0.1.1",
			func(r *Request) { r.SrcIP = "203.0.113.9" }, deniedBy("foo/d", 0), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{NumTrustedProxies: c.meshHops}, deny, c.pod)
			r := http()
			if c.xff != "" {
				r.Headers["x-forwarded-for"] = c.xff
			}
			if c.mod != nil {
				c.mod(r)
			}
			req := envoyRequest(r)
			if r.DstIP != "10.0.1.1" {
				req.Attributes.Destination.Principal = "spiffe://cluster.local/ns/foo/sa/web"
			}
			v, err := s.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if !strings.Contains(v.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, c.reason)
			}
			if c.snapWarn != "" && !strings.Contains(strings.Join(s.Warnings, "\n"), c.snapWarn) {
				t.Errorf("warnings %q, want one containing %q", s.Warnings, c.snapWarn)
			}
		})
	}
}

// TestMissingAttributesFailClosed: Envoy always knows the connection's
// addresses and port, and its RBAC filter the verified JWT; a request
// without one of them (HTTP ext_authz without the operator's address
// headers, and never with dynamic metadata: authz/http.go) cannot be matched
// as Envoy matches it, so where the policies in force read it the request is
// denied instead of an ipBlocks/ports/requestPrincipals DENY being skipped or
// a notIpBlocks ALLOW matching. Only the attributes a view's enforced
// policies read count.
func TestMissingAttributesFailClosed(t *testing.T) {
	unknown := want{false, "DENY", "", -1}
	denyIss := ap("foo", "d", "action: DENY\nrules: [{from: [{source: {requestPrincipals: [\"https://evil.example/*\"]}}]}]")
	noMetadata := func(r *Request) { r.NoMetadata = true }
	denyIP := ap("foo", "d", "action: DENY\nrules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]")
	runCases(t, Mesh{}, []tc{
		{"ipBlocks DENY, no source address", denyIP, http(srcIP("")), unknown},
		{"ipBlocks DENY, source address known", denyIP, http(), open},
		{"notIpBlocks ALLOW, no source address", ap("foo", "a", "rules: [{from: [{source: {notIpBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP("")), unknown},
		{"source.ip condition, no source address", ap("foo", "a", "rules: [{when: [{key: source.ip, values: [10.0.0.5]}]}]"),
			http(srcIP("")), unknown},
		{"remoteIpBlocks DENY, remote address from X-Forwarded-For", ap("foo", "d", "action: DENY\nrules: [{from: [{source: {remoteIpBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP(""), remote("192.0.2.1")), open},
		{"remoteIpBlocks DENY, no remote address", ap("foo", "d", "action: DENY\nrules: [{from: [{source: {remoteIpBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP("")), unknown},
		{"ports DENY, no destination port", ap("foo", "d", "action: DENY\nrules: [{to: [{operation: {ports: [\"9090\"]}}]}]"),
			http(port(0)), unknown},
		{"destination.ip DENY, no destination address", ap("foo", "d", "action: DENY\nrules: [{when: [{key: destination.ip, values: [10.0.1.1]}]}]"),
			http(dstIP("")), unknown},
		{"port-level PeerAuthentication, no destination port", pa("foo", "p", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}\nportLevelMtls: {\"9090\": {mode: STRICT}}"),
			http(port(0)), unknown},
		{"policies read no address: evaluated", ap("foo", "a", "rules: [{to: [{operation: {methods: [GET]}}]}]"),
			http(srcIP(""), dstIP(""), port(0)), allowedBy("foo/a", 0)},
		{"another namespace's ipBlocks do not count", ap("bar", "d", "action: DENY\nrules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP("")), open},
		{"a dry-run policy does not count", apAnn("foo", "d", `istio.io/dry-run: "true"`, "action: DENY\nrules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP("")), open},
		{"a root-namespace policy counts everywhere", ap("istio-system", "d", "action: DENY\nrules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP("")), unknown},
		{"requestPrincipals DENY, no metadata", denyIss, http(noMetadata), unknown},
		{"requestPrincipals DENY, metadata possible but no token: no token", denyIss, http(), open},
		{"request.auth.claims ALLOW, no metadata", ap("foo", "a", "rules: [{when: [{key: \"request.auth.claims[groups]\", notValues: [admin]}]}]"),
			http(noMetadata), unknown},
		{"no metadata, policies read no JWT: evaluated", ap("foo", "a", "rules: [{to: [{operation: {methods: [GET]}}]}]"),
			http(noMetadata), allowedBy("foo/a", 0)},
	})
}

// TestMissingAttributesAfterIncrementalCompile: a snapshot built from the one
// before reuses the shards whose inputs did not change without translating
// their rules again; which attributes those views read must come along.
func TestMissingAttributesAfterIncrementalCompile(t *testing.T) {
	ctx := context.Background()
	decode := func(policies string) *Set {
		set := &Set{}
		if _, err := set.AddYAML(t.Name(), []byte(policies)); err != nil {
			t.Fatal(err)
		}
		return set
	}
	// The same object in both sets, as the loaders hand out for an
	// unchanged policy: its translation is reused, its rules are not kept.
	deny := decode(ap("foo", "d", "action: DENY\nrules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]")).AuthorizationPolicies[0]
	setWith := func(method string) *Set {
		set := decode(ap("bar", "a", "rules: [{to: [{operation: {methods: ["+method+"]}}]}]"))
		set.AuthorizationPolicies = append(set.AuthorizationPolicies, deny)
		return set
	}
	prev, err := CompileNext(ctx, nil, Mesh{}, setWith("GET"), 1)
	if err != nil {
		t.Fatal(err)
	}
	next, err := CompileNext(ctx, prev, Mesh{}, setWith("PUT"), 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Snapshot{"from scratch": prev, "incremental": next} {
		v, err := s.CheckRequest(ctx, http(srcIP("")))
		if err != nil || v.Allowed || v.Rule != -1 || !strings.Contains(v.Reason, "no source address") {
			t.Errorf("%s: %+v %v, want the unknown source address denied", name, v, err)
		}
	}
}
