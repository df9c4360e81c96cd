package validation

import (
	"fmt"
	"strings"

	"istio.io/api/label"
	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateServiceEntry implements Istio's ValidateServiceEntry
// (pkg/config/validation/validation.go).
func validateServiceEntry(meta metav1.ObjectMeta, se *networking.ServiceEntry, f *Findings) {
	sp := field.NewPath("spec")
	res := se.GetResolution()

	khNetworkingSelector(sp.Child("workloadSelector"), se.GetWorkloadSelector(), "service entry", f)
	if se.GetWorkloadSelector() != nil && len(se.GetEndpoints()) > 0 {
		f.Error(sp, nil, "only one of WorkloadSelector or Endpoints can be set")
	}

	seHosts(sp.Child("hosts"), se, f)
	seAddresses(sp.Child("addresses"), se, f)
	servicePorts := sePorts(sp.Child("ports"), se, seAutoAllocates(meta, se), f)

	ep := sp.Child("endpoints")
	switch res {
	case networking.ServiceEntry_NONE:
		if len(se.GetEndpoints()) > 0 {
			f.Error(ep, nil, "NONE mode cannot set endpoints: no endpoints should be provided for resolution NONE")
		}
		if se.GetWorkloadSelector() != nil {
			f.Warn(sp.Child("workloadSelector"), nil, "workloadSelector is ignored with resolution NONE (set resolution STATIC to select workloads)")
		}
	case networking.ServiceEntry_STATIC:
		for i, e := range se.GetEndpoints() {
			ip := ep.Index(i)
			khWorkloadEntry(ip, e, khEndpointRules{resolution: res.String(), servicePorts: servicePorts}, f)
			if strings.HasPrefix(e.GetAddress(), khUnixPrefix) && len(se.GetPorts()) != 1 {
				f.Error(ip.Child("address"), e.GetAddress(), fmt.Sprintf(
					"an endpoint with a unix:// address requires exactly 1 service port, found %d", len(se.GetPorts())))
			}
		}
	case networking.ServiceEntry_DNS, networking.ServiceEntry_DNS_ROUND_ROBIN:
		if len(se.GetEndpoints()) == 0 {
			for i, h := range se.GetHosts() {
				if strings.Contains(h, "*") || domainProblem(h, false) != "" { // Istio: agent.ValidateFQDN
					f.Error(sp.Child("hosts").Index(i), h, fmt.Sprintf(
						"hosts must be FQDNs without wildcards when resolution is %s and no endpoints are given", res))
				}
			}
		}
		if res == networking.ServiceEntry_DNS_ROUND_ROBIN && len(se.GetEndpoints()) > 1 {
			f.Error(ep, nil, fmt.Sprintf("DNS_ROUND_ROBIN mode cannot have multiple endpoints: found %d, at most 1 is allowed", len(se.GetEndpoints())))
		}
		for i, e := range se.GetEndpoints() {
			ip := ep.Index(i)
			if strings.HasPrefix(e.GetAddress(), khUnixPrefix) {
				f.Error(ip.Child("address"), e.GetAddress(), fmt.Sprintf("endpoint address must be an IP address or an FQDN with resolution %s", res))
				continue
			}
			khWorkloadEntry(ip, e, khEndpointRules{allowFQDN: true, dns: true, resolution: res.String(), servicePorts: servicePorts}, f)
		}
		if len(se.GetAddresses()) > 0 && len(se.GetHosts()) > 1 {
			for i, port := range se.GetPorts() {
				if seTCPFamily(port.GetProtocol()) {
					f.Warn(sp.Child("ports").Index(i), port.GetProtocol(),
						"addresses with several hosts and a TCP port: traffic to the addresses cannot be told apart by host")
					break
				}
			}
		}
	case networking.ServiceEntry_DYNAMIC_DNS:
		for i, h := range se.GetHosts() {
			if !strings.HasPrefix(h, "*") {
				f.Error(sp.Child("hosts").Index(i), h, "hosts must be wildcarded (e.g. *.example.com) with resolution DYNAMIC_DNS")
			}
		}
		if len(se.GetAddresses()) > 0 {
			f.Error(sp.Child("addresses"), nil, "addresses are not allowed with resolution DYNAMIC_DNS")
		}
		if len(se.GetEndpoints()) > 0 {
			f.Error(ep, nil, "endpoints are not allowed with resolution DYNAMIC_DNS")
		}
		for i, port := range se.GetPorts() {
			switch khParseProtocol(port.GetProtocol()) {
			case "HTTP", "TLS", "GRPC", "HTTP2":
			default:
				f.Error(sp.Child("ports").Index(i).Child("protocol"), port.GetProtocol(),
					"resolution DYNAMIC_DNS supports only ports with protocol HTTP, TLS, GRPC or HTTP2")
			}
		}
		if w, ok := meta.Labels["istio.io/use-waypoint"]; ok && w != "none" && se.GetLocation() == networking.ServiceEntry_MESH_INTERNAL {
			f.Error(sp.Child("location"), se.GetLocation().String(),
				"resolution DYNAMIC_DNS with location MESH_INTERNAL cannot use a waypoint (label istio.io/use-waypoint)")
		}
	default:
		f.Error(sp.Child("resolution"), res.String(), "unsupported resolution type")
	}

	if res != networking.ServiceEntry_NONE && len(se.GetHosts()) > 1 {
		for i, port := range se.GetPorts() {
			if !khIsHTTPOrTLS(port.GetProtocol()) {
				f.Error(sp.Child("ports").Index(i).Child("protocol"), port.GetProtocol(),
					"multiple hosts provided with non-HTTP, non-TLS ports: traffic on such a port cannot be routed by host")
			}
		}
	}

	validateExportTo(sp.Child("exportTo"), se.GetExportTo(), meta.Namespace, true, f)
}

func seHosts(p *field.Path, se *networking.ServiceEntry, f *Findings) {
	if len(se.GetHosts()) == 0 {
		f.Required(p, "service entry must have at least one host")
		return
	}
	for i, h := range se.GetHosts() {
		hp := p.Index(i)
		if h == "*" {
			f.Error(hp, h, "invalid host *: hostname cannot be wildcard")
			continue
		}
		validateWildcardDomain(hp, h, f)
		if isPartialWildcard(h) && se.GetResolution() != networking.ServiceEntry_DYNAMIC_DNS {
			f.Warn(hp, h, "partial wildcard host: only \"*\" or a leading \"*.\" wildcard is supported (e.g. \"*.example.com\")")
		}
	}
}

func seAddresses(p *field.Path, se *networking.ServiceEntry, f *Findings) {
	res := se.GetResolution()
	for i, a := range se.GetAddresses() {
		ap := p.Index(i)
		if !isIPOrCIDR(a) {
			validateCIDR(ap, a, f)
			continue
		}
		if strings.Contains(a, "/") && res != networking.ServiceEntry_NONE && res != networking.ServiceEntry_STATIC {
			f.Error(ap, a, fmt.Sprintf("CIDR addresses are allowed only for NONE/STATIC resolution types, not %s", res))
		}
	}
}

// seAutoAllocates is Istio's serviceentry.ShouldV2AutoAllocateIPFromConfig with
// PILOT_ENABLE_IP_AUTOALLOCATE at its default (on): istiod assigns the
// ServiceEntry an address unless its resolution is NONE, it has addresses, or
// the label opts out.
func seAutoAllocates(meta metav1.ObjectMeta, se *networking.ServiceEntry) bool {
	if v, ok := meta.Labels[label.NetworkingEnableAutoallocateIp.Name]; ok && strings.EqualFold(v, "false") {
		return false
	}
	return se.GetResolution() != networking.ServiceEntry_NONE && len(se.GetAddresses()) == 0
}

// sePorts checks the ports and returns the set of port names for endpoint checks.
func sePorts(p *field.Path, se *networking.ServiceEntry, autoAllocate bool, f *Findings) map[string]bool {
	names := map[string]bool{}
	numbers := map[uint32]bool{}
	for i, port := range se.GetPorts() {
		pp := p.Index(i)
		if port == nil {
			f.Required(pp, "port must not be null")
			continue
		}
		if names[port.GetName()] && port.GetName() != "" {
			f.Error(pp.Child("name"), port.GetName(), fmt.Sprintf("service entry port name %q already defined", port.GetName()))
		}
		names[port.GetName()] = true
		if numbers[port.GetNumber()] {
			f.Error(pp.Child("number"), int64(port.GetNumber()), fmt.Sprintf("service entry port %d already defined", port.GetNumber()))
		}
		numbers[port.GetNumber()] = true
		validatePortName(pp.Child("name"), port.GetName(), f)
		khProtocol(pp.Child("protocol"), port.GetProtocol(), f)
		validatePort(pp.Child("number"), port.GetNumber(), f)
		if port.GetTargetPort() != 0 {
			validatePort(pp.Child("targetPort"), port.GetTargetPort(), f)
		}
		// Istio compares the protocol case-sensitively here (ValidateServiceEntry).
		if len(se.GetAddresses()) == 0 && !autoAllocate && (port.GetProtocol() == "" || port.GetProtocol() == "TCP") {
			f.Warn(pp, nil, "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled")
		}
	}
	return names
}

// seTCPFamily reports protocols that are matched by destination address, not
// host: Istio's protocol.Instance.IsTCP, so not an unset (sniffed) protocol.
func seTCPFamily(proto string) bool {
	switch khParseProtocol(proto) {
	case "TCP", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL":
		return true
	}
	return false
}
