package authz

import (
	"context"
	"fmt"
	"reflect"

	"github.com/go-logr/logr"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/reload"
)

// WithMeshConfig returns o with the settings Istio takes from MeshConfig
// (rootNamespace, trustDomain, trustDomainAliases, pathNormalization,
// defaultConfig.gatewayTopology's numTrustedProxies and proxyProtocol, the
// gateways' defaults, and discoverySelectors, which no flag overrides)
// taken from m, except those whose flag flagSet reports as given (nil: none).
// m is validated first (meshconfig.Validated, as injection and analyze
// validate it): an invalid mesh config is an error, and the
// discoverySelectors o carries are the ones that validation parsed, the
// only parse ext_authz makes of them.
func (o Options) WithMeshConfig(m *meshv1alpha1.MeshConfig, flagSet func(name string) bool) (Options, error) {
	selectors, err := meshconfig.Validated(m)
	if err != nil {
		return o, fmt.Errorf("mesh config: %w", err)
	}
	unset := func(flag string) bool { return flagSet == nil || !flagSet(flag) }
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
		o.PathNormalization = pn.GetNormalization().String() // DEFAULT: policy.ParsePathNormalization
	}
	// No flag: istiod reads them from the mesh config alone.
	o.DiscoverySelectors = selectors
	if unset("num-trusted-proxies") {
		// A gateway's ProxyConfig starts from defaultConfig (pilot-agent
		// ConstructProxyConfig); absent, Envoy trusts no hop.
		o.NumTrustedProxies = int(m.GetDefaultConfig().GetGatewayTopology().GetNumTrustedProxies())
	}
	// Whether gateways take PROXY protocol headers by default: source.ip
	// over gRPC depends on it (policy.Mesh.GatewayProxyProtocol).
	o.GatewayProxyProtocol = m.GetDefaultConfig().GetGatewayTopology().GetProxyProtocol() != nil
	return o, nil
}

// loadMesh reads o.MeshConfigPath and returns the mesh settings it gives
// (meshSettings, which validates it completely); an accepted config goes
// to o.OnMeshConfig.
func loadMesh(o Options) (*meshState, error) {
	m, err := meshconfig.ParseFile(o.MeshConfigPath)
	if err != nil {
		return nil, err
	}
	mesh, err := meshSettings(o, m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.MeshConfigPath, err)
	}
	if o.OnMeshConfig != nil {
		o.OnMeshConfig(m)
	}
	return mesh, nil
}

// WithMeshConfigOnly is WithMeshConfig starting from the defaults and the
// flags given (o.MeshFlagSet), not from o's current mesh settings (which may
// hold an earlier mesh config): a key removed from the mesh config returns to
// Istio's default, as in istiod, instead of keeping its old value (a removed
// trust domain alias kept matching ALLOW policies).
func (o Options) WithMeshConfigOnly(m *meshv1alpha1.MeshConfig) (Options, error) {
	base, d := o, DefaultOptions()
	flag := func(name string) bool { return o.MeshFlagSet != nil && o.MeshFlagSet(name) }
	if !flag("root-namespace") {
		base.RootNamespace = d.RootNamespace
	}
	if !flag("trust-domain") {
		base.TrustDomain = d.TrustDomain
	}
	if !flag("trust-domain-aliases") {
		base.TrustDomainAliases = d.TrustDomainAliases
	}
	if !flag("path-normalization") {
		base.PathNormalization = d.PathNormalization
	}
	if !flag("num-trusted-proxies") {
		base.NumTrustedProxies = d.NumTrustedProxies
	}
	return base.WithMeshConfig(m, o.MeshFlagSet)
}

// meshState is what a mesh config gives ext_authz: the engine's settings
// and the discovery selectors the Kubernetes policy source applies.
type meshState struct {
	policy.Mesh
	Discovery meshconfig.DiscoverySelectors
}

// meshSettings returns the mesh settings m gives (WithMeshConfigOnly: flags
// still override), validated.
func meshSettings(o Options, m *meshv1alpha1.MeshConfig) (*meshState, error) {
	mesh, err := o.WithMeshConfigOnly(m)
	if err != nil {
		return nil, err
	}
	if err := mesh.Validate(); err != nil {
		return nil, err
	}
	withDefaults := mesh.withDefaults()
	return &meshState{Mesh: withDefaults.Mesh(), Discovery: mesh.DiscoverySelectors}, nil
}

// meshUpdater returns how ext_authz takes new mesh settings: built and
// swapped in through a reload.Store (source reload.MeshConfig; a rejected
// build keeps the last good settings and is reported like a rejected policy
// update, o.OnReloadError), given to the engine, and, when they changed, a
// policy recompile asked for on policyTrigger.
func meshUpdater(o Options, engine *policy.Engine, log logr.Logger, policyTrigger chan<- struct{}) func(build func() (*meshState, error)) {
	current := meshState{Mesh: engine.Mesh()}
	meshes := reload.NewStore(&current, reload.Reporting{Source: reload.MeshConfig,
		Log: log.WithValues("meshConfig", o.MeshConfigPath), OnReject: o.OnReloadError})
	return func(build func() (*meshState, error)) {
		m, err := meshes.Update(build)
		if err != nil {
			return
		}
		before := engine.Mesh()
		engine.SetMesh(m.Mesh)
		// New selectors change which policies the source loads.
		discoveryChanged := o.onDiscovery != nil && o.onDiscovery(m.Discovery)
		if reflect.DeepEqual(before, engine.Mesh()) && !discoveryChanged {
			return
		}
		select {
		case policyTrigger <- struct{}{}:
		default:
		}
	}
}

// watchMeshConfig reloads o.MeshConfigPath on every change (meshUpdater).
// serve and `authz serve` both run it.
func watchMeshConfig(ctx context.Context, o Options, engine *policy.Engine, log logr.Logger, policyTrigger chan<- struct{}) error {
	update := meshUpdater(o, engine, log, policyTrigger)
	// reload.Run reads the file once it is watched (a change since start-up
	// is not missed) and after every change; only a change of the settings
	// recompiles the policies.
	err := reload.Run(ctx, log, []string{o.MeshConfigPath}, nil, o.Debounce, func() {
		update(func() (*meshState, error) { return loadMesh(o) })
	})
	if err != nil {
		return fmt.Errorf("watch mesh config: %w", err)
	}
	return nil
}

// followMeshConfigs applies every mesh config received on o.MeshConfigs
// (meshUpdater) until ctx ends: serve with Istio's ConfigMaps, where the
// injector reads ConfigMap istio and passes on each config it accepts.
func followMeshConfigs(ctx context.Context, o Options, engine *policy.Engine, log logr.Logger, policyTrigger chan<- struct{}) {
	update := meshUpdater(o, engine, log, policyTrigger)
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-o.MeshConfigs:
			update(func() (*meshState, error) {
				mesh, err := meshSettings(o, m)
				if err != nil {
					return nil, fmt.Errorf("mesh config from Istio's ConfigMap: %w", err)
				}
				return mesh, nil
			})
		}
	}
}
