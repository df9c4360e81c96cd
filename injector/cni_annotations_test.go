package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// With the CNI plugin the sidecar template records the traffic settings as
// annotations for the plugin; the outbound IP ranges only when non-empty
// ({{ with … }} in Istio's injection-template.yaml). Expected values from
// Istio's golden hello.yaml.cni.injected (values pilot.cni.enabled=true):
// no excludeOutboundIPRanges annotation at the default "".
func TestCNITrafficAnnotations(t *testing.T) {
	for _, c := range []struct {
		name    string
		values  string
		podAnno map[string]string
		want    map[string]string // "" = must be absent
	}{
		{"defaults (golden hello.yaml.cni.injected)", `{"pilot":{"cni":{"enabled":true}}}`, nil, map[string]string{
			AnnotationInterceptionMode:    "REDIRECT",
			AnnotationIncludeOutboundIPs:  "*",
			AnnotationExcludeOutboundIPs:  "",
			AnnotationIncludeInboundPorts: "*",
			AnnotationExcludeInboundPorts: "15020",
		}},
		{"ranges from values", `{"pilot":{"cni":{"enabled":true}},"global":{"proxy":{"includeIPRanges":"","excludeIPRanges":"10.96.0.2/24"}}}`, nil, map[string]string{
			AnnotationIncludeOutboundIPs: "",
			AnnotationExcludeOutboundIPs: "10.96.0.2/24",
		}},
		{"pod annotation wins", `{"pilot":{"cni":{"enabled":true}}}`, map[string]string{AnnotationExcludeOutboundIPs: "10.0.0.0/8"}, map[string]string{
			AnnotationExcludeOutboundIPs: "10.0.0.0/8",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Load(nil, []byte(c.values))
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: c.podAnno},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			}
			res, err := Inject(pod, "default", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.want {
				got, ok := res.Pod.Annotations[k]
				switch {
				case want == "" && ok:
					t.Errorf("annotation %s = %q, want it absent", k, got)
				case want != "" && got != want:
					t.Errorf("annotation %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestExcludeInbound follows Istio's pkg/kube/inject/template.go
// excludeInboundPort, which feeds istio-init's -d and the CNI annotation.
func TestExcludeInbound(t *testing.T) {
	for _, c := range []struct {
		port       int32
		ports, out string
	}{
		{15020, "", "15020"},
		{15020, "4,5,6", "4,5,6,15020"},
		{15020, "4, 5, 6", "4,5,6,15020"}, // items trimmed
		{15020, "4,,5", "4,5,15020"},      // empty items dropped
		{15020, "15020,4", "15020,4"},     // already excluded: unchanged
		{15020, "4, 15020", "4,15020,15020"},
		{0, " 4, 5", " 4, 5"}, // no status server: unchanged
		{123, "4", "4,123"},
	} {
		if got := excludeInbound(c.port, c.ports); got != c.out {
			t.Errorf("excludeInbound(%d, %q) = %q, want %q", c.port, c.ports, got, c.out)
		}
	}
}
