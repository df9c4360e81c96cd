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
// (rootNamespace, trustDomain, trustDomainAliases, pathNormalization) taken
// from m, except those whose flag flagSet reports as given (nil: none).
func (o Options) WithMeshConfig(m *meshv1alpha1.MeshConfig, flagSet func(name string) bool) Options {
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
		o.PathNormalization = pn.GetNormalization().String()
		if pn.GetNormalization() == meshv1alpha1.MeshConfig_ProxyPathNormalization_DEFAULT {
			o.PathNormalization = "BASE" // Istio: DEFAULT is BASE
		}
	}
	return o
}

// loadMesh reads o.MeshConfigPath and returns the mesh settings it gives
// (flags still override), validated completely. Each load starts from the
// defaults and the flags, not from o's current settings (which hold the file
// as read at start-up): a key removed from the file returns to Istio's
// default, as in istiod, instead of keeping its old value (a removed trust
// domain alias kept matching ALLOW policies).
func loadMesh(o Options) (*policy.Mesh, error) {
	m, err := meshconfig.LoadFile(o.MeshConfigPath)
	if err != nil {
		return nil, err
	}
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
	mesh := base.WithMeshConfig(m, o.MeshFlagSet)
	if err := mesh.Validate(); err != nil {
		return nil, fmt.Errorf("mesh config %s: %w", o.MeshConfigPath, err)
	}
	withDefaults := mesh.withDefaults()
	pm := withDefaults.Mesh()
	return &pm, nil
}

// watchMeshConfig reloads o.MeshConfigPath on every change into a
// reload.Store (source reload.MeshConfig), gives the engine the new mesh
// settings and asks for a policy recompile on policyTrigger. A rejected
// file keeps the last good settings and is reported like a rejected policy
// update (o.OnReloadError). serve and `authz serve` both run it.
func watchMeshConfig(ctx context.Context, o Options, engine *policy.Engine, log logr.Logger, policyTrigger chan<- struct{}) error {
	current := engine.Mesh()
	meshes := reload.NewStore(&current, reload.Reporting{Source: reload.MeshConfig,
		Log: log.WithValues("meshConfig", o.MeshConfigPath), OnReject: o.OnReloadError})
	// reload.Run reads the file once it is watched (a change since start-up
	// is not missed) and after every change; only a change of the settings
	// recompiles the policies.
	err := reload.Run(ctx, log, []string{o.MeshConfigPath}, nil, o.Debounce, func() {
		m, err := meshes.Update(func() (*policy.Mesh, error) { return loadMesh(o) })
		if err != nil {
			return
		}
		before := engine.Mesh()
		engine.SetMesh(*m)
		if reflect.DeepEqual(before, engine.Mesh()) {
			return
		}
		select {
		case policyTrigger <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("watch mesh config: %w", err)
	}
	return nil
}
