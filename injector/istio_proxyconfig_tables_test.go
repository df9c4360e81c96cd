package injector

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingapi "istio.io/api/networking/v1beta1"
	clientnetworking "istio.io/client-go/pkg/apis/networking/v1beta1"

	"github.com/meshguard/meshguard/injector/config"
)

// Istio's own unit tests of the effective ProxyConfig (istio/istio
// pilot/pkg/model/proxy_config_test.go: TestConvertToMeshConfigProxyConfig,
// TestMergeWithPrecedence, TestEffectiveProxyConfig), re-expressed as our
// own values and run through meshguard's code: applyProxyConfig (a
// resource's fields, toMeshConfigProxyConfig), config.MergeProxyConfig
// (mergeWithPrecedence; Istio's first argument, the higher precedence, is
// our over) and Inject with Options.ProxyConfigs (EffectiveProxyConfig, as
// the webhook calls it: the result is PROXY_CONFIG, Istio's defaults left out
// as cleanProxyConfig leaves them). Test names are Istio's function and row.
// Every row is ported; the precedence they assert (workload resource over
// annotation over namespace over root namespace over mesh defaultConfig) is
// that of proxy_config.go EffectiveProxyConfig in the newer source as well.
// TestCleanProxyConfig (pkg/kube/inject/inject_test.go) is ported at the end.
// TestCleanProxyConfig (pkg/kube/inject/inject_test.go) is ported in istio_unit_tables_test.go.
// (TestInjection: format-duration, hello-tracing-disabled, the ProxyConfig
// hold rows; ported with the goldens) and TestProxyImage
// (TestProxyImageTypeAsIstio). TestInjection's traffic-annotations row has no
// golden of the 86c9f01 era stored (injector/kubeinject/testdata/istio-extra),
// so its mesh-config part is asserted here (TestIstioInjectionTrafficAnnotationsMesh);
// pkg/kube/inject/concurrency_test.go
// (applyConcurrency) belongs to releases older than 86c9f01, whose template
// no longer derives --concurrency from CPU resources.

func pcWith(f func(*meshv1alpha1.ProxyConfig)) *meshv1alpha1.ProxyConfig {
	pc := &meshv1alpha1.ProxyConfig{}
	f(pc)
	return pc
}

func TestIstioConvertToMeshConfigProxyConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec func(*networkingapi.ProxyConfig)
		want *meshv1alpha1.ProxyConfig
	}{
		{"concurrency", func(s *networkingapi.ProxyConfig) { s.Concurrency = wrapperspb.Int32(3) },
			&meshv1alpha1.ProxyConfig{Concurrency: wrapperspb.Int32(3)}},
		{"environment variables", func(s *networkingapi.ProxyConfig) { s.EnvironmentVariables = map[string]string{"a": "b", "c": "d"} },
			&meshv1alpha1.ProxyConfig{ProxyMetadata: map[string]string{"a": "b", "c": "d"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := &clientnetworking.ProxyConfig{}
			tc.spec(&cr.Spec)
			if got := applyProxyConfig(&meshv1alpha1.ProxyConfig{}, cr); !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIstioMergeWithPrecedence(t *testing.T) {
	v := wrapperspb.Int32
	for _, tc := range []struct {
		name                  string
		first, second, expect *meshv1alpha1.ProxyConfig
	}{
		{"concurrency", &meshv1alpha1.ProxyConfig{Concurrency: v(1)}, &meshv1alpha1.ProxyConfig{Concurrency: v(2)},
			&meshv1alpha1.ProxyConfig{Concurrency: v(1)}},
		{"concurrency value 0", &meshv1alpha1.ProxyConfig{Concurrency: v(0)}, &meshv1alpha1.ProxyConfig{Concurrency: v(2)},
			&meshv1alpha1.ProxyConfig{Concurrency: v(0)}},
		{"source concurrency nil", &meshv1alpha1.ProxyConfig{}, &meshv1alpha1.ProxyConfig{Concurrency: v(2)},
			&meshv1alpha1.ProxyConfig{Concurrency: v(2)}},
		{"dest concurrency nil", &meshv1alpha1.ProxyConfig{Concurrency: v(2)}, &meshv1alpha1.ProxyConfig{},
			&meshv1alpha1.ProxyConfig{Concurrency: v(2)}},
		{"both concurrency nil", &meshv1alpha1.ProxyConfig{}, &meshv1alpha1.ProxyConfig{}, &meshv1alpha1.ProxyConfig{}},
		{"envvars",
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "x", "b": "y"} }),
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "z", "b": "y", "c": "d"} }),
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "x", "b": "y", "c": "d"} })},
		{"empty envars merge with populated",
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{} }),
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "z", "b": "y", "c": "d"} }),
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "z", "b": "y", "c": "d"} })},
		{"nil proxyconfig", nil,
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "z", "b": "y", "c": "d"} }),
			pcWith(func(p *meshv1alpha1.ProxyConfig) { p.ProxyMetadata = map[string]string{"a": "z", "b": "y", "c": "d"} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := config.MergeProxyConfig(tc.second, tc.first); !proto.Equal(got, tc.expect) {
				t.Errorf("got %v, want %v", got, tc.expect)
			}
		})
	}
}

func TestIstioEffectiveProxyConfig(t *testing.T) {
	const root = "istio-system"
	sel := map[string]string{"test": "selector"}
	none := int32(-1)
	for _, tc := range []struct {
		name        string
		mesh        string // the mesh config's YAML
		crs         []*clientnetworking.ProxyConfig
		ns          string
		labels      map[string]string
		annotations map[string]string
		want        string // PROXY_CONFIG: Istio's expected ProxyConfig without the defaults
		wantEnv     map[string]string
	}{
		{name: "CR applies to matching namespace", ns: "test-ns",
			crs:  []*clientnetworking.ProxyConfig{proxyConfigCR("test-ns", "ns", 0, nil, 3, nil)},
			want: `{"concurrency":3}`},
		{name: "CR takes precedence over meshConfig.defaultConfig", ns: "bar", mesh: "defaultConfig: {concurrency: 2}",
			crs:  []*clientnetworking.ProxyConfig{proxyConfigCR(root, "ns", 0, nil, 3, nil)},
			want: `{"concurrency":3}`},
		{name: "workload matching CR takes precedence over namespace matching CR", ns: "test-ns", labels: sel,
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("test-ns", "workload", 0, sel, 3, nil),
				proxyConfigCR("test-ns", "ns", 0, nil, 2, nil),
			},
			want: `{"concurrency":3}`},
		{name: "matching workload CR takes precedence over annotation", ns: "test-ns", labels: sel,
			annotations: map[string]string{AnnotationProxyConfig: `{ "concurrency": 5 }`},
			crs:         []*clientnetworking.ProxyConfig{proxyConfigCR("test-ns", "workload", 0, sel, 3, nil)},
			want:        `{"concurrency":3}`},
		{name: "CR in other namespaces get ignored", ns: "test-ns", labels: sel,
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("wrong-ns", "ns", 0, nil, 1, nil),
				proxyConfigCR("wrong-ns", "workload", 0, sel, 2, nil),
				proxyConfigCR(root, "global", 0, nil, 3, nil),
			},
			want: `{"concurrency":3}`},
		{name: "multiple matching workload CRs, oldest applies", ns: "test-ns", labels: sel, annotations: map[string]string{},
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("test-ns", "workload-a", 0, sel, none, map[string]string{"A": "1"}),
				proxyConfigCR("test-ns", "workload-b", 60, sel, none, map[string]string{"B": "2"}),
				proxyConfigCR("test-ns", "workload-c", 60, sel, none, map[string]string{"C": "3"}),
			},
			want: `{"proxyMetadata":{"A":"1"}}`, wantEnv: map[string]string{"A": "1"}},
		{name: "multiple matching namespace CRs, oldest applies", ns: "test-ns", labels: map[string]string{}, annotations: map[string]string{},
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("test-ns", "workload-a", 0, nil, none, map[string]string{"A": "1"}),
				proxyConfigCR("test-ns", "workload-b", 60, nil, none, map[string]string{"B": "2"}),
				proxyConfigCR("test-ns", "workload-c", 60, nil, none, map[string]string{"C": "3"}),
			},
			want: `{"proxyMetadata":{"A":"1"}}`, wantEnv: map[string]string{"A": "1"}},
		{name: "no configured CR or default config", ns: "ns", want: `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load([]byte(tc.mesh+"\nrootNamespace: "+root+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			pod.Namespace = tc.ns
			pod.Labels = tc.labels
			pod.Annotations = tc.annotations
			res, err := Inject(pod, tc.ns, cfg, Options{ProxyConfigs: tc.crs})
			if err != nil {
				t.Fatal(err)
			}
			env := proxyEnv(t, res.Pod)
			if got := env["PROXY_CONFIG"]; got != tc.want+"\n" {
				t.Errorf("PROXY_CONFIG %s, want %s", got, tc.want)
			}
			// Only the applied resource's environmentVariables reach the proxy.
			for _, k := range []string{"A", "B", "C"} {
				if got, ok := env[k]; got != tc.wantEnv[k] || ok != (tc.wantEnv[k] != "") {
					t.Errorf("env %s=%q (set %v), want %q", k, got, ok, tc.wantEnv[k])
				}
			}
		})
	}
}

// TestIstioInjectionTrafficAnnotationsMesh: the mesh of TestInjection's
// traffic-annotations row (pkg/kube/inject/inject_test.go) adds one
// defaultConfig.proxyMetadata key; Istio's sidecar template writes each
// .ProxyConfig.ProxyMetadata entry as an env var of istio-proxy, and
// PROXY_CONFIG carries it.
func TestIstioInjectionTrafficAnnotationsMesh(t *testing.T) {
	cfg, err := config.Load([]byte("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_TLS_CLIENT_KEY: /etc/identity/client/keys/client-key.pem\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Inject(loadPod(t, "testdata/golden/plain.in.yaml"), "app", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := proxyEnv(t, res.Pod)
	if got := env["ISTIO_META_TLS_CLIENT_KEY"]; got != "/etc/identity/client/keys/client-key.pem" {
		t.Errorf("env ISTIO_META_TLS_CLIENT_KEY=%q", got)
	}
	if want := `{"proxyMetadata":{"ISTIO_META_TLS_CLIENT_KEY":"/etc/identity/client/keys/client-key.pem"}}` + "\n"; env["PROXY_CONFIG"] != want {
		t.Errorf("PROXY_CONFIG %s, want %s", env["PROXY_CONFIG"], want)
	}
}
