package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatchv5 "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/injector/config"
)

// FuzzInjectAdmissionReview feeds arbitrary bodies through AdmissionReview
// decoding into injection. Panics are not recovered here (unlike production),
// so any panic fails; a patched response must apply to the request's pod.
// Seeds: testdata/fuzz/FuzzInjectAdmissionReview.
func FuzzInjectAdmissionReview(f *testing.F) {
	f.Add(reviewBody(f, testPod(0), nil))
	f.Add(reviewBody(f, testPod(3), func(r *admissionv1.AdmissionRequest) {
		r.Object.Raw = []byte(`{"metadata":{"annotations":{"sidecar.istio.io/status":"{\"containers\":[\"app\"]}"}}}`)
	}))
	f.Add([]byte(`{"request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a","readinessProbe":{"tcpSocket":{"port":"x"}}}]}}}}`))
	// Allow-list paths (injector/guard.go): ignored image, denied override.
	f.Add([]byte(`{"request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":{"annotations":{"sidecar.istio.io/proxyImage":"evil.io/p:1","sidecar.istio.io/userVolume":"{\"h\":{\"hostPath\":{\"path\":\"/\"}}}"}},"spec":{"containers":[{"name":"a"},{"name":"istio-proxy","image":"x/y","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN"]}}}]}}}}`))
	h := &admission.Webhook{Handler: &InjectHandler{Config: NewConfigStore(config.Default()), Log: logr.Discard()}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || ar.Response == nil {
			t.Fatalf("response is not an AdmissionReview: %v %q", err, w.Body.String())
		}
		if len(ar.Response.Patch) == 0 {
			return
		}
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			t.Fatalf("patched a request that does not decode: %v", err)
		}
		p, err := jsonpatchv5.DecodePatch(ar.Response.Patch)
		if err != nil {
			t.Fatalf("invalid patch: %v", err)
		}
		if _, err := p.Apply(in.Request.Object.Raw); err != nil {
			t.Fatalf("patch does not apply to the pod: %v\n%s", err, ar.Response.Patch)
		}
	})
}
