package template

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Rows of Istio's injector unit-test tables about its template functions
// (pkg/kube/inject/template.go, inject.go, app_probe.go), re-expressed as
// meshguard values and run through the functions the generic renderer gives
// the templates. The other tables are in ../istio_unit_tables_test.go.

// TestIstioOmitNil is Istio's template_test.go TestOmitNil (omitNil).
func TestIstioOmitNil(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want any
	}{
		{"no nils", map[string]any{"a": 1, "b": "c"}, map[string]any{"a": 1, "b": "c"}},
		{"top level nil", map[string]any{"a": nil, "b": "c"}, map[string]any{"b": "c"}},
		{"nested nil", map[string]any{"a": map[string]any{"x": nil, "y": 2}, "b": "c"}, map[string]any{"a": map[string]any{"y": 2}, "b": "c"}},
		{"slice with nil", []any{1, nil, 3}, []any{1, 3}},
		{"nested slice nil", map[string]any{"a": []any{nil, map[string]any{"x": nil}}}, nil},
		{"all nils map", map[string]any{"a": nil, "b": map[string]any{"x": nil}}, nil},
		{"complex mixed",
			map[string]any{"global": map[string]any{"proxy": map[string]any{"resources": map[string]any{"limits": map[string]any{"cpu": nil, "memory": "500Mi"}}}}},
			map[string]any{"global": map[string]any{"proxy": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "500Mi"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := omitNil(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("omitNil = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestIstioSkipUDPPorts is Istio's inject_test.go TestSkipUDPPorts
// (getPortsForContainer, the ports of the includeInboundPorts and
// applicationPorts template functions) through includeInboundPorts on one
// container.
func TestIstioSkipUDPPorts(t *testing.T) {
	port := func(n int32, p corev1.Protocol) corev1.ContainerPort {
		return corev1.ContainerPort{ContainerPort: n, Protocol: p}
	}
	for i, tc := range []struct {
		ports []corev1.ContainerPort
		want  string
	}{
		{[]corev1.ContainerPort{}, ""},
		{[]corev1.ContainerPort{port(80, corev1.ProtocolTCP), port(8080, corev1.ProtocolTCP)}, "80,8080"},
		{[]corev1.ContainerPort{port(53, corev1.ProtocolTCP), port(53, corev1.ProtocolUDP)}, "53"},
		{[]corev1.ContainerPort{port(80, corev1.ProtocolTCP), port(53, corev1.ProtocolUDP)}, "80"},
		{[]corev1.ContainerPort{port(53, corev1.ProtocolUDP)}, ""},
	} {
		if got := includeInboundPorts([]corev1.Container{{Ports: tc.ports}}); got != tc.want {
			t.Errorf("case %d: includeInboundPorts = %q, want %q", i, got, tc.want)
		}
	}
}

// TestIstioFindSidecar is Istio's app_probe_test.go TestFindSidecar
// (FindSidecar: istio-proxy among the containers, else the init containers).
func TestIstioFindSidecar(t *testing.T) {
	proxy := corev1.Container{Name: "istio-proxy"}
	app := corev1.Container{Name: "app"}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want *corev1.Container
	}{
		{"only-sidecar", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{proxy}}}, &proxy},
		{"app-and-sidecar", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{app, proxy}}}, &proxy},
		{"no-sidecar", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{app}}}, nil},
		{"init-sidecar", &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{proxy}, Containers: []corev1.Container{app}}}, &proxy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FindSidecar(tc.pod); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("FindSidecar = %+v, want %+v", got, tc.want)
			}
		})
	}
}
