package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/validation/crossref"
)

// strictHandler validates with cross-references in namespace default, labelled strict when strict.
func strictHandler(strict bool) *ValidationHandler {
	ix := crossref.NewIndex("")
	ix.SetReady()
	var labels map[string]string
	if strict {
		labels = map[string]string{crossref.StrictLabel: "true"}
	}
	ix.SetNamespace("default", labels, true)
	return &ValidationHandler{Log: logr.Discard(), Index: ix}
}

// A gateway reference repeated thousands of times is two findings each
// (IST0101, IST0132): the webhook reports the first 100 and counts the rest,
// as validation.CapProblems words it, without building them
// (crossref.Index.CheckLimit; its allocation is bounded in
// validation/crossref/checklimit_test.go).
func TestValidateCrossRefFindingsCapped(t *testing.T) {
	const refs = 5000
	gws := make([]string, refs)
	for i := range gws {
		gws[i] = "x"
	}
	obj := map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": map[string]any{"name": "reviews"},
		"spec": map[string]any{"hosts": []string{"a.example.com"}, "gateways": gws, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "a.example.com"}}}}}}}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			resp := strictHandler(strict).Handle(context.Background(), admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", doc, false))
			// 2 per reference and the missing destination host: 2*5000+1-100.
			wantMore := "and 9,901 more"
			if !strict {
				var lines []string
				for _, w := range resp.Warnings {
					if strings.Contains(w, "gateway default/x not found") || strings.Contains(w, "not found in Gateway default/x") {
						lines = append(lines, w)
					}
				}
				if !resp.Allowed || len(lines) != 100 || !strings.HasSuffix(resp.Warnings[len(resp.Warnings)-1], wantMore+" warnings") {
					t.Fatalf("allowed=%v, %d gateway warnings (want 100), last %q (want %q)", resp.Allowed, len(lines), resp.Warnings[len(resp.Warnings)-1], wantMore+" warnings")
				}
				return
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed in a strict namespace")
			}
			msg := resp.Result.Message
			if n := strings.Count(msg, "gateway default/x not found") + strings.Count(msg, "not found in Gateway default/x"); n != 100 || !strings.Contains(msg, wantMore+" errors") {
				t.Fatalf("%d gateway errors (want 100), %q in the message: %v\n%.500s", n, wantMore+" errors", strings.Contains(msg, wantMore+" errors"), msg)
			}
		})
	}
}

const missingServiceVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, finalizers: [example.com/cleanup]}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews}}
`

// updateReq is an UPDATE of a VirtualService in namespace default from old to nw.
func updateReq(t *testing.T, old, nw string) (req admissionv1.AdmissionRequest) {
	t.Helper()
	r := admissionReq(t, admissionv1.Update, "networking.istio.io", "VirtualService", "default", nw, false)
	raw, err := yaml.YAMLToJSON([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	r.OldObject = runtime.RawExtension{Raw: raw}
	return r.AdmissionRequest
}

// Cross-reference findings describe the cluster, not the change: in a strict
// namespace an UPDATE of an object being deleted or leaving its spec as it
// was is warned, not denied (a VirtualService whose Service was deleted would
// otherwise be stuck Terminating, its finalizer never removed); a spec change
// is denied as a CREATE is.
func TestValidateCrossRefStrictUpdates(t *testing.T) {
	terminating := strings.Replace(missingServiceVS, "finalizers: [example.com/cleanup]}", `finalizers: [example.com/cleanup], deletionTimestamp: "2025-01-01T00:00:00Z"}`, 1)
	cases := []struct {
		name, old, nw string
		allowed       bool
	}{
		{"finalizer removed from a terminating object", terminating, strings.Replace(terminating, "finalizers: [example.com/cleanup], ", "", 1), true},
		// Being deleted is no licence: with a finalizer kept it is served as written.
		{"spec change of a terminating object", terminating, strings.Replace(terminating, "hosts: [reviews]", "hosts: [reviews, ratings]", 1), false},
		{"label added", missingServiceVS, strings.Replace(missingServiceVS, "metadata: {", "metadata: {labels: {team: a}, ", 1), true},
		{"annotation changed, spec reformatted", missingServiceVS, strings.Replace(strings.Replace(missingServiceVS, "metadata: {", "metadata: {annotations: {a: b}, ", 1), "    - {destination: {host: reviews}}", "    - destination:\n        host: reviews", 1), true},
		{"spec change keeping the missing host", missingServiceVS, strings.Replace(missingServiceVS, "hosts: [reviews]", "hosts: [reviews, ratings]", 1), false},
		{"spec change introducing a missing host", strings.Replace(missingServiceVS, "host: reviews}", "host: details}", 1), missingServiceVS, false},
		// The API server always sends the old object; without it the change is unknown.
		{"no old object", "", missingServiceVS, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := strictHandler(true)
			h.Index.SetService("default", "details", true)
			req := updateReq(t, c.old, c.nw)
			if c.old == "" {
				req.OldObject = runtime.RawExtension{}
			}
			resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: req})
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed=%v, want %v: %+v", resp.Allowed, c.allowed, resp.Result)
			}
			const finding = `spec.http[0].route[0].destination.host: host "reviews" matches no Service or ServiceEntry`
			if c.allowed {
				if !slicesContain(resp.Warnings, finding) {
					t.Errorf("warnings %q, want one containing %q", resp.Warnings, finding)
				}
			} else if !strings.Contains(resp.Result.Message, finding) || !strings.Contains(resp.Result.Message, crossref.StrictLabel+"=true") {
				t.Errorf("denial %q, want %q", resp.Result.Message, finding)
			}
		})
	}
}

func slicesContain(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
