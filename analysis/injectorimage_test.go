package analysis

import (
	"slices"
	"strings"
	"testing"

	injectorconfig "github.com/meshguard/meshguard/injector/config"
)

// TestInjectorImageCases: edge cases of IST0158 (injectorimage.go) Istio's
// rows miss: a native sidecar (istio-proxy among the init containers), an
// absolute global.proxy.image, a revision's ConfigMap, a revision without
// ConfigMap, a Deployment (not judged), and the fail-closed ConfigMap
// decoding.
func TestInjectorImageCases(t *testing.T) {
	values := func(js string) *injectorconfig.Values {
		v, err := injectorconfig.LoadValues([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	base := values(`{"global":{"hub":"docker.io/istio","tag":"1.3.1"}}`)
	for _, tc := range []struct {
		name string
		cms  map[string]*injectorconfig.Values
		ns   map[string]string
		w    Workload
		want string // the pod names of IST0158, "" for none
	}{
		{"native sidecar mismatched", map[string]*injectorconfig.Values{"istio-sidecar-injector": base}, map[string]string{"istio-injection": "enabled"},
			Workload{Kind: "Pod", Name: "p", InitContainers: []Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.3.0"}}}, "[p]"},
		{"native sidecar current", map[string]*injectorconfig.Values{"istio-sidecar-injector": base}, map[string]string{"istio-injection": "enabled"},
			Workload{Kind: "Pod", Name: "p", InitContainers: []Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.3.1"}}}, ""},
		{"absolute proxy image", map[string]*injectorconfig.Values{"istio-sidecar-injector": values(`{"global":{"proxy":{"image":"example.com/proxy:9"}}}`)},
			map[string]string{"istio-injection": "enabled"}, Workload{Kind: "Pod", Name: "p", Containers: []Container{{Name: "istio-proxy", Image: "example.com/proxy:9"}}}, ""},
		{"revision ConfigMap", map[string]*injectorconfig.Values{"istio-sidecar-injector": base, "istio-sidecar-injector-canary": values(`{"global":{"hub":"h","tag":"2"}}`)},
			map[string]string{"istio.io/rev": "canary"}, Workload{Kind: "Pod", Name: "p", Containers: []Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.3.1"}}}, "[p]"},
		{"revision without ConfigMap", map[string]*injectorconfig.Values{"istio-sidecar-injector": base},
			map[string]string{"istio.io/rev": "canary"}, Workload{Kind: "Pod", Name: "p", Containers: []Container{{Name: "istio-proxy", Image: "x"}}}, ""},
		{"istio.io/rev=default", map[string]*injectorconfig.Values{"istio-sidecar-injector": base},
			map[string]string{"istio.io/rev": "default"}, Workload{Kind: "Pod", Name: "p", Containers: []Container{{Name: "istio-proxy", Image: "x"}}}, "[p]"},
		{"deployment not judged", map[string]*injectorconfig.Values{"istio-sidecar-injector": base}, map[string]string{"istio-injection": "enabled"},
			Workload{Kind: "Deployment", Name: "d", Containers: []Container{{Name: "istio-proxy", Image: "x"}}}, ""},
		{"distroless annotation image type default", map[string]*injectorconfig.Values{"istio-sidecar-injector": base}, map[string]string{"istio-injection": "enabled"},
			Workload{Kind: "Pod", Name: "p", Annotations: map[string]string{"proxy.istio.io/config": "image:\n  imageType: default\n"},
				Containers: []Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.3.1-default"}}}, "[p]"},
	} {
		tc.w.Namespace = "ns"
		in := Input{InjectorValues: tc.cms, Namespaces: map[string]map[string]string{"ns": tc.ns}, Workloads: []Workload{tc.w}}
		var got string
		for _, m := range proxyImageMismatches(&in) {
			got = m.Message[strings.Index(m.Message, "[") : strings.Index(m.Message, "]")+1]
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Fail closed: an injector ConfigMap without values, or with values the
	// injector refuses, is an error naming the ConfigMap and the field;
	// other ConfigMaps stay unknown.
	for _, tc := range []struct {
		data    map[string]any
		name    string
		known   bool
		wantErr string
	}{
		{map[string]any{"config": "x"}, "istio-sidecar-injector", true, "ConfigMap istio-system/istio-sidecar-injector: data.values: missing"},
		{map[string]any{"values": `{"global":{"proxy":{"statusPort":"abc"}}}`}, "istio-sidecar-injector-canary", true, "ConfigMap istio-system/istio-sidecar-injector-canary: data.values:"},
		{map[string]any{"values": `{}`}, "istio", false, ""},
	} {
		var in Input
		known, err := in.AddKubernetesObject(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": tc.name, "namespace": "istio-system"}, "data": tc.data}, "default")
		if known != tc.known || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.wantErr)) {
			t.Errorf("%s: known %v, err %v; want %v, %q", tc.name, known, err, tc.known, tc.wantErr)
		}
		if len(in.InjectorValues) != 0 || len(in.Kube) != 0 {
			t.Errorf("%s: recorded %v", tc.name, in.InjectorValues)
		}
	}
	var in Input
	if _, err := in.AddKubernetesObject(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "istio-sidecar-injector"}, "data": map[string]any{"values": `{"sidecarInjectorWebhook":{"enableNamespacesByDefault":true}}`}}, "default"); err != nil {
		t.Fatal(err)
	}
	if !in.enableNamespacesByDefault() || !slices.Equal(slices.Collect(func(y func(string) bool) {
		for k := range in.InjectorValues {
			y(k)
		}
	}), []string{"istio-sidecar-injector"}) {
		t.Errorf("values not recorded: %v", in.InjectorValues)
	}
}
