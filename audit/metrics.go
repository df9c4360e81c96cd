package audit

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Audit metrics, on meshguard's /metrics endpoint (docs/operations.md).
var (
	violations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshguard_audit_violations",
		Help: "Violations found by the last audit run, by kind, namespace and rule (analyzer code: IST0101, IST0106, MG0001, ...).",
	}, []string{"kind", "namespace", "rule"})
	audited = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshguard_audit_objects",
		Help: "Stored mesh objects the last audit run judged.",
	})
	duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meshguard_audit_duration_seconds",
		Help:    "Time one audit run takes (listing, checks, publishing).",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 10), // 10ms .. ~3 min
	})
	lastRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshguard_audit_last_run_timestamp_seconds",
		Help: "When the last audit run finished (Unix seconds).",
	})
	runErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshguard_audit_errors_total",
		Help: "Audit runs that failed (listing or publishing).",
	})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(violations, audited, duration, lastRun, runErrors)
	})
}

func typesUID(s string) types.UID { return types.UID(s) }
