package analysis

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestMutation40GatewayPortNamedTargetPort: a named (non-numeric) or absent
// targetPort adds no port of its own; only the Service port counts, so a
// server on port 0 is IST0162 (Istio's IngressGatewayPortAnalyzer
// analyzeGateway records only the ports of the selecting Services' TCP
// ports, never 0 for a targetPort it cannot read as a number).
func TestMutation40GatewayPortNamedTargetPort(t *testing.T) {
	sel := map[string]string{"istio": "ingressgateway"}
	pod := Workload{Namespace: "istio-system", Name: "gw-1", Labels: sel}
	svc := KubeService{Namespace: "istio-system", Name: "gw", Selector: sel, Ports: []ServicePort{
		{Port: 80, TargetPort: intstr.FromString("http"), Protocol: "TCP"},
		{Port: 443, Protocol: "TCP"},
	}}
	for _, c := range []struct {
		port uint32
		want int
	}{{80, 0}, {443, 0}, {0, 1}} {
		gw := &networking.Gateway{Selector: sel, Servers: []*networking.Server{
			{Port: &networking.Port{Number: c.port, Name: "p", Protocol: "HTTP"}, Hosts: []string{"*"}}}}
		obj := Object{Kind: "Gateway", Namespace: "istio-system", Name: "gw", Spec: gw}
		var got int
		for _, m := range Analyze(Input{Objects: []Object{obj}, Workloads: []Workload{pod}, KubeServices: []KubeService{svc}}) {
			if m.Code == "IST0162" {
				got++
			}
		}
		if got != c.want {
			t.Errorf("server port %d: got %d IST0162, want %d", c.port, got, c.want)
		}
	}
}
