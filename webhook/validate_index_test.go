package webhook

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/validation/crossref"
)

// The index reads a Service's port numbers and exportTo annotation, which
// the destination checks (IST0101 host:port, IST0112, exportTo) need.
func TestIndexedService(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews", Annotations: map[string]string{crossref.ExportToAnnotation: ".,a"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}, {Port: 9080}}},
	}
	got := indexedService(svc)
	if got.Key != (crossref.Key{Namespace: "shop", Name: "reviews"}) || !got.PortsKnown || !slices.Equal(got.Ports, []uint32{80, 9080}) || got.ExportTo != ".,a" {
		t.Errorf("got %+v", got)
	}
}
