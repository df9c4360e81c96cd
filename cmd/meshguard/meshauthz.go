package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/meshconfig"
)

// authzFromMeshConfig fills the ext_authz settings that Istio takes from
// MeshConfig (rootNamespace, trustDomain, trustDomainAliases,
// pathNormalization) from the mesh config file at path, except those whose
// flag was given: one file then configures the injector and the authorizer
// alike, as istiod's mesh config does, and the verdicts follow the same
// settings Istio's proxies would. Under serve, authz.Setup then
// reloads the file on change (authz.Options.MeshConfigPath).
func authzFromMeshConfig(fs *pflag.FlagSet, path string, o *authz.Options) error {
	if path == "" {
		return nil
	}
	m, err := meshconfig.LoadFile(path)
	if err != nil {
		return fmt.Errorf("--mesh-config: %w", err)
	}
	changed := func(flag string) bool { return fs.Lookup(flag) != nil && fs.Changed(flag) }
	*o = o.WithMeshConfig(m, changed)
	o.MeshConfigPath, o.MeshFlagSet = path, changed
	return nil
}
