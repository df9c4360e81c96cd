package analysis

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestServicePortNameRules: the rules of Istio's PortNameAnalyzer
// (service/portname.go analyzeService) and kube.ConvertProtocol
// (pkg/config/kube/conversion.go) that Istio's test data does not exercise.
func TestServicePortNameRules(t *testing.T) {
	str := func(s string) *string { return &s }
	port := func(name string, appProtocol *string) ServicePort {
		return ServicePort{Port: 8080, TargetPort: intstr.FromString("web"), Name: name, AppProtocol: appProtocol}
	}
	for _, tc := range []struct {
		name string
		svc  KubeService
		want []string // "CODE field"
	}{
		{"appProtocol names the protocol, whatever the name", KubeService{Ports: []ServicePort{port("foo", str("http")), port("web", str("HTTP2"))}}, nil},
		{"appProtocol wins over a protocol name", KubeService{Ports: []ServicePort{port("http", str("foo"))}}, []string{"IST0118 spec.ports[0]"}},
		{"an empty appProtocol is read, not the name", KubeService{Ports: []ServicePort{port("http", str(""))}}, []string{"IST0118 spec.ports[0]"}},
		{"prefix before '-', any case", KubeService{Ports: []ServicePort{port("HTTP-api", nil), port("Mongo-x", nil), port("http_proxy", nil), port("tls-", nil)}}, nil},
		{"grpc-web prefix (with its hyphen), any case", KubeService{Ports: []ServicePort{port("GRPC-Web-x", nil)}}, nil},
		{"a suffix alone names nothing", KubeService{Ports: []ServicePort{port("api-http", nil), port("httpx", nil)}},
			[]string{"IST0118 spec.ports[0]", "IST0118 spec.ports[1]"}},
		{"UDP ports have a protocol", KubeService{Ports: []ServicePort{{Port: 9999, Protocol: corev1.ProtocolUDP, Name: "foo"}}}, nil},
		{"well-known ports are TCP", KubeService{Ports: []ServicePort{{Port: 25}, {Port: 53, Name: "dns-tcp"}, {Port: 3306}, {Port: 27017}, {Port: 26}}},
			[]string{"IST0118 spec.ports[4]"}},
		{"system namespace", KubeService{Namespace: "kube-system", Ports: []ServicePort{port("foo", nil)}}, nil},
		{"istio-system is checked", KubeService{Namespace: "istio-system", Ports: []ServicePort{port("foo", nil)}}, []string{"IST0118 spec.ports[0]"}},
		{"istio label of any value", KubeService{Labels: map[string]string{"istio": ""}, Ports: []ServicePort{port("foo", nil)}}, nil},
		{"release other than istio", KubeService{Labels: map[string]string{"release": "other"}, Ports: []ServicePort{port("foo", nil)}}, []string{"IST0118 spec.ports[0]"}},
		{"east-west gateway", KubeService{Labels: map[string]string{"gateway.istio.io/managed": "istio.io-eastwest-controller"}, Ports: []ServicePort{port("foo", nil)}}, nil},
		{"another controller's gateway", KubeService{Labels: map[string]string{"gateway.istio.io/managed": "example.com-controller"}, Ports: []ServicePort{port("foo", nil)}},
			[]string{"IST0118 spec.ports[0]"}},
		{"tcp is fine but on ExternalName", KubeService{Ports: []ServicePort{port("tcp", nil)}}, nil},
		{"ExternalName: tcp and unsupported", KubeService{Type: corev1.ServiceTypeExternalName, Ports: []ServicePort{port("tcp", nil), port("tcp-x", nil), port("foo", nil)}},
			[]string{"IST0150 spec.ports[0]", "IST0150 spec.ports[2]"}},
	} {
		svc := tc.svc
		if svc.Namespace == "" {
			svc.Namespace = "default"
		}
		svc.Name = "s"
		var got []string
		for _, m := range Analyze(Input{KubeServices: []KubeService{svc}}) {
			if m.Kind != "Service" || m.Namespace != svc.Namespace || m.Object != "s" {
				t.Errorf("%s: message on %s %s/%s", tc.name, m.Kind, m.Namespace, m.Object)
			}
			got = append(got, m.Code+" "+m.Field)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// The text names a named targetPort as written.
	msgs := Analyze(Input{KubeServices: []KubeService{{Namespace: "a", Name: "b", Ports: []ServicePort{port("foo", nil)}}}})
	if want := "Info [IST0118] (Service a/b) Port name foo (port: 8080, targetPort: web) doesn't follow the naming convention of Istio port."; len(msgs) != 1 || msgs[0].String() != want {
		t.Errorf("got %v, want %s", msgs, want)
	}
}
