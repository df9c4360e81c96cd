package webhook

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshguard/meshguard/validation"
)

// Validation metrics, by kind and result (docs/operations.md "Metrics and
// alerts"). Istio's equivalents are
// galley_validation_passed/failed{reason} (Istio's pkg/webhooks/validation/server/monitoring.go).
var (
	validateRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_validation_requests_total",
		Help: "Validation admission requests by kind and result (allowed, warned, denied, skipped, error).",
	}, []string{"kind", "result"})
	validateDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "meshguard_validation_duration_seconds",
		Help: "Time to validate one object at admission (after decoding the AdmissionReview).",
		// 10µs .. ~2.5s: typical objects validate in tens of microseconds.
		Buckets: prometheus.ExponentialBuckets(0.00001, 3, 12),
	}, []string{"kind"})
	validateRegisterOnce sync.Once
)

func registerValidationMetrics() {
	validateRegisterOnce.Do(func() {
		metrics.Registry.MustRegister(validateRequests, validateDuration)
	})
}

// metricKinds are the kind label's values besides "other": the kinds
// meshguard validates.
var metricKinds = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range validation.RegisteredKinds() {
		m[k] = true
	}
	return m
}()

func observeValidation(kind, result string, start time.Time) {
	// Any client reaching /validate writes the AdmissionReview's kind: other
	// kinds share one series, so made-up ones cannot grow the metric.
	if !metricKinds[kind] {
		kind = "other"
	}
	validateRequests.WithLabelValues(kind, result).Inc()
	validateDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}
