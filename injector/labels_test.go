package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// Istio's sidecar template fills security.istio.io/tlsMode and the canonical
// labels with sprig's default (`index .ObjectMeta.Labels "…" | default …`),
// which treats an empty value like a missing one; a non-empty user value is
// kept.
func TestInjectedLabelsReplaceEmptyValues(t *testing.T) {
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   map[string]string
	}{
		{"empty values are defaulted",
			map[string]string{"app": "web", LabelTLSMode: "", LabelCanonicalName: "", LabelCanonicalRevision: ""},
			map[string]string{LabelTLSMode: "istio", LabelCanonicalName: "web", LabelCanonicalRevision: "latest"}},
		{"user values kept",
			map[string]string{"app": "web", LabelTLSMode: "disabled", LabelCanonicalName: "shop", LabelCanonicalRevision: "v2"},
			map[string]string{LabelTLSMode: "disabled", LabelCanonicalName: "shop", LabelCanonicalRevision: "v2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: c.labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			}
			res, err := Inject(pod, "default", config.Default(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.want {
				if got := res.Pod.Labels[k]; got != want {
					t.Errorf("label %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestDeprecatedInjectAnnotationWarning: the sidecar.istio.io/inject
// annotation warns as deprecated only when it decides, i.e. without the label
// of the same name (which Istio's injectRequired prefers); a documented
// meshguard warning (docs/compatibility.md "admission warnings").
func TestDeprecatedInjectAnnotationWarning(t *testing.T) {
	for _, c := range []struct {
		name          string
		labels, annos map[string]string
		warn          bool
	}{
		{"annotation only", nil, map[string]string{AnnotationInject: "true"}, true},
		{"label and annotation", map[string]string{AnnotationInject: "true"}, map[string]string{AnnotationInject: "true"}, false},
		{"label only", map[string]string{AnnotationInject: "true"}, nil, false},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: c.labels, Annotations: c.annos},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		res, err := Inject(pod, "app", config.Default(), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := false
		for _, w := range res.Warnings {
			if w == "annotation "+AnnotationInject+" is deprecated; use the label of the same name" {
				got = true
			}
		}
		if got != c.warn {
			t.Errorf("%s: deprecation warning %v, want %v (warnings %q)", c.name, got, c.warn, res.Warnings)
		}
	}
}
