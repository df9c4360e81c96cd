// Package authzref is an independent reference evaluator of Istio's
// authorization semantics (AuthorizationPolicy + PeerAuthentication as
// enforced by a sidecar), used only by tests to check meshguard's policy/
// engine differentially. It shares no code with meshguard's policy/ or
// validation/ packages and is written for clarity, not speed: each function
// is a direct transcription of one documented rule, citing the Istio or
// Envoy source it follows. docs/reliability.md ("Differential authorization
// test") describes how it is used.
package authzref

import (
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	secapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	"sigs.k8s.io/yaml"
)

// Mesh is the MeshConfig input of the semantics.
type Mesh struct {
	RootNamespace      string
	TrustDomain        string
	TrustDomainAliases []string
	// GatewayNumTrustedProxies is defaultConfig.gatewayTopology.numTrustedProxies:
	// the X-Forwarded-For hops a gateway trusts unless its Pod's
	// proxy.istio.io/config sets gatewayTopology (gatewayHops).
	GatewayNumTrustedProxies uint32
	// GatewayProxyProtocol: defaultConfig.gatewayTopology sets
	// proxyProtocol, so a gateway's listeners read a PROXY protocol header
	// unless its Pod's proxy.istio.io/config sets gatewayTopology
	// (gatewayProxyProtocol).
	GatewayProxyProtocol bool
}

// Workload is the destination of a request.
type Workload struct {
	Namespace string
	Labels    map[string]string
	IP        string
	// Proxy is the Pod's istio-proxy as its spec shows it; Router decides
	// from it whether the Pod is a gateway.
	Proxy ProxyKind
	// ProxyConfig is the Pod's proxy.istio.io/config annotation (YAML), ""
	// when it has none.
	ProxyConfig string
}

// ProxyKind is what a destination Pod's spec shows of its istio-proxy.
type ProxyKind int

const (
	// NoProxy: the Pod is known without an istio-proxy (a Deployment's
	// template, not yet injected).
	NoProxy ProxyKind = iota
	// SidecarProxy: an istio-proxy container running `proxy sidecar`, as
	// the sidecar injection template writes it.
	SidecarProxy
	// NativeSidecarProxy: the same as a native sidecar, an init container
	// with restartPolicy Always.
	NativeSidecarProxy
	// RouterProxy: an istio-proxy container running `proxy router`, as the
	// gateway and kube-gateway templates write it.
	RouterProxy
)

func (k ProxyKind) String() string {
	return [...]string{"no istio-proxy", "proxy sidecar", "native proxy sidecar", "proxy router"}[k]
}

// gatewayNameLabel is the Gateway API label istiod's gateway deployment
// controller puts on a Gateway's Pods (kube-gateway.yaml), the one
// policyattachment.go workloadGatewayName reads.
const gatewayNameLabel = "gateway.networking.k8s.io/gateway-name"

// Router: the Pod's proxy is a gateway to Istio. istiod knows a proxy's type
// from pilot-agent's `proxy <type>` argument (the first field of its node
// ID), never from the Pod's labels, and builds gateway listeners for
// model.Router alone (pilot/pkg/networking/core/listener.go BuildListeners:
// model.SidecarProxy gets sidecar listeners, model.Router gateway ones), so
// a Pod whose istio-proxy runs `proxy sidecar` is a sidecar whatever labels
// its owner gave it. A Pod known without its istio-proxy runs what it will be
// given: the kube-gateway template's `proxy router` where it is a Gateway API
// gateway's (istiod's gateway controller writes the gateway-name label and
// that proxy together, with sidecar.istio.io/inject "false"), the sidecar
// injection template's `proxy sidecar` otherwise (docs/compatibility.md
// "Enforcement point" states meshguard assumes the same).
func (w Workload) Router() bool {
	switch w.Proxy {
	case RouterProxy:
		return true
	case NoProxy:
		_, named := w.Labels[gatewayNameLabel]
		return named
	}
	return false
}

// Request is what the destination sidecar knows about one request.
type Request struct {
	Dest      Workload
	DstPort   uint32
	Principal string // peer certificate URI SAN ("spiffe://..."); "" = the client sent plaintext
	SrcIP     string // direct peer; remote.ip unless an X-Forwarded-For header names another (remoteIP)
	// ProxyClientIP is the client address the PROXY protocol header from
	// the load balancer at SrcIP names. Only a gateway whose listeners run
	// the proxy_protocol listener filter reads it (behindProxyProtocol),
	// and there it is Envoy's remote address (remoteAddress).
	ProxyClientIP string
	SNI           string // TLS server name the client sent; "" if none
	// TLS: the client speaks TLS to the proxy, which terminates it: always
	// with a Principal (mTLS), without one SIMPLE TLS (a gateway's HTTPS).
	TLS bool
	// What the CheckRequest carries of it (Istio's RBAC filter, in the
	// proxy, always knows the requested server name; the ext_authz server
	// only what Envoy sends it, see sniUnknown). TLSSession: Envoy sends
	// tls_session (include_tls_session), on a TLS connection only.
	// TLSUnknown: the CheckRequest carries the context extension
	// meshguard.io/tls-unknown "true" (the HTTP protocol, or an operator's
	// per-route setting), so a plaintext request may be TLS.
	TLSSession bool
	TLSUnknown bool
	TCP        bool // no HTTP attributes (network filter)
	Method     string
	Path       string // as sent on the wire (un-normalised, may carry a query)
	Host       string
	Headers    map[string]string // keys as the client wrote them (any case)
	JWT        *JWT              // verified token (RequestAuthentication), nil if none
	// JWTUnknown: the CheckRequest carries the context extension
	// meshguard.io/no-metadata "true": it may come before jwt_authn
	// (jwtUnknownDenies).
	JWTUnknown bool
}

// JWT is the verified token's payload, as Envoy's jwt_authn filter writes it
// to the filter metadata Istio's RBAC matchers read: every claim by name,
// "iss" and "sub" included. A claim the token lacks is absent from the map
// (not ""): Envoy's metadata matchers fail on a missing key, so absence and
// an empty string differ. Values: string, float64 (a JSON number), []string,
// or nested map[string]any.
type JWT struct {
	Claims map[string]any
}

// Verdict is the outcome: Status 200 allow, 403 deny, 400 malformed request.
type Verdict struct {
	Allowed bool
	Status  int
	Reason  string
}

// Evaluate decides one request against one policy set, the way the
// destination sidecar's filter chain does (pilot/pkg/networking/core
// listener_builder.go: authn, then the RBAC filters DENY then ALLOW; CUSTOM
// and AUDIT never decide here: CUSTOM is delegated to an external server that
// is assumed to allow, AUDIT only logs).
func Evaluate(mesh Mesh, aps []*secv1.AuthorizationPolicy, pas []*secv1.PeerAuthentication, r Request) Verdict {
	// Envoy's HTTP connection manager normalises the path before any filter
	// (istio.io docs reference/config/security/normalization, BASE is the
	// default); a request it cannot normalise is rejected with 400.
	path := ""
	if !r.TCP {
		p, ok := normalizePathBase(r.Path)
		if !ok {
			return Verdict{Status: 400, Reason: "path cannot be normalised"}
		}
		path = p
	}
	principal := r.Principal
	// PeerAuthentication configures a sidecar's inbound listeners only
	// (pilot/pkg/networking/core/listener_inbound.go authnBuilder.ForPort);
	// a gateway's listeners take their TLS from its Gateway servers
	// (gateway.go buildGatewayListeners). Which one a Pod has is its proxy
	// type (Workload.Router), not its labels.
	if !r.Dest.Router() {
		switch effectiveMTLSMode(mesh, pas, r.Dest, r.DstPort) {
		case secapi.PeerAuthentication_MutualTLS_STRICT:
			if principal == "" {
				return Verdict{Status: 403, Reason: "STRICT: plaintext connection refused"}
			}
		case secapi.PeerAuthentication_MutualTLS_DISABLE:
			principal = "" // TLS is not terminated by the sidecar: no peer identity
		}
	}
	in := attrs{req: r, path: path, principal: principal, mesh: mesh}
	if sniUnknown(r) && sniPolicyInForce(mesh, aps, r.Dest) {
		return Verdict{Status: 403, Reason: "SNI unknown, matched on by a policy in force (fail closed)"}
	}
	if behindProxyProtocol(mesh, r) && srcIPPolicyInForce(mesh, aps, r.Dest) {
		return Verdict{Status: 403, Reason: "source address unknown behind PROXY protocol, matched on by a policy in force (fail closed)"}
	}

	var allowPolicies, denyMatched, allowMatched int
	for _, ap := range aps {
		if !applies(mesh, ap, r.Dest) || isDryRun(ap) {
			continue
		}
		action := ap.Spec.GetAction()
		if action != secapi.AuthorizationPolicy_ALLOW && action != secapi.AuthorizationPolicy_DENY {
			continue // AUDIT logs only; CUSTOM asks an external server (assumed to allow)
		}
		if action == secapi.AuthorizationPolicy_ALLOW {
			allowPolicies++
		}
		for _, rule := range ap.Spec.GetRules() {
			if ruleMatches(in, ap.Namespace, rule, action == secapi.AuthorizationPolicy_ALLOW) {
				if action == secapi.AuthorizationPolicy_DENY {
					denyMatched++
				} else {
					allowMatched++
				}
				break
			}
		}
	}
	switch {
	case denyMatched > 0:
		return Verdict{Status: 403, Reason: "DENY policy matched"}
	case allowPolicies == 0:
		return Verdict{Allowed: true, Status: 200, Reason: "no ALLOW policy"}
	case allowMatched > 0:
		return Verdict{Allowed: true, Status: 200, Reason: "ALLOW policy matched"}
	default:
		return Verdict{Status: 403, Reason: "no ALLOW policy matched"}
	}
}

// ---- source.ip behind PROXY protocol, as the ext_authz server sees it ----
//
// docs/compatibility.md, "PROXY protocol on gateways": Istio's ipBlocks,
// notIpBlocks and source.ip match Envoy RBAC direct_remote_ip, the physical
// peer (SrcIP). A gateway whose ProxyConfig sets gatewayTopology.proxyProtocol
// runs the proxy_protocol listener filter, which makes the PROXY header's
// client Envoy's remote address; the gRPC CheckRequest's source.address is
// that remote address, so the ext_authz server does not have the direct peer,
// and the request is denied (403) where an enforced ALLOW or DENY policy that
// may apply to the workload reads it. remote.ip stays Envoy's remote
// address. Written from that text, not from meshguard's code.

// behindProxyProtocol: r reaches a gateway whose listeners read a PROXY
// protocol header (Envoy refuses a connection without one there).
func behindProxyProtocol(mesh Mesh, r Request) bool {
	return r.Dest.Router() && gatewayProxyProtocol(mesh, r.Dest) && r.ProxyClientIP != ""
}

// remoteAddress is Envoy's remote address of r's connection: the PROXY
// header's client behind PROXY protocol, else the direct peer.
func remoteAddress(mesh Mesh, r Request) string {
	if behindProxyProtocol(mesh, r) {
		return r.ProxyClientIP
	}
	return r.SrcIP
}

// gatewayProxyProtocol: w's ProxyConfig sets gatewayTopology.proxyProtocol,
// an annotation naming gatewayTopology replacing the mesh's whole (as for
// gatewayHops).
func gatewayProxyProtocol(mesh Mesh, w Workload) bool {
	var pc map[string]any
	if w.ProxyConfig != "" && yaml.Unmarshal([]byte(w.ProxyConfig), &pc) == nil {
		if gt, ok := pc["gatewayTopology"].(map[string]any); ok {
			return gt["proxyProtocol"] != nil
		}
	}
	return mesh.GatewayProxyProtocol
}

// srcIPPolicyInForce: an enforced ALLOW or DENY policy that applies to w
// has ipBlocks, notIpBlocks or a source.ip condition in any rule.
func srcIPPolicyInForce(mesh Mesh, aps []*secv1.AuthorizationPolicy, w Workload) bool {
	for _, ap := range aps {
		a := ap.Spec.GetAction()
		if (a != secapi.AuthorizationPolicy_ALLOW && a != secapi.AuthorizationPolicy_DENY) || isDryRun(ap) || !applies(mesh, ap, w) {
			continue
		}
		for _, rule := range ap.Spec.GetRules() {
			for _, f := range rule.GetFrom() {
				if s := f.GetSource(); len(s.GetIpBlocks()) > 0 || len(s.GetNotIpBlocks()) > 0 {
					return true
				}
			}
			for _, c := range rule.GetWhen() {
				if c.GetKey() == "source.ip" {
					return true
				}
			}
		}
	}
	return false
}

// ---- connection.sni as the ext_authz server sees it ---------------------
//
// docs/compatibility.md, the connection.sni row: meshguard reads the SNI
// from tls_session, or on a TCP check from destination.service (Envoy's
// network filter fills it with the requested server name); without either
// it is unknown on a connection that is or may be TLS (the peers carry
// principals, or the tls-unknown extension says it cannot tell) and ""
// on one known to be plaintext. An unknown SNI denies the request (403)
// where an enforced ALLOW or DENY policy that may apply to the workload
// has a connection.sni condition; AUDIT, CUSTOM and dry-run ones do not
// count. Written from that text, not from meshguard's code.

// sniUnknown: the CheckRequest does not carry the requested server name
// and the connection may be TLS.
func sniUnknown(r Request) bool {
	tls := r.TLS || r.Principal != ""
	if tls && r.TLSSession {
		return false // tls_session.sni, "" included
	}
	if r.TCP && r.SNI != "" {
		return false // destination.service; "" there is "not sent"
	}
	// On TLS Envoy fills destination.principal from the server certificate
	// (and source.principal on mTLS); on plaintext both are empty.
	return tls || r.TLSUnknown
}

// sniPolicyInForce: an enforced ALLOW or DENY policy that applies to w
// has a connection.sni condition (values or notValues) in any rule.
func sniPolicyInForce(mesh Mesh, aps []*secv1.AuthorizationPolicy, w Workload) bool {
	for _, ap := range aps {
		a := ap.Spec.GetAction()
		if (a != secapi.AuthorizationPolicy_ALLOW && a != secapi.AuthorizationPolicy_DENY) || isDryRun(ap) || !applies(mesh, ap, w) {
			continue
		}
		for _, rule := range ap.Spec.GetRules() {
			for _, c := range rule.GetWhen() {
				if c.GetKey() == "connection.sni" {
					return true
				}
			}
		}
	}
	return false
}

// ---- PeerAuthentication -------------------------------------------------

// effectiveMTLSMode follows pilot/pkg/security/authn/policy_applier.go
// ComposePeerAuthentication: at each level (mesh = root namespace without
// selector, namespace = workload namespace without selector, workload =
// selector matching the workload) the OLDEST policy is taken first; then an
// UNSET mode inherits from the level above (top default PERMISSIVE). Port
// level entries come from the chosen workload policy only; UNSET there
// inherits the workload result. A policy WITH a selector in the root
// namespace is no level at all: pilot/pkg/model/authentication.go
// getConfigsForWorkload hands it over (for a workload in any namespace, the
// root one included) and ComposePeerAuthentication drops it ("} else if
// cfg.Namespace != rootNamespace {": workload level only outside the root
// namespace), so it applies to no workload.
func effectiveMTLSMode(mesh Mesh, pas []*secv1.PeerAuthentication, w Workload, port uint32) secapi.PeerAuthentication_MutualTLS_Mode {
	var meshPA, nsPA, wlPA *secv1.PeerAuthentication
	for _, pa := range oldestFirst(pas) {
		noSelector := pa.Spec.GetSelector() == nil || len(pa.Spec.GetSelector().GetMatchLabels()) == 0
		switch {
		case pa.Namespace == mesh.RootNamespace && noSelector:
			if meshPA == nil {
				meshPA = pa
			}
		case pa.Namespace == w.Namespace && noSelector:
			if nsPA == nil {
				nsPA = pa
			}
		case pa.Namespace == mesh.RootNamespace:
			// with a selector: ignored (see above)
		case pa.Namespace == w.Namespace && labelsSubset(pa.Spec.GetSelector().GetMatchLabels(), w.Labels):
			if wlPA == nil {
				wlPA = pa
			}
		}
	}
	mode := secapi.PeerAuthentication_MutualTLS_PERMISSIVE
	for _, pa := range []*secv1.PeerAuthentication{meshPA, nsPA, wlPA} {
		if pa == nil {
			continue
		}
		if m := pa.Spec.GetMtls().GetMode(); m != secapi.PeerAuthentication_MutualTLS_UNSET {
			mode = m
		}
	}
	if wlPA != nil {
		if pm, ok := wlPA.Spec.GetPortLevelMtls()[port]; ok && pm.GetMode() != secapi.PeerAuthentication_MutualTLS_UNSET {
			return pm.GetMode()
		}
	}
	return mode
}

// oldestFirst: creation time, then name, then namespace
// (pilot/pkg/model/config.go sortConfigByCreationTime).
func oldestFirst(pas []*secv1.PeerAuthentication) []*secv1.PeerAuthentication {
	out := append([]*secv1.PeerAuthentication(nil), pas...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Namespace < b.Namespace
	})
	return out
}

// ---- Which AuthorizationPolicies apply ------------------------------------

// applies: pilot/pkg/model/authorization.go ListAuthorizationPolicies (the
// root namespace's policies and the workload's namespace's) and
// policyattachment.go ShouldAttachPolicy for a workload that is no
// waypoint: without targetRefs a selector narrows the policy to matching
// labels (a Gateway API gateway too: EnableSelectorBasedK8sGatewayPolicy is
// on by default); with targetRefs it applies only to the pods of a Gateway
// API gateway (the gateway-name label) that a Gateway reference of the
// policy's own namespace names. Attachment reads the labels alone, not the
// proxy type: a sidecar's Pod carrying the gateway-name label takes such a
// policy too.
func applies(mesh Mesh, ap *secv1.AuthorizationPolicy, w Workload) bool {
	if ap.Namespace != mesh.RootNamespace && ap.Namespace != w.Namespace {
		return false
	}
	refs := ap.Spec.GetTargetRefs()
	if len(refs) == 0 && ap.Spec.GetTargetRef() != nil {
		refs = []*typeapi.PolicyTargetReference{ap.Spec.GetTargetRef()}
	}
	if len(refs) == 0 {
		return labelsSubset(ap.Spec.GetSelector().GetMatchLabels(), w.Labels)
	}
	gateway, isGatewayAPI := w.Labels[gatewayNameLabel]
	if !isGatewayAPI || ap.Namespace != w.Namespace {
		return false
	}
	for _, ref := range refs {
		if ref.GetGroup() == "gateway.networking.k8s.io" && ref.GetKind() == "Gateway" && ref.GetName() == gateway &&
			(ref.GetNamespace() == "" || ref.GetNamespace() == w.Namespace) {
			return true
		}
	}
	return false
}

// isDryRun: annotation istio.io/dry-run parsed by strconv.ParseBool
// (pilot/pkg/security/authz/builder/builder.go isDryRun: "1", "t", "T",
// "TRUE", "true", "True" are dry-run; an unparsable value is logged and the
// policy enforced); dry-run policies go into shadow rules and are never
// enforced.
func isDryRun(ap *secv1.AuthorizationPolicy) bool {
	b, err := strconv.ParseBool(ap.Annotations["istio.io/dry-run"])
	return err == nil && b
}

func labelsSubset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ---- Rules ---------------------------------------------------------------

type attrs struct {
	req       Request
	path      string
	principal string // "" without mTLS
	mesh      Mesh
}

// ruleMatches: (any from) AND (any to) AND (all when)
// (pilot/pkg/security/authz/model/model.go New/Generate). On a TCP chain an
// HTTP-only field makes an ALLOW rule never match and is ignored in a DENY
// rule (model.go, the forTCP errors of generator.go).
func ruleMatches(in attrs, policyNS string, rule *secapi.Rule, isAllow bool) bool {
	if in.req.TCP && isAllow && ruleHasHTTPOnly(rule) {
		return false
	}
	if len(rule.GetFrom()) > 0 {
		any := false
		for _, f := range rule.GetFrom() {
			if sourceMatches(in, policyNS, f.GetSource()) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if len(rule.GetTo()) > 0 {
		any := false
		for _, t := range rule.GetTo() {
			if operationMatches(in, t.GetOperation()) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	for _, c := range rule.GetWhen() {
		if in.req.TCP && httpOnlyKey(c.GetKey()) {
			continue // DENY: ignored field
		}
		if !field(c.GetValues(), c.GetNotValues(), func(v string) bool { return conditionValue(in, policyNS, c.GetKey(), v) }) {
			return false
		}
	}
	return true
}

func ruleHasHTTPOnly(rule *secapi.Rule) bool {
	for _, f := range rule.GetFrom() {
		s := f.GetSource()
		if len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals()) > 0 {
			return true
		}
	}
	for _, t := range rule.GetTo() {
		o := t.GetOperation()
		if len(o.GetHosts())+len(o.GetNotHosts())+len(o.GetMethods())+len(o.GetNotMethods())+len(o.GetPaths())+len(o.GetNotPaths()) > 0 {
			return true
		}
	}
	for _, c := range rule.GetWhen() {
		if httpOnlyKey(c.GetKey()) {
			return true
		}
	}
	return false
}

func httpOnlyKey(k string) bool {
	return strings.HasPrefix(k, "request.")
}

// field: values are ORed, notValues are a NOR, both must hold when both are set.
func field(values, notValues []string, match func(string) bool) bool {
	if len(values) > 0 {
		any := false
		for _, v := range values {
			if match(v) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	for _, v := range notValues {
		if match(v) {
			return false
		}
	}
	return true
}

func sourceMatches(in attrs, policyNS string, s *secapi.Source) bool {
	http := !in.req.TCP
	ok := field(s.GetPrincipals(), s.GetNotPrincipals(), func(v string) bool { return principalValue(in, v) }) &&
		field(s.GetNamespaces(), s.GetNotNamespaces(), func(v string) bool { return namespaceValue(in, v) }) &&
		field(s.GetServiceAccounts(), s.GetNotServiceAccounts(), func(v string) bool { return serviceAccountValue(in, policyNS, v) }) &&
		field(trustDomainAliases(in.mesh, s.GetTrustDomains()), trustDomainAliases(in.mesh, s.GetNotTrustDomains()),
			func(v string) bool { return trustDomainValue(in, v) }) &&
		field(s.GetIpBlocks(), s.GetNotIpBlocks(), func(v string) bool { return cidrValue(in.req.SrcIP, v) }) &&
		field(s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks(), func(v string) bool { return cidrValue(remoteIP(in), v) })
	if ok && http {
		ok = field(s.GetRequestPrincipals(), s.GetNotRequestPrincipals(), func(v string) bool { return requestPrincipalValue(in, v) })
	}
	return ok
}

func operationMatches(in attrs, o *secapi.Operation) bool {
	ok := field(o.GetPorts(), o.GetNotPorts(), func(v string) bool { return portValue(in.req.DstPort, v) })
	if ok && !in.req.TCP {
		ok = field(o.GetHosts(), o.GetNotHosts(), func(v string) bool { return hostValue(in.req.Host, v) }) &&
			field(o.GetMethods(), o.GetNotMethods(), func(v string) bool { return stringValue(in.req.Method, v, true) }) &&
			field(o.GetPaths(), o.GetNotPaths(), func(v string) bool { return pathValue(in.path, v) })
	}
	return ok
}

// conditionValue: the `when` keys of pilot/pkg/security/authz/model/model.go
// and the istio.io conditions reference. Unknown keys are not generated.
func conditionValue(in attrs, policyNS, key, v string) bool {
	switch {
	case strings.HasPrefix(key, "request.headers[") && strings.HasSuffix(key, "]"):
		name := strings.TrimSuffix(strings.TrimPrefix(key, "request.headers["), "]")
		hv, present := header(in, name)
		if v == "*" {
			return present // Envoy present_match
		}
		return present && stringValue(hv, v, false)
	case strings.HasPrefix(key, "request.experimental.inline.headers[") && strings.HasSuffix(key, "]"):
		// matcher/header.go HeaderMatcherWithRegex: "*" a present header,
		// else v (quoted, its one leading or trailing '*' as ".*") as one
		// element of the comma-joined value, the regex matched whole.
		name := strings.TrimSuffix(strings.TrimPrefix(key, "request.experimental.inline.headers["), "]")
		hv, present := header(in, name)
		if !present || v == "*" {
			return present
		}
		re := regexp.QuoteMeta(v)
		if strings.HasPrefix(v, "*") {
			re = ".*" + regexp.QuoteMeta(v[1:])
		} else if strings.HasSuffix(v, "*") {
			re = regexp.QuoteMeta(v[:len(v)-1]) + ".*"
		}
		return fullMatch("^"+re+"$|^"+re+",.*|.*,"+re+",.*|.*,"+re+"$", hv)
	case key == "source.ip":
		return cidrValue(in.req.SrcIP, v)
	case key == "remote.ip":
		return cidrValue(remoteIP(in), v)
	case key == "connection.sni":
		// connSNIGenerator: StringMatcher over Envoy's requested server
		// name, "" without SNI ("*" is the regex ".+").
		return stringValue(in.req.SNI, v, false)
	case key == "destination.ip":
		return cidrValue(in.req.Dest.IP, v)
	case key == "destination.port":
		return portValue(in.req.DstPort, v)
	case key == "source.namespace":
		return namespaceValue(in, v)
	case key == "source.principal":
		return principalValue(in, v)
	case key == "source.trustDomain":
		for _, td := range trustDomainAliases(in.mesh, []string{v}) {
			if trustDomainValue(in, td) {
				return true
			}
		}
		return false
	case key == "source.serviceAccount":
		return serviceAccountValue(in, policyNS, v)
	case key == "request.auth.principal":
		return requestPrincipalValue(in, v)
	case key == "request.auth.audiences":
		return claimValue(in, []string{"aud"}, v)
	case key == "request.auth.presenter":
		return claimValue(in, []string{"azp"}, v)
	case strings.HasPrefix(key, "request.auth.claims[") && strings.HasSuffix(key, "]"):
		// request.auth.claims[a][b]: the nested claim path a.b
		path := strings.Split(strings.TrimSuffix(strings.TrimPrefix(key, "request.auth.claims["), "]"), "][")
		return claimValue(in, path, v)
	}
	return false
}

// remoteIP is what remote.ip and remoteIpBlocks read (principalRemoteIP:
// Envoy's downstream remote address), as Envoy's HTTP connection manager
// sets it before any filter (ConnectionManagerUtility::mutateRequestHeaders)
// from the X-Forwarded-For header the client sent:
//   - Istio's inbound sidecar listener does not use the connection's address
//     (use_remote_address false) and trusts no hop: the last XFF address
//     (getLastAddressFromXFF skipping none), else the peer.
//   - the peer is Envoy's remote address (remoteAddress): behind PROXY
//     protocol the header's client.
//   - a gateway's listener (Workload.Router: by proxy type, whatever the
//     Pod's labels) uses it (use_remote_address true, gateway.go
//     buildGatewayListeners) with xff_num_trusted_hops = its ProxyConfig's
//     gatewayTopology.numTrustedProxies (buildGatewayConnectionManager): n
//     > 0 reads getLastAddressFromXFF skipping n-1 addresses, and the peer
//     where that is no address; n = 0 is the peer.
func remoteIP(in attrs) string {
	r := in.req
	peer := remoteAddress(in.mesh, r) // the PROXY header's client behind PROXY protocol
	if r.TCP {
		return peer
	}
	xff, ok := header(in, "x-forwarded-for")
	skip := 0
	if r.Dest.Router() {
		n := gatewayHops(in.mesh, r.Dest)
		if n == 0 {
			return peer
		}
		skip = n - 1
	}
	if !ok {
		return peer
	}
	if a, found := lastXFFAddress(xff, skip); found {
		return a
	}
	return peer
}

// lastXFFAddress is Envoy's Utility::getLastAddressFromXFF: drop the text
// from the last ',' on, skip times (no ',' left: nothing); then the text
// after the last ',' (the whole value when nothing follows that comma),
// trimmed of whitespace, if it is an IP address.
func lastXFFAddress(xff string, skip int) (string, bool) {
	for range skip {
		i := strings.LastIndex(xff, ",")
		if i < 0 {
			return "", false
		}
		xff = xff[:i]
	}
	if i := strings.LastIndex(xff, ","); i >= 0 && i+1 < len(xff) {
		xff = xff[i+1:]
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(xff)); err == nil && a.Zone() == "" {
		return a.String(), true
	}
	return "", false
}

// gatewayHops is a gateway's gatewayTopology.numTrustedProxies. pilot-agent
// builds the gateway's ProxyConfig from the mesh's defaultConfig and lays
// the Pod's proxy.istio.io/config over it last, each field it names
// replacing the default's whole (pilot/cmd/pilot-agent/config/config.go
// getMeshConfig, pkg/config/mesh ApplyProxyConfig); istiod reads the
// result from the proxy's node metadata (ProxyConfigOrDefault). So an
// annotation naming gatewayTopology decides, numTrustedProxies 0 when it
// leaves that out; otherwise the mesh's. The generator draws only
// annotations that parse.
func gatewayHops(mesh Mesh, w Workload) int {
	var pc map[string]any
	if w.ProxyConfig != "" && yaml.Unmarshal([]byte(w.ProxyConfig), &pc) == nil {
		if gt, ok := pc["gatewayTopology"].(map[string]any); ok {
			n, _ := gt["numTrustedProxies"].(float64)
			return int(n)
		}
	}
	return int(mesh.GatewayNumTrustedProxies)
}

// header: Envoy header maps are case-insensitive on the name. The request
// line is in the map too, as pseudo-headers (what RBAC's header matchers
// and ext_authz see): ":authority" (which the legacy name "host" reads,
// header_map_impl.cc), ":method"; ":path" is not drawn (the reference keeps
// the path as sent, Envoy's map holds it normalised).
func header(in attrs, name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":authority", "host":
		return in.req.Host, true
	case ":method":
		return in.req.Method, true
	}
	for k, v := range in.req.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// stringValue: pilot/pkg/security/authz/matcher string.go StringMatcher /
// header.go HeaderMatcher: "*" any value, "x*" prefix, "*x" suffix, else exact.
// With presentIsAny the "*" form needs only presence (header semantics).
func stringValue(got, v string, presentIsAny bool) bool {
	switch {
	case v == "*":
		return presentIsAny || got != ""
	case strings.HasPrefix(v, "*"):
		return strings.HasSuffix(got, v[1:])
	case strings.HasSuffix(v, "*"):
		return strings.HasPrefix(got, v[:len(v)-1])
	default:
		return got == v
	}
}

// hostValue: matcher/header.go HostMatcher, case-insensitive; the port is not stripped.
func hostValue(host, v string) bool {
	return stringValue(strings.ToLower(host), strings.ToLower(v), true)
}

func portValue(port uint32, v string) bool {
	p, err := strconv.ParseUint(v, 10, 32)
	return err == nil && uint32(p) == port
}

// cidrValue: util.AddrStrToCidrRange: a bare address is a /32 (or /128).
func cidrValue(ip, v string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		return err == nil && a == addr
	}
	pfx, err := netip.ParsePrefix(v)
	return err == nil && pfx.Contains(addr)
}

// fullMatch is Envoy's safe_regex string matcher (what Istio's
// matcher.StringMatcherRegex builds): RE2, matching the WHOLE value
// (RE2::FullMatch), so a top-level '|' splits the regex into alternatives
// that each must match the whole value. A regex that does not compile
// matches nothing here, the way this reference already treats an unparsable
// CIDR or port (cidrValue, portValue). In a real mesh Envoy would refuse the
// whole configuration instead, which no per-request verdict can express;
// meshguard's validator rejects such a value, so the generator never draws
// one.
func fullMatch(re, s string) bool {
	r, err := regexp.Compile(`^(?:` + re + `)$`)
	return err == nil && r.MatchString(s)
}

// principalValue: pilot/pkg/security/authz/model/generator.go
// srcPrincipalGenerator after the trust-domain alias rewrite of model.go
// MigrateTrustDomain (pilot/pkg/security/trustdomain/bundle.go
// ReplaceTrustDomainAliases), applied to principals and to source.principal
// values alike. Only mTLS connections have a principal
// (principalAuthenticated: Envoy's authenticated matcher fails without a
// peer certificate).
func principalValue(in attrs, v string) bool {
	if in.principal == "" {
		return false
	}
	for _, pv := range replaceTrustDomainAliases(in.mesh, v) {
		if principalMatcher(pv, in.principal) {
			return true
		}
	}
	return false
}

// principalMatcher is pilot/pkg/security/authz/matcher/string.go
// StringMatcherWithPrefix(v,
// "spiffe://"): "*" is the regex .+; "*x" is the regex "spiffe://.*"+x with
// x quoted (Istio 1.29.3 / 1.28.7 security fix, istio/istio#59992); "x*" a
// literal prefix "spiffe://x"; otherwise the exact "spiffe://"+v.
func principalMatcher(v, principal string) bool {
	switch {
	case v == "*":
		return fullMatch(".+", principal)
	case strings.HasPrefix(v, "*"):
		return fullMatch("spiffe://.*"+regexp.QuoteMeta(v[1:]), principal)
	case strings.HasSuffix(v, "*"):
		return strings.HasPrefix(principal, "spiffe://"+strings.TrimSuffix(v, "*"))
	default:
		return principal == "spiffe://"+v
	}
}

// replaceTrustDomainAliases is pilot/pkg/security/trustdomain/bundle.go
// Bundle.ReplaceTrustDomainAliases for one principal, with the bundle of
// NewBundle (the trust domain first, then its aliases).
func replaceTrustDomainAliases(mesh Mesh, principal string) []string {
	trustDomains := append([]string{mesh.TrustDomain}, mesh.TrustDomainAliases...)
	parts := strings.Split(principal, "/")
	// isTrustDomainBeingEnforced: a principal that is not of five
	// '/'-separated parts, or whose trust domain is exactly "*", is kept.
	if len(parts) != 5 || parts[0] == "*" {
		return []string{principal}
	}
	tdFromPrincipal := parts[0] // getTrustDomainFromSpiffeIdentity
	if !tdStringMatch(tdFromPrincipal, trustDomains) && tdFromPrincipal != "cluster.local" {
		return []string{principal} // neither a bundle match nor constants.DefaultClusterLocalDomain: kept
	}
	// replaceTrustDomains: one principal per bundle member; a member that
	// the principal's "*x" trust domain suffix-matches keeps the principal
	// as it is; duplicates are dropped.
	var out []string
	for _, td := range trustDomains {
		newPrincipal := principal
		if !tdSuffixMatch(td, tdFromPrincipal) {
			newPrincipal = td + "/" + strings.Join(parts[1:], "/") // replaceTrustDomainInPrincipal
		}
		if !slices.Contains(out, newPrincipal) {
			out = append(out, newPrincipal)
		}
	}
	return out
}

// tdStringMatch is pilot/pkg/security/trustdomain/util.go stringMatch: the pattern ("*",
// "x*", "*x") may be on either side.
func tdStringMatch(a string, list []string) bool {
	for _, s := range list {
		if a == s || s == "*" || tdPrefixMatch(a, s) || tdPrefixMatch(s, a) || tdSuffixMatch(a, s) || tdSuffixMatch(s, a) {
			return true
		}
	}
	return false
}

// tdPrefixMatch is trustdomain/util.go prefixMatch: pattern "x*" and a has prefix x.
func tdPrefixMatch(a, pattern string) bool {
	return strings.HasSuffix(pattern, "*") && strings.HasPrefix(a, strings.TrimSuffix(pattern, "*"))
}

// tdSuffixMatch is trustdomain/util.go suffixMatch: pattern "*x" and a has suffix x.
func tdSuffixMatch(a, pattern string) bool {
	return strings.HasPrefix(pattern, "*") && strings.HasSuffix(a, strings.TrimPrefix(pattern, "*"))
}

// namespaceValue: pilot/pkg/security/authz/model/generator.go srcNamespaceGenerator: the regex
// `.*/ns/<v>/.*`, every '*' of v becoming `.*` and the rest of v quoted
// (istio/istio#59992, Istio 1.29.3 / 1.28.7), full-matched against the principal.
func namespaceValue(in attrs, v string) bool {
	if in.principal == "" {
		return false
	}
	var re strings.Builder
	for i, lit := range strings.Split(v, "*") {
		if i > 0 {
			re.WriteString(".*")
		}
		re.WriteString(regexp.QuoteMeta(lit))
	}
	return fullMatch(".*/ns/"+re.String()+"/.*", in.principal)
}

// serviceAccountValue: generator.go serviceAccountRegex: value `ns/sa`
// (cut at the first '/'), or `sa` in the policy's namespace; the regex
// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` with <ns> and <sa> quoted
// (istio/istio#59700, Istio 1.29.2 / 1.28.6 / 1.27.9), full-matched against
// the principal.
func serviceAccountValue(in attrs, policyNS, v string) bool {
	if in.principal == "" {
		return false
	}
	ns, sa, ok := strings.Cut(v, "/")
	if !ok {
		ns, sa = policyNS, v
	}
	return fullMatch("spiffe://.+/ns/"+regexp.QuoteMeta(ns)+"/(.+/|)sa/"+regexp.QuoteMeta(sa)+"(/.+)?", in.principal)
}

// requestPrincipalValue: generator.go requestPrincipalGenerator: the value
// is split at its LAST '/' into issuer and subject; each half becomes a
// string matcher on the claim (MetadataStringMatcherForJWTClaim), which
// fails when the claim is missing or not a string, whatever the matcher
// (an exact "" included).
func requestPrincipalValue(in attrs, v string) bool {
	if in.req.JWT == nil {
		return false
	}
	idx := strings.LastIndex(v, "/")
	found := idx >= 0
	iss, sub := v, ""
	if found {
		iss, sub = v[:idx], v[idx+1:]
	}
	matchAny := func(s string) bool { return s != "" } // regex .+
	exact := func(want string) func(string) bool { return func(s string) bool { return s == want } }
	suffix := func(x string) func(string) bool { return func(s string) bool { return strings.HasSuffix(s, x) } }
	prefix := func(x string) func(string) bool { return func(s string) bool { return strings.HasPrefix(s, x) } }
	var matchIss, matchSub func(string) bool
	switch {
	case v == "*":
		matchIss, matchSub = matchAny, matchAny
	case strings.HasPrefix(v, "*"):
		if found {
			if iss == "*" {
				matchIss = matchAny
			} else {
				matchIss = suffix(strings.TrimPrefix(iss, "*"))
			}
			matchSub = exact(sub)
		} else {
			matchIss, matchSub = matchAny, suffix(strings.TrimPrefix(v, "*"))
		}
	case strings.HasSuffix(v, "*"):
		if found {
			matchIss = exact(iss)
			if sub == "*" {
				matchSub = matchAny
			} else {
				matchSub = prefix(strings.TrimSuffix(sub, "*"))
			}
		} else {
			matchIss, matchSub = prefix(strings.TrimSuffix(v, "*")), matchAny
		}
	default:
		matchIss, matchSub = exact(iss), exact(sub)
	}
	return stringClaim(in.req.JWT, "iss", matchIss) && stringClaim(in.req.JWT, "sub", matchSub)
}

// stringClaim: Envoy's metadata matcher with a string value matcher: the
// claim must be present and a string, then match.
func stringClaim(j *JWT, name string, match func(string) bool) bool {
	s, ok := j.Claims[name].(string)
	return ok && match(s)
}

// claimValue: generator.go requestClaimGenerator /
// MetadataListValueMatcherForJWTClaims: the claim at path matches if it is a
// string matching v, or a list with an element matching v (StringMatcher
// semantics, "*" any non-empty value).
func claimValue(in attrs, path []string, v string) bool {
	if in.req.JWT == nil {
		return false
	}
	var cur any = in.req.JWT.Claims
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	switch c := cur.(type) {
	case string:
		return stringValue(c, v, false)
	case []string:
		for _, e := range c {
			if stringValue(e, v, false) {
				return true
			}
		}
	}
	return false
}

// trustDomainAliases is pilot/pkg/security/trustdomain/bundle.go
// ExpandTrustDomainAliases: a value that is exactly the trust domain or one
// of its aliases stands for all of them.
func trustDomainAliases(mesh Mesh, values []string) []string {
	bundle := append([]string{mesh.TrustDomain}, mesh.TrustDomainAliases...)
	var out []string
	for _, v := range values {
		if slices.Contains(bundle, v) {
			out = append(out, bundle...)
		} else {
			out = append(out, v)
		}
	}
	return out
}

// trustDomainValue: trustDomains / source.trustDomain (istio.io/api
// Source.trust_domains: "derived from the peer certificate ... exact,
// prefix, suffix and presence", mTLS only): the trust domain of the peer's
// SPIFFE ID, matched as StringMatcher does. The trust domain is the text
// between "spiffe://" and the first '/' (istio/istio#59358, whose wildcard
// is "[^/]*"). pilot/pkg/security/authz/model/generator.go
// srcTrustDomainGenerator matches the full principal by the prefix
// "spiffe://<td>/" or the regex "spiffe://<p>[^/]*<s>/.*", so a SPIFFE ID
// without a path (spiffe://cluster.local) has no trust domain to match; "*"
// is the prefix "spiffe://", which any SPIFFE ID has (spiffe:///x too).
func trustDomainValue(in attrs, v string) bool {
	id, ok := strings.CutPrefix(in.principal, "spiffe://")
	if !ok {
		return false
	}
	if v == "*" {
		return true
	}
	td, _, found := strings.Cut(id, "/")
	return found && stringValue(td, v, false)
}

// ---- Paths ---------------------------------------------------------------

// pathValue: generator.go pathGenerator: a value holding {*} or {**} is an
// Envoy uri_template; otherwise matcher.PathMatcher ("*" is regex .+).
func pathValue(path, v string) bool {
	if strings.Contains(v, "{*}") || strings.Contains(v, "{**}") {
		return uriTemplateRegexp(v).MatchString(path)
	}
	return stringValue(path, v, false)
}

// uriTemplateRegexp: Envoy source/extensions/path/uri_template_lib
// uri_template_internal.cc: literals match themselves, {*} is one or more
// characters of kLiteral (pchar without '*', plus '='), {**} any run of
// kLiteral and '/'; the whole path must match.
func uriTemplateRegexp(t string) *regexp.Regexp {
	const lit = `a-zA-Z0-9\-._~%!$&'()+,;:@=`
	var b strings.Builder
	b.WriteString("^")
	for len(t) > 0 {
		switch {
		case strings.HasPrefix(t, "{**}"):
			b.WriteString("[" + lit + "/]*")
			t = t[4:]
		case strings.HasPrefix(t, "{*}"):
			b.WriteString("[" + lit + "]+")
			t = t[3:]
		default:
			b.WriteString(regexp.QuoteMeta(t[:1]))
			t = t[1:]
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// normalizePathBase is MeshConfig pathNormalization BASE (the default,
// istio.io reference/config/security/normalization): query dropped (RBAC
// matches url_path), '\' becomes '/', percent-escapes of unreserved
// characters decoded once, dot segments removed (RFC 3986 5.2.4); %00 is
// rejected.
func normalizePathBase(raw string) (string, bool) {
	p, _, _ := strings.Cut(raw, "?")
	p, _, _ = strings.Cut(p, "#")
	if strings.Contains(strings.ToLower(p), "%00") {
		return "", false
	}
	p = strings.ReplaceAll(p, `\`, "/")
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if n, err := strconv.ParseUint(p[i+1:i+3], 16, 8); err == nil && isUnreserved(byte(n)) {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return removeDotSegments(b.String()), true
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments is RFC 3986 section 5.2.4, step by step.
func removeDotSegments(in string) string {
	out := ""
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = out[:max(strings.LastIndex(out, "/"), 0)]
		case in == "/..":
			in = "/"
			out = out[:max(strings.LastIndex(out, "/"), 0)]
		case in == "." || in == "..":
			in = ""
		default:
			start := 0
			if in[0] == '/' {
				start = 1
			}
			end := strings.Index(in[start:], "/")
			if end < 0 {
				end = len(in)
			} else {
				end += start
			}
			out += in[:end]
			in = in[end:]
		}
	}
	return out
}
