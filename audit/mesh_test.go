package audit

import (
	"context"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
)

// The audit's analyzers read the mesh config meshguard serves with
// (Snapshot.Mesh, from Auditor.Mesh): DNS auto-allocation gives a
// ServiceEntry without addresses one, so no IST0134; without a mesh config
// Istio's default applies and it is reported.
func TestCheckReadsMeshConfig(t *testing.T) {
	se := Object{Ref: ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "ServiceEntry", Namespace: "shop", Name: "db"},
		Raw: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": map[string]any{"name": "db", "namespace": "shop"},
			"spec": map[string]any{"hosts": []any{"db.example.com"}, "resolution": "DNS",
				"ports": []any{map[string]any{"number": int64(5432), "name": "tcp", "protocol": "TCP"}}}}} // as the API server returns it
	autoAllocate := &meshv1alpha1.MeshConfig{RootNamespace: "istio-system", DefaultConfig: &meshv1alpha1.ProxyConfig{
		ProxyMetadata: map[string]string{"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"}}}
	for _, tt := range []struct {
		name string
		mesh *meshv1alpha1.MeshConfig
		want int
	}{{"Istio's default", nil, 1}, {"DNS auto-allocation", autoAllocate, 0}} {
		vs, err := Check(context.Background(), Snapshot{Objects: []Object{se}, Namespaces: map[string]map[string]string{"shop": nil}, Mesh: tt.mesh}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range vs {
			if v.Code == "IST0134" {
				n++
			}
		}
		if n != tt.want {
			t.Errorf("%s: %d IST0134 violations (%v), want %d", tt.name, n, vs, tt.want)
		}
	}
	a := &Auditor{Mesh: func() *meshv1alpha1.MeshConfig { return autoAllocate }}
	if got := a.Mesh(); got != autoAllocate {
		t.Fatalf("Auditor.Mesh = %v", got)
	}
}
