package audit

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation/crossref"
	"github.com/meshguard/meshguard/webhook"
)

// BenchmarkAdmissionDuringAudit is the /validate handler (validation,
// cross-references, the example organisation rules) on one VirtualService,
// idle and while the audit core runs over 10,000 objects in a loop beside
// it; it reports the handler's p99 latency (p99-ns) as well as the mean.
//
//	go test ./audit/ -run '^$' -bench BenchmarkAdmissionDuringAudit -benchmem -benchtime 2000x
func BenchmarkAdmissionDuringAudit(b *testing.B) {
	rules, err := orgrules.Load(b.Context(), "../deploy/examples/rego")
	if err != nil {
		b.Fatal(err)
	}
	snap := auditSnapshot(benchObjects)
	ix := crossref.NewIndex("")
	ix.SetService("ns-1", "app-1", true)
	ix.SetNamespace("ns-1", nil, true)
	ix.SetReady()
	h := &webhook.ValidationHandler{Index: ix, Rules: func() *orgrules.Rules { return rules }, RuleIndex: ix, Log: logr.Discard()}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "bench", Kind: metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
		Namespace: "ns-1", Name: "app-1", Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: []byte(`{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"app-1","namespace":"ns-1"},` +
			`"spec":{"hosts":["app-1"],"http":[{"route":[{"destination":{"host":"app-1","subset":"v1"},"weight":90},{"destination":{"host":"app-1","subset":"v2"},"weight":10}]}]}}`)},
	}}
	// As serve does before serving (validation.Preload), and one request to warm up.
	if resp := h.Handle(b.Context(), req); !resp.Allowed {
		b.Fatalf("denied: %v", resp.Result)
	}
	for _, auditing := range []bool{false, true} {
		name := "idle"
		if auditing {
			name = "auditing"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(b.Context())
			var wg sync.WaitGroup
			if auditing {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						paced := snap
						paced.Rest = DutyCycle(auditCPUShare) // as Auditor.run paces it
						_, _ = Check(ctx, paced, rules)
					}
				}()
			}
			var lat []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if resp := h.Handle(ctx, req); !resp.Allowed {
					b.Fatalf("denied: %v", resp.Result)
				}
				lat = append(lat, time.Since(start))
			}
			cancel()
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
