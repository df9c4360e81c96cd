package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/audit"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/webhook"
)

// governanceOptions are serve's organisation-rule sources and audit
// settings (docs/governance.md).
type governanceOptions struct {
	orgRules      webhook.OrgRulesOptions
	auditInterval time.Duration
	auditQPS      float32
	// mesh holds the mesh config the audit's analyzers read: the
	// injector's, as it loads each (followAuditMesh); nil until then, or
	// without the webhooks: Istio's default. A pointer: the options are
	// copied (dev mode), the holder is shared. Set up by auditMesh.
	mesh *atomic.Pointer[meshv1alpha1.MeshConfig]
}

// auditMesh is the holder of the audit's mesh config, made on first use
// (setup runs on one goroutine).
func (g *governanceOptions) auditMesh() *atomic.Pointer[meshv1alpha1.MeshConfig] {
	if g.mesh == nil {
		g.mesh = new(atomic.Pointer[meshv1alpha1.MeshConfig])
	}
	return g.mesh
}

func (g *governanceOptions) addFlags(fs *pflag.FlagSet) {
	g.orgRules.AddFlags(fs)
	fs.DurationVar(&g.auditInterval, "audit-interval", 0, "audit every stored mesh object (validation, cross-resource analysis, organisation rules) this often, on the leader; results as Events, metrics and PolicyReports (0 disables)")
	fs.Float32Var(&g.auditQPS, "audit-qps", 20, "API calls per second the audit may make (list pages, PolicyReport writes)")
}

// setupGovernance sets up the organisation rules (setupOrgRules) and, with
// --audit-interval, the leader-only audit that uses the same rules.
func setupGovernance(mgr manager.Manager, o *serveOptions, sink *eventSink, log logr.Logger) error {
	rules, err := setupOrgRules(mgr, o, sink, log)
	if err != nil {
		return err
	}
	if o.governance.auditInterval <= 0 {
		return nil
	}
	client, err := dynamic.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("audit client: %w", err)
	}
	a := &audit.Auditor{
		Client: client, Mapper: mgr.GetRESTMapper(), Recorder: mgr.GetEventRecorder("meshguard-audit"),
		Rules: rules.Current, Interval: o.governance.auditInterval, QPS: o.governance.auditQPS,
		Domain: o.validation.ClusterDomain, Revision: o.certOpts.Revision, Log: log.WithName("audit"),
		Mesh: o.governance.auditMesh().Load,
	}
	if rules != nil { // configured: no audit without them (their findings would be dropped)
		a.RulesReady = func() error { return rules.Ready(nil) }
	}
	return mgr.Add(a)
}

// setupOrgRules loads the organisation rules (when a source is configured),
// keeps them reloaded, gates readiness on their first load and hands them to
// the validation webhook. A rejected reload becomes an Event on meshguard's Pod.
func setupOrgRules(mgr manager.Manager, o *serveOptions, sink *eventSink, log logr.Logger) (*webhook.OrgRules, error) {
	ro := o.governance.orgRules
	ro.Namespace = o.namespace
	ro.OnReload = func(err error) {
		if err != nil {
			sink.rejected("OrgRulesRejected", err)
		}
	}
	rules, err := webhook.SetupOrgRules(mgr, ro, log.WithName("orgrules"))
	if err != nil {
		return nil, fmt.Errorf("set up organisation rules: %w", err)
	}
	if rules != nil {
		if err := mgr.AddReadyzCheck("orgrules", rules.Ready); err != nil {
			return nil, err
		}
	}
	o.validation.OrgRules = rules
	return rules, nil
}

// followAuditMesh hands every mesh config the injector loads (its file or
// Istio's ConfigMaps, reloaded) to the audit too, so that the audit's
// analyzers read the mesh config meshguard serves with; it wraps the hook
// followInjectorMesh may have set.
func followAuditMesh(o *serveOptions) {
	next, mesh := o.injection.OnConfigLoaded, o.governance.auditMesh()
	o.injection.OnConfigLoaded = func(s *config.Snapshot) {
		mesh.Store(s.Mesh)
		if next != nil {
			next(s)
		}
	}
}

// auditMeshWithoutInjector: with --webhooks=false there is no injector to
// follow (followAuditMesh): the audit reads --mesh-config at start and then
// takes every config of the file ext_authz accepts (authz.Options.
// OnMeshConfig), so the two judge with one mesh config; without the file,
// Istio's defaults.
func auditMeshWithoutInjector(o *serveOptions) error {
	if o.injection.MeshConfigPath == "" {
		return nil
	}
	m, err := meshconfig.LoadFile(o.injection.MeshConfigPath)
	if err != nil {
		return fmt.Errorf("--mesh-config: %w", err)
	}
	mesh := o.governance.auditMesh()
	mesh.Store(m)
	o.authzOpts.OnMeshConfig = mesh.Store
	return nil
}
