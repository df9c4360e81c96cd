package analysis

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
)

// TestDeprecatedFields: edge cases of Istio's deprecation.FieldAnalyzer
// rows (deprecation.go analyzeVirtualService, analyzeSidecar) that its test
// data lacks.
func TestDeprecatedFields(t *testing.T) {
	delay := func(percent int32) *networking.HTTPRoute {
		//lint:ignore SA1019 the deprecated field is the input under test
		return &networking.HTTPRoute{Fault: &networking.HTTPFaultInjection{Delay: &networking.HTTPFaultInjection_Delay{Percent: percent}}}
	}
	for _, tc := range []struct {
		name string
		kind string
		spec proto.Message
		want []string
	}{
		{"percent 0 is unset", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{delay(0)}}, nil},
		// Istio compares Percent > 0.
		{"negative percent", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{delay(-1)}}, nil},
		{"one message per route", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{delay(10), {}, delay(100)}},
			[]string{"spec.http[0].fault.delay.percent", "spec.http[2].fault.delay.percent"}},
		{"percentage is not deprecated", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{
			{Fault: &networking.HTTPFaultInjection{Delay: &networking.HTTPFaultInjection_Delay{Percentage: &networking.Percent{Value: 50}}}},
		}}, nil},
		{"abort only", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{
			{Fault: &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{}}},
		}}, nil},
		{"nil route", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{nil}}, nil},
		{"outbound policy without egress proxy", "Sidecar", &networking.Sidecar{OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{
			Mode: networking.OutboundTrafficPolicy_REGISTRY_ONLY}}, nil},
		// Reported whatever the mode (validation rejects a mode other than ALLOW_ANY).
		{"egress proxy", "Sidecar", &networking.Sidecar{OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{
			EgressProxy: &networking.Destination{Host: "proxy.example.com"}}},
			[]string{"spec.outboundTrafficPolicy.egressProxy"}},
		{"nil specs", "Sidecar", (*networking.Sidecar)(nil), nil},
		{"nil VirtualService", "VirtualService", (*networking.VirtualService)(nil), nil},
	} {
		in := Input{Objects: []Object{{Kind: tc.kind, Namespace: "ns", Name: "x", Spec: tc.spec}}}
		var got []string
		for _, m := range deprecatedFields(&in) {
			if m.Code != Deprecated || m.Level != Warning || m.Name != "Deprecated" {
				t.Errorf("%s: message type %s %s %s", tc.name, m.Code, m.Name, m.Level)
			}
			got = append(got, m.Field)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
