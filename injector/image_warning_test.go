package injector

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/test/conformance"
)

// TestProxyImageWarningOnlyWhereRendered: Istio computes the proxy image for
// every template (webhook.go injectPod, inject.go ProxyImage), but only a
// template that renders it (.ProxyImage, .ProxyInitImage or the
// sidecar.istio.io/proxyImage annotation) injects it. A pod's refused image
// therefore makes a difference, and deserves the warning, only with such a
// template: not with Istio's grpc-simple (golden grpc-simple.yaml, which
// injects busybox only), on either path.
func TestProxyImageWarningOnlyWhereRendered(t *testing.T) {
	injectCfg, values, mesh := conformance.IstioInstall(t)
	var v map[string]any
	if err := yaml.Unmarshal(values, &v); err != nil {
		t.Fatal(err)
	}
	v["sidecarInjectorWebhook"].(map[string]any)["templates"] = map[string]any{
		"noimage":   `metadata: {annotations: {foo: bar}}`,
		"withimage": `spec: {initContainers: [{name: extra, image: "{{ .ProxyInitImage }}"}]}`,
		"withanno":  `spec: {initContainers: [{name: extra, image: {{ annotation .ObjectMeta "sidecar.istio.io/proxyImage" "x/y" | quote }}}]}`,
	}
	values, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Inputs{Config: injectCfg, Values: values, Mesh: mesh}.Load()
	if err != nil {
		t.Fatal(err)
	}
	const refused = `annotation sidecar.istio.io/proxyImage ignored: image "evil.io/proxy:1"`
	for _, tc := range []struct {
		templates string
		generic   bool
		wantWarn  bool
	}{
		{"grpc-simple", false, false},
		{"grpc-simple", true, false},
		{"noimage", true, false},
		{"sidecar", false, true},
		{"sidecar", true, true},
		{"grpc-agent", true, true},
		{"withimage", true, true},
		{"withanno", true, true},
		{"noimage,withimage", true, true},
	} {
		pod := &corev1.Pod{}
		pod.Name, pod.Namespace = "grpc", "app"
		pod.Annotations = map[string]string{AnnotationInjectTemplates: tc.templates, AnnotationProxyImage: "evil.io/proxy:1"}
		pod.Spec.Containers = []corev1.Container{{Name: "traffic", Image: "fake.docker.io/google-samples/traffic-go-gke:1.0"}}
		c := *cfg
		tp := *cfg.Templates
		tp.AlwaysGeneric = tc.generic
		c.Templates = &tp
		res, err := Inject(pod, "app", &c, Options{})
		if err != nil {
			t.Fatalf("%s (generic %v): %v", tc.templates, tc.generic, err)
		}
		warned := false
		for _, w := range res.Warnings {
			warned = warned || strings.Contains(w, refused)
		}
		if warned != tc.wantWarn {
			t.Errorf("%s (generic %v): proxyImage warning %v, want %v (warnings %q)", tc.templates, tc.generic, warned, tc.wantWarn, res.Warnings)
		}
	}
}
