package injector

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	clientnetworking "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// proxyConfigCR builds a ProxyConfig resource created age minutes after a
// fixed instant (older resources win at their level).
func proxyConfigCR(ns, name string, minute int, selector map[string]string, concurrency int32, env map[string]string) *clientnetworking.ProxyConfig {
	cr := &clientnetworking.ProxyConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC))}}
	if selector != nil {
		cr.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: selector}
	}
	if concurrency >= 0 {
		cr.Spec.Concurrency = wrapperspb.Int32(concurrency)
	}
	cr.Spec.EnvironmentVariables = env
	return cr
}

func proxyEnv(t *testing.T, pod *corev1.Pod) map[string]string {
	t.Helper()
	for _, c := range pod.Spec.Containers {
		if c.Name == ProxyContainerName {
			out := map[string]string{}
			for _, e := range c.Env {
				out[e.Name] = e.Value
			}
			return out
		}
	}
	t.Fatal("no istio-proxy container")
	return nil
}

// TestProxyConfigResources: which ProxyConfig resources apply to a pod and
// in what precedence (Istio's EffectiveProxyConfig): mesh < root namespace <
// pod namespace < proxy.istio.io/config annotation < workload selector; at
// each level only the oldest resource; environmentVariables merge key by key.
func TestProxyConfigResources(t *testing.T) {
	none := int32(-1)
	web := map[string]string{"app": "hello"}
	for _, tc := range []struct {
		name       string
		ns         string
		annotation string
		crs        []*clientnetworking.ProxyConfig
		want       string            // PROXY_CONFIG
		wantEnv    map[string]string // proxyMetadata env vars present
		absentEnv  []string
	}{
		{name: "none", ns: "app", want: `{}`},
		{name: "root namespace applies mesh-wide", ns: "app",
			crs:     []*clientnetworking.ProxyConfig{proxyConfigCR("istio-system", "mesh", 0, nil, 2, map[string]string{"A": "root"})},
			want:    `{"concurrency":2,"proxyMetadata":{"A":"root"}}`,
			wantEnv: map[string]string{"A": "root"}},
		{name: "namespace over root, env merged", ns: "app",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("istio-system", "mesh", 0, nil, 2, map[string]string{"A": "root", "B": "root"}),
				proxyConfigCR("app", "ns", 1, nil, 3, map[string]string{"A": "ns"}),
			},
			want:    `{"concurrency":3,"proxyMetadata":{"A":"ns","B":"root"}}`,
			wantEnv: map[string]string{"A": "ns", "B": "root"}},
		{name: "oldest namespace resource only", ns: "app",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("app", "newer", 5, nil, 7, nil),
				proxyConfigCR("app", "older", 1, nil, 3, nil),
			},
			want: `{"concurrency":3}`},
		{name: "annotation over namespace", ns: "app", annotation: "concurrency: 4",
			crs:  []*clientnetworking.ProxyConfig{proxyConfigCR("app", "ns", 1, nil, 3, nil)},
			want: `{"concurrency":4}`},
		{name: "workload selector over annotation", ns: "app", annotation: "concurrency: 4\nproxyMetadata: {A: anno, C: anno}",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("app", "ns", 1, nil, 3, nil),
				proxyConfigCR("app", "wl", 2, web, 5, map[string]string{"A": "wl"}),
			},
			want:    `{"concurrency":5,"proxyMetadata":{"A":"wl","C":"anno"}}`,
			wantEnv: map[string]string{"A": "wl", "C": "anno"}},
		{name: "selector that does not match, empty selector, other namespace: ignored", ns: "app",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("app", "other-app", 1, map[string]string{"app": "other"}, 6, nil),
				proxyConfigCR("app", "empty-selector", 1, map[string]string{}, 6, nil),
				proxyConfigCR("elsewhere", "ns", 1, nil, 6, map[string]string{"X": "1"}),
			},
			want: `{}`, absentEnv: []string{"X"}},
		{name: "concurrency 0 overrides", ns: "app",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("istio-system", "mesh", 0, nil, 2, nil),
				proxyConfigCR("app", "ns", 1, nil, 0, nil),
			},
			want: `{"concurrency":0}`},
		{name: "pod in the root namespace: root level once", ns: "istio-system",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("istio-system", "older", 0, nil, 2, nil),
				proxyConfigCR("istio-system", "newer", 1, nil, 9, nil),
			},
			want: `{"concurrency":2}`},
		{name: "resource without concurrency keeps the lower level's", ns: "app",
			crs: []*clientnetworking.ProxyConfig{
				proxyConfigCR("istio-system", "mesh", 0, nil, 2, nil),
				proxyConfigCR("app", "ns", 1, nil, none, map[string]string{"A": "ns"}),
			},
			want: `{"concurrency":2,"proxyMetadata":{"A":"ns"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			pod.Namespace = tc.ns
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationProxyConfig: tc.annotation}
			}
			res, err := Inject(pod, tc.ns, config.Default(), Options{ProxyConfigs: tc.crs})
			if err != nil {
				t.Fatal(err)
			}
			env := proxyEnv(t, res.Pod)
			if env["PROXY_CONFIG"] != tc.want+"\n" { // the newline of Istio's `|` block
				t.Errorf("PROXY_CONFIG %s, want %s", env["PROXY_CONFIG"], tc.want)
			}
			for k, v := range tc.wantEnv {
				if env[k] != v {
					t.Errorf("env %s=%q, want %q", k, env[k], v)
				}
			}
			for _, k := range tc.absentEnv {
				if _, ok := env[k]; ok {
					t.Errorf("env %s set by a resource that does not apply", k)
				}
			}
		})
	}
}

// TestProxyConfigResourceGuard: an image type or a privileged setting from
// a ProxyConfig resource in the pod's namespace is a pod-level input (the
// allow-list applies, and messages name the resource); the root
// namespace's is the operator's.
func TestProxyConfigResourceGuard(t *testing.T) {
	distroless := func(cr *clientnetworking.ProxyConfig) *clientnetworking.ProxyConfig {
		cr.Spec.Image = &networkingapi.ProxyImage{ImageType: "distroless"}
		return cr
	}
	const configured = "registry.istio.io/testing/proxyv2:latest"

	t.Run("root namespace image type applies", func(t *testing.T) {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		res, err := Inject(pod, "app", config.Default(), Options{ProxyConfigs: []*clientnetworking.ProxyConfig{
			distroless(proxyConfigCR("istio-system", "mesh", 0, nil, -1, nil))}})
		if err != nil {
			t.Fatal(err)
		}
		if img := res.Pod.Spec.Containers[1].Image; img != configured+"-distroless" || len(res.Warnings) != 0 {
			t.Fatalf("image %q warnings %q", img, res.Warnings)
		}
	})
	t.Run("namespace image type ignored with a warning naming the resource", func(t *testing.T) {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		res, err := Inject(pod, "app", config.Default(), Options{ProxyConfigs: []*clientnetworking.ProxyConfig{
			distroless(proxyConfigCR("app", "ns", 0, nil, -1, nil))}})
		if err != nil {
			t.Fatal(err)
		}
		if img := res.Pod.Spec.Containers[1].Image; img != configured {
			t.Fatalf("image %q, want the configured one", img)
		}
		if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "ProxyConfig app/ns (image.imageType)") {
			t.Fatalf("warnings %q should name the resource", res.Warnings)
		}
	})
	t.Run("privileged env from a namespace resource denied, naming it", func(t *testing.T) {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		_, err := Inject(pod, "app", config.Default(), Options{ProxyConfigs: []*clientnetworking.ProxyConfig{
			proxyConfigCR("app", "trace", 0, nil, -1, map[string]string{"IPTABLES_TRACE_LOGGING": "true"})}})
		if err == nil || !strings.Contains(err.Error(), "ProxyConfig app/trace (proxyMetadata.IPTABLES_TRACE_LOGGING)") {
			t.Fatalf("want a denial naming ProxyConfig app/trace, got %v", err)
		}
	})
	t.Run("privileged env from the root namespace is the operator's", func(t *testing.T) {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		if _, err := Inject(pod, "app", config.Default(), Options{ProxyConfigs: []*clientnetworking.ProxyConfig{
			proxyConfigCR("istio-system", "trace", 0, nil, -1, map[string]string{"IPTABLES_TRACE_LOGGING": "true"})}}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestProxyConfigAnnotationValidated: proxy.istio.io/config applied onto
// Istio's default ProxyConfig must pass ValidateMeshConfigProxyConfig, or the
// pod is denied naming the annotation and the field (Istio's
// pkg/kube/inject/validate.go validateProxyConfig); valid ones inject.
func TestProxyConfigAnnotationValidated(t *testing.T) {
	for _, tc := range []struct{ value, wantErr string }{
		{"concurrency: 3", ""},
		{"holdApplicationUntilProxyStarts: true\ndrainDuration: 5s", ""},
		{"discoveryAddress: istiod.istio-system.svc:15012", ""},
		{"tracing: {zipkin: {address: $(HOST_IP):9411}}", ""},
		{"statusPort: 0", "statusPort: Invalid value: 0: port number 0 must be in the range 1..65535"},
		{"statusPort: 70000", "statusPort"},
		{"proxyAdminPort: 0", "proxyAdminPort"},
		{"discoveryAddress: no-port-here", "discoveryAddress"},
		{`discoveryAddress: ""`, "discoveryAddress: Required value"},
		{"discoveryAddress: bad_host:15012", `"bad_host" is not a valid hostname or an IP address`},
		{"drainDuration: 0s", "drainDuration"},
		{"drainDuration: 1500ms", "drain time only supports durations to seconds precision"},
		{`configPath: ""`, "configPath: Required value"},
		{`binaryPath: ""`, "binaryPath: Required value"},
		{"statsdUdpAddress: bad", "statsdUdpAddress"},
		{"tracing: {lightstep: {address: 'ls:8080'}}", "tracing.lightstep.accessToken: Required value"},
		{"privateKeyProvider: {cryptomb: {}}", "privateKeyProvider.cryptomb.pollDelay: Required value"},
	} {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		pod.Annotations = map[string]string{AnnotationProxyConfig: tc.value}
		_, err := Inject(pod, "app", config.Default(), Options{})
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "annotation "+AnnotationProxyConfig) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: err = %v, want the annotation denied with %q", tc.value, err, tc.wantErr)
		}
	}
}

// TestProxyConfigMergedAsIstio: the effective ProxyConfig is built as
// Istio's webhook builds it (pilot/pkg/model/proxy_config.go
// EffectiveProxyConfig, mergeWithPrecedence): Istio's default ProxyConfig,
// then the mesh defaultConfig, the resources and the proxy.istio.io/config
// annotation, each laid over the lower levels with proto.Merge (nested
// messages merged, lists appended, maps merged key by key, a scalar at its
// zero value not applied), concurrency and image replacing. Expected values
// follow from that code, not from meshguard's.
func TestProxyConfigMergedAsIstio(t *testing.T) {
	for _, tc := range []struct {
		name, mesh, annotation string
		want                   string // PROXY_CONFIG, compared as JSON
		hold                   bool
	}{
		{name: "annotation tracing merges into the mesh's tracing",
			mesh:       "defaultConfig: {tracing: {zipkin: {address: 'z.tracing:9411'}}}",
			annotation: "tracing: {sampling: 50}",
			want:       `{"tracing":{"zipkin":{"address":"z.tracing:9411"},"sampling":50}}`},
		{name: "annotation tracer merges with the mesh's sampling",
			mesh:       "defaultConfig: {tracing: {sampling: 10}}",
			annotation: "tracing: {zipkin: {address: 'z.tracing:9411'}}",
			want:       `{"tracing":{"zipkin":{"address":"z.tracing:9411"},"sampling":10}}`},
		{name: "proxyStatsMatcher lists appended",
			mesh:       "defaultConfig: {proxyStatsMatcher: {inclusionPrefixes: [cluster.outbound]}}",
			annotation: "proxyStatsMatcher: {inclusionPrefixes: [upstream_rq]}",
			want:       `{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound","upstream_rq"]}}`},
		{name: "extraStatTags appended",
			mesh:       "defaultConfig: {extraStatTags: [a]}",
			annotation: "extraStatTags: [b]",
			want:       `{"extraStatTags":["a","b"]}`},
		{name: "runtimeValues merged key by key",
			mesh:       "defaultConfig: {runtimeValues: {re.a: '1'}}",
			annotation: "runtimeValues: {re.b: '2'}",
			want:       `{"runtimeValues":{"re.a":"1","re.b":"2"}}`},
		{name: "proxyHeaders merged field by field",
			mesh:       "defaultConfig: {proxyHeaders: {server: {disabled: true}}}",
			annotation: "proxyHeaders: {requestId: {disabled: true}}",
			want:       `{"proxyHeaders":{"server":{"disabled":true},"requestId":{"disabled":true}}}`},
		{name: "a false hold does not undo the mesh's true (a zero value is not merged)",
			mesh:       "defaultConfig: {holdApplicationUntilProxyStarts: true}",
			annotation: "holdApplicationUntilProxyStarts: false",
			want:       `{"holdApplicationUntilProxyStarts":true}`, hold: true},
		{name: "concurrency 0 replaces",
			mesh:       "defaultConfig: {concurrency: 4}",
			annotation: "concurrency: 0",
			want:       `{"concurrency":0}`},
		{name: "top-level scalar replaces",
			mesh:       "defaultConfig: {drainDuration: 30s}",
			annotation: "drainDuration: 20s",
			want:       `{"drainDuration":"20s"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load([]byte(tc.mesh), nil)
			if err != nil {
				t.Fatal(err)
			}
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationProxyConfig: tc.annotation}
			}
			res, err := Inject(pod, "app", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := proxyEnv(t, res.Pod)["PROXY_CONFIG"]
			var g, w any
			if err := json.Unmarshal([]byte(got), &g); err != nil {
				t.Fatalf("PROXY_CONFIG %q: %v", got, err)
			}
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("PROXY_CONFIG %s, want %s", got, tc.want)
			}
			held := false
			for _, c := range res.Pod.Spec.Containers {
				if c.Name == ProxyContainerName && c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
					held = true
				}
			}
			// Ordered by the same hold (a deliberate difference from
			// Istio's reorderPod, docs/compatibility.md).
			if first := res.Pod.Spec.Containers[0].Name == ProxyContainerName; held != tc.hold || first != tc.hold {
				t.Errorf("postStart wait %v, istio-proxy first %v; want both %v", held, first, tc.hold)
			}
		})
	}
}

// TestProxyImageTypeAsIstio: the injected image's tag as Istio's ProxyImage
// and updateImageTypeIfPresent (pkg/kube/inject/inject.go) build it: the
// image type is global.variant, replaced by the effective ProxyConfig's image
// whenever one is set (an empty imageType too); an empty type leaves the tag
// as configured, suffix included; any other strips a -distroless or -debug
// suffix first, and "default" appends nothing.
func TestProxyImageTypeAsIstio(t *testing.T) {
	const hub = "registry.istio.io/testing/proxyv2:"
	for _, tc := range []struct {
		name, values, mesh, want string
	}{
		{"tag with a suffix and no variant kept as is", `{"global":{"tag":"1.24.0-distroless"}}`, "", hub + "1.24.0-distroless"},
		{"variant replaces the tag's suffix", `{"global":{"tag":"1.24.0-distroless","variant":"debug"}}`, "", hub + "1.24.0-debug"},
		{"mesh imageType default strips the suffix", `{"global":{"tag":"1.24.0-distroless"}}`, "defaultConfig: {image: {imageType: default}}", hub + "1.24.0"},
		{"mesh image without a type overrides the variant", `{"global":{"tag":"1.24.0","variant":"distroless"}}`, "defaultConfig: {image: {}}", hub + "1.24.0"},
		{"variant appended", `{"global":{"tag":"1.24.0","variant":"distroless"}}`, "", hub + "1.24.0-distroless"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load([]byte(tc.mesh), []byte(tc.values))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Inject(loadPod(t, "testdata/golden/plain.in.yaml"), "app", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range append(res.Pod.Spec.InitContainers, res.Pod.Spec.Containers...) {
				if (c.Name == ProxyContainerName || c.Name == "istio-init") && c.Image != tc.want {
					t.Errorf("%s image %s, want %s", c.Name, c.Image, tc.want)
				}
			}
		})
	}
}

// TestProxyMetadataAsIstioTemplate: Istio's sidecar template writes each
// proxyMetadata entry as `- name: {{ $key }}` and `value: "{{ $value }}"`, so
// the name is read as a plain YAML scalar and the value as a double-quoted
// one: escapes are decoded, quotes around a name dropped, and an entry that
// does not read back as two strings (a stray quote, an unknown escape, a
// name such as true) fails injection. Both
// injection paths give that result (the generic one renders Istio's
// template), and the error names the input that set the value.
func TestProxyMetadataAsIstioTemplate(t *testing.T) {
	cfg, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	generic := forceGeneric(cfg)
	for _, tc := range []struct {
		name, annotation string
		crs              []*clientnetworking.ProxyConfig
		want             string // FOO's value
		wantErr          string
	}{
		{name: "plain", annotation: "proxyMetadata: {FOO: 'v1.2'}", want: "v1.2"},
		{name: "escape decoded", annotation: `proxyMetadata: {FOO: 'a\tb\u00e9'}`, want: "a\tbé"},
		{name: "stray quote", annotation: `proxyMetadata: {FOO: '{"a":1}'}`,
			wantErr: "annotation proxy.istio.io/config (proxyMetadata.FOO)"},
		{name: "unknown escape", annotation: `proxyMetadata: {FOO: 'x\d'}`,
			wantErr: "annotation proxy.istio.io/config (proxyMetadata.FOO)"},
		{name: "quoted name unquoted", annotation: `proxyMetadata: {"'FOO'": v}`, want: "v"},
		{name: "name read as a boolean", annotation: `proxyMetadata: {"true": v}`,
			wantErr: "annotation proxy.istio.io/config (proxyMetadata.true)"},
		{name: "name read as a mapping", annotation: `proxyMetadata: {"a: b": v}`,
			wantErr: "annotation proxy.istio.io/config (proxyMetadata.a: b)"},
		{name: "from a namespace resource",
			crs:     []*clientnetworking.ProxyConfig{proxyConfigCR("app", "ns", 0, nil, -1, map[string]string{"FOO": `x\d`})},
			wantErr: "ProxyConfig app/ns (proxyMetadata.FOO)"},
		{name: "from the root namespace's resource",
			crs:     []*clientnetworking.ProxyConfig{proxyConfigCR("istio-system", "mesh", 0, nil, -1, map[string]string{"FOO": `x\d`})},
			wantErr: "ProxyConfig istio-system/mesh (proxyMetadata.FOO)"},
	} {
		for path, cfg := range map[string]*config.Snapshot{"typed": cfg, "generic": generic} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				pod := loadPod(t, "testdata/golden/plain.in.yaml")
				if tc.annotation != "" {
					pod.Annotations = map[string]string{AnnotationProxyConfig: tc.annotation}
				}
				res, err := Inject(pod, "app", cfg, Options{ProxyConfigs: tc.crs})
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := proxyEnv(t, res.Pod)["FOO"]; got != tc.want {
					t.Errorf("FOO = %q, want %q", got, tc.want)
				}
			})
		}
	}
	if _, err := config.Load([]byte(`defaultConfig: {proxyMetadata: {FOO: 'x\d'}}`), nil); err == nil ||
		!strings.Contains(err.Error(), "mesh.defaultConfig.proxyMetadata.FOO") {
		t.Errorf("mesh config load: err = %v, want one naming mesh.defaultConfig.proxyMetadata.FOO", err)
	}
}
