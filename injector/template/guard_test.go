package template_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
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
	s, err := config.Inputs{Config: []byte(`defaultTemplates: [mut]
templates:
  mut: |
    metadata:
      annotations:
        seen: {{ .Values.leak | default "clean" | quote }}
    {{- $_ := set .Values "leak" "dirty" }}
`), Values: []byte(`{"global": {}}`)}.Load()
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
	s, err := config.Inputs{Config: []byte(`defaultTemplates: [spire]
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
`), Values: []byte(`{"global": {}}`)}.Load()
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

// TestStockGatewayAndGrpcSimpleIgnorePrivilegedAnnotations: the generic path
// denied the privileged annotations (TPROXY, capNetBindService,
// IPTABLES_TRACE_LOGGING, a hostPath userVolume) on pods of Istio's stock
// grpc-simple and gateway templates, which the typed path injects. Istio's
// grpc-simple and gateway templates (injection-template.yaml's siblings in
// the default install) read none of them, so Istio injects those pods
// unchanged by them; both paths now do, with the same pod. A customised
// template may read them and is still checked as the sidecar is.
func TestStockGatewayAndGrpcSimpleIgnorePrivilegedAnnotations(t *testing.T) {
	install := defaultInstall(t, injectionDir(t))
	typed, generic := withNative(install, false, false), withNative(install, false, true)
	for _, tmpl := range []string{"grpc-simple", "gateway"} {
		for _, anno := range [][2]string{
			{"sidecar.istio.io/interceptionMode", "TPROXY"},
			{"sidecar.istio.io/capNetBindService", "true"},
			{"proxy.istio.io/config", `{"interceptionMode": "TPROXY", "proxyMetadata": {"IPTABLES_TRACE_LOGGING": "true"}}`},
			{"sidecar.istio.io/userVolume", `{"h":{"hostPath":{"path":"/etc"}}}`},
		} {
			t.Run(tmpl+"/"+anno[0], func(t *testing.T) {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app", Annotations: map[string]string{
						"inject.istio.io/templates": tmpl, anno[0]: anno[1]}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
				}
				if tmpl == "gateway" {
					pod.Spec.Containers[0] = corev1.Container{Name: "istio-proxy", Image: "auto"}
				}
				want, err := injector.Inject(pod, "app", typed, injector.Options{})
				if err != nil {
					t.Fatalf("typed path: %v", err)
				}
				got, err := injector.Inject(pod, "app", generic, injector.Options{})
				if err != nil {
					t.Fatalf("generic path denies what Istio and the typed path inject: %v", err)
				}
				if len(injector.CreatePatch(want.Pod, got.Pod)) != 0 {
					t.Errorf("generic pod differs from the typed one: %v", injector.CreatePatch(want.Pod, got.Pod))
				}
				custom := *generic
				tt := *generic.Templates
				tt.Stock = map[string]template.StockVersion{} // as if the ConfigMap's text were customised
				custom.Templates = &tt
				if _, err := injector.Inject(pod, "app", &custom, injector.Options{}); err == nil {
					t.Errorf("a customised %s template: want the sidecar's denial", tmpl)
				}
			})
		}
	}
}
