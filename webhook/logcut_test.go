package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/internal/textcut"
)

// Every field a webhook log line takes from the review is cut to
// textcut.MaxLogField, as ext_authz's decision lines are: a review of up to
// the 6 MiB body limit does not write megabytes into the log.
func TestWebhookLogFieldsCut(t *testing.T) {
	big := strings.Repeat("é", 1<<20) // 2 MiB, cut at a character boundary
	for _, tc := range []struct {
		name   string
		handle func(log funcr.Options, sink func(string)) admission.Response
	}{
		{"validate without uid", func(o funcr.Options, sink func(string)) admission.Response {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Kind:      metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: big},
				Namespace: big, Name: big, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`{}`)}}}
			return (&ValidationHandler{Log: funcr.NewJSON(sink, o)}).Handle(context.Background(), req)
		}},
		{"inject undecodable pod", func(o funcr.Options, sink func(string)) admission.Response {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u",
				Kind: metav1.GroupVersionKind{Kind: "Pod", Version: "v1"}, Namespace: big, Name: big,
				Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`{"spec":1}`)}}}
			return (&InjectHandler{Log: funcr.NewJSON(sink, o)}).Handle(context.Background(), req)
		}},
		{"inject pod of the wrong type", func(o funcr.Options, sink func(string)) admission.Response {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u",
				Kind: metav1.GroupVersionKind{Kind: "Pod", Version: "v1"}, Namespace: big, Name: big,
				Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`{"kind":"Service","apiVersion":"v1"}`)}}}
			return (&InjectHandler{Log: funcr.NewJSON(sink, o)}).Handle(context.Background(), req)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			resp := tc.handle(funcr.Options{Verbosity: 10}, func(l string) { lines = append(lines, l) })
			if resp.Allowed {
				t.Fatalf("review allowed: %+v", resp.Result)
			}
			if len(lines) == 0 {
				t.Fatal("nothing logged")
			}
			for _, l := range lines {
				if len(l) > 8*textcut.MaxLogField {
					t.Errorf("log line of %d bytes: %.300s...", len(l), l)
				}
				if !strings.Contains(l, "more bytes") {
					t.Errorf("log line does not say a field was cut: %.300s...", l)
				}
			}
		})
	}
}
