package main

import (
	"os"
	"path/filepath"
	"strings"
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

// TestAuditMeshWithoutInjector: with --webhooks=false the audit had kept
// Istio's defaults whatever --mesh-config said (its root namespace decides
// which policies are mesh-wide).
func TestAuditMeshWithoutInjector(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(path, []byte("rootNamespace: mesh-root\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &serveOptions{}
	o.injection.MeshConfigPath = path
	if err := auditMeshWithoutInjector(o); err != nil {
		t.Fatal(err)
	}
	if m := o.governance.auditMesh().Load(); m == nil || m.GetRootNamespace() != "mesh-root" {
		t.Errorf("audit mesh %v, want rootNamespace mesh-root", m)
	}
	// Then every config of the file ext_authz accepts.
	next := &meshv1alpha1.MeshConfig{RootNamespace: "next-root"}
	if o.authzOpts.OnMeshConfig == nil {
		t.Fatal("ext_authz's accepted mesh configs do not reach the audit")
	}
	o.authzOpts.OnMeshConfig(next)
	if o.governance.auditMesh().Load() != next {
		t.Error("the audit did not take the mesh config ext_authz accepted")
	}
	if err := os.WriteFile(path, []byte("rootNamespace: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := auditMeshWithoutInjector(&serveOptions{injection: o.injection}); err == nil || !strings.HasPrefix(err.Error(), "--mesh-config: ") {
		t.Errorf("unreadable mesh config: err = %v", err)
	}
	o = &serveOptions{}
	if err := auditMeshWithoutInjector(o); err != nil || o.governance.auditMesh().Load() != nil {
		t.Errorf("no --mesh-config: err %v, mesh %v; want Istio's defaults (nil)", err, o.governance.auditMesh().Load())
	}
}
