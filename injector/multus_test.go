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
// template passes ("default/istio-cni" for Istio's "istio-cni": in the JSON
// form Istio's appendMultusNetwork splits it into name and namespace, j),
// plus the idempotency check Istio runs on each case.
func TestAppendMultus(t *testing.T) {
	const n = "default/istio-cni"
	const j = `{"name": "istio-cni", "namespace": "default"}`
	cases := []struct{ name, in, want string }{
		{"empty", "", n},
		{"flat-single", "macvlan-conf-1", "macvlan-conf-1, " + n},
		{"flat-multiple", "macvlan-conf-1, macvlan-conf-2", "macvlan-conf-1, macvlan-conf-2, " + n},
		{"json-single", `[{"name": "macvlan-conf-1"}]`, `[{"name": "macvlan-conf-1"}, ` + j + `]`},
		{"json-multiple", `[{"name": "macvlan-conf-1"}, {"name": "macvlan-conf-2"}]`,
			`[{"name": "macvlan-conf-1"}, {"name": "macvlan-conf-2"}, ` + j + `]`},
		{"json-present", `[{"name": "istio-cni", "namespace": "default"}]`, `[{"name": "istio-cni", "namespace": "default"}]`},
		{"json-other-namespace", `[{"name": "istio-cni"}]`, `[{"name": "istio-cni"}, ` + j + `]`},
		{"json-unqualified-name-is-not-it", `[{"name": "default/istio-cni"}]`, `[{"name": "default/istio-cni"}, ` + j + `]`},
		{"json-multiline", "[\n                   {\"name\": \"macvlan-conf-1\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   ]",
			"[\n                   {\"name\": \"macvlan-conf-1\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   , " + j + "]"},
		{"json-multiline-additional-fields", "[\n                   {\"name\": \"macvlan-conf-1\", \"another-field\": \"another-value\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   ]",
			"[\n                   {\"name\": \"macvlan-conf-1\", \"another-field\": \"another-value\"},\n                   {\"name\": \"macvlan-conf-2\"}\n                   , " + j + "]"},
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
	cfg, err := config.Inputs{Values: []byte(`{"pilot":{"cni":{"enabled":true,"provider":"multus"}}}`)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name": "alt_cni"}]`}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	for name, cfg := range map[string]*config.Snapshot{"typed": cfg, "generic": forceGeneric(cfg)} {
		res, err := Inject(pod, "default", cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Istio's golden hello-existing-cncf-networks-json.yaml.injected.
		if got, want := res.Pod.Annotations["k8s.v1.cni.cncf.io/networks"], `[{"name": "alt_cni"}, {"name": "istio-cni", "namespace": "default"}]`; got != want {
			t.Errorf("%s: networks = %q, want %q", name, got, want)
		}
		if !strings.Contains(res.Pod.Annotations[AnnotationStatus], "istio-validation") {
			t.Errorf("%s: with CNI the validation container is injected: %s", name, res.Pod.Annotations[AnnotationStatus])
		}
	}
}
