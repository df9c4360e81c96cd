package config

import (
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/meshconfig"
)

// The mesh config belongs to the whole mesh and lives in package
// meshconfig; these forwarders keep injector/config's API.

// DefaultProxyConfig returns Istio's default ProxyConfig (meshconfig.DefaultProxyConfig).
func DefaultProxyConfig() *meshv1alpha1.ProxyConfig { return meshconfig.DefaultProxyConfig() }

// DefaultMeshConfig returns Istio's default MeshConfig (meshconfig.DefaultMeshConfig).
func DefaultMeshConfig() *meshv1alpha1.MeshConfig { return meshconfig.DefaultMeshConfig() }

// CleanProxyConfig is meshconfig.CleanProxyConfig.
func CleanProxyConfig(pc *meshv1alpha1.ProxyConfig) *meshv1alpha1.ProxyConfig {
	return meshconfig.CleanProxyConfig(pc)
}

// ParseProxyConfig is meshconfig.ParseProxyConfig.
func ParseProxyConfig(base *meshv1alpha1.ProxyConfig, data string) (*meshv1alpha1.ProxyConfig, error) {
	return meshconfig.ParseProxyConfig(base, data)
}

// MergeProxyConfig is meshconfig.MergeProxyConfig.
func MergeProxyConfig(base, over *meshv1alpha1.ProxyConfig) *meshv1alpha1.ProxyConfig {
	return meshconfig.MergeProxyConfig(base, over)
}

// TemplateEnv is meshconfig.TemplateEnv: what Istio's sidecar template makes
// of a proxyMetadata entry (the mesh config's own are checked by
// meshconfig.Validate; the injector checks the other layers with it).
func TemplateEnv(name, value string) (string, string, error) {
	return meshconfig.TemplateEnv(name, value)
}
