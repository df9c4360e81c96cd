package template

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestRenderNullListItem: a custom template that renders an empty item
// (null: a `- ` line whose content a condition left out) into the pod's
// containers, which the strategic merge merges by name, is an error
// naming the template when the pod has `containers: []` (present, empty:
// the webhook sees the pod before the API server validates it). It
// panicked in apimachinery's strategicpatch (sliceElementType), found by
// FuzzRender; Istio's injector, on the same library
// (pkg/kube/inject/webhook.go applyOverlayYAML), fails that request too.
// Where the pod has containers, strategicpatch refuses the null item
// itself; a list the pod lacks takes the item as it is, as in Istio.
func TestRenderNullListItem(t *testing.T) {
	app := []corev1.Container{{Name: "app"}}
	for _, tc := range []struct {
		text       string
		containers []corev1.Container
		wantErr    bool
	}{
		{"spec:\n  containers:\n  - \n", []corev1.Container{}, true},
		{"spec:\n  containers: [{name: istio-proxy}, null]\n", []corev1.Container{}, true},
		{"spec:\n  containers:\n  - \n", app, true},
		{"spec:\n  containers:\n  - name: app\n    env: [null]\n", app, false},
		{"spec:\n  imagePullSecrets: [null]\n", app, false},
	} {
		s, err := Parse(map[string]string{"custom": tc.text}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: tc.containers}}
		_, _, _, err = s.Render([]string{"custom"}, &Data{}, pod, false)
		if tc.wantErr != (err != nil) || (err != nil && !strings.Contains(err.Error(), `template "custom": merging into the pod: strategic merge: `)) {
			t.Errorf("%q onto containers %v: error %v, want one naming the template and the merge: %v", tc.text, tc.containers, err, tc.wantErr)
		}
	}
}
