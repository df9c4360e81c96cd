package template

import (
	"errors"
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
		wantPanic  bool // strategicpatch panicked: the known null-item panic, recovered
	}{
		{"spec:\n  containers:\n  - \n", []corev1.Container{}, true, true},
		{"spec:\n  containers: [{name: istio-proxy}, null]\n", []corev1.Container{}, true, false},
		{"spec:\n  containers:\n  - \n", app, true, false},
		{"spec:\n  containers:\n  - name: app\n    env: [null]\n", app, false, false},
		{"spec:\n  imagePullSecrets: [null]\n", app, false, false},
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
		if tc.wantPanic != errors.Is(err, errNullItemInEmptyList) || errors.Is(err, errMergePanicked) != tc.wantPanic ||
			(tc.wantPanic && !strings.Contains(err.Error(), "panic")) {
			t.Errorf("%q onto containers %v: error %v, want the recovered null-item panic: %v", tc.text, tc.containers, err, tc.wantPanic)
		}
	}
}

// TestStrategicMergePanicCause: a panic strategicMerge recovers is an
// error that says it panicked and with what; only the null item merged
// into a present, empty list is named as the known cause, so FuzzRender
// still fails on any other strategicpatch panic.
func TestStrategicMergePanicCause(t *testing.T) {
	obj := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name        string
		orig, patch map[string]any
		want        bool
	}{
		{"null into empty list", obj("spec", obj("containers", []any{})), obj("spec", obj("containers", []any{nil})), true},
		{"null after an item", obj("spec", obj("containers", []any{})), obj("spec", obj("containers", []any{obj("name", "a"), nil})), false},
		{"list the pod lacks", obj("spec", obj()), obj("spec", obj("containers", []any{nil})), false},
		{"list the pod has filled", obj("spec", obj("containers", []any{obj("name", "a")})), obj("spec", obj("containers", []any{nil})), false},
		{"inside the container of the same name",
			obj("spec", obj("containers", []any{obj("name", "a", "args", []any{})})),
			obj("spec", obj("containers", []any{obj("name", "a", "args", []any{nil})})), true},
		{"inside a container of another name",
			obj("spec", obj("containers", []any{obj("name", "a", "args", []any{})})),
			obj("spec", obj("containers", []any{obj("name", "b", "args", []any{nil})})), false},
		{"names that are not strings", obj("l", []any{obj("name", []any{})}), obj("l", []any{obj("name", []any{})}), false},
	} {
		if got := nullItemInEmptyList(tc.orig, tc.patch); got != tc.want {
			t.Errorf("%s: nullItemInEmptyList = %v, want %v", tc.name, got, tc.want)
		}
	}
	_, err := strategicMerge(obj("spec", obj("containers", []any{})), obj("spec", obj("containers", []any{nil})))
	if !errors.Is(err, errNullItemInEmptyList) || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "nil pointer") {
		t.Fatalf("the null-item panic: %v, want the known cause and the panic value", err)
	}
}
