package analysis

import (
	"fmt"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/validation/crossref"
)

// ReferencedInternalGateway is Istio's IST0165 (Warning), reported by its
// VirtualService gateway analyzer (pkg/config/analysis/analyzers/
// virtualservice/gateways.go GatewayAnalyzer.analyzeVirtualService, the
// version with IsInternalGatewayReference; text as istio.io's
// docs/reference/config/analysis/ist0165 prints it).
const ReferencedInternalGateway = "IST0165"

func init() {
	Types[ReferencedInternalGateway] = MessageType{ReferencedInternalGateway, "ReferencedInternalGateway", Warning}
}

// referencedInternalGateways reports each spec.gateways entry of a
// VirtualService of in.Objects naming a Gateway Istio generates for a
// Kubernetes Gateway API listener (crossref.InternalGatewayRef, which also
// keeps such a reference out of IST0101 and IST0132): "Gateway reference in
// VirtualService ns/name is to an implementation-generated internal
// Gateway: <reference as written>.". Analysis only: Istio's webhook does not
// run analyzers, so crossref (shared with meshguard's webhook) does not
// report it. Such a name is no DNS-1123 label, so validation refuses the
// VirtualService (IST0106) and `meshguard analyze` leaves it out of these
// checks, where istioctl reports both IST0106 and IST0165.
func referencedInternalGateways(in *Input) []Message {
	var out []Message
	for _, o := range in.Objects {
		vs, ok := o.Spec.(*networking.VirtualService)
		if !ok {
			continue
		}
		for i, g := range vs.GetGateways() {
			if !crossref.InternalGatewayRef(g) {
				continue
			}
			out = append(out, newMessage(o, ReferencedInternalGateway, field.NewPath("spec", "gateways").Index(i).String(),
				fmt.Sprintf("Gateway reference in VirtualService %s/%s is to an implementation-generated internal Gateway: %s.", o.Namespace, o.Name, g)))
		}
	}
	return out
}
