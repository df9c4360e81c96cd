package analysis

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestDeploymentServices: IST0116 and IST0137 on the cases Istio's test
// data does not separate, with Istio's rule (deployment/services.go at
// 03404d0fbc82, ServiceAssociationAnalyzer): only Deployments (not Pods) in
// the mesh (DeploymentInMesh) and not waypoints; Services of their namespace
// with a non-empty selector matching the template labels; an unset protocol
// is TCP; an unset targetPort is the port; one Service with two ports on one
// targetPort conflicts with itself.
func TestDeploymentServices(t *testing.T) {
	proxy := []Container{{Name: "app", Image: "app:1"}, {Name: "istio-proxy", Image: "proxyv2"}}
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	dep := func(name, a string) Workload {
		return Workload{Kind: "Deployment", Namespace: "ns", Name: name, Labels: app(a), Containers: proxy}
	}
	port := func(p int32, proto corev1.Protocol, target int) ServicePort {
		return ServicePort{Port: p, Protocol: proto, TargetPort: intstr.FromInt(target)}
	}
	svc := func(name, a string, ports ...ServicePort) KubeService {
		return KubeService{Namespace: "ns", Name: name, Selector: app(a), Ports: ports}
	}
	pod := dep("pod", "a")
	pod.Kind = "Pod"
	outside := dep("outside", "a")
	outside.Containers = proxy[:1]
	waypoint := dep("waypoint", "a")
	waypoint.DeploymentLabels = map[string]string{"gateway.istio.io/managed": "istio.io-mesh-controller"}
	in := Input{
		Namespaces: map[string]map[string]string{"ns": nil},
		Workloads:  []Workload{dep("proto", "a"), pod, outside, waypoint, dep("self", "self"), dep("named", "named"), dep("none", "none")},
		KubeServices: []KubeService{
			svc("tcp-unset", "a", port(80, "", 0)),
			svc("udp", "a", port(80, corev1.ProtocolUDP, 0)),
			svc("two-ports", "self", port(80, "", 8080), port(81, "", 8080)),
			// A named targetPort is compared by name.
			svc("named-1", "named", ServicePort{Port: 80, TargetPort: intstr.FromString("http")}),
			svc("named-2", "named", ServicePort{Port: 81, TargetPort: intstr.FromString("http")}),
			// Without selector, or in another namespace: never associated.
			{Namespace: "ns", Name: "no-selector", Ports: []ServicePort{port(80, corev1.ProtocolUDP, 0)}},
			{Namespace: "other", Name: "elsewhere", Selector: app("a"), Ports: []ServicePort{port(80, corev1.ProtocolSCTP, 0)}},
		},
	}
	var got []string
	for _, m := range Analyze(in) {
		if m.Kind == "Deployment" || m.Kind == "Pod" && m.Code != PodMissingProxy {
			got = append(got, m.String())
		}
	}
	want := []string{
		"Warning [IST0116] (Deployment ns/proto) This deployment proto is associated with multiple services using port 80 but different protocols: [ns/tcp-unset ns/udp]",
		`Warning [IST0137] (Deployment ns/named) This deployment named is associated with multiple services [ns/named-1 ns/named-2] using targetPort "http" but different ports: [80 81].`,
		`Warning [IST0137] (Deployment ns/self) This deployment self is associated with multiple services [ns/two-ports ns/two-ports] using targetPort "8080" but different ports: [80 81].`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
