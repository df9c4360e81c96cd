package webhook

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/template"
)

// overridesOf is a proxy.istio.io/overrides value listing n containers,
// named x0, x1, ... (distinct) or all "x".
func overridesOf(n int, distinct bool) string {
	var b strings.Builder
	b.WriteString(`{"containers":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if distinct {
			fmt.Fprintf(&b, `{"name":"x%d"}`, i)
		} else {
			b.WriteString(`{"name":"x"}`)
		}
	}
	b.WriteString(`]}`)
	return b.String()
}

// TestInjectDeniesHostileAnnotations: a review's inputs that
// took seconds and hundreds of MB through /inject are denied as invalid
// pods, naming the field: annotations beyond the API server's 256 KiB total
// (k8s.io/apimachinery pkg/api/validation TotalAnnotationSizeLimitB) before
// any is parsed, whether the pod would be injected or not, and a
// proxy.istio.io/overrides within that total listing more containers than
// template.MaxOverrides. A pod just at the total is injected.
func TestInjectDeniesHostileAnnotations(t *testing.T) {
	h := newHandler(t, nil)
	limit := apivalidation.TotalAnnotationSizeLimitB
	withAnnos := func(annos map[string]string) *corev1.Pod {
		p := testPod(0)
		p.Annotations = annos
		return p
	}
	optOut := withAnnos(map[string]string{"sidecar.istio.io/inject": "false", "example.com/blob": strings.Repeat("x", limit)})
	// Exactly at the total: keys and values together are limit bytes.
	atLimit := withAnnos(map[string]string{"example.com/blob": ""})
	atLimit.Annotations["example.com/blob"] = strings.Repeat("x", limit-len("example.com/blob"))
	overLimit := withAnnos(map[string]string{"example.com/blob": atLimit.Annotations["example.com/blob"] + "x"})
	cases := []struct {
		name    string
		pod     *corev1.Pod
		allowed bool
		msg     []string
	}{
		// 20000 distinct entries, 349 KB: 4.4 s and 181 MB before.
		{"overrides 20k distinct", withAnnos(map[string]string{"sidecar.istio.io/status": `{}`, injector.AnnotationOverrides: overridesOf(20000, true)}),
			false, []string{"metadata.annotations", "262144"}},
		// 300000 equal entries, 3.9 MB (what fits the 6 MiB body once
		// escaped); a review's 5 MB one took 897 MB before.
		{"overrides 300k equal", withAnnos(map[string]string{"sidecar.istio.io/status": `{}`, injector.AnnotationOverrides: overridesOf(300000, false)}),
			false, []string{"metadata.annotations", "262144"}},
		{"userVolume 100k", withAnnos(map[string]string{"sidecar.istio.io/userVolume": "{" + strings.Repeat(`"v":{"emptyDir":{}},`, 100000) + `"w":{"emptyDir":{}}}`}),
			false, []string{"metadata.annotations"}},
		{"excludeInboundPorts 500k", withAnnos(map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": strings.Repeat("1,", 500000) + "1"}),
			false, []string{"metadata.annotations"}},
		{"opted out, still over the total", optOut, false, []string{"metadata.annotations"}},
		{"one byte over the total", overLimit, false, []string{"metadata.annotations", fmt.Sprintf("annotations size %d", limit+1)}},
		{"at the total: injected", atLimit, true, nil},
		// Within the total, over the entry cap: named by the annotation.
		{"overrides over the cap", withAnnos(map[string]string{"sidecar.istio.io/status": `{}`, injector.AnnotationOverrides: overridesOf(template.MaxOverrides+1, true)}),
			false, []string{injector.AnnotationOverrides, fmt.Sprintf("lists %d containers", template.MaxOverrides+1)}},
		{"overrides 10k equal, within the total", withAnnos(map[string]string{"sidecar.istio.io/status": `{}`, injector.AnnotationOverrides: overridesOf(10000, false)}),
			false, []string{injector.AnnotationOverrides, "lists 10000 containers"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, resp := serve(t, h, reviewBody(t, tc.pod, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
			}
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed=%v, want %v; result %+v", resp.Allowed, tc.allowed, resp.Result)
			}
			if tc.allowed {
				if len(resp.Patch) == 0 {
					t.Fatal("allowed without a patch: not injected")
				}
				return
			}
			// Denied as an invalid pod (as Istio denies one), not an error
			// (admission.Errored: code 400 or 500): code 200, as
			// controller-runtime completes a denial, and the message names
			// the field.
			if resp.Result == nil || resp.Result.Code != http.StatusOK || len(resp.Patch) != 0 {
				t.Fatalf("result %+v patch %d bytes, want a denial (code 200) without a patch", resp.Result, len(resp.Patch))
			}
			for _, m := range tc.msg {
				if !strings.Contains(resp.Result.Message, m) {
					t.Errorf("message %q lacks %q", resp.Result.Message, m)
				}
			}
			if !strings.HasPrefix(resp.Result.Message, "pod app/app-*: ") {
				t.Errorf("message %q does not name the pod", resp.Result.Message)
			}
			if len(resp.Result.Message) > 1024 {
				t.Errorf("message of %d bytes quotes the annotation", len(resp.Result.Message))
			}
		})
	}
}
