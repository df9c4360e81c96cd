package analysis

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/validation"
)

// loadInput reads YAML files as `meshguard analyze -f` does: Kubernetes
// objects through AddKubernetesObject, mesh objects through validation.
func loadInput(t *testing.T, files ...string) Input {
	t.Helper()
	var in Input
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := manifest.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			if d.Object == nil {
				continue
			}
			if known, err := in.AddKubernetesObject(d.Object, "default"); known {
				if err != nil {
					t.Fatalf("%s#%d: %v", file, d.Index, err)
				}
				continue
			}
			res := validation.ValidateObject(t.Context(), d.Object, validation.Options{DefaultNamespace: "default"})
			if !res.Valid() {
				t.Fatalf("%s#%d: %v", file, d.Index, res.ErrorLines())
			}
			ns := res.Namespace
			if ns == "" {
				ns = "default"
			}
			in.Objects = append(in.Objects, Object{Kind: res.Kind, Namespace: ns, Name: res.Name, Spec: res.Spec()})
		}
	}
	return in
}

// TestGatewayPortIstioCases runs Istio's own test data for the gateway port
// analyzer (testdata/istio-gateway, see its NOTICE) and expects the messages
// Istio's analyzers_test.go expects: IST0162 for httpbin8002-gateway (its
// port 8002 is not a port of my-8001, the only Service selecting its pod) and
// for httpbin-gateway (port 8004, Service port 80 without targetPort);
// nothing for httpbin8001-gateway, nor for test-valid-gateway whose workload
// is a Deployment.
func TestGatewayPortIstioCases(t *testing.T) {
	for file, want := range map[string][]string{
		"gateway-custom-ingressgateway-svcselector.yaml":      {"IST0162 Gateway default/httpbin8002-gateway spec.servers[0].port.number"},
		"gateway-custom-ingressgateway-badport-notarget.yaml": {"IST0162 Gateway default/httpbin-gateway spec.servers[0].port.number"},
	} {
		msgs := Analyze(loadInput(t, filepath.Join("testdata", "istio-gateway", file)))
		var got []string
		for _, m := range msgs {
			if m.Kind == "Gateway" {
				got = append(got, fmt.Sprintf("%s %s %s/%s %s", m.Code, m.Kind, m.Namespace, m.Object, m.Field))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", file, got, want)
		}
	}
}

// TestGatewayPortMessage checks the analyzer's level and text against Istio's
// messages.yaml (IST0162 is a Warning), the port rule (a server port is a
// Service port, 80 here, which pilot translates to its targetPort, or that
// targetPort, 8080 here; Istio's gatewayCustomIngressGatewayTranslation and
// gatewayCustomIngressGateway cases) and the IST0101 for a selector no
// workload matches, reported only when the workload list is complete.
func TestGatewayPortMessage(t *testing.T) {
	gw := &networking.Gateway{Selector: map[string]string{"istio": "ingressgateway"}, Servers: []*networking.Server{
		{Port: &networking.Port{Number: 8080, Name: "http", Protocol: "HTTP"}, Hosts: []string{"*"}},
		{Port: &networking.Port{Number: 80, Name: "http2", Protocol: "HTTP"}, Hosts: []string{"*"}},
		{Port: &networking.Port{Number: 9443, Name: "https", Protocol: "HTTPS"}, Hosts: []string{"*"}},
	}}
	svc := KubeService{Namespace: "istio-system", Name: "istio-ingressgateway", Selector: map[string]string{"istio": "ingressgateway"},
		Ports: []ServicePort{
			{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: "TCP"},
			{Name: "https", Port: 443, TargetPort: intstr.FromString("8443")}, // protocol omitted: TCP
			{Name: "udp", Port: 15021, TargetPort: intstr.FromInt32(15021), Protocol: "UDP"},
		}}
	pod := Workload{Namespace: "istio-system", Name: "istio-ingressgateway-1", Labels: map[string]string{"istio": "ingressgateway", "app": "x"}}
	obj := Object{Kind: "Gateway", Namespace: "default", Name: "gw", Spec: gw}

	msgs := Analyze(Input{Objects: []Object{obj}, Workloads: []Workload{pod}, KubeServices: []KubeService{svc}})
	want := "Warning [IST0162] (Gateway default/gw) The gateway is listening on a target port (port 9443) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available."
	if len(msgs) != 1 || msgs[0].String() != want || msgs[0].Field != "spec.servers[2].port.number" {
		t.Fatalf("got %v\nwant %s", msgs, want)
	}

	// A Service in another namespace does not select the pod.
	other := svc
	other.Namespace = "default"
	if msgs := Analyze(Input{Objects: []Object{obj}, Workloads: []Workload{pod}, KubeServices: []KubeService{other}}); len(msgs) != 3 {
		t.Errorf("Service of another namespace counted: %v", msgs)
	}

	// A Service of the namespace selecting other pods does not count either
	// (Istio's analyzeGateway: svcSelector.Matches(podLabels)).
	unrelated := svc
	unrelated.Selector = map[string]string{"app": "other"}
	if msgs := Analyze(Input{Objects: []Object{obj}, Workloads: []Workload{pod}, KubeServices: []KubeService{unrelated}}); len(msgs) != 3 {
		t.Errorf("Service selecting other pods counted: %v", msgs)
	}

	// No workload selected: silent for files, IST0101 for a cluster.
	if msgs := Analyze(Input{Objects: []Object{obj}}); len(msgs) != 0 {
		t.Errorf("files without the gateway workload: %v", msgs)
	}
	msgs = Analyze(Input{Objects: []Object{obj}, AllWorkloads: true})
	if len(msgs) != 1 || msgs[0].String() != `Error [IST0101] (Gateway default/gw) Referenced selector not found: "istio=ingressgateway"` {
		t.Errorf("cluster without the gateway workload: %v", msgs)
	}
}

// TestGatewayPortsLargeInput: 1,000 Gateways, 1,000 Deployments and 1,000
// Services selecting the same pods (about 0.5 MiB of YAML) are analysed in
// well under the bound. Comparing every workload with every Service for each
// Gateway took over ten minutes for this input (a billion selector matches,
// each parsing the Service's selector again).
func TestGatewayPortsLargeInput(t *testing.T) {
	const n = 1000
	sel := map[string]string{"app": "gw"}
	var in Input
	for i := range n {
		in.Objects = append(in.Objects, Object{Kind: "Gateway", Namespace: "a", Name: fmt.Sprintf("g%d", i), Spec: &networking.Gateway{Selector: sel,
			Servers: []*networking.Server{{Port: &networking.Port{Number: uint32(1000 + i), Name: "http", Protocol: "HTTP"}, Hosts: []string{fmt.Sprintf("h%d.example.com", i)}}}}})
		in.Workloads = append(in.Workloads, Workload{Namespace: "a", Name: fmt.Sprintf("d%d", i), Labels: map[string]string{"app": "gw", "pod": fmt.Sprint(i)}})
		// Service i+1 leaves port 1000 to no Service: gateway g0 is reported.
		in.KubeServices = append(in.KubeServices, KubeService{Namespace: "a", Name: fmt.Sprintf("s%d", i), Selector: sel,
			Ports: []ServicePort{{Name: "http", Port: int32(1001 + i)}}})
	}
	done := make(chan []Message, 1)
	go func() { done <- Analyze(in) }()
	select {
	case msgs := <-done:
		var got []string
		for _, m := range msgs {
			got = append(got, m.Code+" "+m.Object+" "+m.Field)
		}
		if want := []string{"IST0162 g0 spec.servers[0].port.number"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Analyze still running after 20 s")
	}
}
