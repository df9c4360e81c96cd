package main

import (
	"fmt"

	"github.com/spf13/pflag"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/meshconfig"
)

// authzFromMeshConfig fills the ext_authz settings that Istio takes from
// MeshConfig (rootNamespace, trustDomain, trustDomainAliases,
// pathNormalization, defaultConfig.gatewayTopology.numTrustedProxies) from the mesh config file at path, except those whose
// flag was given: one file then configures the injector and the authorizer
// alike, as istiod's mesh config does, and the verdicts follow the same
// settings Istio's proxies would. Under serve (authz.Setup) and authz serve
// (authz.RunStandalone) the file is then reloaded on change by the same
// watcher (authz.Options.MeshConfigPath).
func authzFromMeshConfig(fs *pflag.FlagSet, path string, o *authz.Options) error {
	// The flags override a mesh config from Istio's ConfigMap too
	// (followInjectorMesh).
	o.MeshFlagSet = func(flag string) bool { return fs.Lookup(flag) != nil && fs.Changed(flag) }
	if path == "" {
		return nil
	}
	// Parsed here, validated by WithMeshConfig: the discoverySelectors are
	// parsed once, by that validation.
	m, err := meshconfig.ParseFile(path)
	if err != nil {
		return fmt.Errorf("--mesh-config: %w", err)
	}
	withMesh, err := o.WithMeshConfig(m, o.MeshFlagSet)
	if err != nil {
		return fmt.Errorf("--mesh-config: %s: %w", path, err)
	}
	*o = withMesh
	o.MeshConfigPath = path
	return nil
}

// followInjectorMesh makes serve's ext_authz follow the mesh config its
// injector loads (--mesh-config, or ConfigMap istio with
// --istio-config-namespace): every config the injector accepts is passed on
// (authz.Options.MeshConfigs) instead of ext_authz reloading the file on its
// own, so the two never decide with different mesh settings (a file the
// injector rejects, e.g. with a bad values file, changed only ext_authz's).
// Call it before webhook.SetupInjection and the returned function after it:
// that puts the mesh config loaded at start-up into the options ext_authz
// starts with, so even its first policy snapshot uses it. Without ext_authz
// or with Istio's default mesh config (nothing to reload) it does nothing.
func followInjectorMesh(o *serveOptions) (startWith func() error) {
	if !o.authz || (!o.injection.ConfigMaps.Enabled() && o.injection.MeshConfigPath == "") {
		return func() error { return nil }
	}
	meshes := make(chan *meshv1alpha1.MeshConfig, 1)
	o.injection.OnConfigLoaded = func(s *config.Snapshot) {
		for { // the latest config wins; the hook must not block
			select {
			case meshes <- s.Mesh:
				return
			default:
				select {
				case <-meshes:
				default:
				}
			}
		}
	}
	o.authzOpts.MeshConfigs = meshes
	o.authzOpts.MeshConfigPath = "" // not watched a second time
	return func() error {
		select {
		case m := <-meshes:
			// Only this config: the file may have changed since
			// authzFromMeshConfig read it. The injector accepted it, so
			// an error here is the two disagreeing: refused, not skipped.
			withMesh, err := o.authzOpts.WithMeshConfigOnly(m)
			if err != nil {
				return err
			}
			o.authzOpts = withMesh
		default:
		}
		return nil
	}
}
