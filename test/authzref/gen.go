package authzref

import (
	"fmt"
	"math/rand"
	"strings"
	"time"

	secapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Root is the mesh root namespace the generator uses.
const Root = "istio-system"

// Workloads are the fixed destinations; policies select them by namespace
// and labels, requests reach them by IP.
var Workloads = []Workload{
	{Namespace: "foo", Labels: map[string]string{"app": "web", "version": "v1"}, IP: "10.0.1.1"},
	{Namespace: "foo", Labels: map[string]string{"app": "db"}, IP: "10.0.1.2"},
	{Namespace: "bar", Labels: map[string]string{"app": "web"}, IP: "10.0.2.1"},
	// in the root namespace: a PeerAuthentication there with a selector
	// applies to no workload, this one included (ComposePeerAuthentication)
	{Namespace: Root, Labels: map[string]string{"app": "web"}, IP: "10.0.3.1"},
	// gateways, whose proxies run as routers: PeerAuthentication does not
	// configure them; a Gateway API gateway's pods (the gateway-name label)
	// are what a targetRefs Gateway reference attaches to
	{Namespace: "foo", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "web"}, IP: "10.0.1.3", Proxy: RouterProxy},
	{Namespace: "foo", Labels: map[string]string{"istio": "ingressgateway", "app": "web"}, IP: "10.0.1.4", Proxy: RouterProxy},
	// gateways trusting X-Forwarded-For hops of their own
	// (proxy.istio.io/config over the mesh's defaultConfig): two; none, as
	// a gatewayTopology without numTrustedProxies replaces the mesh's; the
	// mesh's, as the annotation does not name gatewayTopology
	{Namespace: "foo", Labels: map[string]string{"istio": "ingressgateway", "app": "web"}, IP: "10.0.1.5", Proxy: RouterProxy,
		ProxyConfig: "gatewayTopology: {numTrustedProxies: 2}"},
	{Namespace: "foo", Labels: map[string]string{"istio": "ingressgateway", "app": "web"}, IP: "10.0.1.6", Proxy: RouterProxy,
		ProxyConfig: "gatewayTopology: {forwardClientCertDetails: SANITIZE}"},
	{Namespace: "foo", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "web"}, IP: "10.0.1.7", Proxy: RouterProxy,
		ProxyConfig: "concurrency: 2"},
	// a sidecar, which trusts no hop whatever its ProxyConfig says
	{Namespace: "bar", Labels: map[string]string{"app": "web"}, IP: "10.0.2.2", ProxyConfig: "gatewayTopology: {numTrustedProxies: 1}"},
	// sidecars known by their istio-proxy, classic and native, the first
	// two carrying the Gateway API label: the proxy type, not the label,
	// makes them sidecars (PeerAuthentication applies, no hop trusted,
	// whatever gatewayTopology the mesh or their annotation sets), while a
	// targetRefs Gateway policy attaches to them by the label
	{Namespace: "foo", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "web"}, IP: "10.0.1.8",
		Proxy: SidecarProxy, ProxyConfig: "gatewayTopology: {numTrustedProxies: 2}"},
	{Namespace: "foo", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "db"}, IP: "10.0.1.9",
		Proxy: NativeSidecarProxy},
	{Namespace: "bar", Labels: map[string]string{"app": "web"}, IP: "10.0.2.3", Proxy: SidecarProxy},
	{Namespace: "foo", Labels: map[string]string{"app": "web", "version": "v1"}, IP: "10.0.1.10", Proxy: NativeSidecarProxy},
	// a router without the Gateway API label, a gateway all the same
	{Namespace: "bar", Labels: map[string]string{"app": "web"}, IP: "10.0.2.4", Proxy: RouterProxy,
		ProxyConfig: "gatewayTopology: {numTrustedProxies: 1}"},
	// gateways behind a PROXY protocol load balancer (gatewayTopology
	// proxyProtocol, which replaces the mesh's gatewayTopology whole),
	// one trusting an X-Forwarded-For hop too
	{Namespace: "foo", Labels: map[string]string{"istio": "ingressgateway", "app": "web"}, IP: "10.0.1.12", Proxy: RouterProxy,
		ProxyConfig: "gatewayTopology: {proxyProtocol: {}}"},
	{Namespace: "bar", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "web"}, IP: "10.0.2.6", Proxy: RouterProxy,
		ProxyConfig: "gatewayTopology: {numTrustedProxies: 1, proxyProtocol: {}}"},
	// Pods known without their istio-proxy: a Gateway API gateway's by the
	// label (kube-gateway runs `proxy router`), a sidecar's without it
	{Namespace: "foo", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw", "app": "web"}, IP: "10.0.1.11"},
	{Namespace: "bar", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "gw"}, IP: "10.0.2.5",
		ProxyConfig: "gatewayTopology: {numTrustedProxies: 2}"},
}

// Set is one generated policy state.
type Set struct {
	Mesh Mesh
	APs  []*secv1.AuthorizationPolicy
	PAs  []*secv1.PeerAuthentication
}

// Value pools. Policy values and request values are drawn from overlapping
// pools so that matches (and near misses) happen often.
var (
	polPrincipals = []string{"cluster.local/ns/foo/sa/sleep", "cluster.local/ns/bar/sa/api", "other.td/ns/foo/sa/sleep",
		"cluster.local/ns/foo/*", "*/ns/foo/sa/sleep", "*sleep", "*", "cluster.local/*", "old.td/ns/foo/sa/sleep",
		// "*x" is the regex spiffe://.*x (StringMatcherWithPrefix) with x
		// quoted since istio/istio#59992: '.' and '|' must stay literal
		"*/sa/a.b", "*sleep|api",
		// trust domains that are patterns, matched against the bundle from
		// either side (trustdomain ReplaceTrustDomainAliases, stringMatch)
		"*local/ns/foo/sa/sleep", "other*/ns/foo/sa/sleep", "*.td/ns/foo/sa/sleep", "cluster*/ns/bar/sa/api"}
	reqPrincipals = []string{"", "", "spiffe://cluster.local/ns/foo/sa/sleep", "spiffe://cluster.local/ns/bar/sa/api",
		"spiffe://other.td/ns/foo/sa/sleep", "spiffe://old.td/ns/foo/sa/sleep", "spiffe://cluster.local/ns/bar/sa/x/ns/foo/sa/sleep",
		"spiffe://cluster.local/ns/foo-x/sa/sleep", "spiffe://third.td/ns/foo/sa/sleep", "spiffe://cluster.local/ns/foo/sa/sleep/x",
		"spiffe://cluster.local/ns/foo/sa/sleep-x", "spiffe://cluster.local/ns/foo/sa/aXb", "spiffe://cluster.local/ns/foo/sa/x",
		"spiffe://cluster.local/ns/foo",
		// a SPIFFE ID without a path, one of the trust domain "" (an empty
		// trustDomainAliases entry puts it in the bundle), no SPIFFE URI
		"spiffe://cluster.local", "spiffe:///ns/foo/sa/sleep", "cluster.local/ns/foo/sa/sleep"}
	// serviceAccounts and namespaces are regexes (generator.go
	// serviceAccountRegex, srcNamespaceGenerator) whose values are quoted
	// since istio/istio#59700 and #59992: '.' and '|' must stay literal.
	polServiceAccounts = []string{"sleep", "foo/sleep", "bar/api", "bar/x", "foo/sleep-x", "foo/x|b", "sleep|api", "bar/a.i"}
	polNamespaces      = []string{"foo", "bar", "f*", "*o", "*", "foo-x", "ba*", "foo|bar", "f.o"}
	polTrustDomains    = []string{"cluster.local", "other.td", "old.td", "*.td", "cluster*", "*", "third.td"}
	polCIDRs           = []string{"10.0.0.0/24", "10.0.0.5", "10.1.0.0/16", "192.168.1.1/32", "2001:db8::/32"}
	// X-Forwarded-For values as the client sent them: at a sidecar the last
	// entry is the remote address when it parses (whitespace around it
	// allowed), else the peer's; a gateway trusting n hops reads the n-th
	// from the right
	reqXFF = []string{"10.1.2.3", "192.168.1.1, 10.0.0.77", " 10.0.0.5 ", "10.1.2.3,", "bogus", "10.1.2.3, bogus",
		"2001:db8::1", "172.16.0.1,10.0.0.5", "10.1.2.3, 192.168.1.1, 10.0.0.77", "192.168.1.1, bogus, 10.0.0.5", "10.1.2.3, 10.0.0.77,"}
	polSNIs    = []string{"web.foo.svc", "*.foo.svc", "outbound_.8080_._.web.foo.svc.cluster.local", "outbound_*", "*"}
	reqSNIs    = []string{"", "web.foo.svc", "outbound_.8080_._.web.foo.svc.cluster.local", "db.bar.svc"}
	reqIPs     = []string{"10.0.0.5", "10.0.0.77", "10.1.2.3", "192.168.1.1", "172.16.0.1"}
	polHosts   = []string{"web.foo.svc", "*.foo.svc", "web.*", "*", "Web.Foo.Svc", "web.foo.svc:*", "db.bar.svc"}
	reqHosts   = []string{"web.foo.svc", "WEB.foo.svc", "web.foo.svc:8080", "db.bar.svc", "Db.Bar.Svc"}
	polPorts   = []string{"8080", "9090"}
	reqPorts   = []uint32{8080, 9090, 15000}
	polMethods = []string{"GET", "POST", "G*", "*"}
	reqMethods = []string{"GET", "POST", "DELETE"}
	polPaths   = []string{"/api/users", "/api/*", "*/secret", "*", "/admin/{**}/secret", "/api/{*}/users", "/api/{**}",
		"/admin", "/api/{*}"}
	reqPaths = []string{"/api/users", "/api/v1/users", "/api/v*1/users", "/admin/a/b/secret", "/admin/secret", "/admin//secret",
		"/api/x/../users", "/public/%2e%2e/admin", "/api/%75sers", "/admin?x=1", "/api\\users", "/", "/api/", "/a%00b",
		"/api/./v1/users", "/api/v=1/users"}
	// "https://issuer.example.com/" and "*/" need a sub claim that is the
	// empty string: a token without sub does not match them.
	polReqPrincipals = []string{"https://issuer.example.com/alice", "https://issuer.example.com/*", "*", "*/alice", "*alice",
		"https://issuer*", "*example.com/bob", "https://issuer.example.com/", "*/"}
	reqJWTs = []*JWT{nil, nil, nil,
		{Claims: map[string]any{"iss": "https://issuer.example.com", "sub": "alice", "aud": "shop", "azp": "web-ui",
			"groups": []string{"admin", "dev"}, "org": map[string]any{"team": "blue"}}},
		{Claims: map[string]any{"iss": "https://issuer.example.com", "sub": "bob", "aud": []string{"shop", "ops"}, "groups": "dev"}},
		{Claims: map[string]any{"iss": "https://other.example.com", "sub": "alice", "aud": []string{"other"}, "org": map[string]any{"team": "red"}}},
		// a token lacking sub, one whose sub is "", one whose sub is no
		// string, one lacking iss (RBAC reads the payload jwt_authn wrote;
		// a provider with an issuer would have refused that last one before)
		{Claims: map[string]any{"iss": "https://issuer.example.com", "aud": "shop"}},
		{Claims: map[string]any{"iss": "https://issuer.example.com", "sub": ""}},
		{Claims: map[string]any{"iss": "https://issuer.example.com", "sub": float64(42)}},
		{Claims: map[string]any{"sub": "alice", "groups": []string{"dev"}}}}
	polClaimKeys = []string{"request.auth.audiences", "request.auth.presenter", "request.auth.claims[groups]", "request.auth.claims[org][team]"}
	polClaimVals = []string{"shop", "ops", "admin", "dev", "blue", "web-*", "*ue", "*"}
	headerNames  = []string{"x-token", "X-Evil", "x-env"}
	polHeaderVal = []string{"secret", "sec*", "*ret", "*", "prod"}
	reqHeaderVal = []string{"secret", "prod", "", "secretive", "prod,secret", "secret, prod", "xsecret,secretive"}
	dryRunValues = []string{"true", "1", "t", "T", "TRUE", "True", "false", "0"}
	labelSels    = []map[string]string{{"app": "web"}, {"app": "db"}, {"version": "v1"}, {"app": "nope"}}
	modes        = []secapi.PeerAuthentication_MutualTLS_Mode{secapi.PeerAuthentication_MutualTLS_UNSET,
		secapi.PeerAuthentication_MutualTLS_DISABLE, secapi.PeerAuthentication_MutualTLS_PERMISSIVE, secapi.PeerAuthentication_MutualTLS_STRICT}
)

// Gen draws policy sets and requests from a seeded source.
type Gen struct{ r *rand.Rand }

// NewGen returns a generator with a fixed seed.
func NewGen(seed int64) *Gen { return &Gen{r: rand.New(rand.NewSource(seed))} }

func (g *Gen) pick(xs []string) string { return xs[g.r.Intn(len(xs))] }
func (g *Gen) chance(p float64) bool   { return g.r.Float64() < p }

func (g *Gen) some(xs []string) []string {
	n := 1 + g.r.Intn(2)
	out := make([]string, 0, n)
	for range n {
		out = append(out, g.pick(xs))
	}
	return out
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// PolicySet draws a policy set.
func (g *Gen) PolicySet() Set {
	s := Set{Mesh: Mesh{RootNamespace: Root, TrustDomain: "cluster.local", GatewayNumTrustedProxies: uint32(g.r.Intn(3)),
		GatewayProxyProtocol: g.chance(0.2)}}
	if g.chance(0.4) {
		s.Mesh.TrustDomainAliases = []string{"other.td"}
		if g.chance(0.3) {
			s.Mesh.TrustDomainAliases = append(s.Mesh.TrustDomainAliases, "old.td")
		}
		if g.chance(0.2) {
			// trustdomain.NewBundle keeps an empty alias (mesh config
			// validation refuses it; the policy package still gets it)
			s.Mesh.TrustDomainAliases = append(s.Mesh.TrustDomainAliases, "")
		}
	}
	nsList := []string{Root, "foo", "foo", "bar"}
	for i := range g.r.Intn(4) {
		ns := g.pick(nsList)
		pa := &secv1.PeerAuthentication{ObjectMeta: g.meta(ns, fmt.Sprintf("pa-%d", i))}
		if g.chance(0.8) {
			pa.Spec.Mtls = &secapi.PeerAuthentication_MutualTLS{Mode: modes[g.r.Intn(len(modes))]}
		}
		if g.chance(0.4) { // in the root namespace a selector PA is ignored (ComposePeerAuthentication)
			pa.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: labelSels[g.r.Intn(len(labelSels))]}
			if g.chance(0.5) {
				pa.Spec.PortLevelMtls = map[uint32]*secapi.PeerAuthentication_MutualTLS{
					reqPorts[g.r.Intn(2)]: {Mode: modes[g.r.Intn(len(modes))]}}
			}
		}
		s.PAs = append(s.PAs, pa)
	}
	for i := range 1 + g.r.Intn(4) {
		ns := g.pick(nsList)
		ap := &secv1.AuthorizationPolicy{ObjectMeta: g.meta(ns, fmt.Sprintf("ap-%d", i))}
		switch x := g.r.Intn(10); {
		case x < 4:
			ap.Spec.Action = secapi.AuthorizationPolicy_ALLOW
		case x < 8:
			ap.Spec.Action = secapi.AuthorizationPolicy_DENY
		case x < 9:
			ap.Spec.Action = secapi.AuthorizationPolicy_AUDIT
		default:
			ap.Spec.Action = secapi.AuthorizationPolicy_CUSTOM
			ap.Spec.ActionDetail = &secapi.AuthorizationPolicy_Provider{Provider: &secapi.AuthorizationPolicy_ExtensionProvider{Name: "ext"}}
		}
		if ap.Spec.Action != secapi.AuthorizationPolicy_AUDIT && ap.Spec.Action != secapi.AuthorizationPolicy_CUSTOM && g.chance(0.1) {
			// any strconv.ParseBool spelling (builder.go isDryRun); only
			// ALLOW and DENY may carry it, and only a parsable value
			ap.Annotations = map[string]string{"istio.io/dry-run": g.pick(dryRunValues)}
		}
		switch x := g.r.Float64(); {
		case x < 0.3:
			ap.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: labelSels[g.r.Intn(len(labelSels))]}
		case x < 0.35:
			// attaches to a Gateway only: never to a sidecar
			ap.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}
		case x < 0.38:
			// the legacy single reference, another Gateway's name, a
			// Service (waypoints only); never a namespace, which the CRD
			// refuses even when it is the policy's own
			gw := &typeapi.PolicyTargetReference{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}
			switch g.r.Intn(3) {
			case 0:
				ap.Spec.TargetRef = gw
			case 1:
				ap.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "other"}}
			case 2:
				ap.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Kind: "Service", Name: "web"}, gw}
			}
		}
		// DENY and CUSTOM without rules never reach a proxy: Istio's webhook
		// (and meshguard's, and the CRD) reject them; meshguard fails closed
		// on such a DENY stored anyway and reports such a CUSTOM as matching
		// every request (docs/compatibility.md), cases this test does not
		// draw.
		n := g.r.Intn(3)
		if n == 0 && (ap.Spec.Action == secapi.AuthorizationPolicy_DENY || ap.Spec.Action == secapi.AuthorizationPolicy_CUSTOM) {
			n = 1
		}
		for range n {
			r := g.rule()
			if ap.Spec.Action == secapi.AuthorizationPolicy_CUSTOM {
				r = customRule(r)
			}
			ap.Spec.Rules = append(ap.Spec.Rules, r)
		}
		s.APs = append(s.APs, ap)
	}
	return s
}

func (g *Gen) meta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(g.r.Intn(5)) * time.Hour))}
}

func (g *Gen) rule() *secapi.Rule {
	r := &secapi.Rule{}
	for range g.r.Intn(2) + boolInt(g.chance(0.3)) {
		r.From = append(r.From, &secapi.Rule_From{Source: g.source()})
	}
	for range g.r.Intn(2) + boolInt(g.chance(0.3)) {
		r.To = append(r.To, &secapi.Rule_To{Operation: g.operation()})
	}
	for range g.r.Intn(2) {
		r.When = append(r.When, g.condition())
	}
	return r
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (g *Gen) source() *secapi.Source {
	s := &secapi.Source{}
	for s.String() == "" || g.chance(0.3) {
		if g.chance(0.1) {
			// serviceAccounts cannot be combined with principals or namespaces (CRD rule)
			s.Principals, s.NotPrincipals, s.Namespaces, s.NotNamespaces = nil, nil, nil, nil
			if g.chance(0.5) {
				s.ServiceAccounts = g.some(polServiceAccounts)
			} else {
				s.NotServiceAccounts = g.some(polServiceAccounts)
			}
			continue
		}
		switch g.r.Intn(10) {
		case 0, 1, 2, 3:
			if len(s.ServiceAccounts)+len(s.NotServiceAccounts) > 0 {
				continue
			}
			switch g.r.Intn(4) {
			case 0:
				s.Principals = g.some(polPrincipals)
			case 1:
				s.NotPrincipals = g.some(polPrincipals)
			case 2:
				s.Namespaces = g.some(polNamespaces)
			case 3:
				s.NotNamespaces = g.some(polNamespaces)
			}
		case 4:
			s.IpBlocks = g.some(polCIDRs)
			if g.chance(0.3) {
				s.IpBlocks, s.TrustDomains = nil, g.some(polTrustDomains)
			}
		case 5:
			s.NotIpBlocks = g.some(polCIDRs)
			if g.chance(0.3) {
				s.NotIpBlocks, s.NotTrustDomains = nil, g.some(polTrustDomains)
			}
		case 6:
			s.RemoteIpBlocks = g.some(polCIDRs)
		case 7:
			s.NotRemoteIpBlocks = g.some(polCIDRs)
		case 8:
			s.RequestPrincipals = g.some(polReqPrincipals)
		case 9:
			s.NotRequestPrincipals = g.some(polReqPrincipals)
		}
	}
	return s
}

func (g *Gen) operation() *secapi.Operation {
	o := &secapi.Operation{}
	for o.String() == "" || g.chance(0.3) {
		switch g.r.Intn(8) {
		case 0:
			o.Hosts = g.some(polHosts)
		case 1:
			o.NotHosts = g.some(polHosts)
		case 2:
			o.Ports = g.some(polPorts)
		case 3:
			o.NotPorts = g.some(polPorts)
		case 4:
			o.Methods = g.some(polMethods)
		case 5:
			o.NotMethods = g.some(polMethods)
		case 6:
			o.Paths = g.some(polPaths)
		case 7:
			o.NotPaths = g.some(polPaths)
		}
	}
	return o
}

func (g *Gen) condition() *secapi.Condition {
	c := &secapi.Condition{}
	var vals []string
	switch g.r.Intn(11) {
	case 10:
		c.Key, vals = "connection.sni", polSNIs
	case 9:
		c.Key, vals = g.pick(polClaimKeys), polClaimVals
	case 8:
		c.Key, vals = "source.serviceAccount", polServiceAccounts
		if g.chance(0.3) {
			c.Key, vals = "source.trustDomain", polTrustDomains
		}
	case 0:
		c.Key, vals = "request.headers["+g.pick(headerNames)+"]", polHeaderVal
		if g.chance(0.3) {
			c.Key = "request.experimental.inline.headers[" + g.pick(headerNames) + "]"
		}
		if g.chance(0.2) { // the request line as pseudo-headers, "host" naming ":authority"
			c.Key, vals = "request.headers["+g.pick([]string{":authority", "host", "Host"})+"]", polHosts
			if g.chance(0.3) {
				c.Key, vals = "request.headers[:method]", polMethods
			}
		}
	case 1:
		c.Key, vals = "source.ip", polCIDRs
	case 2:
		c.Key, vals = "remote.ip", polCIDRs
	case 3:
		c.Key, vals = "destination.ip", []string{"10.0.1.0/24", "10.0.2.1"}
	case 4:
		c.Key, vals = "destination.port", polPorts
	case 5:
		c.Key, vals = "source.namespace", polNamespaces
	case 6:
		c.Key, vals = "source.principal", polPrincipals
	case 7:
		c.Key, vals = "request.auth.principal", polReqPrincipals
	}
	if g.chance(0.7) {
		c.Values = g.some(vals)
	}
	if len(c.Values) == 0 || g.chance(0.2) {
		c.NotValues = g.some(vals)
	}
	return c
}

// Request draws a request to one of the Workloads.
func (g *Gen) Request() Request {
	r := Request{
		Dest:      Workloads[g.r.Intn(len(Workloads))],
		DstPort:   reqPorts[g.r.Intn(len(reqPorts))],
		Principal: g.pick(reqPrincipals),
		SrcIP:     g.pick(reqIPs),
		TCP:       g.chance(0.1),
	}
	// what a PROXY protocol header would name; read only where the
	// gateway's listeners take one (behindProxyProtocol)
	r.ProxyClientIP = g.pick(reqIPs)
	// TLS: mTLS with a principal, else sometimes SIMPLE TLS; the SNI is
	// the client's, on TLS only. How much of it the CheckRequest carries
	// varies as Envoy's configuration does (Request.TLSSession, TLSUnknown).
	r.TLS = r.Principal != "" || g.chance(0.35)
	if r.TLS {
		r.SNI = g.pick(reqSNIs)
		r.TLSSession = g.chance(0.6)
	}
	r.TLSUnknown = g.chance(0.2)
	if r.TCP {
		return r
	}
	r.Method = g.pick(reqMethods)
	r.Path = g.pick(reqPaths)
	r.Host = g.pick(reqHosts)
	r.JWT = reqJWTs[g.r.Intn(len(reqJWTs))]
	r.Headers = map[string]string{}
	for range g.r.Intn(3) {
		r.Headers[g.pick(headerNames)] = g.pick(reqHeaderVal)
	}
	if g.chance(0.3) {
		r.Headers["X-Forwarded-For"] = g.pick(reqXFF)
	}
	return r
}

// customRule keeps what a CUSTOM rule may hold: Istio's validation rejects
// identity fields and conditions with the CUSTOM action (the ext_authz
// provider decides on identity), so such a policy never reaches a proxy.
func customRule(r *secapi.Rule) *secapi.Rule {
	out := &secapi.Rule{To: r.To}
	for _, f := range r.From {
		s := f.GetSource()
		ips := &secapi.Source{IpBlocks: s.GetIpBlocks(), NotIpBlocks: s.GetNotIpBlocks(),
			RemoteIpBlocks: s.GetRemoteIpBlocks(), NotRemoteIpBlocks: s.GetNotRemoteIpBlocks()}
		if ips.String() != "" {
			out.From = append(out.From, &secapi.Rule_From{Source: ips})
		}
	}
	for _, w := range r.When {
		if customCondition(w.GetKey()) {
			out.When = append(out.When, w)
		}
	}
	return out
}

func customCondition(key string) bool {
	switch {
	case key == "source.namespace", key == "source.serviceAccount", key == "source.trustDomain",
		key == "source.principal", strings.HasPrefix(key, "request.auth."):
		return false
	}
	return true
}
