package injector

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// podPortsIstio is ISTIO_META_POD_PORTS as Istio's sidecar template renders
// it (injection-template.yaml: "[", then for each port of each container a
// line indented by four spaces, ",", after the first, and structToJSON's
// json.Marshal of the port, then "]"; the YAML block scalar keeps the JSON
// bytes as they are).
func podPortsIstio(t *testing.T, containers []corev1.Container) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	first := true
	for _, c := range containers {
		for _, p := range c.Ports {
			js, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("\n    ")
			if !first {
				b.WriteString(",")
			}
			b.Write(js)
			first = false
		}
	}
	b.WriteString("\n]")
	return b.String()
}

// TestPodPortsJSONMatchesEncodingJSON compares podPortsJSON byte for byte
// with encoding/json over port tables: names with quotes, HTML characters,
// unicode, U+2028 and invalid UTF-8, every protocol, hostIP and hostPort,
// missing and zero fields, containers without ports.
func TestPodPortsJSONMatchesEncodingJSON(t *testing.T) {
	if n := reflect.TypeFor[corev1.ContainerPort]().NumField(); n != 5 {
		t.Fatalf("corev1.ContainerPort has %d fields, appendContainerPort writes 5", n)
	}
	for name, cs := range map[string][]corev1.Container{
		"none":       nil,
		"no ports":   {{Name: "a"}, {Name: "b"}},
		"zero port":  {{Name: "a", Ports: []corev1.ContainerPort{{}}}},
		"one":        {{Name: "a", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}}}},
		"all fields": {{Name: "a", Ports: []corev1.ContainerPort{{Name: "dns", HostPort: 53, ContainerPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "10.0.0.1"}}}},
		"protocols": {{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 1, Protocol: corev1.ProtocolTCP}, {ContainerPort: 2, Protocol: corev1.ProtocolSCTP},
			{ContainerPort: 3, Protocol: "weird\"<proto>"}}}, {Name: "b", Ports: []corev1.ContainerPort{{ContainerPort: -7, HostPort: -1}}}},
		"odd strings": {{Name: "a", Ports: []corev1.ContainerPort{
			{Name: `q"uo\te`, ContainerPort: 8080, HostIP: "::1"},
			{Name: "<a&b>", ContainerPort: 2147483647, HostPort: -2147483648},
			{Name: "ünï\u2028\u2029\u00a0\x7f\x00\x1f\t", ContainerPort: 9},
			{Name: "bad\xff\xfeutf8", HostIP: "\xc3", ContainerPort: 10},
		}}, {Name: "b"}, {Name: "c", Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 50051, Protocol: corev1.ProtocolTCP}}}},
	} {
		if got, want := podPortsJSON(cs), podPortsIstio(t, cs); got != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

// TestPodPortsJSONAllocs: one buffer and its string, whatever the number of
// ports (json.Marshal per port cost two more allocations each).
func TestPodPortsJSONAllocs(t *testing.T) {
	cs := []corev1.Container{{Name: "a", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "grpc", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}}},
		{Name: "b", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 15014, HostIP: "0.0.0.0", HostPort: 8080}}}}
	if n := testing.AllocsPerRun(100, func() { _ = podPortsJSON(cs) }); n > 2 {
		t.Errorf("podPortsJSON: %v allocations, want at most 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = podPortsJSON(nil) }); n != 0 {
		t.Errorf("podPortsJSON without ports: %v allocations, want 0", n)
	}
}
