package webhook

import (
	"bytes"
	"context"
	"net/http"
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
// (injectBenchCases, same names, so a comparison pairs them) through
// floorHandler, the denominator of the /inject rows of docs/benchmarks.md (the
// target: the handler within 2.5x of it for the tiny pod, 1x for 2,000 envs).
func BenchmarkInjectFloor(b *testing.B) {
	for _, bc := range injectBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			benchServe(b, newFloorHandler(b), reviewBody(b, testPod(bc.envs), nil))
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
