package validation

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateWorkloadEntry implements Istio's ValidateWorkloadEntry
// (pkg/config/validation/validation.go).
func validateWorkloadEntry(_ metav1.ObjectMeta, we *networking.WorkloadEntry, f *Findings) {
	khWorkloadEntry(field.NewPath("spec"), we, khEndpointRules{allowFQDN: true}, f)
}

// khEndpointRules says how a WorkloadEntry-shaped value is checked: a
// WorkloadEntry object, or a ServiceEntry endpoint (whose address kinds depend
// on the resolution and whose port names must be service ports).
type khEndpointRules struct {
	allowFQDN    bool            // a non-IP, non-UDS address must be an FQDN (else it is rejected)
	dns          bool            // a ServiceEntry's DNS resolution: an address is required, even with a network
	resolution   string          // for messages when allowFQDN is false
	servicePorts map[string]bool // nil: no check; else endpoint port names must be keys
}

// khWorkloadEntry checks address, ports and labels of a WorkloadEntry or a
// ServiceEntry endpoint at path p.
func khWorkloadEntry(p *field.Path, we *networking.WorkloadEntry, r khEndpointRules, f *Findings) {
	if we == nil {
		f.Required(p, "endpoint must not be null")
		return
	}
	ap := p.Child("address")
	addr := we.GetAddress()
	switch {
	case addr == "" && r.dns:
		f.Required(ap, "empty domain name not allowed: an endpoint of a DNS ServiceEntry needs an address")
	case addr == "" && we.GetNetwork() != "":
		// Istio allows this for workloads reached through a network gateway.
		f.Warn(ap, nil, "address is unset with network "+we.GetNetwork()+": traffic is sent through that network's gateway")
	case addr == "":
		f.Required(ap, "Address is required (or set network)")
	case strings.HasPrefix(addr, khUnixPrefix):
		khUnixAddress(ap, addr, f)
		if len(we.GetPorts()) > 0 {
			f.Error(p.Child("ports"), nil, "UDS may not include ports")
		}
	case isIP(addr):
	case !r.allowFQDN:
		f.Error(ap, addr, fmt.Sprintf("endpoint address must be an IP address or a unix:// socket with resolution %s", r.resolution))
	default:
		validateFQDN(ap, addr, f)
	}
	pp := p.Child("ports")
	for _, name := range sortedKeys(we.GetPorts()) {
		kp := pp.Key(name)
		validatePortName(kp, name, f)
		validatePort(kp, we.GetPorts()[name], f)
		if r.servicePorts != nil && name != "" && !r.servicePorts[name] {
			f.Error(kp, name, fmt.Sprintf("endpoint port %q is not one of the service entry's port names", name))
		}
	}
	validateLabels(p.Child("labels"), we.GetLabels(), f)
}
