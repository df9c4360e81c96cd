package injector

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// TestTemplatesAnnotationCountBound: inject.istio.io/templates names at most
// template.MaxSelectedTemplates entries, repeats counted; more is the
// annotation's error (the webhook's *FieldError around an *AnnotationError,
// which analyze reports as IST0125) on every path, before anything is
// rendered: a review's `sidecar,gateway` x800 took 6 s of renders and
// merges, and 256 KiB of annotation about 4 minutes. Istio has no bound
// (docs/compatibility.md).
func TestTemplatesAnnotationCountBound(t *testing.T) {
	cfg, err := config.Inputs{}.Load() // Istio's stock templates
	if err != nil {
		t.Fatal(err)
	}
	names := func(n int, cycle ...string) string {
		out := make([]string, n)
		for i := range out {
			out[i] = cycle[i%len(cycle)]
		}
		return strings.Join(out, ",")
	}
	over := fmt.Sprintf("%d template names, more than %d", template.MaxSelectedTemplates+1, template.MaxSelectedTemplates)
	for _, tc := range []struct {
		name, value string
		generic     bool
		want        string // "" accepted
	}{
		{"1600 entries", names(1600, "sidecar", "gateway"), false, "1600 template names, more than 16"},
		{"one over, typed", names(template.MaxSelectedTemplates+1, "sidecar"), false, over},
		{"one over, generic", names(template.MaxSelectedTemplates+1, "sidecar"), true, over},
		{"one over, empty entries count", strings.Repeat(",", template.MaxSelectedTemplates), true, over},
		{"at the bound, typed", names(template.MaxSelectedTemplates, "sidecar"), false, ""},
		{"at the bound, generic", names(template.MaxSelectedTemplates, "sidecar"), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.generic {
				c = forceGeneric(cfg)
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns",
				Annotations: map[string]string{AnnotationInjectTemplates: tc.value}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}}}
			_, err := Inject(pod, "ns", c, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused at the bound: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("injected")
			}
			if want := "annotation " + AnnotationInjectTemplates + ": " + tc.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			var ae *AnnotationError
			if !errors.As(err, &ae) || ae.Key != AnnotationInjectTemplates {
				t.Errorf("%v is not the annotation's *AnnotationError", err)
			}
			// analyze (IST0125) reads the same parse.
			_, perr := ParseAnnotations(pod.Annotations)
			if got := AnnotationErrors(perr)[AnnotationInjectTemplates]; got == nil || !strings.Contains(got.Error(), tc.want) {
				t.Errorf("ParseAnnotations: %v, want the annotation's error %q", perr, tc.want)
			}
		})
	}
}
