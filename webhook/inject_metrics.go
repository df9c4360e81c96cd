package webhook

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	injectRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_injector_requests_total",
		Help: "Sidecar injection admission requests by result (injected, skipped, denied, error) and reason.",
	}, []string{"result", "reason"})
	injectDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "meshguard_injector_duration_seconds",
		Help: "Time to handle one sidecar injection admission request (after decoding the AdmissionReview).",
		// 100µs .. 1s: injection takes well under a millisecond, Istio's
		// 0.1-60 s buckets could not resolve it (docs/benchmarks.md "Sidecar injection").
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
	})
	configReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshguard_injector_config_reloads_total",
		Help: "Successful reloads of the injector mesh config and values.",
	})
	configReloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshguard_injector_config_reload_errors_total",
		Help: "Rejected injector config reloads; the last good config keeps serving.",
	})
	registerOnce sync.Once
)

// registerMetrics adds the collectors to controller-runtime's registry, which
// the manager's metrics endpoint serves.
func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(injectRequests, injectDuration, configReloads, configReloadErrors)
	})
}

func observe(result, reason string, start time.Time) {
	injectRequests.WithLabelValues(result, reason).Inc()
	injectDuration.Observe(time.Since(start).Seconds())
}
