package main

import (
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/injector/config"
)

// The audit reads the mesh config the injector loads, each reload, and the
// hook set before (followInjectorMesh's, for ext_authz) still runs.
func TestFollowAuditMesh(t *testing.T) {
	o := &serveOptions{}
	if o.governance.auditMesh().Load() != nil {
		t.Fatal("a mesh config before any was loaded")
	}
	var before []*meshv1alpha1.MeshConfig
	o.injection.OnConfigLoaded = func(s *config.Snapshot) { before = append(before, s.Mesh) }
	followAuditMesh(o)
	first, second := &meshv1alpha1.MeshConfig{RootNamespace: "a"}, &meshv1alpha1.MeshConfig{RootNamespace: "b"}
	for _, m := range []*meshv1alpha1.MeshConfig{first, second} {
		o.injection.OnConfigLoaded(&config.Snapshot{Mesh: m})
		if got := o.governance.auditMesh().Load(); got != m {
			t.Errorf("audit mesh %v, want %v", got, m)
		}
	}
	if len(before) != 2 || before[0] != first || before[1] != second {
		t.Errorf("the earlier hook saw %v, want both configs in order", before)
	}
	o = &serveOptions{}
	followAuditMesh(o) // no earlier hook
	o.injection.OnConfigLoaded(&config.Snapshot{Mesh: first})
	if o.governance.auditMesh().Load() != first {
		t.Error("without an earlier hook: the audit's mesh config not set")
	}
}
