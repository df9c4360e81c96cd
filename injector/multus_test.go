package injector

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// TestAppendMultus is Istio's TestAppendMultusNetwork table
// (pkg/kube/inject/inject_test.go) with the network name the sidecar
// template passes ("default/istio-cni" for Istio's "istio-cni"), plus the
// idempotency check Istio runs on each case.
func TestAppendMultus(t *testing.T) {
	const n = "default/istio-cni"
	cases := []struct{ name, in, want string }{
		{"empty", "", n},
		{"flat-single", "macvlan-conf-1", "macvlan-conf-1, " + n},
		{"flat-multiple", "macvlan-conf-1, macvlan-conf-2", "macvlan-conf-1, macvlan-conf-2, " + n},
		{"json-single", `[{"name": "macvlan-conf-1"}]`, `[{"name": "macvlan-conf-1"}, {"name": "` + n + `"}]`},
		{"json-multiple", `[{"name": "macvlan-conf-1"}, {"name": "macvlan-conf-2"}]`,
			`[{"name": "macvlan-conf-1"}, {"name": "macvlan-conf-2"}, {"name": "` + n + `"}]`},
		{"json-multiline", "[\n                   {\"name\": \"macvlan-conf-1\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   ]",
			"[\n                   {\"name\": \"macvlan-conf-1\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   , {\"name\": \"" + n + "\"}]"},
		{"json-multiline-additional-fields", "[\n                   {\"name\": \"macvlan-conf-1\", \"another-field\": \"another-value\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   ]",
			"[\n                   {\"name\": \"macvlan-conf-1\", \"another-field\": \"another-value\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   , {\"name\": \"" + n + "\"}]"},
		{"json-preconfigured-istio-cni (not valid JSON: left as is)", "[\n                   {\"name\": \"macvlan-conf-1\"},\n                   {\"name\": \"" + n + "\", \"config\": \"additional-config\"},\n                   ]",
			"[\n                   {\"name\": \"macvlan-conf-1\"},\n                   {\"name\": \"" + n + "\", \"config\": \"additional-config\"},\n                   ]"},
		{"flat: another network containing the name", "my-istio-cni-net", "my-istio-cni-net, " + n},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := appendMultus(c.in)
			if got != c.want {
				t.Fatalf("appendMultus(%q) = %q, want %q", c.in, got, c.want)
			}
			if again := appendMultus(got); again != c.want {
				t.Fatalf("not idempotent: %q", again)
			}
		})
	}
}

// The annotation is written with the CNI plugin as Multus provider only.
func TestMultusAnnotationOnPod(t *testing.T) {
	cfg, err := config.Load(nil, []byte(`{"pilot":{"cni":{"enabled":true,"provider":"multus"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name": "alt_cni"}]`}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	res, err := Inject(pod, "default", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Pod.Annotations["k8s.v1.cni.cncf.io/networks"], `[{"name": "alt_cni"}, {"name": "default/istio-cni"}]`; got != want {
		t.Errorf("networks = %q, want %q", got, want)
	}
	if !strings.Contains(res.Pod.Annotations[AnnotationStatus], "istio-validation") {
		t.Errorf("with CNI the validation container is injected: %s", res.Pod.Annotations[AnnotationStatus])
	}
}
