// Package secpolicy holds the one parser of the AuthorizationPolicy and
// PeerAuthentication values whose meaning both validation/ (webhook and
// `meshguard validate`) and policy/ (ext_authz compilation) depend on. Each
// function parses a value into the typed form the evaluator uses, and its
// error is the validation message, so a value validation accepts always
// compiles to exactly what was checked.
package secpolicy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Path template operators (Istio pkg/config/security/security.go).
const (
	MatchOneTemplate = "{*}"
	MatchAnyTemplate = "{**}"
)

// envoyLiteral is Envoy's uri_template literal character set (RFC 3986
// pchar without '*', source/extensions/path/uri_template_lib
// uri_template_internal.cc kLiteral), as a regex character-class body.
const envoyLiteral = `a-zA-Z0-9\-._~%!$&'()+,;:@=`

var validLiteral = regexp.MustCompile(`^[` + envoyLiteral + `]+$`)

// ContainsPathTemplate: the value is matched as an Envoy uri_template.
func ContainsPathTemplate(v string) bool {
	return strings.Contains(v, MatchOneTemplate) || strings.Contains(v, MatchAnyTemplate)
}

// envoyTemplate is Istio's matcher.PathTemplateMatcher rewrite of a
// template into the uri_template Envoy receives.
var envoyTemplate = strings.NewReplacer(MatchOneTemplate, "*", MatchAnyTemplate, "**")

// maxEnvoyTemplate is UriTemplateMatchConfig.path_template's max_len.
const maxEnvoyTemplate = 256

// CheckPath is Istio's CheckValidPathTemplate for one `paths`/`notPaths`
// value: '{' and '}' only as whole-segment operators; no operator after
// {**} (literal segments may follow); in a template every literal segment
// is of Envoy's literal character set. Beyond Istio, a template Envoy's
// uri_template refuses (parsePathPatternSyntax: a leading '/', no "//";
// path_template at most 256 characters), which istiod sends anyway and
// Envoy NACKs, is an error here.
func CheckPath(v string) error {
	tmpl := ContainsPathTemplate(v)
	if tmpl {
		switch {
		case !strings.HasPrefix(v, "/"):
			return fmt.Errorf("invalid or unsupported path %s: a path template must start with '/'", v)
		case strings.Contains(v, "//"):
			return fmt.Errorf("invalid or unsupported path %s: a path template must not contain \"//\"", v)
		}
		if n := len(envoyTemplate.Replace(v)); n > maxEnvoyTemplate {
			return fmt.Errorf("invalid or unsupported path %s: the uri_template Envoy receives is %d characters long, the limit is %d", v, n, maxEnvoyTemplate)
		}
	}
	anySeen := false
	for _, seg := range strings.Split(strings.Trim(v, "/"), "/") {
		switch {
		case seg == MatchOneTemplate || seg == MatchAnyTemplate:
			if anySeen {
				return fmt.Errorf("invalid or unsupported path %s: {**} is not the last operator", v)
			}
			anySeen = seg == MatchAnyTemplate
		case strings.ContainsAny(seg, "{}"):
			return fmt.Errorf("invalid or unsupported path %s: segment %q contains '{' or '}' outside a {*} or {**} operator", v, seg)
		case tmpl && !validLiteral.MatchString(seg):
			return fmt.Errorf("invalid or unsupported path %s: segment %q is not a valid literal (characters %s only)", v, seg, strings.ReplaceAll(envoyLiteral, `\`, ""))
		}
	}
	return nil
}

// PathTemplateRegex compiles a template value (CheckPath first) to the
// anchored regex Envoy's uri_template matcher uses on url_path: the path
// "/" + segments joined by "/", a literal matching itself, {*} one or more
// literal characters, {**} any run of literal characters and '/'.
func PathTemplateRegex(v string) (string, error) {
	if !ContainsPathTemplate(v) {
		return "", fmt.Errorf("path %s is not a path template", v)
	}
	if err := CheckPath(v); err != nil { // a leading '/' included
		return "", err
	}
	segs := strings.Split(v[1:], "/")
	parts := make([]string, len(segs))
	for i, s := range segs {
		switch s {
		case MatchOneTemplate:
			parts[i] = `[` + envoyLiteral + `]+`
		case MatchAnyTemplate:
			parts[i] = `[` + envoyLiteral + `/]*`
		default:
			parts[i] = regexp.QuoteMeta(s)
		}
	}
	return "^/" + strings.Join(parts, "/") + "$", nil
}

// ParsePort parses a `ports`/`destination.port` value: decimal 1-65535.
// (Istio also accepts 0, which never matches a request: docs/compatibility.md.)
func ParsePort(v string) (uint16, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port (%s): must be an integer in 1..65535", v)
	}
	return uint16(n), nil
}

// ParseCIDR parses an `ipBlocks`/`source.ip`/... value: an IP address (a
// single-address prefix) or a CIDR prefix.
func ParseCIDR(v string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(v, "/") {
		var err error
		if p, err = netip.ParsePrefix(v); err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR range (%s): must be an IP prefix such as 10.0.0.0/8", v)
		}
	} else {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad IP address (%s)", v)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		// Envoy keeps it an IPv6 range, which never contains an IPv4 peer
		// (CidrRange::isInRange compares versions); Go's and OPA's CIDR
		// checks would read it as IPv4. Refused rather than given either meaning.
		return netip.Prefix{}, fmt.Errorf("IPv4-mapped IPv6 address (%s): Envoy never matches it against an IPv4 peer; write the IPv4 form", v)
	}
	return p, nil
}

// ServiceAccount is a parsed `serviceAccounts` value.
type ServiceAccount struct{ Namespace, Name string }

// ParseServiceAccount parses "sa" (in policyNS) or "ns/sa": no wildcard,
// both parts non-empty, at most 320 characters.
func ParseServiceAccount(v, policyNS string) (ServiceAccount, error) {
	switch {
	case v == "":
		return ServiceAccount{}, fmt.Errorf("empty value not allowed")
	case len(v) > 320:
		return ServiceAccount{}, fmt.Errorf("service account is %d characters long, the limit is 320", len(v))
	case strings.Contains(v, "*"):
		return ServiceAccount{}, fmt.Errorf("wildcard is not supported in serviceAccounts")
	}
	ns, sa, found := strings.Cut(v, "/")
	if !found {
		ns, sa = policyNS, v
	} else if ns == "" || sa == "" || strings.Contains(sa, "/") {
		return ServiceAccount{}, fmt.Errorf("service account must be of the form <name> or <namespace>/<name>, both non-empty")
	}
	return ServiceAccount{Namespace: ns, Name: sa}, nil
}

// Regex is Istio's matcher over the peer principal
// (pilot/pkg/security/authz/model/generator.go serviceAccountRegex): any
// trust domain, "/ns/<ns>/", optional segments, "sa/<sa>", optional "/...".
// Namespace and name are quoted, as since istio/istio#59700 (CVE-2026-39350:
// unquoted, "cert-manager.io" also matched "cert-manager-io").
func (s ServiceAccount) Regex() string {
	return "^(?:spiffe://.+/ns/" + regexp.QuoteMeta(s.Namespace) + "/(.+/|)sa/" + regexp.QuoteMeta(s.Name) + "(/.+)?)$"
}

// NamespaceRegex is Istio's srcNamespaceGenerator regex over the principal:
// ".*/ns/<v>/.*", every '*' of v turned into ".*" and the rest of v quoted.
// Istio embedded v unquoted until its 1.29.3 / 1.28.7 security fix
// (istio/istio#59992: "a.b" also admitted a peer in namespace "aXb").
func NamespaceRegex(v string) string {
	parts := strings.Split(v, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return "^(?:.*/ns/" + strings.Join(parts, ".*") + "/.*)$"
}

// PrincipalSuffixRegex is Istio's matcher for a principal "*x" over the
// peer's full principal (pilot/pkg/security/authz/matcher/string.go
// StringMatcherWithPrefix): the regex "spiffe://.*x", matched as a whole as
// Envoy's safe_regex does, with x quoted as since Istio's 1.29.3 / 1.28.7
// security fix (istio/istio#59992: unquoted, "*/sa/my.app" also admitted
// "my-app").
func PrincipalSuffixRegex(v string) string {
	return "^(?:spiffe://.*" + regexp.QuoteMeta(strings.TrimPrefix(v, "*")) + ")$"
}

// CheckPortLevelPort checks a PeerAuthentication portLevelMtls key.
func CheckPortLevelPort(port uint32) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port must be between 1-65535")
	}
	return nil
}

// CheckTrustDomain checks a `trustDomains`/`source.trustDomain` value: no
// "/", at most one "*", only at the start or the end (Istio 1.30).
func CheckTrustDomain(v string) error {
	if v == "" {
		return fmt.Errorf("empty value not allowed")
	}
	if strings.Contains(v, "/") {
		return fmt.Errorf("trust domain must not contain \"/\"")
	}
	if n := strings.Count(v, "*"); n > 1 || (n == 1 && !strings.HasPrefix(v, "*") && !strings.HasSuffix(v, "*")) {
		return fmt.Errorf("trust domain may contain one wildcard \"*\", only at the start or the end")
	}
	return nil
}
