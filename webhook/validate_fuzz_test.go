package webhook

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/validation/crossref"
)

// FuzzValidationAdmissionReview decodes arbitrary AdmissionReview JSON the way
// the webhook server does and runs the handler (with a cross-reference index):
// it must never panic, and a denial must carry a message.
func FuzzValidationAdmissionReview(f *testing.F) {
	seed := func(op, kind, obj string) []byte {
		b, _ := json.Marshal(map[string]any{
			"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"request": map[string]any{
				"uid": "1", "kind": map[string]string{"group": "networking.istio.io", "version": "v1", "kind": kind},
				"namespace": "default", "name": "x", "operation": op, "object": json.RawMessage(obj),
			},
		})
		return b
	}
	f.Add(seed("CREATE", "VirtualService", `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"x"},"spec":{"hosts":["a"],"http":[{"route":[{"destination":{"host":"a","subset":"v9"},"weight":-3}]}]}}`))
	f.Add(seed("UPDATE", "DestinationRule", `{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"x"},"spec":{"host":"a","subsets":[{"name":"v1"}]}}`))
	f.Add(seed("CREATE", "Gateway", `{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"x"},"spec":{"selector":{"a":"*"}}}`))
	f.Add(seed("DELETE", "Sidecar", `null`))
	f.Add([]byte(`{"request":{"kind":{"group":"security.istio.io","kind":"AuthorizationPolicy"},"operation":"CREATE","object":"x"}}`))
	ix := crossref.NewIndex("")
	ix.SetReady()
	ix.SetService("default", "a", true)
	ix.SetNamespace("default", nil, true)
	h := &ValidationHandler{Log: logr.Discard(), Index: ix}
	registerValidationMetrics()
	f.Fuzz(func(t *testing.T, data []byte) {
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(data, &review); err != nil || review.Request == nil {
			return
		}
		resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: *review.Request})
		if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
			t.Fatalf("denial without a message: %+v", resp)
		}
	})
}
