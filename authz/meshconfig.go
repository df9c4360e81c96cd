package authz

import (
	"context"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/meshconfig"
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

// watchMeshConfig reloads o.MeshConfigPath on every change, gives the engine
// the new mesh settings and asks for a policy recompile on policyTrigger. A
// rejected file keeps the last good settings and is reported like a rejected
// policy update.
func watchMeshConfig(ctx context.Context, o Options, rl *Reloader, policyTrigger chan<- struct{}) error {
	trigger := make(chan struct{}, 1)
	go reload.Debounce(ctx, trigger, o.Debounce, func() {
		m, err := meshconfig.LoadFile(o.MeshConfigPath)
		if err == nil {
			mesh := o.WithMeshConfig(m, o.MeshFlagSet)
			err = mesh.Validate()
			if err == nil {
				withDefaults := mesh.withDefaults()
				rl.Engine.SetMesh(withDefaults.Mesh())
				select {
				case policyTrigger <- struct{}{}:
				default:
				}
				return
			}
		}
		DefaultMetrics().ReloadErrors.Inc()
		rl.Log.Error(err, "mesh config rejected; keeping the last good mesh settings", "meshConfig", o.MeshConfigPath)
		if rl.OnError != nil {
			rl.OnError(err)
		}
	})
	return reload.Watch(ctx, rl.Log, trigger, []string{o.MeshConfigPath}, nil)
}
