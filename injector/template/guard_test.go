package template_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
)

// TestGenericPathKeepsTheAllowLists: a pod cannot use a custom template
// path to get what the typed path refuses: an image outside the allow-list,
// a weakened istio-proxy, a hostPath user volume (docs/compatibility.md).
func TestGenericPathKeepsTheAllowLists(t *testing.T) {
	cfg := withNative(defaultInstall(t, injectionDir(t)), false, true)
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app", Annotations: map[string]string{}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		}
	}
	t.Run("proxyImage annotation outside the allow-list", func(t *testing.T) {
		p := base()
		p.Annotations["sidecar.istio.io/proxyImage"] = "evil.example/proxy:1"
		res, err := injector.InjectGeneric(p, "app", cfg, injector.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append(res.Pod.Spec.InitContainers, res.Pod.Spec.Containers...) {
			if strings.Contains(c.Image, "evil.example") {
				t.Errorf("container %s runs %s", c.Name, c.Image)
			}
		}
		if !strings.Contains(strings.Join(res.Warnings, "\n"), "evil.example") {
			t.Errorf("no warning about the ignored image: %v", res.Warnings)
		}
	})
	t.Run("user istio-proxy made privileged", func(t *testing.T) {
		p := base()
		yes := true
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "auto",
			SecurityContext: &corev1.SecurityContext{Privileged: &yes}})
		_, err := injector.InjectGeneric(p, "app", cfg, injector.Options{})
		if err == nil || !strings.Contains(err.Error(), "privileged") {
			t.Errorf("err = %v, want a denial naming privileged", err)
		}
	})
	t.Run("hostPath user volume", func(t *testing.T) {
		p := base()
		p.Annotations["sidecar.istio.io/userVolume"] = `{"host":{"hostPath":{"path":"/"}}}`
		p.Annotations["sidecar.istio.io/userVolumeMount"] = `{"host":{"mountPath":"/host"}}`
		_, err := injector.InjectGeneric(p, "app", cfg, injector.Options{})
		if err == nil || !strings.Contains(err.Error(), "hostPath") {
			t.Errorf("err = %v, want a hostPath denial", err)
		}
	})
	t.Run("invalid annotation", func(t *testing.T) {
		p := base()
		p.Annotations["traffic.sidecar.istio.io/includeOutboundIPRanges"] = "not-a-cidr"
		_, err := injector.InjectGeneric(p, "app", cfg, injector.Options{})
		if err == nil || !strings.Contains(err.Error(), "includeOutboundIPRanges") {
			t.Errorf("err = %v, want the annotation named", err)
		}
	})
}

// TestTemplateCannotChangeSharedValues: sprig's set on .Values in one
// request does not leak into the next.
func TestTemplateCannotChangeSharedValues(t *testing.T) {
	s, err := config.LoadInputData([]byte(`defaultTemplates: [mut]
templates:
  mut: |
    metadata:
      annotations:
        seen: {{ .Values.leak | default "clean" | quote }}
    {{- $_ := set .Values "leak" "dirty" }}
`), []byte(`{"global": {}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"inject.istio.io/templates": "mut"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "a"}}}}
		res, err := injector.Inject(p, "app", s, injector.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Pod.Annotations["seen"]; got != "clean" {
			t.Fatalf("request %d saw .Values.leak = %q", i, got)
		}
	}
}

// TestIgnoredTemplateFieldIsAWarning: the spire template of Istio's SPIRE
// guide renders a top-level `labels:`, which is no pod field; Istio's
// injector drops it and injects the rest, and so does meshguard, telling the
// requester in an admission warning.
func TestIgnoredTemplateFieldIsAWarning(t *testing.T) {
	s, err := config.LoadInputData([]byte(`defaultTemplates: [spire]
templates:
  spire: |
    labels:
      spiffe.io/spire-managed-identity: "true"
    spec:
      volumes:
      - name: workload-socket
        csi:
          driver: "csi.spiffe.io"
          readOnly: true
`), []byte(`{"global": {}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"inject.istio.io/templates": "spire"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "a"}}}}
	res, err := injector.Inject(p, "app", s, injector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pod.Spec.Volumes) != 1 || res.Pod.Spec.Volumes[0].Name != "workload-socket" || len(res.Pod.Labels) != 0 {
		t.Errorf("volumes %v, labels %v: want the volume injected and the misplaced labels ignored", res.Pod.Spec.Volumes, res.Pod.Labels)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, `template "spire": unknown field "labels"`) {
		t.Errorf("warnings %q, want one naming the template and the field", w)
	}
}
