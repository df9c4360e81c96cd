package main

import (
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
		s, err := config.LoadInputData(nil, nil, []byte(mesh))
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
