package template

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// overridesValue lists containers names c0..c(n-1) and init containers
// i0..i(m-1) as proxy.istio.io/overrides does.
func overridesValue(n, m int) string {
	list := func(prefix string, k int) string {
		var items []string
		for i := 0; i < k; i++ {
			items = append(items, fmt.Sprintf(`{"name":"%s%d"}`, prefix, i))
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	return fmt.Sprintf(`{"containers":%s,"initContainers":%s}`, list("c", n), list("i", m))
}

// TestParseOverridesCap: proxy.istio.io/overrides lists at most
// MaxOverrides containers and init containers together (Istio's
// reinsertOverrides parses any number: a deliberate difference, the
// annotation records only a pod's own declarations of injected containers);
// more is refused naming the annotation, on both of the template path's
// readers. A value the count cannot read is refused by the decode, with its
// message, as before.
func TestParseOverridesCap(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		err         string
	}{
		{"at the cap", overridesValue(MaxOverrides-1, 1), ""},
		{"one over, containers", overridesValue(MaxOverrides+1, 0), fmt.Sprintf("lists %d containers", MaxOverrides+1)},
		{"one over, both lists", overridesValue(MaxOverrides, 1), fmt.Sprintf("lists %d containers", MaxOverrides+1)},
		{"many empty entries", `{"containers":[` + strings.Repeat(`{},`, 5000) + `{}]}`, "lists 5001 containers"},
		{"short and valid", `{"containers":[{"name":"istio-proxy","image":"auto"}]}`, ""},
		{"null", `null`, ""},
		{"not an object", `[]`, "cannot unmarshal array"},
		{"bad entry", `{"containers":[1]}`, "cannot unmarshal number"},
		{"bad entry, long", `{"containers":[` + strings.Repeat(`1,`, 1000) + `1]}`, "lists 1001 containers"},
		{"syntax", `{"containers":[`, "unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ov, err := ParseOverrides(tc.value)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "annotation "+AnnotationOverrides+": ") {
				t.Fatalf("error %v, want one naming %s with %q", err, AnnotationOverrides, tc.err)
			}
			if len(ov.Containers)+len(ov.InitContainers) != 0 {
				t.Fatalf("refused, yet returned %d containers", len(ov.Containers)+len(ov.InitContainers))
			}
		})
	}

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationOverrides: overridesValue(MaxOverrides+1, 0)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if _, err := ReinsertOverrides(pod); err == nil || !strings.Contains(err.Error(), AnnotationOverrides) {
		t.Errorf("ReinsertOverrides: error %v, want one naming %s", err, AnnotationOverrides)
	}
	if _, err := ReapplyOverrides(pod.DeepCopy(), pod, &corev1.Pod{}, false, nil); err == nil || !strings.Contains(err.Error(), AnnotationOverrides) {
		t.Errorf("ReapplyOverrides: error %v, want one naming %s", err, AnnotationOverrides)
	}
	pod.Annotations[AnnotationOverrides] = overridesValue(2, 0)
	got, err := ReinsertOverrides(pod)
	if err != nil || len(got.Spec.Containers) != 3 {
		t.Errorf("ReinsertOverrides within the cap: error %v, %d containers, want 3", err, len(got.Spec.Containers))
	}
}
