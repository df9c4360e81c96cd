package analysis

import (
	"fmt"
	"slices"
	"strings"
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
					}}}}}}, []string{"IST0128", "IST0129"}, Warning}, // istioctl's order: by code (Sort)
		// Istio's destinationrule/subset.go: UnknownDestinationRuleHost, a Warning.
		{"DestinationRule host matches nothing", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "r", Spec: &networking.DestinationRule{Host: "reveiws"}}}}, []string{"IST0174"}, Warning},
		// VirtualServiceDestinationPortSelectorRequired and ConflictingGateways
		// are diag.Error in Istio's messages.yaml.
		{"no port for a Service of two ports", Input{Services: reviewsSvc,
			KubeServices: []KubeService{{Namespace: "default", Name: "reviews", Ports: []ServicePort{{Port: 80, Name: "http"}, {Port: 9080, Name: "http"}}}}, // named: else IST0118 (service.go)
			Objects:      []Object{{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "")}}}, []string{"IST0112"}, Error},
		{"two Gateways with one selector, port and host", Input{Objects: []Object{
			{Kind: "Gateway", Namespace: "default", Name: "a", Spec: &networking.Gateway{Selector: map[string]string{"istio": "ingressgateway"},
				Servers: []*networking.Server{{Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"shop.example.com"}}}}},
			{Kind: "Gateway", Namespace: "default", Name: "b", Spec: &networking.Gateway{Selector: map[string]string{"istio": "ingressgateway"},
				Servers: []*networking.Server{{Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"shop.example.com"}}}}}}},
			[]string{"IST0145", "IST0145"}, Error},
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
		"Warning [IST0130] (VirtualService default/r) VirtualService rule #1 not used (all matches used by prior rules).",
		"Info [IST0131] (VirtualService default/r) VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).",
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

// TestAnalyzeIstioctlText: the text of each `meshguard analyze` message (its
// -o json "message") is istioctl's: Istio's template
// (pkg/config/analysis/msg/messages.yaml) with the arguments Istio's analyzer
// passes: IST0101 "Referenced %s not found: %q" with
// "gateway" and the name as written (virtualservice/gateways.go), "host" or
// "mirror host" (virtualservice/destinationhosts.go), "host+subset in
// destinationrule" or "mirror+subset in destinationrule" with "host+subset"
// (virtualservice/destinationrules.go); IST0174 "The host %s defined in the
// DestinationRule does not match any services in the mesh."
// (destinationrule/subset.go). The webhook keeps crossref's own texts.
func TestAnalyzeIstioctlText(t *testing.T) {
	reviewsSvc := []crossref.Key{{Namespace: "default", Name: "reviews"}}
	dr := &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}}
	mirrored := &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{{
		Route:  []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}},
		Mirror: &networking.Destination{Host: "shadow", Subset: "v9"}}}}
	for _, tc := range []struct {
		name string
		in   Input
		want []string
	}{
		{"missing subset", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "reviews", Spec: dr},
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Origin: "reviews.yaml#2", Spec: vs("reviews", "v3")}}},
			[]string{`IST0101 Referenced host+subset in destinationrule not found: "reviews+v3"`}},
		{"missing host", Input{Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "bookinfo", Spec: vs("productpage", "")}}},
			[]string{`IST0101 Referenced host not found: "productpage"`}},
		{"missing mirror host and subset", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: mirrored}}},
			[]string{
				`IST0101 Referenced mirror host not found: "shadow"`,
				`IST0101 Referenced mirror+subset in destinationrule not found: "shadow+v9"`,
			}},
		{"missing gateway", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "", "istio-system/gw")}}},
			[]string{
				`IST0101 Referenced gateway not found: "istio-system/gw"`,
				`IST0132 one or more host [reviews] defined in VirtualService default/reviews not found in Gateway istio-system/gw.`,
			}},
		// As written: not "default/gw".
		{"missing gateway of the VirtualService's namespace", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: vs("reviews", "", "gw")}}},
			[]string{
				`IST0101 Referenced gateway not found: "gw"`,
				`IST0132 one or more host [reviews] defined in VirtualService default/reviews not found in Gateway default/gw.`,
			}},
		// http[].mirrors[]: "mirror" as Istio's getHTTPMirrorDestinations reads them (RouteRule "http.mirrors").
		{"missing mirrors host", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "VirtualService", Namespace: "default", Name: "reviews", Spec: &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{{
				Route:   []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}},
				Mirrors: []*networking.HTTPMirrorPolicy{{Destination: &networking.Destination{Host: "shadow"}}}}}}}}},
			[]string{`IST0101 Referenced mirror host not found: "shadow"`}},
		{"DestinationRule host matches nothing", Input{Services: reviewsSvc, Objects: []Object{
			{Kind: "DestinationRule", Namespace: "default", Name: "details", Spec: &networking.DestinationRule{Host: "details"}}}},
			[]string{`IST0174 The host details defined in the DestinationRule does not match any services in the mesh.`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := Analyze(tc.in)
			var got []string
			for _, m := range msgs {
				got = append(got, m.Code+" "+m.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestMessageStringAsIstioctl: a message line is istioctl's (Istio's
// pkg/config/analysis/diag/message.go Message.String: "%v [%v]%s %s" of
// level, code, " (Kind ns/name origin)" and the text), with no field path
// between the origin and the text; -o json keeps the field.
func TestMessageStringAsIstioctl(t *testing.T) {
	m := Message{Code: "IST0101", Level: Error, Kind: "VirtualService", Namespace: "default", Object: "bookinfo",
		Origin: "bookinfo-gateway.yaml#2", Field: "spec.http[0].route[0].destination.host", Message: `Referenced host not found: "productpage"`}
	if got, want := m.String(), `Error [IST0101] (VirtualService default/bookinfo bookinfo-gateway.yaml#2) Referenced host not found: "productpage"`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	m.Origin = ""
	if got, want := m.String(), `Error [IST0101] (VirtualService default/bookinfo) Referenced host not found: "productpage"`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestValidationMessagesSchemaText: IST0106 and IST0133 are Istio's
// templates "Schema validation error: %v" and "Schema validation warning:
// %v" (pkg/config/analysis/msg/messages.yaml, as
// pkg/config/analysis/analyzers/schema/validation.go reports them), of the
// validation error as meshguard's validation words it: field path and message.
func TestValidationMessagesSchemaText(t *testing.T) {
	o := Object{Kind: "VirtualService", Namespace: "default", Name: "r"}
	msgs := ValidationMessages(o,
		[]validation.Problem{{Field: "spec.http[0].route[0].weight", Message: "Invalid value: -15: weight -15 < 0"}, {Message: "no field"}},
		[]validation.Problem{{Field: "spec.gateways[0]", Message: "legacy name"}})
	var got []string
	for _, m := range msgs {
		got = append(got, m.String())
	}
	want := []string{
		"Error [IST0106] (VirtualService default/r) Schema validation error: spec.http[0].route[0].weight: Invalid value: -15: weight -15 < 0",
		"Error [IST0106] (VirtualService default/r) Schema validation error: no field",
		"Warning [IST0133] (VirtualService default/r) Schema validation warning: spec.gateways[0]: legacy name",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if msgs[0].Field != "spec.http[0].route[0].weight" {
		t.Errorf("field %q", msgs[0].Field)
	}
}

// TestSortAsIstioctl: messages are in istioctl's order (Istio's
// pkg/config/analysis/diag/messages.go Messages.Sort, applied by
// SortedDedupedCopy to istioctl analyze's result): level (Error first), then
// code, then the object as Origin.Comparator names it ("Kind/name/namespace",
// pkg/config/legacy/source/kube/origin.go), then the line; the field path
// orders messages whose lines are equal.
func TestSortAsIstioctl(t *testing.T) {
	msg := func(l Level, code, kind, ns, name, field string) Message {
		return Message{Level: l, Code: code, Kind: kind, Namespace: ns, Object: name, Field: field, Message: "m"}
	}
	msgs := []Message{
		msg(Info, "IST0131", "VirtualService", "default", "a", "spec.http[1].match[0]"),
		msg(Warning, "IST0129", "DestinationRule", "default", "r", "spec.trafficPolicy.portLevelSettings[0].tls"),
		msg(Warning, "IST0128", "DestinationRule", "default", "r", "spec.trafficPolicy.tls"),
		msg(Error, "IST0145", "Gateway", "default", "a", "spec.servers[0]"),
		msg(Error, "IST0101", "VirtualService", "default", "b", "spec.http[0].route[1].destination.host"),
		msg(Error, "IST0101", "VirtualService", "default", "b", "spec.http[0].route[0].destination.host"),
		msg(Error, "IST0101", "VirtualService", "zz", "a", "spec.gateways[0]"),
	}
	Sort(msgs)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Code+" "+m.Kind+" "+m.Namespace+"/"+m.Object+" "+m.Field)
	}
	want := []string{
		"IST0101 VirtualService zz/a spec.gateways[0]", // name a before name b, whatever the namespace
		"IST0101 VirtualService default/b spec.http[0].route[0].destination.host",
		"IST0101 VirtualService default/b spec.http[0].route[1].destination.host",
		"IST0145 Gateway default/a spec.servers[0]", // a code after IST0101, whatever the kind
		"IST0128 DestinationRule default/r spec.trafficPolicy.tls",
		"IST0129 DestinationRule default/r spec.trafficPolicy.portLevelSettings[0].tls",
		"IST0131 VirtualService default/a spec.http[1].match[0]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A VirtualService repeating one missing gateway reference gets at most
// MaxCrossReferenceMessages cross-reference messages and one counting the
// rest, so a large stored object cannot make the audit word them all.
func TestCrossReferenceMessagesBounded(t *testing.T) {
	const refs = 3000
	vs := &networking.VirtualService{Hosts: []string{"a.example.com"}}
	for range refs {
		vs.Gateways = append(vs.Gateways, "missing")
	}
	msgs := Analyze(Input{Objects: []Object{{Kind: "VirtualService", Namespace: "default", Name: "vs", Spec: vs}}})
	if len(msgs) != MaxCrossReferenceMessages+2 {
		t.Fatalf("%d messages, want %d and one per code counting the rest", len(msgs), MaxCrossReferenceMessages+2)
	}
	summary := map[string]Message{}
	for _, m := range msgs {
		if strings.Contains(m.Message, "messages about this object, not listed") {
			summary[m.Code] = m
		}
	}
	// IST0101 (an Error) and IST0132 (a Warning) per reference, in turn: 500
	// of each built, the rest counted per code at its level.
	for code, level := range map[string]Level{"IST0101": Error, "IST0132": Warning} {
		want := fmt.Sprintf("and %d more %s messages", refs-MaxCrossReferenceMessages/2, code)
		if m, ok := summary[code]; !ok || !strings.Contains(m.Message, want) || m.Level != level {
			t.Errorf("%s summary %+v, want one at level %v saying %q", code, m, level, want)
		}
	}
}

// Compare is Sort's order, one rule for `meshguard analyze` and the audit
// (audit.Check): istioctl's Messages.Sort, level (Error first), code, object
// as "Kind/name/namespace", then the printed line; the field last.
func TestCompare(t *testing.T) {
	m := Message{Level: Error, Code: "IST0101", Kind: "VirtualService", Namespace: "ns", Object: "b", Message: "m"}
	with := func(f func(*Message)) Message { c := m; f(&c); return c }
	for _, tc := range []struct {
		name string
		a, b Message
		want int
	}{
		{"equal", m, m, 0},
		{"Error before Warning", m, with(func(c *Message) { c.Level, c.Code = Warning, "IST0001" }), -1},
		{"Warning before Info", with(func(c *Message) { c.Level = Warning }), with(func(c *Message) { c.Level = Info }), -1},
		{"code before kind", with(func(c *Message) { c.Kind = "Zz" }), with(func(c *Message) { c.Code = "IST0102"; c.Kind = "Aa" }), -1},
		{"kind before name", with(func(c *Message) { c.Kind = "Gateway"; c.Object = "z" }), m, -1},
		{"name before namespace", with(func(c *Message) { c.Namespace = "zz"; c.Object = "a" }), m, -1},
		{"namespace", with(func(c *Message) { c.Namespace = "a" }), m, -1},
		{"then the line", with(func(c *Message) { c.Message = "a" }), with(func(c *Message) { c.Message = "b" }), -1},
		{"then the field", with(func(c *Message) { c.Field = "spec.a" }), with(func(c *Message) { c.Field = "spec.b" }), -1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: Compare = %d, want %d", tc.name, got, tc.want)
		}
		if got := Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("%s: reversed Compare = %d, want %d", tc.name, got, -tc.want)
		}
	}
}
