package webhook

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestIstioConfigMapsLoadMissingKeys: a ConfigMap without a key Istio reads
// is refused naming the key, as Istio's readConfigMap (pkg/kube/inject/watcher.go:
// "missing ConfigMap values key") and the mesh config's ReadConfigMap
// ("missing ConfigMap key") refuse it, instead of the key's settings
// silently becoming Istio's defaults (the proxy image, trust domain, ...).
// A missing istio ConfigMap still means the default mesh config.
func TestIstioConfigMapsLoadMissingKeys(t *testing.T) {
	cm := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: name}, Data: data}
	}
	const values = `{"global":{"hub":"example.com/istio"}}`
	for _, tc := range []struct {
		name     string
		injector map[string]string
		mesh     map[string]string // nil: no istio ConfigMap
		err      string
	}{
		{name: "both keys, no mesh ConfigMap", injector: map[string]string{"config": "policy: enabled\n", "values": values}},
		{name: "both keys, mesh key", injector: map[string]string{"config": "policy: enabled\n", "values": values}, mesh: map[string]string{"mesh": "trustDomain: example.com\n"}},
		{name: "no config key", injector: map[string]string{"values": values}, err: `ConfigMap istio-system/istio-sidecar-injector has no data key "config"`},
		{name: "no values key", injector: map[string]string{"config": "policy: enabled\n"}, err: `ConfigMap istio-system/istio-sidecar-injector has no data key "values"`},
		{name: "istio ConfigMap without the mesh key", injector: map[string]string{"config": "policy: enabled\n", "values": values}, mesh: map[string]string{"meshConfig": "trustDomain: example.com\n"}, err: `ConfigMap istio-system/istio has no data key "mesh"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithObjects(cm("istio-sidecar-injector", tc.injector))
			if tc.mesh != nil {
				b = b.WithObjects(cm("istio", tc.mesh))
			}
			snap, err := IstioConfigMaps{Namespace: "istio-system", Reader: b.Build()}.Load(context.Background())
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if snap.Values.Global.Hub != "example.com/istio" {
					t.Fatalf("values not applied: hub %q", snap.Values.Global.Hub)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}
