package analysis

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// ServiceEntryAddressesRequired is the code of Istio's ServiceEntry
// protocol/addresses analyzer (level and text from
// pkg/config/analysis/msg/messages.yaml).
const ServiceEntryAddressesRequired = "IST0134"

func init() {
	Types[ServiceEntryAddressesRequired] = MessageType{ServiceEntryAddressesRequired, "ServiceEntryAddressesRequired", Warning}
}

// serviceEntryAddresses is Istio's ProtocolAddressesAnalyzer (Istio:
// pkg/config/analysis/analyzers/serviceentry/protocoladdresses.go at
// ca0f371a068a, Analyze and analyzeProtocolAddresses): a ServiceEntry
// without spec.addresses gets IST0134 once per port whose protocol is unset
// or TCP (in any case), at that port.
//
// Istio skips the check when the mesh config turns on DNS capture with
// address auto-allocation (Input.dnsAutoAllocated), and for a ServiceEntry
// whose status.addresses is not empty (addressAllocated). meshguard's
// objects carry the spec only: an allocated ServiceEntry is reported as well.
func serviceEntryAddresses(in *Input) []Message {
	if in.dnsAutoAllocated() {
		return nil
	}
	var out []Message
	for _, o := range in.Objects {
		se, ok := o.Spec.(*networking.ServiceEntry)
		if !ok || len(se.GetAddresses()) > 0 {
			continue
		}
		for i, p := range se.GetPorts() {
			if proto := p.GetProtocol(); proto == "" || strings.EqualFold(proto, "TCP") {
				out = append(out, newMessage(o, ServiceEntryAddressesRequired, fmt.Sprintf("spec.ports[%d]", i),
					"ServiceEntry addresses are required for this protocol."))
			}
		}
	}
	return out
}
