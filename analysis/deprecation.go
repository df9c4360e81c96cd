package analysis

import (
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Deprecated is Istio's IST0002 (pkg/config/analysis/msg/messages.yaml:
// Warning, "Deprecated: %s").
const Deprecated = "IST0002"

func init() {
	Types[Deprecated] = MessageType{Deprecated, "Deprecated", Warning}
}

// deprecatedFields is Istio's deprecation.FieldAnalyzer
// (pkg/config/analysis/analyzers/deprecation/deprecation.go at istio/istio
// 0a617ca985f9, analyzeVirtualService and analyzeSidecar), the checks on
// Istio objects' specs:
//   - a VirtualService HTTP route whose fault.delay.percent is above 0: one
//     message per route, "HTTPRoute.fault.delay.percent is deprecated; use
//     HTTPRoute.fault.delay.percentage" (Istio's replacedMessage);
//   - a Sidecar with outboundTrafficPolicy.egressProxy set:
//     "OutboundTrafficPolicy.EgressProxy ignored" (ignoredMessage).
//
// The texts are Istio's; istioctl gives these messages no line, meshguard the
// field. Not ported from the same analyzer: its CustomResourceDefinition
// check (the removed rbac.istio.io CRDs) and the kinds of
// collections.Deprecated, which analysis.Input does not carry.
//
// validation warns about fault.delay.percent too (IST0133, "using deprecated
// setting"), as Istio's validation does next to this analyzer's IST0002.
func deprecatedFields(in *Input) []Message {
	var out []Message
	for _, o := range in.Objects {
		switch spec := o.Spec.(type) {
		case *networking.VirtualService:
			for i, r := range spec.GetHttp() {
				//lint:ignore SA1019 the deprecated field is what this analyzer reports
				if r.GetFault().GetDelay().GetPercent() > 0 {
					p := field.NewPath("spec", "http").Index(i).Child("fault", "delay", "percent")
					out = append(out, newMessage(o, Deprecated, p.String(),
						"Deprecated: HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage"))
				}
			}
		case *networking.Sidecar:
			if spec.GetOutboundTrafficPolicy().GetEgressProxy() != nil {
				p := field.NewPath("spec", "outboundTrafficPolicy", "egressProxy")
				out = append(out, newMessage(o, Deprecated, p.String(), "Deprecated: OutboundTrafficPolicy.EgressProxy ignored"))
			}
		}
	}
	return out
}
