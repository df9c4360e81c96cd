package main

import (
	"fmt"

	"github.com/spf13/pflag"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/meshconfig"
)

// authzFromMeshConfig fills the ext_authz settings that Istio takes from
// MeshConfig (rootNamespace, trustDomain, trustDomainAliases,
// pathNormalization) from the mesh config file at path, except those whose
// flag was given: one file then configures the injector and the authorizer
// alike, as istiod's mesh config does, and the verdicts follow the same
// settings Istio's proxies would. Read at start; the chart rolls the pods
// when the mesh config changes.
func authzFromMeshConfig(fs *pflag.FlagSet, path string, o *authz.Options) error {
	if path == "" {
		return nil
	}
	m, err := meshconfig.LoadFile(path)
	if err != nil {
		return fmt.Errorf("--mesh-config: %w", err)
	}
	unset := func(flag string) bool { return fs.Lookup(flag) == nil || !fs.Changed(flag) }
	if unset("root-namespace") && m.GetRootNamespace() != "" {
		o.RootNamespace = m.GetRootNamespace()
	}
	if unset("trust-domain") && m.GetTrustDomain() != "" {
		o.TrustDomain = m.GetTrustDomain()
	}
	if unset("trust-domain-aliases") && len(m.GetTrustDomainAliases()) > 0 {
		o.TrustDomainAliases = m.GetTrustDomainAliases()
	}
	if pn := m.GetPathNormalization(); unset("path-normalization") && pn != nil {
		o.PathNormalization = pn.GetNormalization().String()
		if pn.GetNormalization() == meshv1alpha1.MeshConfig_ProxyPathNormalization_DEFAULT {
			o.PathNormalization = "BASE" // Istio: DEFAULT is BASE
		}
	}
	return nil
}
