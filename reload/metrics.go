package reload

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Source names one hot-reloaded input: the value of the source label.
type Source string

// The inputs meshguard reloads.
const (
	// InjectorConfig is the injector's mesh config plus values (webhook.ConfigWatcher).
	InjectorConfig Source = "injector-config"
	// Policy is the ext_authz policy state (--policy-dir or the API server, plus user Rego).
	Policy Source = "policy"
	// MeshConfig is the mesh config file as ext_authz reads it (rootNamespace, trust domains, path normalization).
	MeshConfig Source = "mesh-config"
	// OrgRules are the organisation rules applied at admission (--rego-dir, --rego-configmap[-selector]).
	OrgRules Source = "org-rules"
)

var (
	// ReloadsTotal counts accepted updates by source.
	ReloadsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_config_reloads_total",
		Help: "Accepted reloads of a hot-reloaded input (source: injector-config, policy, mesh-config, org-rules).",
	}, []string{"source"})
	// ReloadErrorsTotal counts rejected updates by source.
	ReloadErrorsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_config_reload_errors_total",
		Help: "Rejected reloads of a hot-reloaded input by source; the last good value keeps serving.",
	}, []string{"source"})

	// Deprecated names, kept for one release so existing alerts keep
	// working (docs/operations.md, Metrics): each counts what its source(s)
	// count in the labelled metrics.
	deprecatedReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshguard_injector_config_reloads_total",
		Help: "Deprecated: meshguard_config_reloads_total{source=\"injector-config\"}.",
	})
	deprecatedInjectorErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshguard_injector_config_reload_errors_total",
		Help: "Deprecated: meshguard_config_reload_errors_total{source=\"injector-config\"}.",
	})
	deprecatedAuthzErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshguard_authz_reload_errors_total",
		Help: "Deprecated: sum of meshguard_config_reload_errors_total{source=~\"policy|mesh-config\"}.",
	})
	deprecatedAliases = map[Source]struct{ reloads, errors prometheus.Counter }{
		InjectorConfig: {deprecatedReloads, deprecatedInjectorErrors},
		Policy:         {nil, deprecatedAuthzErrors},
		MeshConfig:     {nil, deprecatedAuthzErrors},
	}
)

// RegisterMetrics registers the reload metrics, the deprecated names
// included, on reg; registering them again on the same registry does
// nothing. serve passes controller-runtime's registry, which its metrics
// endpoint serves.
func RegisterMetrics(reg prometheus.Registerer) {
	for _, c := range []prometheus.Collector{ReloadsTotal, ReloadErrorsTotal, deprecatedReloads, deprecatedInjectorErrors, deprecatedAuthzErrors} {
		if err := reg.Register(c); err != nil {
			if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
				panic(fmt.Sprintf("registering the reload metrics: %v", err))
			}
		}
	}
}

// sourceMetrics creates the source's series so they are exported at 0.
func sourceMetrics(s Source) {
	ReloadsTotal.WithLabelValues(string(s))
	ReloadErrorsTotal.WithLabelValues(string(s))
}

func countReload(s Source) {
	if s == "" {
		return
	}
	ReloadsTotal.WithLabelValues(string(s)).Inc()
	if a := deprecatedAliases[s].reloads; a != nil {
		a.Inc()
	}
}

func countReject(s Source) {
	if s == "" {
		return
	}
	ReloadErrorsTotal.WithLabelValues(string(s)).Inc()
	if a := deprecatedAliases[s].errors; a != nil {
		a.Inc()
	}
}
