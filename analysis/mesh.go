package analysis

import (
	"sync"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/meshconfig"
)

// DefaultRootNamespace is the root namespace of Istio's default mesh config.
const DefaultRootNamespace = "istio-system"

// defaultMesh is Istio's default mesh config, built once and only read.
var defaultMesh = sync.OnceValue(meshconfig.DefaultMeshConfig)

// mesh is the mesh config of in: in.Mesh, else Istio's default.
func (in *Input) mesh() *meshv1alpha1.MeshConfig {
	if in.Mesh == nil {
		return defaultMesh()
	}
	return in.Mesh
}

// RootNamespace is the mesh root namespace, where an AuthorizationPolicy
// applies to the whole mesh: the mesh config's rootNamespace, istio-system
// when unset (as Istio's util.EffectiveProxyConfigResolver and
// AuthorizationPoliciesAnalyzer take it).
func (in *Input) RootNamespace() string {
	if ns := in.mesh().GetRootNamespace(); ns != "" {
		return ns
	}
	return DefaultRootNamespace
}

// dnsAutoAllocated says whether the mesh config's default proxy metadata
// turns on DNS capture with address auto-allocation, which gives a
// ServiceEntry without addresses one (Istio's
// serviceentry.ProtocolAddressesAnalyzer.Analyze, protocoladdresses.go at
// ca0f371a068a: ISTIO_META_DNS_CAPTURE "true" with
// ISTIO_META_DNS_AUTO_ALLOCATE or PILOT_ENABLE_IP_AUTOALLOCATE "true").
func (in *Input) dnsAutoAllocated() bool {
	md := in.mesh().GetDefaultConfig().GetProxyMetadata()
	return md["ISTIO_META_DNS_CAPTURE"] == "true" &&
		(md["ISTIO_META_DNS_AUTO_ALLOCATE"] == "true" || md["PILOT_ENABLE_IP_AUTOALLOCATE"] == "true")
}
