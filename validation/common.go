package validation

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	typev1beta1 "istio.io/api/type/v1beta1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Shared building blocks of Istio's checks (pkg/config/validation/agent/validation.go
// and pkg/config/validation/validation.go). Every helper records its problems in f
// under the path it is given and never stops at the first problem.

const (
	maxDomainLen = 255
	maxLabelLen  = 63
)

// dnsLabel is the DNS-1123 label syntax; Istio accepts upper case (agent/validation.go ValidateFQDN).
var dnsLabel = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// wildcardLabel is a first label of a wildcard domain: "*", "*foo", "*-foo" or a plain label.
var wildcardLabel = regexp.MustCompile(`^(\*|\*?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?|\*-[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$`)

// isDNSLabel reports whether s is a DNS-1123 label of at most 63 characters.
func isDNSLabel(s string) bool { return len(s) <= maxLabelLen && dnsLabel.MatchString(s) }

// isLowerDNSLabel is the Kubernetes flavour (lower case), used for namespaces and subset names.
func isLowerDNSLabel(s string) bool { return len(k8svalidation.IsDNS1123Label(s)) == 0 }

// domainProblem returns why host is not a valid FQDN (labels after an optional
// wildcard first label when wildcard is true), or "" when it is valid.
func domainProblem(host string, wildcard bool) string {
	if host == "" {
		return "empty domain name not allowed"
	}
	if len(host) > maxDomainLen {
		return fmt.Sprintf("domain name is too long: %d characters, the limit is %d", len(host), maxDomainLen)
	}
	trimmed := strings.TrimSuffix(host, ".")
	if trimmed == "" {
		return "domain name must not be just a dot"
	}
	labels := strings.Split(trimmed, ".")
	for i, l := range labels {
		if i == 0 && wildcard {
			if len(l) > maxLabelLen || !wildcardLabel.MatchString(l) {
				return fmt.Sprintf("label %q is invalid: only the first label may contain a wildcard, as \"*\", \"*foo\" or \"*-foo\"", l)
			}
			continue
		}
		if l == "" {
			return "domain name has an empty label"
		}
		if len(l) > maxLabelLen {
			return fmt.Sprintf("label %q is longer than %d characters", l, maxLabelLen)
		}
		if !dnsLabel.MatchString(l) {
			return fmt.Sprintf("label %q is invalid: must consist of alphanumeric characters or '-', and start and end with an alphanumeric character", l)
		}
	}
	// A numeric top-level label means this is an IP address, not a name
	// (Istio's ValidateDNS1123Labels: the last label as written, so "123."
	// passes; a lone wildcard-capable label is not checked, as in its
	// ValidateWildcardDomain, but a lone FQDN label is).
	raw := strings.Split(host, ".")
	if top := raw[len(raw)-1]; (len(labels) > 1 || !wildcard) && isAllDigits(top) {
		return fmt.Sprintf("top level domain %q cannot be all-numeric", top)
	}
	return ""
}

func isAllDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// validateFQDN checks a fully qualified domain name (Istio's agent.ValidateFQDN): 1..255
// characters, DNS-1123 labels of at most 63 characters, optional trailing dot,
// top-level label not all digits (so bare IPv4 addresses fail).
func validateFQDN(p *field.Path, host string, f *Findings) {
	if msg := domainProblem(host, false); msg != "" {
		f.Error(p, host, "invalid domain name: "+msg)
	}
}

// validateWildcardDomain checks a host that may start with a wildcard label
// ("*", "*.example.com", "*foo.example.com", "*-foo.example.com").
func validateWildcardDomain(p *field.Path, host string, f *Findings) {
	if msg := domainProblem(host, true); msg != "" {
		f.Error(p, host, "invalid domain name: "+msg)
	}
}

// isPartialWildcard reports a wildcard other than a bare "*" or a leading "*.", as Istio defines it.
func isPartialWildcard(host string) bool {
	if host == "*" || !strings.Contains(host, "*") {
		return false
	}
	return !strings.HasPrefix(host, "*.") || strings.Contains(host[2:], "*")
}

// validatePort checks a port number: 1..65535. Port 0 is rejected, which is
// stricter than Istio's AuthorizationPolicy checks (docs/compatibility.md
// "Shared building blocks").
func validatePort(p *field.Path, port uint32, f *Findings) {
	if port < 1 || port > 65535 {
		f.Error(p, int64(port), fmt.Sprintf("port number %d must be in the range 1..65535", port))
	}
}

// validatePortName checks a port name: a non-empty DNS-1123 label.
func validatePortName(p *field.Path, name string, f *Findings) {
	if name == "" {
		f.Required(p, "port name must not be empty")
		return
	}
	if !isDNSLabel(name) {
		f.Error(p, name, "invalid port name: must be a DNS-1123 label (alphanumerics and '-', at most 63 characters)")
	}
}

// validateLabels checks label keys (optional DNS subdomain prefix and "/",
// then a name of at most 63 characters) and values (qualified-name syntax, may
// be empty, at most 63 characters: Istio does not enforce the value length,
// see docs/compatibility.md "Shared building blocks").
func validateLabels(p *field.Path, labels map[string]string, f *Findings) {
	for _, k := range sortedKeys(labels) {
		v := labels[k]
		kp := p.Key(k)
		if k == "" {
			f.Error(kp, k, "invalid label key: must not be empty")
		} else if errs := k8svalidation.IsQualifiedName(k); len(errs) > 0 {
			f.Error(kp, k, fmt.Sprintf("invalid tag key: %q: %s", k, strings.Join(errs, "; ")))
		}
		if errs := k8svalidation.IsValidLabelValue(v); len(errs) > 0 {
			f.Error(kp, v, fmt.Sprintf("invalid tag value: %q: %s", v, strings.Join(errs, "; ")))
		}
	}
}

// validateSelectorLabels applies Istio's selector rules to a label
// map (networking workloadSelector.labels or type/v1beta1 matchLabels): empty
// key and "*" anywhere are errors, no labels at all is a warning, and every
// key and value must be a valid label. p is the path of the label map.
func validateSelectorLabels(p *field.Path, labels map[string]string, f *Findings) {
	if len(labels) == 0 {
		f.Warn(p, nil, "workload selector specified without labels; it selects every workload in the namespace")
		return
	}
	checkSelectorEntries(p, labels, f)
}

// checkSelectorEntries: no empty keys, no wildcards, valid label syntax.
func checkSelectorEntries(p *field.Path, labels map[string]string, f *Findings) {
	for _, k := range sortedKeys(labels) {
		v := labels[k]
		kp := p.Key(k)
		switch {
		case k == "":
			f.Error(kp, k, "empty key is not supported in selector")
			continue
		case strings.Contains(k, "*") || strings.Contains(v, "*"):
			f.Error(kp, v, fmt.Sprintf("wildcard is not supported in selector: %q", k+"="+v))
			continue
		}
		validateLabels(p, map[string]string{k: v}, f)
	}
}

// validateWorkloadSelector checks a type/v1beta1 selector (matchLabels).
func validateWorkloadSelector(p *field.Path, sel *typev1beta1.WorkloadSelector, f *Findings) {
	if sel == nil {
		return
	}
	validateSelectorLabels(p.Child("matchLabels"), sel.GetMatchLabels(), f)
}

// validateDuration checks a duration: valid, at least 1ms and a whole number
// of milliseconds (Istio's agent.ValidateDuration).
func validateDuration(p *field.Path, d *durationpb.Duration, f *Findings) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		f.Error(p, d.String(), "invalid duration: "+err.Error())
		return
	}
	dur := d.AsDuration()
	if dur < time.Millisecond {
		f.Error(p, dur.String(), "duration must be greater than 1ms")
		return
	}
	if dur%time.Millisecond != 0 {
		f.Error(p, dur.String(), "only durations to ms precision are supported")
	}
}

// validateCIDR accepts an IP address or a CIDR prefix.
func validateCIDR(p *field.Path, s string, f *Findings) {
	if isIPOrCIDR(s) {
		return
	}
	f.Error(p, s, "must be an IP address or a CIDR range (e.g. 10.0.0.0/8)")
}

func isIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validateIPAddress accepts an IPv4 or IPv6 address (no CIDR).
func validateIPAddress(p *field.Path, s string, f *Findings) {
	if !isIP(s) {
		f.Error(p, s, "must be a valid IPv4 or IPv6 address")
	}
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validateNamespaceHost checks the "namespace/host" form used by Sidecar
// egress hosts (Istio's ValidateNamespaceSlashWildcardHostname): namespace "*", ".", "~" or a DNS label;
// host "*" or a wildcard domain containing a dot, without partial wildcards.
func validateNamespaceHost(p *field.Path, h string, f *Findings) {
	checkNamespaceHost(p, h, false, true, f)
}

// validateGatewayNamespaceHost is the Gateway server variant: no "~"
// namespace, a bare host means "*/host", and the host may be an IP address.
func validateGatewayNamespaceHost(p *field.Path, h string, f *Findings) {
	checkNamespaceHost(p, h, true, false, f)
}

// validateGatewayAPINamespaceHost is the Gateway server variant with Gateway API
// semantics (kind_gateway.go): "~" is a namespace too (Istio's
// ValidateNamespaceSlashWildcardHostname with gatewaySemantics).
func validateGatewayAPINamespaceHost(p *field.Path, h string, f *Findings) {
	checkNamespaceHost(p, h, true, true, f)
}

// checkNamespaceHost: gateway selects the Gateway server form (a bare host is
// "*/host", an IP address is a host); allowTilde accepts "~" as the namespace.
func checkNamespaceHost(p *field.Path, h string, gateway, allowTilde bool, f *Findings) {
	ns, host, found := strings.Cut(h, "/")
	if !found {
		if !gateway {
			f.Error(p, h, "host must be of the form namespace/dnsName")
			return
		}
		ns, host = "*", h
	}
	if ns == "" || host == "" {
		f.Error(p, h, "namespace and dnsName in a host entry cannot be empty")
		return
	}
	switch {
	case ns == "*" || ns == ".":
	case allowTilde && ns == "~": // exactly "~" (Istio's ValidateNamespaceSlashWildcardHostname); "~prod" is no namespace
	case !isLowerDNSLabel(ns):
		f.Error(p, h, fmt.Sprintf("invalid namespace %q: must be \"*\", \".\"%s or a DNS-1123 label", ns, map[bool]string{true: ", \"~\"", false: ""}[allowTilde]))
		return
	}
	if host == "*" {
		return
	}
	// The short-name rule comes first, as in Istio's
	// validateSidecarOrGatewayHostnamePart, so a gateway may name an IPv4
	// host but not an IPv6 one.
	if !strings.Contains(host, ".") {
		f.Error(p, h, fmt.Sprintf("short names (non FQDN) are not allowed: %q", host))
		return
	}
	if gateway && isIP(host) {
		return
	}
	// Both problems are reported, as Istio's validateSidecarOrGatewayHostnamePart
	// does: "foo.*.com" is a partial wildcard and no domain name either.
	if isPartialWildcard(host) {
		f.Error(p, h, fmt.Sprintf("partial wildcard %q not allowed: use \"*\" or a leading \"*.\"", host))
	}
	if msg := domainProblem(host, true); msg != "" {
		f.Error(p, h, "invalid domain name: "+msg)
	}
}

// sortedKeys gives deterministic iteration (stable messages and tests).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validateExportTo checks an exportTo list (Istio's validateExportTo; VirtualService,
// DestinationRule, ServiceEntry): each entry ".", "*" or a DNS-label
// namespace; "~" only on a ServiceEntry and then alone; no duplicates ("." and
// the object's own namespace are the same); "*" only alone.
func validateExportTo(p *field.Path, exportTo []string, namespace string, isServiceEntry bool, f *Findings) {
	if len(exportTo) == 0 {
		return
	}
	seen := map[string]int{}
	for i, e := range exportTo {
		ip := p.Index(i)
		key := e
		switch {
		case e == "." || e == namespace:
			key = "."
		case e == "*":
			if len(exportTo) > 1 {
				f.Error(ip, e, "exportTo \"*\" must be the only entry")
			}
		case e == "~":
			if !isServiceEntry {
				f.Error(ip, e, "exportTo \"~\" is only allowed on a ServiceEntry")
			} else if len(exportTo) > 1 {
				f.Error(ip, e, "exportTo \"~\" must be the only entry")
			}
		case !isLowerDNSLabel(e):
			f.Error(ip, e, "exportTo entry must be \".\", \"*\" or a namespace name (DNS-1123 label)")
			continue
		}
		if prev, dup := seen[key]; dup {
			f.Error(ip, e, fmt.Sprintf("duplicate exportTo entry: same as entry %d", prev))
			continue
		}
		seen[key] = i
	}
}
