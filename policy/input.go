package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/types/known/structpb"
)

// Input keys are built once: the input object is assembled directly as an
// ast.Value (no JSON or map round trip, spec §5 item 2).
var (
	kNS, kLabels, kTCP        = ast.StringTerm("ns"), ast.StringTerm("labels"), ast.StringTerm("tcp")
	kPrincipal, kSpiffe       = ast.StringTerm("principal"), ast.StringTerm("spiffe")
	kSrcNS, kSrcSA, kSrcTD    = ast.StringTerm("src_ns"), ast.StringTerm("src_sa"), ast.StringTerm("src_td")
	kSrcIP, kRemoteIP, kDstIP = ast.StringTerm("src_ip"), ast.StringTerm("remote_ip"), ast.StringTerm("dst_ip")
	kDPort, kSNI, kMethod     = ast.StringTerm("dport"), ast.StringTerm("sni"), ast.StringTerm("method")
	kPath, kHost, kHeaders    = ast.StringTerm("path"), ast.StringTerm("host"), ast.StringTerm("headers")
	kJWT, kIss, kSub, kClaims = ast.StringTerm("jwt"), ast.StringTerm("iss"), ast.StringTerm("sub"), ast.StringTerm("claims")
	kRK, vRules, vTRules      = ast.StringTerm("rk"), ast.StringTerm("rules"), ast.StringTerm("trules")
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
}

type workload struct {
	ns         string
	labels     map[string]string
	labelsTerm *ast.Term
}

// decode extracts the attributes from a CheckRequest; destination workload by
// destination IP in the Pod index, else namespace from the destination
// principal (issue 8 §2).
func decode(req *authv3.CheckRequest, mesh Mesh, pods map[string]*workload) (Request, *workload, error) {
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
	r.SNI = a.GetTlsSession().GetSni()
	var wl *workload
	if w, ok := pods[r.DstIP]; ok && r.DstIP != "" {
		wl = w
		r.Namespace, r.Labels = w.ns, w.labels
	} else {
		_, r.Namespace, _ = parseSpiffe(strings.TrimPrefix(dst.GetPrincipal(), "spiffe://"))
	}
	h := a.GetRequest().GetHttp()
	if h == nil {
		r.TCP = true
		r.RemoteIP = r.SrcIP
		return r, wl, nil
	}
	r.Headers = h.GetHeaders()
	if len(r.Headers) == 0 && h.GetHeaderMap() != nil {
		r.Headers = map[string]string{}
		for _, hv := range h.GetHeaderMap().GetHeaders() {
			k := strings.ToLower(hv.GetKey())
			v := hv.GetValue()
			if v == "" && len(hv.GetRawValue()) > 0 {
				v = string(hv.GetRawValue())
			}
			if prev, ok := r.Headers[k]; ok {
				v = prev + "," + v
			}
			r.Headers[k] = v
		}
	}
	r.Method = h.GetMethod()
	if r.Method == "" {
		r.Method = r.Headers[":method"]
	}
	r.Host = h.GetHost()
	if r.Host == "" {
		r.Host = r.Headers[":authority"]
	}
	r.Host = strings.ToLower(r.Host)
	rawPath := h.GetPath()
	if rawPath == "" {
		rawPath = r.Headers[":path"]
	}
	p, err := NormalizePath(rawPath, mesh.PathNormalization)
	if err != nil {
		return r, wl, fmt.Errorf("request.http.path %q: %w", rawPath, err)
	}
	r.Path = p
	r.RemoteIP = remoteIP(r.Headers["x-forwarded-for"], r.SrcIP, mesh.NumTrustedProxies)
	r.JWT = jwtPayload(a.GetMetadataContext().GetFilterMetadata()["envoy.filters.http.jwt_authn"])
	return r, wl, nil
}

func addrIP(s string) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	return a.Unmap().String()
}

// remoteIP derives Envoy's downstream remote address from X-Forwarded-For:
// with n trusted hops, the (n+1)-th address from the right (inferred, spec §9).
func remoteIP(xff, peer string, trusted int) string {
	if xff == "" {
		return peer
	}
	parts := strings.Split(xff, ",")
	i := len(parts) - 1 - trusted
	if i < 0 {
		return peer
	}
	if ip := addrIP(strings.TrimSpace(parts[i])); ip != "" {
		return ip
	}
	return peer
}

// jwtPayload finds the verified JWT payload jwt_authn wrote into dynamic
// metadata: under "payload" (spec §1.4), or the single issuer-keyed struct.
func jwtPayload(s *structpb.Struct) *structpb.Struct {
	if s == nil {
		return nil
	}
	if p := s.GetFields()["payload"].GetStructValue(); p != nil {
		return p
	}
	for _, v := range s.GetFields() {
		if p := v.GetStructValue(); p != nil && p.GetFields()["iss"] != nil {
			return p
		}
	}
	return nil
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

// value builds the Rego input (see the field list in rego/authz.rego).
func (r *Request) value(wl *workload) ast.Value {
	spiffe, td, ns, sa := "", "", "", ""
	if strings.HasPrefix(r.Principal, "spiffe://") {
		spiffe = r.Principal[len("spiffe://"):]
		td, ns, sa = parseSpiffe(spiffe)
	}
	saKey := ""
	if ns != "" && sa != "" {
		saKey = ns + "/" + sa
	}
	labels := emptyObj
	if wl != nil {
		labels = wl.labelsTerm
	}
	tcp := falseTerm
	if r.TCP {
		tcp = trueTerm
	}
	dport := emptyStr
	if r.DstPort != 0 {
		dport = ast.StringTerm(strconv.FormatUint(uint64(r.DstPort), 10))
	}
	pairs := make([][2]*ast.Term, 0, 20)
	rk := vRules
	if r.TCP {
		rk = vTRules
	}
	pairs = append(pairs,
		[2]*ast.Term{kRK, rk},
		[2]*ast.Term{kNS, str(r.Namespace)},
		[2]*ast.Term{kLabels, labels},
		[2]*ast.Term{kTCP, tcp},
		[2]*ast.Term{kPrincipal, str(r.Principal)},
		[2]*ast.Term{kSpiffe, str(spiffe)},
		[2]*ast.Term{kSrcNS, str(ns)},
		[2]*ast.Term{kSrcSA, str(saKey)},
		[2]*ast.Term{kSrcTD, str(td)},
		[2]*ast.Term{kSrcIP, str(r.SrcIP)},
		[2]*ast.Term{kRemoteIP, str(r.RemoteIP)},
		[2]*ast.Term{kDstIP, str(r.DstIP)},
		[2]*ast.Term{kDPort, dport},
		[2]*ast.Term{kSNI, str(r.SNI)},
	)
	if !r.TCP {
		hdrs := make([][2]*ast.Term, 0, len(r.Headers))
		for k, v := range r.Headers {
			hdrs = append(hdrs, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
		}
		pairs = append(pairs,
			[2]*ast.Term{kMethod, str(r.Method)},
			[2]*ast.Term{kPath, str(r.Path)},
			[2]*ast.Term{kHost, str(r.Host)},
			[2]*ast.Term{kHeaders, ast.ObjectTerm(hdrs...)},
		)
		if r.JWT != nil {
			f := r.JWT.GetFields()
			pairs = append(pairs, [2]*ast.Term{kJWT, ast.ObjectTerm(
				[2]*ast.Term{kIss, ast.StringTerm(f["iss"].GetStringValue())},
				[2]*ast.Term{kSub, ast.StringTerm(f["sub"].GetStringValue())},
				[2]*ast.Term{kClaims, structTerm(r.JWT)},
			)})
		}
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
