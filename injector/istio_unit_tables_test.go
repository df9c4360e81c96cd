package injector

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// This file re-expresses the rows of Istio's injector unit-test tables
// (istio/istio pkg/kube/inject: webhook_test.go, validate_test.go,
// inject_test.go's non-golden tests, app_probe_test.go) as meshguard inputs,
// run through meshguard's own entry points (Decide, ParseAnnotations,
// Inject). Each test names the upstream test function; each row keeps the
// upstream case name. Rows already asserted elsewhere, rows that depend on a
// deliberate difference (docs/compatibility.md) and rows about behaviour
// newer than Istio 86c9f01 are listed in comments with the reason.
//
// Whole upstream tests asserted elsewhere: inject_test.go
// TestAppendMultusNetwork (TestAppendMultus), TestMultipleInjectionTemplates
// (template TestMultipleTemplatesAndAliases), Test_updateClusterEnvs
// (TestClusterAndNetworkEnv: cluster then network, appended in key order).
// Not ported: TestRunAndServe's metric names (meshguard's metrics differ by
// design, docs/compatibility.md), TestNewWebhookConfigParsing* (meshguard
// validates the values before serving: webhook TestSetupInjection),
// TestDetectNativeSidecar (see ../webhook/istio_unit_tables_test.go), and
// TestInjection's goldens (kubeinject TestInjectionConformance,
// TestIstioExtraGoldens).

// istioTablePod is a pod with one application container, as Istio's tables
// build them (with an image, which meshguard requires of every container).
func istioTablePod(name string, containers ...corev1.Container) *corev1.Pod {
	for i := range containers {
		if containers[i].Image == "" {
			containers[i].Image = "example.com/app:1"
		}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "test-namespace"}, Spec: corev1.PodSpec{Containers: containers}}
}

func istioTableConfig(t *testing.T, mesh, values string) *config.Snapshot {
	t.Helper()
	cfg, err := config.Load([]byte(mesh), []byte(values))
	if err != nil {
		t.Fatalf("config (mesh %q, values %q): %v", mesh, values, err)
	}
	return cfg
}

// istioProxyEnv is the value of the injected istio-proxy's env var name, and
// whether it is set.
func istioProxyEnv(t *testing.T, pod *corev1.Pod, name string) (string, bool) {
	t.Helper()
	proxy := template.FindSidecar(pod)
	if proxy == nil {
		t.Fatalf("no %s container in %s", ProxyContainerName, pod.Name)
	}
	for _, e := range proxy.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// TestIstioInjectRequired is Istio's webhook_test.go TestInjectRequired
// (injectRequired, pkg/kube/inject/inject.go) through Decide. Istio's
// parseToLabelSelector("foo") is the selector {matchExpressions: [{key: foo,
// operator: Exists}]}. Rows already asserted by TestDecide with the same
// input and verdict: "default-policy" (enabled: "default policy"),
// "force-off-policy" (enabled, annotation false: "annotation false"),
// "default-policy" (disabled: "policy disabled"),
// "policy-disabled-label-enabled-annotation-disabled" ("label wins over
// annotation"). "wrong-policy" (autoInject: wrong_policy) is
// TestIstioInjectRequiredWrongPolicy.
func TestIstioInjectRequired(t *testing.T) {
	exists := func(keys ...string) string {
		var s []string
		for _, k := range keys {
			s = append(s, fmt.Sprintf(`{matchExpressions: [{key: %s, operator: Exists}]}`, k))
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	const fooBar = `[{matchLabels: {foo: bar}}]`
	cases := []struct {
		name          string
		policy        string // global.proxy.autoInject
		never, always string // sidecarInjectorWebhook selectors, YAML
		hostNetwork   bool
		labels, annos map[string]string
		want          bool
	}{
		{name: "no-policy (enabled, empty annotations)", policy: "enabled", annos: map[string]string{}, want: true},
		{name: "force-on-policy (enabled)", policy: "enabled", annos: map[string]string{AnnotationInject: "true"}, want: true},
		{name: "no-policy (disabled, empty annotations)", policy: "disabled", annos: map[string]string{}, want: false},
		{name: "force-on-policy (disabled)", policy: "disabled", annos: map[string]string{AnnotationInject: "true"}, want: true},
		{name: "force-off-policy (disabled)", policy: "disabled", annos: map[string]string{AnnotationInject: "false"}, want: false},
		{name: "invalid-inject-value-yes", policy: "enabled", annos: map[string]string{AnnotationInject: "yes"}, want: true},
		{name: "invalid-inject-value-on", policy: "disabled", annos: map[string]string{AnnotationInject: "on"}, want: false},
		{name: "invalid-inject-value-random", policy: "enabled", labels: map[string]string{AnnotationInject: "random"}, want: true},
		{name: "force-off-policy (host network)", policy: "enabled", hostNetwork: true, annos: map[string]string{}, want: false},
		{name: "policy-enabled-always-inject-no-labels", policy: "enabled", always: fooBar, want: true},
		{name: "policy-enabled-always-inject-with-labels", policy: "enabled", always: fooBar, labels: map[string]string{"foo": "bar1"}, want: true},
		{name: "policy-disabled-always-inject-no-labels", policy: "disabled", always: fooBar, want: false},
		{name: "policy-disabled-always-inject-with-labels", policy: "disabled", always: fooBar, labels: map[string]string{"foo": "bar"}, want: true},
		{name: "policy-enabled-never-inject-no-labels", policy: "enabled", never: fooBar, want: true},
		{name: "policy-enabled-never-inject-with-labels", policy: "enabled", never: fooBar, labels: map[string]string{"foo": "bar"}, want: false},
		{name: "policy-disabled-never-inject-no-labels", policy: "disabled", never: fooBar, want: false},
		{name: "policy-disabled-never-inject-with-labels", policy: "disabled", never: fooBar, labels: map[string]string{"foo": "bar"}, want: false},
		{name: "policy-enabled-never-inject-with-empty-label", policy: "enabled", never: exists("foo"), labels: map[string]string{"foo": "", "foo2": "bar2"}, want: false},
		{name: "policy-disabled-always-inject-with-empty-label", policy: "disabled", always: exists("foo"), labels: map[string]string{"foo": "", "foo2": "bar2"}, want: true},
		{name: "policy-disabled-always-never-inject-with-label-returns-true", policy: "disabled", always: exists("always"), never: exists("never"), labels: map[string]string{"always": "bar", "foo2": "bar2"}, want: true},
		{name: "policy-disabled-always-never-inject-with-label-returns-false", policy: "disabled", always: exists("always"), never: exists("never"), labels: map[string]string{"never": "bar", "foo2": "bar2"}, want: false},
		{name: "policy-disabled-always-never-inject-with-both-labels", policy: "disabled", always: exists("always"), never: exists("never"), labels: map[string]string{"always": "bar", "never": "bar2"}, want: false},
		{name: "policy-enabled-annotation-true-never-inject", policy: "enabled", never: exists("foo"), annos: map[string]string{AnnotationInject: "true"}, labels: map[string]string{"foo": "", "foo2": "bar2"}, want: true},
		{name: "policy-enabled-annotation-false-always-inject", policy: "enabled", always: exists("foo"), annos: map[string]string{AnnotationInject: "false"}, labels: map[string]string{"foo": "", "foo2": "bar2"}, want: false},
		{name: "policy-disabled-annotation-false-always-inject", policy: "disabled", always: exists("foo"), annos: map[string]string{AnnotationInject: "false"}, labels: map[string]string{"foo": "", "foo2": "bar2"}, want: false},
		{name: "policy-enabled-never-inject-multiple-labels", policy: "enabled", never: exists("foo", "bar"), labels: map[string]string{"label1": "", "bar": "anything"}, want: false},
		{name: "policy-enabled-always-inject-multiple-labels (disabled policy)", policy: "disabled", always: exists("foo", "bar"), labels: map[string]string{"label1": "", "bar": "anything"}, want: true},
		{name: "policy-disabled-annotation-true-never-inject", policy: "disabled", never: exists("foo"), annos: map[string]string{AnnotationInject: "true"}, labels: map[string]string{"foo": "", "foo2": "bar2"}, want: true},
		{name: "policy-disabled-label-enabled", policy: "disabled", labels: map[string]string{AnnotationInject: "true"}, want: true},
		{name: "policy-disabled-both-enabled", policy: "disabled", annos: map[string]string{AnnotationInject: "true"}, labels: map[string]string{AnnotationInject: "true"}, want: true},
		{name: "policy-disabled-label-disabled-annotation-enabled", policy: "disabled", annos: map[string]string{AnnotationInject: "true"}, labels: map[string]string{AnnotationInject: "false"}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			values := fmt.Sprintf(`{global: {proxy: {autoInject: %s}}, sidecarInjectorWebhook: {neverInjectSelector: %s, alwaysInjectSelector: %s}}`,
				tc.policy, orEmptyList(tc.never), orEmptyList(tc.always))
			cfg := istioTableConfig(t, "", values)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: tc.labels, Annotations: tc.annos}}
			pod.Spec.HostNetwork = tc.hostNetwork
			if d := Decide(pod, "test-namespace", cfg); d.Inject != tc.want {
				t.Fatalf("Decide = %+v, want inject=%v", d, tc.want)
			}
		})
	}
}

func orEmptyList(s string) string {
	if s == "" {
		return "[]"
	}
	return s
}

// TestIstioInjectRequiredWrongPolicy is TestInjectRequired's "wrong-policy"
// row: Istio's injectRequired logs the illegal autoInject value and injects
// nothing. meshguard refuses such values at load (the config is validated
// before it serves), which also injects nothing; the error names the field.
func TestIstioInjectRequiredWrongPolicy(t *testing.T) {
	_, err := config.Load(nil, []byte(`{global: {proxy: {autoInject: wrong_policy}}}`))
	if err == nil || !strings.Contains(err.Error(), "autoInject") {
		t.Fatalf("autoInject: wrong_policy loaded (err %v); want an error naming autoInject", err)
	}
}

// TestIstioParsePort is Istio's validate_test.go Test_parsePort through the
// port-list annotations (ParseAnnotations; Istio's validatePortList →
// parsePorts → parsePort). The stored Test_parsePort is newer than the
// validate.go stored for 86c9f01 (its parsePort is strconv.ParseUint of the
// trimmed item, no ranges): its rows "valid port range" ("8080:9090") and
// "valid port range with empty end port" ("8080:") are valid only in the
// newer Istio and are left out; the other rows hold in both.
func TestIstioParsePort(t *testing.T) {
	for _, tc := range []struct {
		name, ports string
		wantErr     bool
	}{
		{"valid single port", "8080", false},
		{"start port greater than end port", "9090:8080", true},
		{"invalid port range format", "8080::", true},
		{"invalid port number", "abc", true},
		{"leading/trailing whitespace", " 8080 : 9090 ", true},
		{"invalid port range with empty start port", ":9090", true},
	} {
		for _, key := range []string{AnnotationExcludeInboundPorts, AnnotationExcludeOutboundPorts, AnnotationIncludeInboundPorts} {
			t.Run(tc.name+"/"+key, func(t *testing.T) {
				_, err := ParseAnnotations(map[string]string{key: tc.ports})
				if (err != nil) != tc.wantErr {
					t.Fatalf("%s=%q: err %v, wantErr %v", key, tc.ports, err, tc.wantErr)
				}
				if err != nil && !strings.Contains(err.Error(), key) {
					t.Fatalf("error %q does not name %s", err, key)
				}
			})
		}
	}
}

// TestIstioProxyImage is Istio's inject_test.go TestProxyImage (ProxyImage,
// pkg/kube/inject/inject.go) through Inject: values global.hub/tag, the mesh's
// defaultConfig.image.imageType (Istio's pc) and the pod's
// sidecar.istio.io/proxyImageType (ann). An image type from the annotation is
// honoured only for images in values meshguard.allowedProxyImages (the
// allow-list, docs/compatibility.md), so the values allow every image of
// these rows.
func TestIstioProxyImage(t *testing.T) {
	const allow = `meshguard: {allowedProxyImages: ["*/*/*", "*/*/*/*"]}`
	for _, tc := range []struct {
		desc, hub, tag, pc, ann, want string
	}{
		{desc: "vals-only-int-tag", hub: "docker.io/istio", tag: "11", want: "docker.io/istio/proxyv2:11"},
		{desc: "pc overrides imageType - float tag", hub: "docker.io/istio", tag: "1.12", pc: "distroless", want: "docker.io/istio/proxyv2:1.12-distroless"},
		{desc: "annotation overrides imageType", hub: "gcr.io/gke-release/asm", tag: `"1.11.2-asm.17"`, ann: "distroless", want: "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17-distroless"},
		{desc: "pc and annotation overrides imageType", hub: "gcr.io/gke-release/asm", tag: `"1.11.2-asm.17"`, pc: "distroless", ann: "debug", want: "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17-debug"},
		{desc: "pc and annotation overrides imageType, ann is default", hub: "gcr.io/gke-release/asm", tag: `"1.11.2-asm.17"`, pc: "debug", ann: "default", want: "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17"},
		{desc: "pc overrides imageType with default, tag also has image type", hub: "gcr.io/gke-release/asm", tag: `"1.11.2-asm.17-distroless"`, pc: "default", want: "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17"},
		{desc: "ann overrides imageType with default, tag also has image type", hub: "gcr.io/gke-release/asm", tag: `"1.11.2-asm.17-distroless"`, ann: "default", want: "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17"},
		{desc: "pc overrides imageType, tag also has image type", hub: "docker.io/istio", tag: `"1.12-debug"`, pc: "distroless", want: "docker.io/istio/proxyv2:1.12-distroless"},
		{desc: "annotation overrides imageType, tag also has the same image type", hub: "docker.io/istio", tag: `"1.12-distroless"`, ann: "distroless", want: "docker.io/istio/proxyv2:1.12-distroless"},
		{desc: "unusual tag should work", hub: "private-repo/istio", tag: `"1.12-this-is-unusual-tag"`, want: "private-repo/istio/proxyv2:1.12-this-is-unusual-tag"},
		{desc: "unusual tag should work, default override", hub: "private-repo/istio", tag: `"1.12-this-is-unusual-tag-distroless"`, pc: "default", want: "private-repo/istio/proxyv2:1.12-this-is-unusual-tag"},
		{desc: "annotation overrides imageType with unusual tag", hub: "private-repo/istio", tag: `"1.12-this-is-unusual-tag"`, ann: "distroless", want: "private-repo/istio/proxyv2:1.12-this-is-unusual-tag-distroless"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			mesh := ""
			if tc.pc != "" {
				mesh = fmt.Sprintf("defaultConfig: {image: {imageType: %s}}", tc.pc)
			}
			cfg := istioTableConfig(t, mesh, fmt.Sprintf(`{global: {hub: %q, tag: %s}, %s}`, tc.hub, tc.tag, allow))
			pod := istioTablePod("hello", corev1.Container{Name: "hello"})
			if tc.ann != "" {
				pod.Annotations = map[string]string{AnnotationProxyImageType: tc.ann}
			}
			res, err := Inject(pod, "app", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := template.FindSidecar(res.Pod).Image; got != tc.want {
				t.Fatalf("proxy image %s, want %s", got, tc.want)
			}
		})
	}
}

// TestIstioCleanProxyConfig is Istio's inject_test.go TestCleanProxyConfig
// (protoToJSON of the proxy's ProxyConfig, the PROXY_CONFIG env var) through
// Inject: the mesh's defaultConfig, with the fields equal to Istio's defaults
// left out of PROXY_CONFIG. Istio's "default" row is the default mesh config
// itself; "explicit default" spells configPath (./etc/istio/proxy) and
// drainDuration (45s) as their defaults.
func TestIstioCleanProxyConfig(t *testing.T) {
	for _, tc := range []struct {
		name, mesh, want string
	}{
		{"default", "", `{}`},
		{"explicit default", `defaultConfig: {configPath: ./etc/istio/proxy, drainDuration: 45s}`, `{}`},
		{"overrides", `defaultConfig: {configPath: /foo/bar, drainDuration: 7s, proxyMetadata: {foo: barr}}`,
			`{"configPath":"/foo/bar","drainDuration":"7s","proxyMetadata":{"foo":"barr"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Inject(istioTablePod("hello", corev1.Container{Name: "hello"}), "app", istioTableConfig(t, tc.mesh, ""), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := istioProxyEnv(t, res.Pod, "PROXY_CONFIG")
			if !ok || !jsonEqual(got, tc.want) {
				t.Fatalf("PROXY_CONFIG = %q (set %v), want %s", got, ok, tc.want)
			}
		})
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestIstioNativeSidecarAnnotationOverride is Istio's inject_test.go
// TestNativeSidecarAnnotationOverride through Inject: the cluster's native
// sidecar support (Istio's .NativeSidecars, meshguard's
// Options.NativeSidecars) and the pod's sidecar.istio.io/nativeSidecar.
func TestIstioNativeSidecarAnnotationOverride(t *testing.T) {
	for _, tc := range []struct {
		name       string
		annotation string // "" = none
		native     bool
		wantInit   bool
	}{
		{"global flag enabled, no annotation", "", true, true},
		{"global flag enabled, annotation disabled", "false", true, false},
		{"global flag enabled, annotation enabled", "true", true, true},
		{"global flag disabled, annotation enabled", "true", false, true},
		{"global flag disabled, no annotation", "", false, false},
		{"global flag disabled, annotation disabled", "false", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := istioTablePod("hello", corev1.Container{Name: "app"})
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationNativeSidecar: tc.annotation}
			}
			native := tc.native
			res, err := Inject(pod, "app", config.Default(), Options{NativeSidecars: &native})
			if err != nil {
				t.Fatal(err)
			}
			inInit := template.FindContainer(ProxyContainerName, res.Pod.Spec.InitContainers) != nil
			inContainers := template.FindContainer(ProxyContainerName, res.Pod.Spec.Containers) != nil
			if inInit != tc.wantInit || inContainers == tc.wantInit {
				t.Fatalf("istio-proxy in initContainers %v, in containers %v; want initContainers %v", inInit, inContainers, tc.wantInit)
			}
		})
	}
}

// TestIstioShouldRewriteAppHTTPProbers is Istio's app_probe_test.go
// TestShouldRewriteAppHTTPProbers (ShouldRewriteAppHTTPProbers: the
// annotation, when set, decides; else the values'
// sidecarInjectorWebhook.rewriteAppHTTPProbe) through Inject: an httpGet
// probe is rewritten exactly when the verdict is true. Istio's rows with nil
// and with empty annotations are the same input here.
func TestIstioShouldRewriteAppHTTPProbers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		specSetting bool
		annotation  string // "" = none
		want        bool
	}{
		{"RewriteAppHTTPProbe-set-in-annotations (none, spec false)", false, "", false},
		{"RewriteAppHTTPProbe-set-in-annotations (none, spec true)", true, "", true},
		{"RewriteAppHTTPProbe-set-in-annotations (true, spec false)", false, "true", true},
		{"RewriteAppHTTPProbe-set-in-sidecar-injection-spec-&-annotations (true, true)", true, "true", true},
		{"RewriteAppHTTPProbe-set-in-annotations (false, spec false)", false, "false", false},
		{"RewriteAppHTTPProbe-set-in-sidecar-injection-spec-&-annotations (false, spec true)", true, "false", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := istioTableConfig(t, "", fmt.Sprintf(`{sidecarInjectorWebhook: {rewriteAppHTTPProbe: %v}}`, tc.specSetting))
			pod := istioTablePod("hello", corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/live", Port: intstr.FromInt32(8080)}}}})
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationRewriteProbes: tc.annotation}
			}
			res, err := Inject(pod, "app", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := res.Pod.Spec.Containers[0].LivenessProbe.HTTPGet.Path == "/app-health/app/livez"
			_, recorded := istioProxyEnv(t, res.Pod, envAppProbers)
			if got != tc.want || recorded != tc.want {
				t.Fatalf("probe rewritten %v, %s set %v; want %v", got, envAppProbers, recorded, tc.want)
			}
		})
	}
}

// TestIstioDumpAppProbers is Istio's app_probe_test.go TestDumpAppGRPCProbers
// and TestDumpAppProbersForIncludedPorts (DumpAppProbers, status port 15020)
// through Inject: want is ISTIO_KUBE_APP_PROBERS as JSON, "" for Istio's
// rows whose DumpAppProbers result is empty (errorExpected: no probe or hook
// on a captured port, so no env var). Rows left out: "startup probe with
// includeInboundPorts annotation and one of the ports in the list" sets two
// handlers (grpc and httpGet) on one probe, which the API server rejects and
// meshguard denies (TestInjectRejectsBadContainers); the
// TestDumpAppProbersForIncludedPorts rows equal to TestDumpAppGRPCProbers'
// (the first three) are run once.
func TestIstioDumpAppProbers(t *testing.T) {
	svc := "foo"
	grpc := func(port int32, service *string) corev1.ProbeHandler {
		return corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port, Service: service}}
	}
	httpGet := func(path string, port intstr.IntOrString, scheme corev1.URIScheme) *corev1.HTTPGetAction {
		return &corev1.HTTPGetAction{Path: path, Port: port, Scheme: scheme}
	}
	ports := func(ps ...int32) []corev1.ContainerPort {
		var out []corev1.ContainerPort
		for _, p := range ps {
			out = append(out, corev1.ContainerPort{ContainerPort: p})
		}
		return out
	}
	grpcPort := []corev1.ContainerPort{{Name: "grpc", ContainerPort: 1234, Protocol: corev1.ProtocolTCP}}
	for _, tc := range []struct {
		name  string
		annos map[string]string
		c     corev1.Container
		want  string
	}{
		{name: "simple gRPC liveness probe",
			c:    corev1.Container{Name: "foo", Ports: ports(1234), LivenessProbe: &corev1.Probe{ProbeHandler: grpc(1234, nil)}},
			want: `{"/app-health/foo/livez":{"grpc":{"port":1234,"service":null}}}`},
		{name: "gRPC readiness probe with service",
			c:    corev1.Container{Name: "bar", Ports: ports(1234), ReadinessProbe: &corev1.Probe{ProbeHandler: grpc(1234, &svc)}},
			want: `{"/app-health/bar/readyz":{"grpc":{"port":1234,"service":"foo"}}}`},
		{name: "gRPC startup probe with service and timeout including a http lifecycle handler",
			c: corev1.Container{Name: "foo", Ports: ports(1234), StartupProbe: &corev1.Probe{ProbeHandler: grpc(1234, &svc), TimeoutSeconds: 10},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/foo", Port: intstr.FromInt32(1234), Host: "foo", Scheme: "HTTP"}}}},
			want: `{"/app-health/foo/startupz":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10},` +
				`"/app-lifecycle/foo/prestopz":{"httpGet":{"path":"/foo","port":1234,"host":"foo","scheme":"HTTP"}}}`},
		{name: "startup probe with includeInboundPorts annotation", annos: map[string]string{AnnotationIncludeInboundPorts: "1234"},
			c:    corev1.Container{Name: "foo", Ports: grpcPort, StartupProbe: &corev1.Probe{ProbeHandler: grpc(1234, &svc), TimeoutSeconds: 10}},
			want: `{"/app-health/foo/startupz":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10}}`},
		{name: "startup probe with excludeInboundPorts annotation", annos: map[string]string{AnnotationExcludeInboundPorts: "1234"},
			c:    corev1.Container{Name: "foo", Ports: grpcPort, StartupProbe: &corev1.Probe{ProbeHandler: grpc(1234, &svc), TimeoutSeconds: 10}},
			want: ""},
		{name: "http, grpc, and tcp probes on different ports",
			c: corev1.Container{Name: "multi-probe-container", Ports: ports(8080, 9090, 7070),
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/health", intstr.FromInt32(8080), "")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: grpc(9090, nil)},
				StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(7070)}}}},
			want: `{"/app-health/multi-probe-container/livez":{"httpGet":{"path":"/health","port":8080}},` +
				`"/app-health/multi-probe-container/readyz":{"grpc":{"port":9090,"service":null}},` +
				`"/app-health/multi-probe-container/startupz":{"tcpSocket":{"port":7070}}}`},
		{name: "http liveness probe on excluded port", annos: map[string]string{AnnotationExcludeInboundPorts: "8080"},
			c:    corev1.Container{Name: "excluded-port-container", Ports: ports(8080), LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/health", intstr.FromInt32(8080), "")}}},
			want: ""},
		{name: "http liveness probe on excluded port and readinessProbe on included port",
			annos: map[string]string{AnnotationExcludeInboundPorts: "8080", AnnotationIncludeInboundPorts: "7070"},
			c: corev1.Container{Name: "excluded-port-container", Ports: ports(8080),
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/health", intstr.FromInt32(8080), "")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/health", intstr.FromInt32(7070), "")}}},
			want: `{"/app-health/excluded-port-container/readyz":{"httpGet":{"path":"/health","port":7070}}}`},
		{name: "liveness and readiness probes on different http ports with one included", annos: map[string]string{AnnotationIncludeInboundPorts: "8080"},
			c: corev1.Container{Name: "partial-included-ports", Ports: ports(8080, 9090),
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/liveness", intstr.FromInt32(8080), "")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/readiness", intstr.FromInt32(9090), "")}}},
			want: `{"/app-health/partial-included-ports/livez":{"httpGet":{"path":"/liveness","port":8080}}}`},
		{name: "preStop lifecycle hook with HTTP handler",
			c:    corev1.Container{Name: "prestop-http-container", Ports: ports(8080), Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: httpGet("/shutdown", intstr.FromInt32(8080), "HTTP")}}},
			want: `{"/app-lifecycle/prestop-http-container/prestopz":{"httpGet":{"path":"/shutdown","port":8080,"scheme":"HTTP"}}}`},
		{name: "postStart lifecycle hook with HTTP handler",
			c:    corev1.Container{Name: "poststart-http-container", Ports: ports(8080), Lifecycle: &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{HTTPGet: httpGet("/startup", intstr.FromInt32(8080), "HTTP")}}},
			want: `{"/app-lifecycle/poststart-http-container/poststartz":{"httpGet":{"path":"/startup","port":8080,"scheme":"HTTP"}}}`},
		{name: "both preStop and postStart lifecycle hooks",
			c: corev1.Container{Name: "lifecycle-hooks-container", Ports: ports(8080, 9090), Lifecycle: &corev1.Lifecycle{
				PreStop:   &corev1.LifecycleHandler{HTTPGet: httpGet("/shutdown", intstr.FromInt32(8080), "HTTP")},
				PostStart: &corev1.LifecycleHandler{HTTPGet: httpGet("/startup", intstr.FromInt32(9090), "HTTP")}}},
			want: `{"/app-lifecycle/lifecycle-hooks-container/poststartz":{"httpGet":{"path":"/startup","port":9090,"scheme":"HTTP"}},` +
				`"/app-lifecycle/lifecycle-hooks-container/prestopz":{"httpGet":{"path":"/shutdown","port":8080,"scheme":"HTTP"}}}`},
		{name: "preStop with TCP handler",
			c:    corev1.Container{Name: "prestop-tcp-container", Ports: ports(8080), Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}},
			want: `{"/app-lifecycle/prestop-tcp-container/prestopz":{"tcpSocket":{"port":8080}}}`},
		{name: "lifecycle hooks with excluded ports", annos: map[string]string{AnnotationExcludeInboundPorts: "8080"},
			c:    corev1.Container{Name: "excluded-lifecycle-container", Ports: ports(8080), Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: httpGet("/shutdown", intstr.FromInt32(8080), "HTTP")}}},
			want: ""},
		{name: "probes and lifecycle hooks on different ports",
			c: corev1.Container{Name: "multi-handler-container", Ports: ports(8080, 9090, 7070, 6060),
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: httpGet("/health", intstr.FromInt32(8080), "")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: grpc(9090, nil)},
				Lifecycle: &corev1.Lifecycle{
					PreStop:   &corev1.LifecycleHandler{HTTPGet: httpGet("/shutdown", intstr.FromInt32(7070), "HTTP")},
					PostStart: &corev1.LifecycleHandler{HTTPGet: httpGet("/startup", intstr.FromInt32(6060), "HTTP")}}},
			want: `{"/app-health/multi-handler-container/livez":{"httpGet":{"path":"/health","port":8080}},` +
				`"/app-health/multi-handler-container/readyz":{"grpc":{"port":9090,"service":null}},` +
				`"/app-lifecycle/multi-handler-container/poststartz":{"httpGet":{"path":"/startup","port":6060,"scheme":"HTTP"}},` +
				`"/app-lifecycle/multi-handler-container/prestopz":{"httpGet":{"path":"/shutdown","port":7070,"scheme":"HTTP"}}}`},
		{name: "lifecycle hooks with string port",
			c: corev1.Container{Name: "string-port-container", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: httpGet("/shutdown", intstr.FromString("8080"), "HTTP")}}},
			want: `{"/app-lifecycle/string-port-container/prestopz":{"httpGet":{"path":"/shutdown","port":8080,"scheme":"HTTP"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := istioTablePod("p", tc.c)
			pod.Annotations = tc.annos
			res, err := Inject(pod, "app", config.Default(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := istioProxyEnv(t, res.Pod, envAppProbers)
			if tc.want == "" {
				if ok {
					t.Fatalf("%s = %s, want unset", envAppProbers, got)
				}
				return
			}
			if !ok || !jsonEqual(got, tc.want) {
				t.Fatalf("%s = %s (set %v)\nwant %s", envAppProbers, got, ok, tc.want)
			}
		})
	}
}

// TestIstioPatchRewriteProbe is Istio's app_probe_test.go TestPatchRewriteProbe
// (patchRewriteProbe, status port 15020) through Inject: gRPC probes become
// httpGet probes on the status port at /app-health/<container>/<kind>,
// keeping their timings; a pod without probes keeps its container as is.
func TestIstioPatchRewriteProbe(t *testing.T) {
	svc := "foo"
	status := intstr.FromInt32(15020)
	rewritten := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: status}}
	}
	grpc := func(port int32, service *string) corev1.ProbeHandler {
		return corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port, Service: service}}
	}
	for _, tc := range []struct {
		name     string
		in, want []corev1.Container
	}{
		{name: "pod with no probes",
			in:   []corev1.Container{{Name: "foo"}},
			want: []corev1.Container{{Name: "foo"}}},
		{name: "pod with a gRPC liveness probe",
			in:   []corev1.Container{{Name: "foo", LivenessProbe: &corev1.Probe{ProbeHandler: grpc(1234, nil)}}},
			want: []corev1.Container{{Name: "foo", LivenessProbe: &corev1.Probe{ProbeHandler: rewritten("/app-health/foo/livez")}}}},
		{name: "pod with gRPC liveness,readiness,startup probes",
			in: []corev1.Container{
				{Name: "foo", LivenessProbe: &corev1.Probe{ProbeHandler: grpc(1234, &svc)}, ReadinessProbe: &corev1.Probe{ProbeHandler: grpc(1235, &svc), TimeoutSeconds: 10}},
				{Name: "bar", StartupProbe: &corev1.Probe{ProbeHandler: grpc(1236, nil), TimeoutSeconds: 20, PeriodSeconds: 10, InitialDelaySeconds: 10}}},
			want: []corev1.Container{
				{Name: "foo", LivenessProbe: &corev1.Probe{ProbeHandler: rewritten("/app-health/foo/livez")}, ReadinessProbe: &corev1.Probe{ProbeHandler: rewritten("/app-health/foo/readyz"), TimeoutSeconds: 10}},
				{Name: "bar", StartupProbe: &corev1.Probe{ProbeHandler: rewritten("/app-health/bar/startupz"), TimeoutSeconds: 20, PeriodSeconds: 10, InitialDelaySeconds: 10}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Inject(istioTablePod("p", tc.in...), "app", config.Default(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				got := *template.FindContainer(want.Name, res.Pod.Spec.Containers)
				if !reflect.DeepEqual(got.LivenessProbe, want.LivenessProbe) || !reflect.DeepEqual(got.ReadinessProbe, want.ReadinessProbe) ||
					!reflect.DeepEqual(got.StartupProbe, want.StartupProbe) {
					t.Errorf("container %d %s: probes\n live %+v\n ready %+v\n start %+v\nwant\n live %+v\n ready %+v\n start %+v", i, want.Name,
						got.LivenessProbe, got.ReadinessProbe, got.StartupProbe, want.LivenessProbe, want.ReadinessProbe, want.StartupProbe)
				}
			}
		})
	}
}

// TestIstioGetIncludedPorts is Istio's app_probe_test.go TestGetIncludedPorts
// (getIncludedPorts: which container ports the probe rewriting treats as
// captured) through Inject: a container with an httpGet liveness probe on
// each of its ports; want lists the ports whose probe is rewritten. Rows
// left out: "includeInboundPorts with invalid port" and "excludeInboundPorts
// with invalid port" ("8080,invalid"): Istio's validateAnnotations denies
// the pod before probes are rewritten, as meshguard does
// (TestParseAnnotationsIstioRules).
func TestIstioGetIncludedPorts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		annos map[string]string
		ports [][]int32 // per container
		want  []int32
	}{
		{name: "nil annotations - should include all ports", ports: [][]int32{{8080, 9090}}, want: []int32{8080, 9090}},
		{name: "empty annotations - should include all ports", annos: map[string]string{}, ports: [][]int32{{8080, 9090}}, want: []int32{8080, 9090}},
		{name: "includeInboundPorts with * - should include all ports", annos: map[string]string{AnnotationIncludeInboundPorts: "*"}, ports: [][]int32{{8080, 9090}}, want: []int32{8080, 9090}},
		{name: "includeInboundPorts with specific ports", annos: map[string]string{AnnotationIncludeInboundPorts: "8080,9091"}, ports: [][]int32{{8080, 9090}}, want: []int32{8080}},
		{name: "excludeInboundPorts with specific ports", annos: map[string]string{AnnotationExcludeInboundPorts: "9090"}, ports: [][]int32{{8080, 9090}}, want: []int32{8080}},
		{name: "both include and exclude annotations - include takes precedence",
			annos: map[string]string{AnnotationIncludeInboundPorts: "8080", AnnotationExcludeInboundPorts: "8080"}, ports: [][]int32{{8080, 9090}}, want: []int32{8080}},
		{name: "empty includeInboundPorts - should include all ports", annos: map[string]string{AnnotationIncludeInboundPorts: ""}, ports: [][]int32{{8080, 9090}}, want: []int32{8080, 9090}},
		{name: "multiple containers with ports", ports: [][]int32{{8080}, {9090}}, want: []int32{8080, 9090}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs []corev1.Container
			for i, ps := range tc.ports {
				c := corev1.Container{Name: fmt.Sprintf("c%d", i)}
				for _, p := range ps {
					c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p})
				}
				cs = append(cs, c)
			}
			// One probe per port: liveness on the first, readiness on the second.
			for i := range cs {
				for j, p := range cs[i].Ports {
					pr := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/h", Port: intstr.FromInt32(p.ContainerPort)}}}
					if j == 0 {
						cs[i].LivenessProbe = pr
					} else {
						cs[i].ReadinessProbe = pr
					}
				}
			}
			pod := istioTablePod("p", cs...)
			pod.Annotations = tc.annos
			res, err := Inject(pod, "app", config.Default(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for i, c := range tc.ports {
				out := template.FindContainer(fmt.Sprintf("c%d", i), res.Pod.Spec.Containers)
				for j, p := range c {
					pr := out.LivenessProbe
					if j > 0 {
						pr = out.ReadinessProbe
					}
					if pr.HTTPGet.Port.IntValue() == 15020 {
						got = append(got, p)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("probes rewritten on ports %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIstioEnablePrometheusAggregation is Istio's webhook_test.go
// TestEnablePrometheusAggregation (enablePrometheusMerge: the pod's
// prometheus.istio.io/merge-metrics, else the mesh's enablePrometheusMerge,
// default on) through Inject: the merge writes prometheus.io/scrape.
func TestIstioEnablePrometheusAggregation(t *testing.T) {
	for _, tc := range []struct {
		name, mesh, anno string
		want             bool
	}{
		{"no settings", "", "", true},
		{"mesh on", "enablePrometheusMerge: true", "", true},
		{"mesh off", "enablePrometheusMerge: false", "", false},
		{"annotation on", "enablePrometheusMerge: false", "true", true},
		{"annotation off", "enablePrometheusMerge: true", "false", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := istioTablePod("hello", corev1.Container{Name: "hello"})
			if tc.anno != "" {
				pod.Annotations = map[string]string{AnnotationMergeMetrics: tc.anno}
			}
			res, err := Inject(pod, "app", istioTableConfig(t, tc.mesh, ""), Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, merged := res.Pod.Annotations[AnnotationPromScrape]
			if merged != tc.want {
				t.Fatalf("merged (prometheus.io/scrape set) %v, want %v: %v", merged, tc.want, res.Pod.Annotations)
			}
		})
	}
}

// TestIstioStrategicMerge is Istio's inject_test.go TestStrategicMerge
// (testInjectionTemplate): a template's strategic-merge directives apply
// when it is merged onto the pod; `$patch: replace` on the labels replaces
// the pod's labels with the template's. Istio's expected pod: labels
// {foo: bar}, containers [injected, hello], the Prometheus merge
// annotations (its empty mesh config has status port 0, so its
// prometheus.io/port is "0"; here the mesh has the default 15020).
func TestIstioStrategicMerge(t *testing.T) {
	cfg, err := config.Inputs{Config: []byte(`
policy: enabled
defaultTemplates: [sidecar]
templates:
  sidecar: |
    metadata:
      labels:
        $patch: replace
        foo: bar
    spec:
      containers:
      - name: injected
        image: "fake.docker.io/google-samples/hello-go-gke:1.1"
`), Values: []byte("{}")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	pod := istioTablePod("hello", corev1.Container{Name: "hello", Image: "fake.docker.io/google-samples/hello-go-gke:1.0"})
	pod.Labels = map[string]string{"key": "value"}
	res, err := Inject(pod, "app", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Pod.Labels, map[string]string{"foo": "bar"}) {
		t.Errorf("labels %v, want only foo: bar", res.Pod.Labels)
	}
	var names []string
	for _, c := range res.Pod.Spec.Containers {
		names = append(names, c.Name+"="+c.Image)
	}
	if want := []string{"injected=fake.docker.io/google-samples/hello-go-gke:1.1", "hello=fake.docker.io/google-samples/hello-go-gke:1.0"}; !reflect.DeepEqual(names, want) {
		t.Errorf("containers %v, want %v", names, want)
	}
	for k, v := range map[string]string{AnnotationPromPath: "/stats/prometheus", AnnotationPromPort: "15020", AnnotationPromScrape: "true"} {
		if res.Pod.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, res.Pod.Annotations[k], v)
		}
	}
}

// istioInjectedPod is an already injected pod: status lists what the
// previous injection added; proxyEnv is the old istio-proxy's env.
func istioInjectedPod(status string, proxyEnv []corev1.EnvVar, app ...corev1.Container) *corev1.Pod {
	pod := istioTablePod("p", append(app, corev1.Container{Name: ProxyContainerName, Image: "auto", Env: proxyEnv})...)
	pod.Annotations = map[string]string{AnnotationStatus: status}
	return pod
}

// TestIstioMergeOrAppendProbers is Istio's webhook_test.go
// TestMergeOrAppendProbers (mergeOrAppendProbers) through Inject: on a
// pod injected before, the probers of the previous injection
// (ISTIO_KUBE_APP_PROBERS of the old istio-proxy) are merged with the new
// ones; without a previous injection the new ones are set. The rows' other
// env vars (TEST_ENV_VAR1/2 on the old istio-proxy) and their positions are
// not compared: meshguard re-renders the proxy instead of re-applying the
// old one as an override (docs/compatibility.md, merge-probers).
func TestIstioMergeOrAppendProbers(t *testing.T) {
	const status = `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"default"}`
	const foo = `{"/app-health/foo/livez":{"httpGet":{"path":"/","port":8000,"scheme":"HTTP"}}}`
	bar := corev1.Container{Name: "bar", Ports: []corev1.ContainerPort{{ContainerPort: 9000}},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(9000), Scheme: "HTTP"}}}}
	fooApp := corev1.Container{Name: "foo", Ports: []corev1.ContainerPort{{ContainerPort: 8000}},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8000), Scheme: "HTTP"}}}}
	others := []corev1.EnvVar{{Name: "TEST_ENV_VAR1", Value: "value1"}, {Name: "TEST_ENV_VAR2", Value: "value2"}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"Append Prober", istioTablePod("p", bar, fooApp),
			`{"/app-health/bar/livez":{"httpGet":{"path":"/","port":9000,"scheme":"HTTP"}},"/app-health/foo/livez":{"httpGet":{"path":"/","port":8000,"scheme":"HTTP"}}}`},
		{"Merge Prober", istioInjectedPod(status, append([]corev1.EnvVar{others[0], {Name: envAppProbers, Value: foo}}, others[1]), bar),
			`{"/app-health/bar/livez":{"httpGet":{"path":"/","port":9000,"scheme":"HTTP"}},"/app-health/foo/livez":{"httpGet":{"path":"/","port":8000,"scheme":"HTTP"}}}`},
		{"Merge Prober with absent of KubeAppProberEnv", istioInjectedPod(status, others, bar),
			`{"/app-health/bar/livez":{"httpGet":{"path":"/","port":9000,"scheme":"HTTP"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Inject(tc.pod, "app", config.Default(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var values []string
			for _, e := range template.FindSidecar(res.Pod).Env {
				if e.Name == envAppProbers {
					values = append(values, e.Value)
				}
			}
			if len(values) != 1 || !jsonEqual(values[0], tc.want) {
				t.Fatalf("%s = %q, want one value %s", envAppProbers, values, tc.want)
			}
		})
	}
}

// TestIstioParseStatus is Istio's webhook_test.go TestParseStatus
// (parseStatus: the containers and init containers a previous injection
// added, from sidecar.istio.io/status) through Inject: re-injecting removes
// the containers the status lists (Istio's stripPod) and injects afresh;
// others stay. "Empty String" (no status) removes nothing. The pod declares
// istio-init and istio-validation; where the status does not list them they
// are the pod's own: istio-init is merged over the injected one (Istio's
// reapplyOverwrittenContainers) and istio-validation, which is not injected without
// CNI, stays as the pod's container, first as Istio's reorderPod puts it.
func TestIstioParseStatus(t *testing.T) {
	const vols = `"volumes":["workload-socket","istio-token","istiod-ca-cert"]`
	for _, tc := range []struct {
		name, status   string
		wantContainers []string
		wantInit       []string
	}{
		{"Regular Containers only", `{"containers":["istio-proxy", "random-container"],` + vols + `}`,
			[]string{"app", "istio-proxy"}, []string{"istio-validation", "istio-init"}},
		{"Init Containers only", `{"initContainers":["istio-init", "istio-validation"],` + vols + `}`,
			[]string{"app", "random-container", "istio-proxy"}, []string{"istio-init"}},
		{"All Containers", `{"containers":["istio-proxy", "random-container"],"initContainers":["istio-init", "istio-validation"],` + vols + `}`,
			[]string{"app", "istio-proxy"}, []string{"istio-init"}},
		{"Containers is null", `{"containers":null,"initContainers":["istio-init", "istio-validation"],` + vols + `}`,
			[]string{"app", "random-container", "istio-proxy"}, []string{"istio-init"}},
		{"Empty String", "",
			[]string{"app", "random-container", "istio-proxy"}, []string{"istio-validation", "istio-init"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := istioTablePod("p", corev1.Container{Name: "app"}, corev1.Container{Name: "random-container"})
			pod.Spec.InitContainers = []corev1.Container{{Name: "istio-init", Image: "auto"}, {Name: "istio-validation", Image: "example.com/v:1"}}
			if tc.status != "" {
				pod.Annotations = map[string]string{AnnotationStatus: tc.status}
			}
			native := false
			res, err := Inject(pod, "app", config.Default(), Options{NativeSidecars: &native})
			if err != nil {
				t.Fatal(err)
			}
			names := func(cs []corev1.Container) []string {
				var out []string
				for _, c := range cs {
					out = append(out, c.Name)
				}
				return out
			}
			if got := names(res.Pod.Spec.Containers); !reflect.DeepEqual(got, tc.wantContainers) {
				t.Errorf("containers %v, want %v", got, tc.wantContainers)
			}
			if got := names(res.Pod.Spec.InitContainers); !reflect.DeepEqual(got, tc.wantInit) {
				t.Errorf("init containers %v, want %v", got, tc.wantInit)
			}
			if v := template.FindContainer(ValidationContainerName, res.Pod.Spec.InitContainers); v != nil && v.Image != "example.com/v:1" {
				t.Errorf("istio-validation image %s, want the pod's own example.com/v:1", v.Image)
			}
			if strings.Contains(res.Pod.Annotations[AnnotationOverrides], ValidationContainerName) {
				t.Errorf("%s = %s records istio-validation, which is not injected", AnnotationOverrides, res.Pod.Annotations[AnnotationOverrides])
			}
		})
	}
}

// TestIstioReapplyOverridesOnlyInjected: Istio's reapplyOverwrittenContainers
// (pkg/kube/inject/webhook.go) merges a container the pod declares over the
// injected one of the same name only when the templates inject that name;
// otherwise it stays the pod's own container (kept in place, then ordered by
// reorderPod), with no warning. Before, the typed injector dropped it with a
// warning.
func TestIstioReapplyOverridesOnlyInjected(t *testing.T) {
	userInit := corev1.Container{Name: InitContainerName, Image: "example.com/own-init:1"}
	for _, tc := range []struct {
		name, mesh, values string
		annos              map[string]string
		wantInit           []string
	}{
		{name: "istio-init with CNI (istio-validation injected)", values: `{pilot: {cni: {enabled: true}}}`,
			wantInit: []string{ValidationContainerName, "setup", InitContainerName}},
		{name: "istio-init in mode NONE (no init container injected)", annos: map[string]string{AnnotationInterceptionMode: "NONE"},
			wantInit: []string{"setup", InitContainerName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := istioTablePod("p", corev1.Container{Name: "app"})
			pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "example.com/setup:1"}, userInit}
			pod.Annotations = tc.annos
			native := false
			// The typed injector and the generic renderer (Istio's templates) alike.
			for path, run := range typedAndGeneric {
				cfg, err := config.Inputs{Mesh: []byte(tc.mesh), Values: []byte(tc.values)}.Load()
				if err != nil {
					t.Fatal(err)
				}
				res, err := run(pod.DeepCopy(), "app", cfg, Options{NativeSidecars: &native})
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if got := containerNames(res.Pod.Spec.InitContainers); !reflect.DeepEqual(got, tc.wantInit) {
					t.Fatalf("%s: init containers %v, want %v", path, got, tc.wantInit)
				}
				if c := template.FindContainer(InitContainerName, res.Pod.Spec.InitContainers); !reflect.DeepEqual(*c, userInit) {
					t.Errorf("%s: istio-init %+v, want the pod's own %+v unchanged", path, *c, userInit)
				}
				if _, recorded := res.Pod.Annotations[AnnotationOverrides]; recorded || len(res.Warnings) > 0 {
					t.Errorf("%s: overrides annotation %q, warnings %q; want neither", path, res.Pod.Annotations[AnnotationOverrides], res.Warnings)
				}
			}
		})
	}
}
