package policy

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshguard/meshguard/internal/textcut"
)

// Input keys are built once: the input object is assembled directly as an
// ast.Value (no JSON or map round trip; OPA's rego.EvalParsedInput).
var (
	kNS, kLabels, kTCP        = ast.StringTerm("ns"), ast.StringTerm("labels"), ast.StringTerm("tcp")
	kPrincipal, kSpiffe       = ast.StringTerm("principal"), ast.StringTerm("spiffe")
	kSrcNS, kSrcSA, kSrcTD    = ast.StringTerm("src_ns"), ast.StringTerm("src_sa"), ast.StringTerm("src_td")
	kSrcIP, kRemoteIP, kDstIP = ast.StringTerm("src_ip"), ast.StringTerm("remote_ip"), ast.StringTerm("dst_ip")
	kDPort, kSNI, kMethod     = ast.StringTerm("dport"), ast.StringTerm("sni"), ast.StringTerm("method")
	kPath, kHost, kHeaders    = ast.StringTerm("path"), ast.StringTerm("host"), ast.StringTerm("headers")
	kJWT, kIss, kSub, kClaims = ast.StringTerm("jwt"), ast.StringTerm("iss"), ast.StringTerm("sub"), ast.StringTerm("claims")
	kView                     = ast.StringTerm("view")
	kPeerSpiffe, kPeerNS      = ast.StringTerm("peer_spiffe"), ast.StringTerm("peer_ns")
	kPeerSA, kPeerTD          = ast.StringTerm("peer_sa"), ast.StringTerm("peer_td")
	kPeerPrincipal            = ast.StringTerm("peer_principal")
	kRouter                   = ast.StringTerm("router")
	emptyStr                  = ast.StringTerm("")
	emptyObj                  = ast.ObjectTerm()
	trueTerm, falseTerm       = ast.BooleanTerm(true), ast.BooleanTerm(false)
)

// Request is the decoded part of a CheckRequest the semantics need. It is
// exported so the CLI, logs and tests can show what was evaluated.
type Request struct {
	Namespace string            // destination workload namespace
	Labels    map[string]string // destination workload labels
	TCP       bool              // no request.http: network ext_authz
	Principal string            // source.principal as sent by Envoy
	SrcIP     string
	RemoteIP  string
	DstIP     string
	DstPort   uint32
	SNI       string
	Method    string
	Path      string // normalised, no query
	Host      string // lower-cased :authority
	Headers   map[string]string
	JWT       *structpb.Struct
	// remoteIPUnknown says why RemoteIP is "" though the request has an
	// address (requestRemoteIP), for the deny reason (unknownAttribute).
	remoteIPUnknown string
	// srcIPUnknown says why SrcIP is "" though the CheckRequest had a
	// source address (hideProxied), for the deny reason.
	srcIPUnknown string
	// NoMetadata: the caller cannot send dynamic metadata at all (HTTP
	// ext_authz; a CheckRequest whose context extension NoMetadataExtension
	// is "true"), or a gRPC CheckRequest of an HTTP request came without
	// jwt_authn metadata where Envoy is not known to forward it (Mesh.JWTMetadataForwarded
	// false, decode), so a missing JWT is unknown rather than absent.
	NoMetadata bool
	// jwtNotForwarded: NoMetadata only because jwt_authn metadata was
	// missing (decode), for the deny reason (unknownAttribute).
	jwtNotForwarded bool
	// SNIUnknown: the connection's SNI was not sent, though the connection
	// is or may be TLS and so may have one (requestedServerName): Istio's
	// RBAC filter matches connection.sni against Envoy's requested server
	// name (pilot/pkg/security/authz/model/generator.go connSNIGenerator:
	// requested_server_name), which a client sends on mTLS (Istio's client
	// sidecar always does: the cluster name when the DestinationRule sets
	// none, pilot/pkg/networking/core/cluster_tls.go
	// buildUpstreamClusterTLSContext) and on SIMPLE TLS at a gateway alike.
	// A plaintext connection has none: SNI "" is what Istio sees.
	SNIUnknown bool
	// ContentLengthUnknown: the request's own content-length header is not
	// in Headers, by construction (the context extension
	// NoContentLengthExtension, which the HTTP protocol sets): Envoy's HTTP
	// ext_authz client replaces it with its check request's length, so a
	// policy on request.headers[content-length] cannot get Istio's verdict
	// (unknownAttribute).
	ContentLengthUnknown bool
}

// NoContentLengthExtension is the CheckRequest context extension that says
// the request's content-length header is unknown (Request.ContentLengthUnknown).
const NoContentLengthExtension = "meshguard.io/no-content-length"

// NoMetadataExtension is the CheckRequest context extension that says the
// request comes without dynamic metadata by construction: the HTTP protocol
// sets it, and an operator may set it per route (check_settings) where
// ext_authz runs before jwt_authn. Policies matching on the JWT then deny
// instead of reading "no token" (unknownAttribute), whatever the request's
// metadata and Mesh.JWTMetadataForwarded say.
const NoMetadataExtension = "meshguard.io/no-metadata"

// TLSUnknownExtension is the CheckRequest context extension that says the
// request cannot tell a TLS connection from a plaintext one: the HTTP
// protocol sets it (Envoy's HTTP ext_authz client sends no peer
// certificates, and x-forwarded-client-cert only on mTLS), so without
// tls_session the SNI is unknown, not "", even with no principal
// (Request.SNIUnknown).
const TLSUnknownExtension = "meshguard.io/tls-unknown"

// SourceDirectPeerExtension is the CheckRequest context extension that says
// source.address is the connection's direct peer: the HTTP protocol sets it
// (x-meshguard-source-address is %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%). A gRPC
// CheckRequest's source.address is Envoy's remote address, which a PROXY
// protocol header replaces (hideProxied); do not set it there.
const SourceDirectPeerExtension = "meshguard.io/source-direct-peer"

// requestedServerName is the SNI Istio's connection.sni matches (Envoy's
// requested server name), or unknown. Envoy sends it in tls_session only
// with include_tls_session, which Istio's CUSTOM provider does not set
// (check_request_utils.cc setTLSSession: the TLS SNI, else the requested
// server name; HTTP ext_authz: the x-meshguard-sni header, authz/http.go);
// its network filter (Envoy 1.22 and later) also sends the requested server
// name as destination.service (createTcpCheck; the HTTP filter leaves it
// empty). Without either, the SNI is unknown on a connection that is or may
// be TLS (connectionMayBeTLS), and "" only on one known to be plaintext.
func requestedServerName(a *authv3.AttributeContext) (sni string, unknown bool) {
	if ts := a.GetTlsSession(); ts != nil {
		return ts.GetSni(), false
	}
	if a.GetRequest().GetHttp() == nil {
		if s := a.GetDestination().GetService(); s != "" {
			return s, false
		}
	}
	return "", connectionMayBeTLS(a)
}

// connectionMayBeTLS: what a CheckRequest carries on a TLS connection.
// Envoy fills the peers' principals from the connection's certificates
// (check_request_utils.cc setAttrContextPeer): destination.principal from
// the local (server) certificate, which every TLS connection Envoy
// terminates has, source.principal from the client's, on mTLS only; on
// plaintext both are empty. A request that cannot tell (the HTTP protocol:
// TLSUnknownExtension) may be TLS: the fail-closed reading. A server
// certificate without any URI or DNS SAN and with an empty subject leaves
// destination.principal empty too, and reads as plaintext
// (docs/compatibility.md, connection.sni).
func connectionMayBeTLS(a *authv3.AttributeContext) bool {
	return a.GetDestination().GetPrincipal() != "" || a.GetSource().GetPrincipal() != "" ||
		a.GetContextExtensions()[TLSUnknownExtension] == "true"
}

type workload struct {
	ns          string
	labels      map[string]string
	labelsTerm  *ast.Term
	terminating bool // its Pod is being deleted (podIndex lets a running Pod take its IP)
	router      bool // a gateway: its istio-proxy runs `proxy router` (runsRouter)
	sidecar     bool // its istio-proxy runs `proxy sidecar`: not a gateway whatever its labels
	// A gateway's trusted X-Forwarded-For hops and PROXY protocol from its
	// proxy.istio.io/config (ownXFFHops: the annotation sets a
	// gatewayTopology, which replaces the mesh's whole), or why that
	// annotation cannot be read (xffErr: remote.ip unknown where the hops
	// matter, source.ip unknown over gRPC).
	xffHops       int
	ownXFFHops    bool
	proxyProtocol bool
	xffErr        string
}

// gateway: w is a gateway's Pod, not a sidecar's (input.router): its proxy
// runs as a router or, when only its labels are known, it is a Gateway API
// gateway's. A Pod whose istio-proxy runs as a sidecar is one whatever its
// labels: istiod builds gateway listeners, their trusted X-Forwarded-For
// hops and their TLS (where PeerAuthentication does not apply) for a router
// proxy alone (listener.go BuildListeners), so the Pod's own label must
// neither make remote.ip a client's X-Forwarded-For entry nor skip a STRICT
// PeerAuthentication.
func (w *workload) gateway() bool {
	_, named := w.labels[GatewayNameLabel]
	return w.router || named && !w.sidecar
}

// decode extracts the attributes from a CheckRequest; destination workload by
// destination IP in the Pod index, else namespace from the destination
// principal (docs/compatibility.md "Attribute sources"). unindexedProxied:
// why a destination not in the index may take PROXY protocol headers
// (ownProxyProtocol), or "".
func decode(req *authv3.CheckRequest, mesh Mesh, pods map[string]*workload, unindexedProxied string) (Request, *workload, error) {
	var r Request
	a := req.GetAttributes()
	if a == nil {
		return r, nil, fmt.Errorf("CheckRequest.attributes: missing")
	}
	src, dst := a.GetSource(), a.GetDestination()
	r.Principal = src.GetPrincipal()
	r.SrcIP = addrIP(src.GetAddress().GetSocketAddress().GetAddress())
	r.DstIP = addrIP(dst.GetAddress().GetSocketAddress().GetAddress())
	r.DstPort = dst.GetAddress().GetSocketAddress().GetPortValue()
	r.SNI, r.SNIUnknown = requestedServerName(a)
	r.NoMetadata = a.GetContextExtensions()[NoMetadataExtension] == "true"
	r.ContentLengthUnknown = a.GetContextExtensions()[NoContentLengthExtension] == "true"
	var wl *workload
	if w, ok := pods[r.DstIP]; ok && r.DstIP != "" {
		wl = w
		r.Namespace, r.Labels = w.ns, w.labels
	} else {
		_, r.Namespace, _ = parseSpiffe(strings.TrimPrefix(dst.GetPrincipal(), "spiffe://"))
	}
	// remote.ip is Envoy's remote address, source.address over gRPC even
	// behind a PROXY protocol header; source.ip is not (hideProxied).
	proxied, directPeer := behindProxyProtocol(mesh, wl, unindexedProxied), a.GetContextExtensions()[SourceDirectPeerExtension] == "true"
	h := a.GetRequest().GetHttp()
	if h == nil {
		r.TCP = true
		r.RemoteIP = r.SrcIP
		r.hideProxied(proxied, directPeer)
		return r, wl, nil
	}
	r.Headers = lowerKeys(h.GetHeaders())
	if len(r.Headers) == 0 && h.GetHeaderMap() != nil {
		hs := h.GetHeaderMap().GetHeaders()
		j := headerJoiner{out: make(map[string]string, len(hs))}
		for _, hv := range hs {
			v := hv.GetValue()
			if v == "" && len(hv.GetRawValue()) > 0 {
				v = string(hv.GetRawValue())
			}
			j.add(asciiLower(hv.GetKey()), v)
		}
		r.Headers = j.joined()
	}
	r.Method = h.GetMethod()
	if r.Method == "" {
		r.Method = r.Headers[":method"]
	}
	r.Host = h.GetHost()
	if r.Host == "" {
		r.Host = r.Headers[":authority"]
	}
	r.Host = asciiLower(r.Host)
	rawPath := h.GetPath()
	if rawPath == "" {
		rawPath = r.Headers[":path"]
	}
	// Errors quote the path without its query: they reach the decision log,
	// and a query may carry credentials (access_token=...).
	if err := checkRawPath(rawPath, r.Method); err != nil {
		return r, wl, fmt.Errorf("request.http.path %q: %w", WithoutQuery(rawPath), err)
	}
	p, err := NormalizePath(rawPath, mesh.PathNormalization)
	if err != nil {
		return r, wl, fmt.Errorf("request.http.path %q: %w", WithoutQuery(rawPath), err)
	}
	r.Path = p
	if r.RemoteIP, r.remoteIPUnknown, err = requestRemoteIP(r.Headers["x-forwarded-for"], r.SrcIP, mesh.NumTrustedProxies, wl); err != nil {
		return r, wl, fmt.Errorf("request.http.headers[x-forwarded-for]: %w", err)
	}
	jm, forwarded := a.GetMetadataContext().GetFilterMetadata()[JWTAuthnFilter]
	if !forwarded && !mesh.JWTMetadataForwarded && !r.NoMetadata {
		// Istio's CUSTOM provider puts ext_authz before jwt_authn and
		// forwards no metadata (Istio: pilot/pkg/networking/core/listener_builder.go
		// buildHTTPConnectionManager appends the CUSTOM filters before
		// authnBuilder's; pilot/pkg/security/authz/builder/extauthz.go
		// generateGRPCConfig sets no metadata_context_namespaces): without
		// jwt_authn's metadata the token is unknown, not absent, unless the
		// operator says Envoy forwards it (fail closed).
		r.NoMetadata, r.jwtNotForwarded = true, true
	}
	if r.JWT, err = jwtPayload(jm); err != nil {
		return r, wl, fmt.Errorf("metadata_context.filter_metadata[%s]: %w", JWTAuthnFilter, err)
	}
	r.hideProxied(proxied, directPeer)
	return r, wl, nil
}

// behindProxyProtocol says why the request's connection may have come
// through a PROXY protocol header, or "": then Envoy's remote address
// (remote.ip trusting no hop, and a gRPC CheckRequest's source.address,
// check_request_utils.cc setAttrContextPeer: connectionInfoProvider()
// .remoteAddress()) is the header's client, and only its direct peer the
// load balancer. Istio adds the proxy_protocol listener filter to a
// gateway's listeners when its ProxyConfig sets gatewayTopology.proxyProtocol:
// pilot-agent lays the Pod's proxy.istio.io/config over the mesh's
// defaultConfig, a gatewayTopology there replacing the mesh's whole
// (setProxyConfig). A PROXY protocol filter added by an EnvoyFilter cannot be
// seen here (docs/compatibility.md).
func behindProxyProtocol(mesh Mesh, wl *workload, unindexedProxied string) string {
	switch {
	case wl == nil:
		if mesh.GatewayProxyProtocol {
			return "the destination is not in the Pod index and may be a gateway whose listeners take the client address " +
				"from a PROXY protocol header, mesh defaultConfig gatewayTopology.proxyProtocol"
		}
		return unindexedProxied // a gateway Pod's own annotation (ownProxyProtocol)
	case !wl.gateway():
		return "" // istiod builds gateway listeners for a router alone
	case wl.xffErr != "":
		return wl.xffErr + ": whether the gateway's listeners take the client address from a PROXY protocol header is unknown"
	}
	on := mesh.GatewayProxyProtocol
	if wl.ownXFFHops {
		on = wl.proxyProtocol
	}
	if !on {
		return ""
	}
	return "the gateway's listeners take the client address from a PROXY protocol header, gatewayTopology.proxyProtocol"
}

// hideProxied makes unknown what a PROXY protocol header (why, from
// behindProxyProtocol; "" changes nothing) keeps from the request. Istio's
// source.ip and ipBlocks are Envoy RBAC direct_remote_ip
// (pilot/pkg/security/authz/model/generator.go srcIPGenerator), the load
// balancer, which a gRPC CheckRequest does not carry: SrcIP. The HTTP
// protocol sends the direct peer (directPeer, SourceDirectPeerExtension), so
// there SrcIP stays, but a remote.ip read from the peer is not Envoy's
// remote address, the header's client. Policies that may apply and read what
// is unknown deny (unknownAttribute); user modules see no address rather
// than a wrong one.
func (r *Request) hideProxied(why string, directPeer bool) {
	switch {
	case why == "":
	case !directPeer && r.SrcIP != "":
		r.SrcIP, r.srcIPUnknown = "", " (source.ip, ipBlocks: "+why+"; Istio matches the direct peer, which Envoy's gRPC CheckRequest does not carry)"
	case directPeer && r.RemoteIP != "" && r.RemoteIP == r.SrcIP:
		// Read from the peer (no X-Forwarded-For hop gave it), or an
		// entry naming the load balancer: either way not certain.
		r.RemoteIP, r.remoteIPUnknown = "", " (remote.ip: "+why+"; Envoy's remote address is that client, which the HTTP protocol does not send)"
	}
}

// JWTAuthnFilter is the dynamic metadata namespace Envoy's jwt_authn filter
// writes the verified payload into, and the one ext_authz must forward
// (metadata_context_namespaces) for request.auth.* and requestPrincipals.
const JWTAuthnFilter = "envoy.filters.http.jwt_authn"

// lowerKeys lower-cases header names as Envoy does before ext_authz (a
// client other than Envoy may send "X-Evil"), in ASCII only as policy header
// names are (asciiLower); names equal but for case are merged with ',' in
// sorted order of the original names.
func lowerKeys(in map[string]string) map[string]string {
	lower := true
	for k := range in {
		if !isLower(k) {
			lower = false
			break
		}
	}
	if lower {
		return in
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	j := headerJoiner{out: make(map[string]string, len(in))}
	for _, k := range keys {
		j.add(asciiLower(k), in[k])
	}
	return j.joined()
}

// headerJoiner merges the values given under one header name with ',', in
// the order given, joining each name's values once: appending every value
// to the joined string copied it each time, quadratic in a CheckRequest of
// many values under one name.
type headerJoiner struct {
	out  map[string]string
	more map[string][]string // names given more than once: all their values
}

func (j *headerJoiner) add(k, v string) {
	first, ok := j.out[k]
	if !ok {
		j.out[k] = v
		return
	}
	if j.more == nil {
		j.more = map[string][]string{}
	}
	if j.more[k] == nil {
		j.more[k] = []string{first}
	}
	j.more[k] = append(j.more[k], v)
}

func (j *headerJoiner) joined() map[string]string {
	for k, vs := range j.more {
		j.out[k] = strings.Join(vs, ",")
	}
	return j.out
}

// isLower reports whether asciiLower(s) == s.
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// WithoutQuery is p up to its "?" ("?…" marks a query left out).
func WithoutQuery(p string) string {
	if before, _, found := strings.Cut(p, "?"); found {
		return before + "?…"
	}
	return p
}

// checkRawPath rejects a :path Envoy's HTTP connection manager never
// forwards (it answers 400 first): a raw NUL, an empty path (except for
// CONNECT, which has none) and a path that does not start with '/'.
func checkRawPath(p, method string) error {
	switch {
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("contains a NUL byte")
	case p == "" && method == "CONNECT":
		return nil
	case p == "":
		return fmt.Errorf("empty")
	case p[0] != '/':
		return fmt.Errorf("does not start with '/'")
	}
	return nil
}

func addrIP(s string) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	// The canonical form, without allocating when s already is canonical
	// (the usual case: Envoy sends canonical addresses). Without the zone:
	// Envoy writes a scoped peer as "fe80::1%3" (address_impl.cc
	// makeFriendlyAddress) and its CidrRange::isInRange compares the
	// address bits only, while OPA's net.cidr_contains fails on a zone
	// (the match is then undefined: an ipBlocks DENY would not apply).
	var buf [64]byte
	b := a.Unmap().WithZone("").AppendTo(buf[:0])
	if string(b) == s {
		return s
	}
	return string(b)
}

// requestRemoteIP is remote.ip for a request to wl. Istio's numTrustedProxies
// is a gateway setting (ProxyConfig gatewayTopology, read only by
// pilot/pkg/networking/core/gateway.go buildGatewayConnectionManager): a
// sidecar's inbound connection manager trusts no hop (listener_inbound.go
// buildSidecarInboundHTTPOpts). A gateway's comes from its Pod's
// proxy.istio.io/config, else from the mesh (meshHops: defaultConfig or
// --num-trusted-proxies). Where the hops are unknown (a destination not in
// the Pod index may be any gateway or a sidecar; a gateway's annotation
// cannot be read) the remote address is known only if every hop count
// reads the same one; else it is "" and unknown says why (policies matching
// on it deny, unknownAttribute).
func requestRemoteIP(xff, peer string, meshHops int, wl *workload) (ip, unknown string, err error) {
	switch {
	case wl == nil:
		unknown = "the destination is not in the Pod index, and X-Forwarded-For names another address: a gateway's proxy.istio.io/config may trust any number of its hops, a sidecar none"
	case !wl.gateway():
		ip, err = remoteIP(xff, peer, 0)
		return ip, "", err
	case wl.xffErr != "":
		unknown = wl.xffErr + ", and X-Forwarded-For names another address"
	default:
		hops := meshHops
		if wl.ownXFFHops {
			hops = wl.xffHops
		}
		if hops == 0 {
			// use_remote_address without trusted hops is the connection's
			// address, which is not always the entry Envoy appended: for a
			// loopback peer it appends its own (mutateRequestHeaders).
			return peer, "", nil
		}
		ip, err = remoteIP(xff, peer, hops)
		return ip, "", err
	}
	// A sidecar reads the last entry, a gateway trusting n > 0 hops the
	// (n+1)-th from the right (the peer past the first), one trusting none
	// the peer: all agree only if every entry reads as the peer.
	if xff == "" {
		return peer, "", nil
	}
	for _, entry := range strings.Split(xff, ",") {
		if e, err := xffEntry(entry, peer); err != nil || e != peer {
			return "", " (" + unknown + ")", nil
		}
	}
	return peer, "", nil
}

// remoteIP derives Envoy's downstream remote address from X-Forwarded-For:
// with n trusted hops, the (n+1)-th address from the right (inferred from Envoy's
// xff_num_trusted_hops documentation; docs/compatibility.md "Attribute sources"),
// read by xffEntry.
func remoteIP(xff, peer string, trusted int) (string, error) {
	if xff == "" {
		return peer, nil
	}
	parts := strings.Split(xff, ",")
	i := len(parts) - 1 - trusted
	if i < 0 || trusted < 0 {
		return peer, nil
	}
	return xffEntry(parts[i], peer)
}

// xffEntry is the remote address an X-Forwarded-For entry gives: the
// address, or the peer where it is none.
// An IPv4-mapped IPv6 entry is refused: Envoy parses it as IPv6
// (v6only), so remoteIpBlocks match it only against IPv6 ranges, while
// OPA's net.cidr_contains matches it only against IPv4 ones; either reading
// would decide some policies the other way. So is an entry whose IPv6 zone
// is an interface name (below).
func xffEntry(entry, peer string) (string, error) {
	entry = strings.TrimSpace(entry)
	if a, err := netip.ParseAddr(entry); err == nil {
		if a.Is4In6() {
			return "", fmt.Errorf("entry %q is an IPv4-mapped IPv6 address, which Envoy's remoteIpBlocks and OPA's net.cidr_contains match differently: refused", entry)
		}
		// Envoy parses the entry with getaddrinfo (AI_NUMERICHOST): a numeric
		// zone is read (and ignored by the CIDR match, see addrIP), an
		// interface name only if the proxy has that interface, else the
		// entry is not an address.
		if z := a.Zone(); z != "" {
			if _, err := strconv.ParseUint(z, 10, 32); err != nil {
				return "", fmt.Errorf("entry %q has the IPv6 zone %q, which Envoy reads only if its proxy has such an interface: refused", entry, z)
			}
		}
	}
	if ip := addrIP(entry); ip != "" {
		return ip, nil
	}
	return peer, nil
}

// jwtPayload finds the verified JWT payload jwt_authn wrote into dynamic
// metadata: under "payload" (where Istio's jwt_authn configuration
// puts it; docs/compatibility.md "Attribute sources"), or the single issuer-keyed struct.
// Several issuer-keyed payloads (tokens of several providers) are an error:
// picking one would make request principals depend on which (fail closed).
func jwtPayload(s *structpb.Struct) (*structpb.Struct, error) {
	if s == nil {
		return nil, nil
	}
	if p := s.GetFields()["payload"].GetStructValue(); p != nil {
		return p, finiteClaims(p)
	}
	var found *structpb.Struct
	var keys []string
	for k, v := range s.GetFields() {
		if p := v.GetStructValue(); p != nil && p.GetFields()["iss"] != nil {
			found = p
			keys = append(keys, k)
		}
	}
	if len(keys) > 1 {
		sort.Strings(keys)
		return nil, fmt.Errorf("%d verified JWT payloads (%s): which one gives request.auth.* is ambiguous", len(keys), someKeys(keys))
	}
	return found, finiteClaims(found)
}

// maxReasonKey and maxReasonKeys bound the metadata keys a 400's reason
// quotes: it goes into the gRPC status and the decision log, and the keys
// come from the request (a CheckRequest may be megabytes).
const (
	maxReasonKey  = 128
	maxReasonKeys = 3
)

// someKeys lists the first maxReasonKeys of keys, each cut to maxReasonKey
// bytes, and how many more there are.
func someKeys(keys []string) string {
	var b strings.Builder
	for i, k := range keys[:min(len(keys), maxReasonKeys)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(textcut.Prefix(k, maxReasonKey))
	}
	if n := len(keys) - maxReasonKeys; n > 0 {
		fmt.Fprintf(&b, ", ... and %d more", n)
	}
	return b.String()
}

// finiteClaims refuses a payload holding NaN or ±Inf: jwt_authn never
// writes one (jwt_verify_lib parses the payload with protobuf's
// JsonStringToMessage, whose lexer refuses non-finite numbers), and OPA
// panics comparing one (a user module reading a numeric claim such as exp).
func finiteClaims(p *structpb.Struct) error {
	for k, v := range p.GetFields() {
		if at, n, bad := nonFinite(v); bad {
			return fmt.Errorf("payload claim %q: number %v is not a JSON number", textcut.Prefix(k+at, maxReasonKey), n)
		}
	}
	return nil
}

// nonFinite finds a NaN or ±Inf in v; its path (".a", "[0]") is built only then.
func nonFinite(v *structpb.Value) (at string, n float64, bad bool) {
	switch x := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return "", x.NumberValue, math.IsNaN(x.NumberValue) || math.IsInf(x.NumberValue, 0)
	case *structpb.Value_StructValue:
		for k, e := range x.StructValue.GetFields() {
			if at, n, bad := nonFinite(e); bad {
				return "." + k + at, n, true
			}
		}
	case *structpb.Value_ListValue:
		for i, e := range x.ListValue.GetValues() {
			if at, n, bad := nonFinite(e); bad {
				return "[" + strconv.Itoa(i) + "]" + at, n, true
			}
		}
	}
	return "", 0, false
}

// parseSpiffe splits "td/ns/<ns>/sa/<sa>" (without "spiffe://").
func parseSpiffe(id string) (td, ns, sa string) {
	td, rest, ok := strings.Cut(id, "/")
	if !ok {
		return id, "", ""
	}
	parts := strings.Split(rest, "/")
	for i := 0; i+1 < len(parts); i++ {
		switch parts[i] {
		case "ns":
			if ns == "" {
				ns = parts[i+1]
			}
		case "sa":
			sa = parts[i+1]
		}
	}
	return td, ns, sa
}

func str(s string) *ast.Term {
	if s == "" {
		return emptyStr
	}
	return ast.StringTerm(s)
}

// inputNeeds says which input fields the generated module reads. With user
// modules the full documented input is built (docs/authz-user-rego.md);
// otherwise only what the policies reference, which keeps the per-request
// allocations down.
type inputNeeds struct {
	all                                                         bool
	peerSpiffe, peerPrincipal, peerNS, peerSA, peerTD           bool
	srcIP, remoteIP, dstIP, dport, sni, method, path, host, jwt bool
	headers                                                     map[string]*ast.Term // referenced header names → flat key term
}

var methodTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, v := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"} {
		m[v] = ast.StringTerm(v)
	}
	return m
}()

// portTerms caches destination-port terms (at most 65,536).
var portTerms sync.Map

func portTerm(p uint32) *ast.Term {
	if p == 0 {
		return emptyStr
	}
	if t, ok := portTerms.Load(p); ok {
		return t.(*ast.Term)
	}
	t := ast.StringTerm(strconv.FormatUint(uint64(p), 10))
	portTerms.Store(p, t)
	return t
}

func methodTerm(m string) *ast.Term {
	if t, ok := methodTerms[m]; ok {
		return t
	}
	return str(m)
}

// value builds the Rego input (field list: docs/authz-user-rego.md).
func (r *Request) value(wl *workload, view *ast.Term, n *inputNeeds) ast.Value {
	var buf [32][2]*ast.Term // on the stack: NewObject copies the pairs
	pairs := buf[:0]
	labels := emptyObj
	if wl != nil {
		labels = wl.labelsTerm
	}
	tcp := falseTerm
	if r.TCP {
		tcp = trueTerm
	}
	principal := str(r.Principal)
	pairs = append(pairs,
		[2]*ast.Term{kView, view},
		[2]*ast.Term{kLabels, labels},
		[2]*ast.Term{kTCP, tcp},
		[2]*ast.Term{kPrincipal, principal},
	)
	if wl != nil && wl.gateway() {
		pairs = append(pairs, [2]*ast.Term{kRouter, trueTerm})
	}
	if n.all || n.peerSpiffe || n.peerNS || n.peerSA || n.peerTD {
		spiffe, td, ns, sa := "", "", "", ""
		if strings.HasPrefix(r.Principal, "spiffe://") {
			spiffe = r.Principal[len("spiffe://"):]
			if n.all || n.peerNS || n.peerSA || n.peerTD {
				td, ns, sa = parseSpiffe(spiffe)
			}
		}
		saKey := ""
		if ns != "" && sa != "" {
			saKey = ns + "/" + sa
		}
		spiffeT, nsT, saT, tdT := str(spiffe), str(ns), str(saKey), str(td)
		if n.all {
			pairs = append(pairs,
				[2]*ast.Term{kSpiffe, spiffeT},
				[2]*ast.Term{kSrcNS, nsT},
				[2]*ast.Term{kSrcSA, saT},
				[2]*ast.Term{kSrcTD, tdT},
			)
		}
		// Peer attributes for the generated conditions: present only with a principal.
		if r.Principal != "" {
			for _, f := range [...]struct {
				need bool
				k, v *ast.Term
			}{{n.peerSpiffe, kPeerSpiffe, spiffeT}, {n.peerNS, kPeerNS, nsT}, {n.peerSA, kPeerSA, saT}, {n.peerTD, kPeerTD, tdT}} {
				if n.all || f.need {
					pairs = append(pairs, [2]*ast.Term{f.k, f.v})
				}
			}
		}
	}
	if r.Principal != "" && (n.all || n.peerPrincipal) {
		pairs = append(pairs, [2]*ast.Term{kPeerPrincipal, principal})
	}
	if n.all {
		pairs = append(pairs, [2]*ast.Term{kNS, str(r.Namespace)})
	}
	if n.all || n.srcIP {
		pairs = append(pairs, [2]*ast.Term{kSrcIP, str(r.SrcIP)})
	}
	if n.all || n.remoteIP {
		pairs = append(pairs, [2]*ast.Term{kRemoteIP, str(r.RemoteIP)})
	}
	if n.all || n.dstIP {
		pairs = append(pairs, [2]*ast.Term{kDstIP, str(r.DstIP)})
	}
	if n.all || n.dport {
		pairs = append(pairs, [2]*ast.Term{kDPort, portTerm(r.DstPort)})
	}
	if n.all || n.sni {
		pairs = append(pairs, [2]*ast.Term{kSNI, str(r.SNI)})
	}
	if r.TCP {
		return ast.NewObject(pairs...)
	}
	if n.all || n.method {
		pairs = append(pairs, [2]*ast.Term{kMethod, methodTerm(r.Method)})
	}
	if n.all || n.path {
		pairs = append(pairs, [2]*ast.Term{kPath, str(r.Path)})
	}
	if n.all || n.host {
		pairs = append(pairs, [2]*ast.Term{kHost, str(r.Host)})
	}
	if n.all {
		hdrs := make([][2]*ast.Term, 0, len(r.Headers))
		for k, v := range r.Headers {
			hdrs = append(hdrs, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
		}
		pairs = append(pairs, [2]*ast.Term{kHeaders, ast.ObjectTerm(hdrs...)})
	}
	for k, kt := range n.headers {
		if v, ok := r.Headers[k]; ok {
			pairs = append(pairs, [2]*ast.Term{kt, str(v)})
		}
	}
	if r.JWT != nil && (n.all || n.jwt) {
		// iss and sub only when the token has them as strings: Envoy's
		// metadata string matcher fails on a missing key, so Istio's
		// requestPrincipals "iss/" (an exact "" subject) does not match a
		// token without sub (pilot/pkg/security/authz/model/generator.go
		// requestPrincipalGenerator).
		f := r.JWT.GetFields()
		jwt := make([][2]*ast.Term, 0, 3)
		for _, c := range [...]struct {
			name string
			key  *ast.Term
		}{{"iss", kIss}, {"sub", kSub}} {
			if v, ok := f[c.name].GetKind().(*structpb.Value_StringValue); ok {
				jwt = append(jwt, [2]*ast.Term{c.key, ast.StringTerm(v.StringValue)})
			}
		}
		jwt = append(jwt, [2]*ast.Term{kClaims, structTerm(r.JWT)})
		pairs = append(pairs, [2]*ast.Term{kJWT, ast.ObjectTerm(jwt...)})
	}
	return ast.NewObject(pairs...)
}

func structTerm(s *structpb.Struct) *ast.Term {
	pairs := make([][2]*ast.Term, 0, len(s.GetFields()))
	for k, v := range s.GetFields() {
		pairs = append(pairs, [2]*ast.Term{ast.StringTerm(k), pbValueTerm(v)})
	}
	return ast.ObjectTerm(pairs...)
}

func pbValueTerm(v *structpb.Value) *ast.Term {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return ast.StringTerm(x.StringValue)
	case *structpb.Value_BoolValue:
		return ast.BooleanTerm(x.BoolValue)
	case *structpb.Value_NumberValue:
		return ast.FloatNumberTerm(x.NumberValue)
	case *structpb.Value_StructValue:
		return structTerm(x.StructValue)
	case *structpb.Value_ListValue:
		items := make([]*ast.Term, 0, len(x.ListValue.GetValues()))
		for _, e := range x.ListValue.GetValues() {
			items = append(items, pbValueTerm(e))
		}
		return ast.ArrayTerm(items...)
	}
	return ast.NullTerm()
}
