package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// floorHandler is the least a mutating pod webhook can do: controller-runtime
// decodes the AdmissionReview, the handler decodes the pod with
// controller-runtime's admission decoder and returns an empty patch. The
// /inject handler's cost is reported against it (hack/bench-compare.sh,
// docs/benchmarks.md).
type floorHandler struct{ decoder admission.Decoder }

func (f floorHandler) Handle(_ context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := f.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	return admission.Patched("")
}

func newFloorHandler(tb testing.TB) http.Handler {
	tb.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	discard := logr.Discard()
	// The same webhook wrapper settings as NewInjectHTTPHandler (no
	// per-request logger construction), so only the handler differs.
	return &admission.Webhook{
		Handler:        floorHandler{decoder: admission.NewDecoder(scheme)},
		RecoverPanic:   ptrTo(true),
		LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return discard },
	}
}

// BenchmarkInjectFloor: the same AdmissionReviews as BenchmarkInjectHandler
// through floorHandler, the denominator of the /inject rows.
func BenchmarkInjectFloor(b *testing.B) {
	for _, bc := range []struct {
		name string
		envs int
	}{{"tiny", 0}, {"env500", 500}, {"env1000", 1000}, {"env2000", 2000}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newFloorHandler(b)
			body := reviewBody(b, testPod(bc.envs), nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("HTTP %d", w.Code)
				}
			}
		})
	}
}

// TestInjectFloorDecodes: the floor really decodes the pod (a body whose pod
// does not decode is refused), so the benchmark's denominator is not an
// empty handler.
func TestInjectFloorDecodes(t *testing.T) {
	h := newFloorHandler(t)
	w, resp := serve(t, h, reviewBody(t, testPod(3), nil))
	if w.Code != http.StatusOK || !resp.Allowed {
		t.Fatalf("valid pod: HTTP %d allowed=%v", w.Code, resp.Allowed)
	}
	bad := bytes.Replace(reviewBody(t, testPod(0), nil), []byte(`"containers":[`), []byte(`"containers":7,"x":[`), 1)
	_, resp = serve(t, h, bad)
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
		t.Fatalf("undecodable pod: want 400, got %+v", resp)
	}
}
