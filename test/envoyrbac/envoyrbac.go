//lint:file-ignore SA1019 Istio's goldens spell matchers with fields Envoy has since deprecated (HeaderMatcher exact_match/prefix_match/suffix_match, RBAC metadata, source_ip), which the evaluator must read.

// Package envoyrbac is an independent, test-only evaluator of Envoy's RBAC
// filters (envoy.filters.http.rbac, envoy.filters.network.rbac) as Istio
// configures them. It reads the RBAC filter configs Istio's authorization
// builder writes (pilot/pkg/security/authz/builder, the golden *-out.yaml
// files of builder_test.go) with go-control-plane's own types, and decides a
// request the way Envoy's RBAC engine does, written from Envoy's documented
// semantics of envoy.config.rbac.v3 (rbac.proto: a Policy matches when one
// of its permissions and one of its principals match), type.matcher.v3
// (string.proto, value.proto, metadata.proto, path.proto, filter_state.proto)
// and config.route.v3 HeaderMatcher (route_components.proto). It shares no
// code with meshguard's policy package: it is the oracle that package is
// compared with (policy/istio_builder_golden_test.go).
//
// Anything the evaluator does not know (a permission or principal kind, a
// matcher field, a CEL condition, a filter state key) is an error, never a
// silent "no match".
package envoyrbac

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// Request is what Envoy knows of a request or connection when its RBAC
// filter runs.
type Request struct {
	// TCP: a connection seen by the network RBAC filter (no HTTP attributes).
	TCP bool
	// Principal is the peer certificate's URI SAN ("spiffe://..."); "" for a
	// plaintext connection. Istio's workload certificates carry one URI SAN.
	Principal string
	// SrcIP is the downstream connection's address (direct_remote_ip);
	// RemoteIP the client address Envoy derives from X-Forwarded-For
	// (remote_ip; for TCP the connection's address).
	SrcIP, RemoteIP string
	DstIP           string
	DstPort         uint32
	SNI             string
	// HTTP only. Path may carry a query; url_path matches without it.
	Method, Path, Authority string
	// Headers by lower-case name, each one value as Envoy joins repeated
	// headers (',').
	Headers map[string]string
	// JWT is the verified token payload (nil: no token). Istio's authn filter
	// turns it into the istio_authn filter metadata (IstioAuthnMetadata).
	JWT *structpb.Struct
}

// Filter is one RBAC filter of the chain: its enforced rules (nil when the
// filter has only shadow rules) and its shadow rules, which never decide.
type Filter struct {
	Name   string
	Rules  *rbacconfig.RBAC
	Shadow *rbacconfig.RBAC
}

// Load decodes one golden file: an HttpFilter (http) or a listener Filter
// (tcp) whose typed_config is the RBAC filter config, through YAML -> JSON
// -> protojson with the Any types registered by this package's imports.
func Load(data []byte, tcp bool) (*Filter, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	f := &Filter{}
	opts := protojson.UnmarshalOptions{DiscardUnknown: false}
	if tcp {
		var lf listenerv3.Filter
		if err := opts.Unmarshal(js, &lf); err != nil {
			return nil, fmt.Errorf("network filter: %w", err)
		}
		f.Name = lf.GetName()
		var cfg netrbac.RBAC
		if err := lf.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
			return nil, fmt.Errorf("network filter %s: typed_config: %w", f.Name, err)
		}
		f.Rules, f.Shadow = cfg.GetRules(), cfg.GetShadowRules()
		if cfg.GetMatcher() != nil || cfg.GetShadowMatcher() != nil {
			return nil, fmt.Errorf("network filter %s: matcher trees are not supported", f.Name)
		}
		return f, nil
	}
	var hf hcmv3.HttpFilter
	if err := opts.Unmarshal(js, &hf); err != nil {
		return nil, fmt.Errorf("http filter: %w", err)
	}
	f.Name = hf.GetName()
	var cfg httprbac.RBAC
	if err := hf.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		return nil, fmt.Errorf("http filter %s: typed_config: %w", f.Name, err)
	}
	if cfg.GetMatcher() != nil || cfg.GetShadowMatcher() != nil {
		return nil, fmt.Errorf("http filter %s: matcher trees are not supported", f.Name)
	}
	f.Rules, f.Shadow = cfg.GetRules(), cfg.GetShadowRules()
	return f, nil
}

// Allowed runs the filters as Envoy runs a filter chain: the request passes
// only if every filter lets it through. A filter with enforced rules of
// action ALLOW lets a request through iff one of its policies matches, of
// action DENY iff none matches; LOG (Istio's AUDIT) always does; shadow
// rules are evaluated by Envoy for stats and metadata only (rbac.proto
// shadow_rules) and never decide. With Istio's filters (one per action,
// DENY before ALLOW: builder.go) this is "denied if a DENY policy matches;
// else, with an ALLOW filter, allowed iff one of its policies matches".
func Allowed(filters []*Filter, r *Request) (bool, error) {
	for _, f := range filters {
		if f.Rules == nil {
			continue
		}
		matched, _, err := MatchPolicies(f.Rules, r)
		if err != nil {
			return false, fmt.Errorf("%s: %w", f.Name, err)
		}
		switch f.Rules.GetAction() {
		case rbacconfig.RBAC_ALLOW:
			if !matched {
				return false, nil
			}
		case rbacconfig.RBAC_DENY:
			if matched {
				return false, nil
			}
		case rbacconfig.RBAC_LOG:
		default:
			return false, fmt.Errorf("%s: action %v not supported", f.Name, f.Rules.GetAction())
		}
	}
	return true, nil
}

// Reports are what a filter chain records without deciding: the policies
// of the shadow rules that match (Envoy evaluates shadow_rules for stats and
// dynamic metadata only: rbac.proto shadow_rules, Istio's dry-run
// policies), split by the shadow rules' action, and the policies of enforced
// rules with action LOG that match (Istio's AUDIT: the LOG action sets
// access_log_hint and never denies, rbac.proto RBAC.Action LOG). Names are
// the policy keys as Istio's builder writes them
// ("ns[<ns>]-policy[<name>]-rule[<i>]"), sorted, over all filters.
type Reports struct {
	ShadowAllow, ShadowDeny, Log []string
}

// Report evaluates every filter's shadow rules and LOG rules for r.
// Envoy's shadow engine takes the actions ALLOW and DENY only (Istio builds
// no other); anything else is an error.
func Report(filters []*Filter, r *Request) (*Reports, error) {
	out := &Reports{}
	for _, f := range filters {
		if f.Shadow != nil {
			_, hit, err := MatchPolicies(f.Shadow, r)
			if err != nil {
				return nil, fmt.Errorf("%s: shadow rules: %w", f.Name, err)
			}
			switch f.Shadow.GetAction() {
			case rbacconfig.RBAC_ALLOW:
				out.ShadowAllow = append(out.ShadowAllow, hit...)
			case rbacconfig.RBAC_DENY:
				out.ShadowDeny = append(out.ShadowDeny, hit...)
			default:
				return nil, fmt.Errorf("%s: shadow rules: action %v not supported", f.Name, f.Shadow.GetAction())
			}
		}
		if f.Rules != nil && f.Rules.GetAction() == rbacconfig.RBAC_LOG {
			_, hit, err := MatchPolicies(f.Rules, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			out.Log = append(out.Log, hit...)
		}
	}
	sort.Strings(out.ShadowAllow)
	sort.Strings(out.ShadowDeny)
	sort.Strings(out.Log)
	return out, nil
}

// MatchPolicies reports whether any policy of rules matches, and the names
// of those that do (sorted). Every policy is evaluated, so an unsupported
// construct anywhere is an error whatever the request.
func MatchPolicies(rules *rbacconfig.RBAC, r *Request) (bool, []string, error) {
	names := make([]string, 0, len(rules.GetPolicies()))
	for n := range rules.GetPolicies() {
		names = append(names, n)
	}
	sort.Strings(names)
	var hit []string
	for _, n := range names {
		p := rules.GetPolicies()[n]
		if p.GetCondition() != nil || p.GetCheckedCondition() != nil || p.GetCelConfig() != nil {
			return false, nil, fmt.Errorf("policy %s: CEL conditions are not supported", n)
		}
		perm, err := anyPermission(p.GetPermissions(), r)
		if err != nil {
			return false, nil, fmt.Errorf("policy %s: permissions: %w", n, err)
		}
		prin, err := anyPrincipal(p.GetPrincipals(), r)
		if err != nil {
			return false, nil, fmt.Errorf("policy %s: principals: %w", n, err)
		}
		if perm && prin {
			hit = append(hit, n)
		}
	}
	return len(hit) > 0, hit, nil
}

// anyPermission: a list of permissions is OR'ed; every element is evaluated
// (no short cut) so unsupported constructs always surface.
func anyPermission(ps []*rbacconfig.Permission, r *Request) (bool, error) {
	out := false
	for _, p := range ps {
		m, err := permission(p, r)
		if err != nil {
			return false, err
		}
		out = out || m
	}
	return out, nil
}

func anyPrincipal(ps []*rbacconfig.Principal, r *Request) (bool, error) {
	out := false
	for _, p := range ps {
		m, err := principal(p, r)
		if err != nil {
			return false, err
		}
		out = out || m
	}
	return out, nil
}

func permission(p *rbacconfig.Permission, r *Request) (bool, error) {
	switch rule := p.GetRule().(type) {
	case *rbacconfig.Permission_AndRules:
		out := true
		for _, q := range rule.AndRules.GetRules() {
			m, err := permission(q, r)
			if err != nil {
				return false, err
			}
			out = out && m
		}
		return out, nil
	case *rbacconfig.Permission_OrRules:
		return anyPermission(rule.OrRules.GetRules(), r)
	case *rbacconfig.Permission_NotRule:
		m, err := permission(rule.NotRule, r)
		return !m, err
	case *rbacconfig.Permission_Any:
		if !rule.Any {
			return false, fmt.Errorf("any: false is not a valid permission")
		}
		return true, nil
	case *rbacconfig.Permission_Header:
		if r.TCP {
			return false, fmt.Errorf("header %q on a TCP connection", rule.Header.GetName())
		}
		return header(rule.Header, r)
	case *rbacconfig.Permission_UrlPath:
		if r.TCP {
			return false, fmt.Errorf("url_path on a TCP connection")
		}
		return urlPath(rule.UrlPath, r)
	case *rbacconfig.Permission_DestinationIp:
		return cidr(rule.DestinationIp, r.DstIP)
	case *rbacconfig.Permission_DestinationPort:
		return r.DstPort == rule.DestinationPort, nil
	case *rbacconfig.Permission_DestinationPortRange:
		// Int32Range: [start, end).
		pr := rule.DestinationPortRange
		return int64(r.DstPort) >= int64(pr.GetStart()) && int64(r.DstPort) < int64(pr.GetEnd()), nil
	case *rbacconfig.Permission_RequestedServerName:
		// Envoy: the SNI of the downstream TLS connection, "" when none.
		return stringMatch(rule.RequestedServerName, r.SNI)
	case *rbacconfig.Permission_Metadata:
		return metadata(rule.Metadata, r)
	default:
		return false, fmt.Errorf("permission %T not supported", rule)
	}
}

func principal(p *rbacconfig.Principal, r *Request) (bool, error) {
	switch id := p.GetIdentifier().(type) {
	case *rbacconfig.Principal_AndIds:
		out := true
		for _, q := range id.AndIds.GetIds() {
			m, err := principal(q, r)
			if err != nil {
				return false, err
			}
			out = out && m
		}
		return out, nil
	case *rbacconfig.Principal_OrIds:
		return anyPrincipal(id.OrIds.GetIds(), r)
	case *rbacconfig.Principal_NotId:
		m, err := principal(id.NotId, r)
		return !m, err
	case *rbacconfig.Principal_Any:
		if !id.Any {
			return false, fmt.Errorf("any: false is not a valid principal")
		}
		return true, nil
	case *rbacconfig.Principal_Authenticated_:
		// rbac.proto Authenticated: only an authenticated (TLS with a peer
		// certificate) connection matches; principal_name is matched against
		// the URI SANs, then DNS SANs, then the subject; without
		// principal_name any authenticated connection matches.
		if r.Principal == "" {
			return false, nil
		}
		if id.Authenticated.GetPrincipalName() == nil {
			return true, nil
		}
		return stringMatch(id.Authenticated.GetPrincipalName(), r.Principal)
	case *rbacconfig.Principal_DirectRemoteIp:
		return cidr(id.DirectRemoteIp, r.SrcIP)
	case *rbacconfig.Principal_SourceIp:
		// Deprecated alias of direct_remote_ip (rbac.proto).
		return cidr(id.SourceIp, r.SrcIP)
	case *rbacconfig.Principal_RemoteIp:
		if r.TCP {
			return cidr(id.RemoteIp, r.SrcIP)
		}
		return cidr(id.RemoteIp, r.RemoteIP)
	case *rbacconfig.Principal_Header:
		if r.TCP {
			return false, fmt.Errorf("header %q on a TCP connection", id.Header.GetName())
		}
		return header(id.Header, r)
	case *rbacconfig.Principal_UrlPath:
		if r.TCP {
			return false, fmt.Errorf("url_path on a TCP connection")
		}
		return urlPath(id.UrlPath, r)
	case *rbacconfig.Principal_Metadata:
		return metadata(id.Metadata, r)
	case *rbacconfig.Principal_FilterState:
		return filterState(id.FilterState, r)
	default:
		return false, fmt.Errorf("principal %T not supported", id)
	}
}

// cidr: CidrRange address_prefix/prefix_len; an address of the other family
// never matches; an absent address never matches.
func cidr(c *corev3.CidrRange, addr string) (bool, error) {
	pfx, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil {
		return false, fmt.Errorf("cidr %q: %w", c.GetAddressPrefix(), err)
	}
	bits := int(c.GetPrefixLen().GetValue())
	if bits > pfx.BitLen() {
		return false, fmt.Errorf("cidr %s/%d: prefix too long", pfx, bits)
	}
	if addr == "" {
		return false, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false, fmt.Errorf("request address %q: %w", addr, err)
	}
	if a.BitLen() != pfx.BitLen() {
		return false, nil
	}
	p, err := pfx.Prefix(bits)
	if err != nil {
		return false, err
	}
	return p.Contains(a), nil
}

// httpHeader is the value Envoy's HeaderMatcher sees: pseudo-headers from
// the request line, other headers by lower-case name (Envoy's header map is
// case-insensitive; LowerCaseString names).
func httpHeader(r *Request, name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":method":
		return r.Method, r.Method != ""
	case ":path":
		return r.Path, r.Path != ""
	case ":authority", "host":
		return r.Authority, r.Authority != ""
	}
	v, ok := r.Headers[strings.ToLower(name)]
	return v, ok
}

// header: config.route.v3.HeaderMatcher. A missing header matches only
// present_match: false; invert_match and treat_missing_header_as_empty are
// refused (Istio's builder sets neither).
func header(h *routev3.HeaderMatcher, r *Request) (bool, error) {
	if h.GetInvertMatch() || h.GetTreatMissingHeaderAsEmpty() {
		return false, fmt.Errorf("header %q: invert_match/treat_missing_header_as_empty not supported", h.GetName())
	}
	v, present := httpHeader(r, h.GetName())
	switch m := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		return present == m.PresentMatch, nil
	case *routev3.HeaderMatcher_ExactMatch:
		return present && v == m.ExactMatch, nil
	case *routev3.HeaderMatcher_PrefixMatch:
		return present && strings.HasPrefix(v, m.PrefixMatch), nil
	case *routev3.HeaderMatcher_SuffixMatch:
		return present && strings.HasSuffix(v, m.SuffixMatch), nil
	case *routev3.HeaderMatcher_ContainsMatch:
		return present && strings.Contains(v, m.ContainsMatch), nil
	case *routev3.HeaderMatcher_SafeRegexMatch:
		if !present {
			return false, nil
		}
		return regexFull(m.SafeRegexMatch, v)
	case *routev3.HeaderMatcher_StringMatch:
		if !present {
			return false, nil
		}
		return stringMatch(m.StringMatch, v)
	default:
		return false, fmt.Errorf("header %q: match %T not supported", h.GetName(), m)
	}
}

// urlPath: PathMatcher matches the path without its query string (and
// fragment).
func urlPath(p *matcherv3.PathMatcher, r *Request) (bool, error) {
	path := r.Path
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if p.GetPath() == nil {
		return false, fmt.Errorf("url_path: rule %T not supported", p.GetRule())
	}
	return stringMatch(p.GetPath(), path)
}

// stringMatch: type.matcher.v3.StringMatcher. ignore_case applies to exact,
// prefix, suffix and contains (ASCII case folding) and not to safe_regex.
func stringMatch(m *matcherv3.StringMatcher, v string) (bool, error) {
	fold := func(s string) string {
		if m.GetIgnoreCase() {
			return asciiLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return fold(v) == fold(p.Exact), nil
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(fold(v), fold(p.Prefix)), nil
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(fold(v), fold(p.Suffix)), nil
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(fold(v), fold(p.Contains)), nil
	case *matcherv3.StringMatcher_SafeRegex:
		if m.GetIgnoreCase() {
			return false, fmt.Errorf("ignore_case with safe_regex is rejected by Envoy")
		}
		return regexFull(p.SafeRegex, v)
	default:
		return false, fmt.Errorf("string matcher %T not supported", p)
	}
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// regexFull: RegexMatcher (RE2; Go's regexp is RE2 syntax) against the whole
// value, as Envoy's safe_regex matchers match.
func regexFull(m *matcherv3.RegexMatcher, v string) (bool, error) {
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		return false, fmt.Errorf("regex %q: %w", m.GetRegex(), err)
	}
	return re.MatchString(v), nil
}

// metadata: MetadataMatcher over the request's dynamic metadata. Only
// Istio's istio_authn namespace exists for these requests (IstioAuthnMetadata);
// any other filter namespace (the experimental.envoy.filters.* keys) is
// empty, so its path yields no value.
func metadata(m *matcherv3.MetadataMatcher, r *Request) (bool, error) {
	var ns *structpb.Struct
	if m.GetFilter() == "istio_authn" {
		if len(m.GetPath()) == 0 || !istioAuthnKeys[m.GetPath()[0].GetKey()] {
			return false, fmt.Errorf("istio_authn metadata %v: key not modelled", m.GetPath())
		}
		ns = IstioAuthnMetadata(r)
	}
	var v *structpb.Value
	if ns != nil {
		v = structpb.NewStructValue(ns)
		for _, seg := range m.GetPath() {
			k, ok := seg.GetSegment().(*matcherv3.MetadataMatcher_PathSegment_Key)
			if !ok {
				return false, fmt.Errorf("metadata path segment %T not supported", seg.GetSegment())
			}
			s := v.GetStructValue()
			if s == nil {
				v = nil
				break
			}
			v = s.GetFields()[k.Key]
			if v == nil {
				break
			}
		}
	}
	out, err := valueMatch(m.GetValue(), v)
	if err != nil {
		return false, fmt.Errorf("metadata %s%v: %w", m.GetFilter(), m.GetPath(), err)
	}
	if m.GetInvert() {
		return !out, nil
	}
	return out, nil
}

// valueMatch: type.matcher.v3.ValueMatcher; v nil is a missing value, which
// matches nothing but present_match: false.
func valueMatch(m *matcherv3.ValueMatcher, v *structpb.Value) (bool, error) {
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.ValueMatcher_PresentMatch:
		return (v != nil) == p.PresentMatch, nil
	case *matcherv3.ValueMatcher_StringMatch:
		s, ok := v.GetKind().(*structpb.Value_StringValue)
		if v == nil || !ok {
			return false, nil
		}
		return stringMatch(p.StringMatch, s.StringValue)
	case *matcherv3.ValueMatcher_BoolMatch:
		b, ok := v.GetKind().(*structpb.Value_BoolValue)
		return v != nil && ok && b.BoolValue == p.BoolMatch, nil
	case *matcherv3.ValueMatcher_NullMatch_:
		_, ok := v.GetKind().(*structpb.Value_NullValue)
		return v != nil && ok, nil
	case *matcherv3.ValueMatcher_ListMatch:
		l, ok := v.GetKind().(*structpb.Value_ListValue)
		if v == nil || !ok {
			return false, nil
		}
		one := p.ListMatch.GetOneOf()
		if one == nil {
			return false, fmt.Errorf("list_match without one_of")
		}
		out := false
		for _, e := range l.ListValue.GetValues() {
			m, err := valueMatch(one, e)
			if err != nil {
				return false, err
			}
			out = out || m
		}
		return out, nil
	case *matcherv3.ValueMatcher_OrMatch:
		out := false
		for _, q := range p.OrMatch.GetValueMatchers() {
			m, err := valueMatch(q, v)
			if err != nil {
				return false, err
			}
			out = out || m
		}
		return out, nil
	default:
		return false, fmt.Errorf("value matcher %T not supported", p)
	}
}

// filterState: the only key Istio's builder matches is the peer principal
// its metadata exchange stores (io.istio.peer_principal), the full
// "spiffe://..." identity of the peer certificate; absent on plaintext.
func filterState(m *matcherv3.FilterStateMatcher, r *Request) (bool, error) {
	if m.GetKey() != "io.istio.peer_principal" {
		return false, fmt.Errorf("filter_state key %q not supported", m.GetKey())
	}
	sm := m.GetStringMatch()
	if sm == nil {
		return false, fmt.Errorf("filter_state %q: matcher %T not supported", m.GetKey(), m.GetMatcher())
	}
	if r.Principal == "" {
		return false, nil
	}
	return stringMatch(sm, r.Principal)
}

// istioAuthnKeys are the istio_authn keys IstioAuthnMetadata models; a
// matcher on another key is an error.
var istioAuthnKeys = map[string]bool{"source.principal": true, "request.auth.principal": true,
	"request.auth.audiences": true, "request.auth.presenter": true, "request.auth.claims": true}

// IstioAuthnMetadata is the istio_authn filter metadata Istio's authn filter
// (istio/proxy src/envoy/http/authn) writes for the golden matchers to read:
// source.principal, the peer's identity (without the "spiffe://" scheme);
// from the JWT payload
// (authn_utils.cc AuthnUtils::ProcessJwtPayload) the claims, each string
// claim as a list of one string and each string list as itself, every other
// claim left out; request.auth.principal "<iss>/<sub>" (the first value of
// each) when both claims are there; request.auth.presenter the azp claim;
// request.auth.audiences the first audience (not exercised by the requests
// compared). The requests compared stay where that and the jwt_authn
// payload meshguard reads decide alike (string claims, a non-empty sub):
// policy/istio_builder_golden_test.go.
func IstioAuthnMetadata(r *Request) *structpb.Struct {
	f := map[string]*structpb.Value{}
	// Utils::GetPrincipal (istio/proxy src/envoy/utils/utils.cc): the peer's
	// URI SAN without a leading "spiffe://", any other SAN as it is.
	if r.Principal != "" {
		id, _ := strings.CutPrefix(r.Principal, "spiffe://")
		f["source.principal"] = structpb.NewStringValue(id)
	}
	if r.JWT != nil {
		claims := claimLists(r.JWT)
		first := func(k string) (string, bool) {
			vs := claims.GetFields()[k].GetListValue().GetValues()
			if len(vs) == 0 {
				return "", false
			}
			return vs[0].GetStringValue(), true
		}
		iss, okIss := first("iss")
		sub, okSub := first("sub")
		if okIss && okSub {
			f["request.auth.principal"] = structpb.NewStringValue(iss + "/" + sub)
		}
		if aud, ok := first("aud"); ok {
			f["request.auth.audiences"] = structpb.NewStringValue(aud)
		}
		if azp, ok := first("azp"); ok {
			f["request.auth.presenter"] = structpb.NewStringValue(azp)
		}
		f["request.auth.claims"] = structpb.NewStructValue(claims)
	}
	return &structpb.Struct{Fields: f}
}

func claimLists(s *structpb.Struct) *structpb.Struct {
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range s.GetFields() {
		switch x := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			out.Fields[k] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		case *structpb.Value_ListValue:
			// ExtractStringList: getStringArray throws unless every element is
			// a string, and then nothing is extracted.
			all := true
			for _, e := range x.ListValue.GetValues() {
				if _, ok := e.GetKind().(*structpb.Value_StringValue); !ok {
					all = false
				}
			}
			if all && len(x.ListValue.GetValues()) > 0 {
				out.Fields[k] = v
			}
		}
	}
	return out
}
