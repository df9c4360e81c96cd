package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"

	"github.com/meshguard/meshguard/injector/config"
)

// TestFollowInjectorMesh: with Istio's ConfigMaps serve has no --mesh-config,
// and ext_authz used its defaults while injection used ConfigMap istio's
// trust domain and root namespace. Now the mesh config the injector loads
// at start-up is in the options ext_authz starts with, each later one is
// passed on (the latest wins while none is read), and the flags still
// override it.
func TestFollowInjectorMesh(t *testing.T) {
	o := &serveOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"--istio-config-namespace=istio-system", "--trust-domain=flag.td"}); err != nil {
		t.Fatal(err)
	}
	if err := authzFromMeshConfig(fs, o.injection.MeshConfigPath, &o.authzOpts); err != nil {
		t.Fatal(err)
	}
	snap := func(mesh string) *config.Snapshot {
		s, err := config.Inputs{Mesh: []byte(mesh)}.Load()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	startWith := followInjectorMesh(o)
	// What webhook.SetupInjection does with the config it loaded.
	o.injection.OnConfigLoaded(snap("rootNamespace: mesh-root\ntrustDomain: mesh.td\ntrustDomainAliases: [old.td]\n"))
	startWith()
	if got := o.authzOpts; got.RootNamespace != "mesh-root" || got.TrustDomain != "flag.td" || len(got.TrustDomainAliases) != 1 {
		t.Fatalf("ext_authz starts with root %q, trust domain %q, aliases %v; want mesh-root, flag.td (the flag), [old.td]",
			got.RootNamespace, got.TrustDomain, got.TrustDomainAliases)
	}
	// Two reloads before ext_authz reads: it gets the latest, the loader never blocks.
	o.injection.OnConfigLoaded(snap("rootNamespace: second\n"))
	o.injection.OnConfigLoaded(snap("rootNamespace: third\n"))
	select {
	case m := <-o.authzOpts.MeshConfigs:
		if m.GetRootNamespace() != "third" {
			t.Fatalf("ext_authz got root namespace %q, want the latest (third)", m.GetRootNamespace())
		}
	default:
		t.Fatal("a reloaded mesh config was not passed on")
	}
}

// TestFollowInjectorMeshFiles: with --mesh-config serve's ext_authz no longer
// reloads the file on its own (which took a mesh change the injector had
// rejected together with a bad values file, so the two decided with
// different mesh settings): it follows the injector's accepted configs.
func TestFollowInjectorMeshFiles(t *testing.T) {
	mesh := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(mesh, []byte("trustDomain: file.td\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &serveOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"--mesh-config=" + mesh}); err != nil {
		t.Fatal(err)
	}
	if err := authzFromMeshConfig(fs, o.injection.MeshConfigPath, &o.authzOpts); err != nil {
		t.Fatal(err)
	}
	startWith := followInjectorMesh(o)
	if o.authzOpts.MeshConfigPath != "" || o.authzOpts.MeshConfigs == nil {
		t.Fatalf("ext_authz still watches %q itself (follows the injector: %v)", o.authzOpts.MeshConfigPath, o.authzOpts.MeshConfigs != nil)
	}
	// The file changed between the two start-up reads: ext_authz starts with
	// the injector's, a removed key back at its default.
	s, err := config.Inputs{Mesh: []byte("rootNamespace: mesh-root\n")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	o.injection.OnConfigLoaded(s)
	startWith()
	if o.authzOpts.TrustDomain != "cluster.local" || o.authzOpts.RootNamespace != "mesh-root" {
		t.Fatalf("start-up trust domain %q, root %q; want the injector's config (cluster.local, mesh-root)", o.authzOpts.TrustDomain, o.authzOpts.RootNamespace)
	}

	// Without ext_authz there is nothing to follow.
	o = &serveOptions{}
	fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"--mesh-config=" + mesh, "--authz=false"}); err != nil {
		t.Fatal(err)
	}
	followInjectorMesh(o)
	if o.injection.OnConfigLoaded != nil || o.authzOpts.MeshConfigs != nil {
		t.Fatal("--authz=false: ext_authz wired to the injector")
	}
}
