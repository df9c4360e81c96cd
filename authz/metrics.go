package authz

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshguard/meshguard/reload"
)

// Metrics are process-wide and registered once on controller-runtime's
// registry so the manager's metrics endpoint serves them.
type Metrics struct {
	Decisions *prometheus.CounterVec
	Latency   prometheus.Histogram
	Version   prometheus.Gauge
	Policies  *prometheus.GaugeVec
	Protocol  *prometheus.CounterVec
	Refused   *prometheus.CounterVec
}

var (
	metricsOnce sync.Once
	metrics     *Metrics
)

// DefaultMetrics returns the registered collectors.
func DefaultMetrics() *Metrics {
	metricsOnce.Do(func() {
		metrics = &Metrics{
			Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "meshguard_authz_decisions_total",
				Help: "ext_authz Check decisions by result (allow, deny, bad_request, error, error_fail_open, cancelled) and deciding action.",
			}, []string{"result", "action"}),
			Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "meshguard_authz_evaluation_seconds",
				Help: "Policy evaluation latency per Check (decode, OPA evaluation, response).",
				// 5µs … ~80ms
				Buckets: prometheus.ExponentialBuckets(5e-6, 2, 15),
			}),
			Version: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "meshguard_authz_snapshot_version",
				Help: "Version of the policy snapshot currently used for decisions (0: none loaded).",
			}),
			Policies: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "meshguard_authz_snapshot_objects",
				Help: "Objects in the current policy snapshot by kind.",
			}, []string{"kind"}),
			Protocol: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "meshguard_authz_protocol_decisions_total",
				Help: "ext_authz decisions by protocol (grpc, http) and result.",
			}, []string{"protocol", "result"}),
			Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "meshguard_authz_refused_total",
				Help: "ext_authz calls refused before evaluation by the server-wide request memory bounds, by protocol and reason (open_calls, request_memory).",
			}, []string{"protocol", "reason"}),
		}
		ctrlmetrics.Registry.MustRegister(metrics.Decisions, metrics.Latency, metrics.Version, metrics.Policies, metrics.Protocol, metrics.Refused)
		// Policy and mesh config reloads: meshguard_config_reload(s|_errors)_total{source}
		// and the deprecated meshguard_authz_reload_errors_total.
		reload.RegisterMetrics(ctrlmetrics.Registry)
	})
	return metrics
}
