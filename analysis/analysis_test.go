package analysis

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

func vs(host, subset string, gateways ...string) *networking.VirtualService {
	return &networking.VirtualService{Hosts: []string{host}, Gateways: gateways, Http: []*networking.HTTPRoute{{
		Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: host, Subset: subset}}}}}}
}

// The codes and levels are Istio's (pkg/config/analysis/msg/messages.yaml):
// IST0101 ReferencedResourceNotFound and IST0109 are errors, IST0132 a warning.
func TestAnalyze(t *testing.T) {
	reviewsSvc := []crossref.Key{{Namespace: "default", Name: "reviews"}}
	dr := &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}}
	for _, tc := range []struct {
		name      string
		in        Input
		wantCodes []string
		wantLevel Level
	}{
		{"all references resolve", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "reviews", Spec: dr},
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "v1")}}}, nil, 0},
		{"missing subset", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "reviews", Spec: dr},
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "v2")}}}, []string{"IST0101"}, Error},
		{"missing host", Input{Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "")}}}, []string{"IST0101"}, Error},
		{"missing gateway", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "", "gw")}}}, []string{"IST0101", "IST0132"}, Error},
		{"two mesh VirtualServices for one host", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "a", Spec: vs("reviews", "")},
			{Kind: "VirtualService", Namespace: "default", Name: "b", Spec: vs("reviews", "")}}}, []string{"IST0109", "IST0109"}, Error},
		{"host not exposed by gateway", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "Gateway", Namespace: "default", Name: "gw", Spec: &networking.Gateway{Servers: []*networking.Server{{Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"other.example.com"}}}}},
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "", "gw")}}}, []string{"IST0132"}, Warning},
		{"SIMPLE TLS without caCertificates", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "reviews", Spec: &networking.DestinationRule{Host: "reviews",
				TrafficPolicy: &networking.TrafficPolicy{Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_SIMPLE},
					PortLevelSettings: []*networking.TrafficPolicy_PortTrafficPolicy{
						{Port: &networking.PortSelector{Number: 443}, Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_MUTUAL}},
						{Port: &networking.PortSelector{Number: 8443}, Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_SIMPLE, CaCertificates: "/ca.pem"}},
					}}}}}}, []string{"IST0129", "IST0128"}, Warning},
		// Istio's destinationrule/subset.go: UnknownDestinationRuleHost, a Warning.
		{"DestinationRule host matches nothing", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "r", Spec: &networking.DestinationRule{Host: "reveiws"}}}}, []string{"IST0174"}, Warning},
		{"ISTIO_MUTUAL needs no caCertificates", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "reviews", Spec: &networking.DestinationRule{Host: "reviews",
				TrafficPolicy: &networking.TrafficPolicy{Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL}}}}}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := Analyze(tc.in)
			if len(msgs) != len(tc.wantCodes) {
				t.Fatalf("got %v, want codes %v", msgs, tc.wantCodes)
			}
			for i, m := range msgs { // wantLevel: the first message's, none above it
				if m.Code != tc.wantCodes[i] || m.Level > tc.wantLevel || (i == 0 && m.Level != tc.wantLevel) {
					t.Errorf("message %d: %s, want %s at %s", i, m, tc.wantCodes[i], tc.wantLevel)
				}
			}
			if got := Exceeds(msgs, Error); got != (tc.wantLevel == Error && len(msgs) > 0) {
				t.Errorf("Exceeds(Error) = %v", got)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for s, want := range map[string]Level{"Error": Error, "warning": Warning, "INFO": Info} {
		if got, err := ParseLevel(s); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseLevel("fatal"); err == nil {
		t.Error("ParseLevel(fatal) accepted")
	}
}

// TestWarningCode: the code comes from validation's typed code, never from
// the message text; an unknown or missing code is IST0133 SchemaWarning.
func TestWarningCode(t *testing.T) {
	for _, tc := range []struct {
		p    validation.Problem
		want string
	}{
		{validation.Problem{Message: "anything", Code: validation.CodeVirtualServiceIneffectiveMatch}, VirtualServiceIneffectiveMatch},
		{validation.Problem{Message: "anything", Code: validation.CodeVirtualServiceUnreachableRule}, VirtualServiceUnreachableRule},
		// Text that reads like an unreachable rule but carries no code.
		{validation.Problem{Message: "virtualService rule #1 not used (all matches used by prior rules)"}, SchemaWarning},
		{validation.Problem{Message: "x", Code: "IST9999"}, SchemaWarning},
	} {
		if got := WarningCode(tc.p); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.p, got, tc.want)
		}
	}
}

// TestValidationMessagesIstioText: the analyzer messages of a VirtualService
// with a duplicate match carry istioctl analyze's codes, levels and text
// (Istio's pkg/config/analysis/msg/messages.yaml templates IST0130
// "VirtualService rule %v not used (%s)." and IST0131 "VirtualService rule
// %v match %v is not used (duplicate/overlapping match in rule %v).", as in
// istioctl output such as "Info [IST0131] (VirtualService
// default/mms-image-classifier-ingress) VirtualService rule #0 match #2 is not
// used (duplicate/overlapping match in rule #0).").
func TestValidationMessagesIstioText(t *testing.T) {
	obj := map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "r", "namespace": "default"},
		"spec": map[string]any{"hosts": []any{"r"}, "http": []any{
			map[string]any{"match": []any{map[string]any{"uri": map[string]any{"exact": "/a"}}}, "route": []any{map[string]any{"destination": map[string]any{"host": "r"}}}},
			map[string]any{"match": []any{map[string]any{"uri": map[string]any{"exact": "/a"}}}, "route": []any{map[string]any{"destination": map[string]any{"host": "r"}}}},
		}}}
	res := validation.ValidateObject(t.Context(), obj, validation.Options{})
	msgs := ValidationMessages(Object{Kind: res.Kind, Namespace: res.Namespace, Name: res.Name}, res.Errors, res.Warnings)
	Sort(msgs)
	want := []string{
		"Warning [IST0130] (VirtualService default/r) spec.http[1]: VirtualService rule #1 not used (all matches used by prior rules).",
		"Info [IST0131] (VirtualService default/r) spec.http[1].match[0]: VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).",
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %v", msgs)
	}
	for i, m := range msgs {
		if m.String() != want[i] {
			t.Errorf("got  %s\nwant %s", m, want[i])
		}
	}
}
