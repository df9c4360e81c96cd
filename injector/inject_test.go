package injector

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatchv5 "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadPod(t testing.TB, path string) *corev1.Pod {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(data, pod); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pod
}

func snapshotFor(t testing.TB, in string) *config.Snapshot {
	t.Helper()
	values, _ := os.ReadFile(strings.TrimSuffix(in, ".in.yaml") + ".values.yaml")
	mesh, _ := os.ReadFile(strings.TrimSuffix(in, ".in.yaml") + ".mesh.yaml")
	cfg, err := config.Load(mesh, values)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// applyPatch applies ops to pod's JSON, the way the API server would.
func applyPatch(t testing.TB, pod *corev1.Pod, res *Result) *corev1.Pod {
	t.Helper()
	orig, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := json.Marshal(res.Patch)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatchv5.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := p.Apply(orig)
	if err != nil {
		t.Fatalf("applying patch: %v\n%s", err, ops)
	}
	out := &corev1.Pod{}
	if err := json.Unmarshal(patched, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGolden injects every testdata/golden/*.in.yaml and compares the full
// resulting pod (obtained by applying the patch) with *.golden.yaml.
func TestGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/golden/*.in.yaml")
	if len(ins) < 4 {
		t.Fatalf("expected golden inputs, found %d", len(ins))
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			pod := loadPod(t, in)
			cfg := snapshotFor(t, in)
			res, err := Inject(pod, pod.Namespace, cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := applyPatch(t, pod, res)
			if !equality.Semantic.DeepEqual(got, res.Pod) {
				a, _ := yaml.Marshal(got)
				b, _ := yaml.Marshal(res.Pod)
				t.Fatalf("patched pod differs from Result.Pod:\npatched:\n%s\nresult:\n%s", a, b)
			}
			out, err := yaml.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".in.yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./injector -run TestGolden -update)", err)
			}
			if string(want) != string(out) {
				t.Errorf("%s mismatch; got:\n%s", golden, out)
			}

			// Idempotence: injecting the injected pod again changes nothing.
			res2, err := Inject(got, pod.Namespace, cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res2.Patch) != 0 {
				b, _ := json.Marshal(res2.Patch)
				t.Errorf("re-injection produced %d ops: %s", len(res2.Patch), b)
			}
		})
	}
}

func TestInjectDoesNotModifyInput(t *testing.T) {
	pod := loadPod(t, "testdata/golden/native-probes.in.yaml")
	before := pod.DeepCopy()
	if _, err := Inject(pod, "shop", config.Default(), Options{}); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(before, pod) {
		t.Fatal("Inject modified its input pod")
	}
}

func TestInjectInvalidAnnotations(t *testing.T) {
	cases := []struct {
		anno, value, wantInErr string
	}{
		{AnnotationIncludeOutboundIPs, "10.0.0.0/33", "includeOutboundIPRanges"},
		{AnnotationExcludeOutboundIPs, "*", "excludeOutboundIPRanges"},
		{AnnotationIncludeInboundPorts, "http", "includeInboundPorts"},
		{AnnotationExcludeInboundPorts, "70000", "excludeInboundPorts"},
		{AnnotationExcludeOutboundPorts, "-1", "excludeOutboundPorts"},
		{AnnotationInterceptionMode, "MAGIC", "interceptionMode"},
		{AnnotationStatusPort, "x", "status.sidecar.istio.io/port"},
		{AnnotationReadinessPeriod, "-5", "periodSeconds"},
		{AnnotationProxyCPU, "lots", "proxyCPU"},
		{AnnotationProxyMemoryLimit, "1Gi\n", "proxyMemoryLimit"},
		{AnnotationMergeMetrics, "maybe", "merge-metrics"},
		{AnnotationProxyConfig, "concurrency: [", "proxy.istio.io/config"},
		{AnnotationInjectTemplates, "grpc-agent", "inject.istio.io/templates"},
		{AnnotationInjectTemplates, "sidecar, gateway", "inject.istio.io/templates"},
		{AnnotationPromPort, "15090", "prometheus.io/port"},
		{AnnotationPromPort, "http", "prometheus.io/port"},
		{AnnotationUserVolume, "{", "userVolume"},
	}
	for _, tc := range cases {
		t.Run(tc.anno+"="+tc.value, func(t *testing.T) {
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			pod.Annotations = map[string]string{tc.anno: tc.value}
			_, err := Inject(pod, "app", config.Default(), Options{})
			if err == nil {
				t.Fatal("expected an error")
			}
			if !strings.Contains(err.Error(), tc.wantInErr) || !strings.Contains(err.Error(), "app/hello") {
				t.Fatalf("error %q should name %q and the pod", err, tc.wantInErr)
			}
		})
	}
}

func TestInjectRejectsBadContainers(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: ProxyContainerName}, corev1.Container{Name: ProxyContainerName})
	_, err := Inject(pod, "app", config.Default(), Options{})
	if err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("duplicate istio-proxy: %v", err)
	}
	empty := loadPod(t, "testdata/golden/plain.in.yaml")
	empty.Spec.Containers = nil
	if _, err := Inject(empty, "app", config.Default(), Options{}); err == nil || !strings.Contains(err.Error(), "spec.containers") {
		t.Fatalf("pod without containers: %v", err)
	}
}

func TestInjectWarnings(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	pod.Annotations = map[string]string{AnnotationNativeSidecar: "sometimes", AnnotationRewriteProbes: "perhaps"}
	pod.Spec.DNSPolicy = corev1.DNSDefault
	res, err := Inject(pod, "app", config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Warnings, "\n")
	for _, want := range []string{AnnotationNativeSidecar, AnnotationRewriteProbes, "dnsPolicy"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings %q lack %q", all, want)
		}
	}
}

func TestInitArgsDefaults(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	res, err := Inject(pod, "app", config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Pod.Spec.InitContainers[0].Args, " ")
	want := "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i * -x  -b * -d 15090,15021,15020 --log_output_level=default:info"
	if got != want {
		t.Fatalf("istio-init args:\n got %q\nwant %q", got, want)
	}
	if n := res.Pod.Spec.Containers[len(res.Pod.Spec.Containers)-1].Name; n != ProxyContainerName {
		t.Fatalf("last container is %q, want istio-proxy", n)
	}
}

// Interception mode NONE injects neither istio-init nor, with CNI,
// istio-validation (Istio's sidecar template: the init container only
// `if ne (annotation … interceptionMode …) "NONE"`); a native istio-proxy is
// then the only injected init container.
func TestInterceptionNoneHasNoInit(t *testing.T) {
	for _, c := range []struct {
		values string
		want   string // init containers
	}{
		{`{}`, ""},
		{`{"pilot":{"cni":{"enabled":true}}}`, ""},
		{`{"global":{"nativeSidecars":true}}`, ProxyContainerName},
		{`{"global":{"nativeSidecars":true},"pilot":{"cni":{"enabled":true}}}`, ProxyContainerName},
	} {
		cfg, err := config.Load(nil, []byte(c.values))
		if err != nil {
			t.Fatal(err)
		}
		for _, annos := range []map[string]string{{AnnotationInterceptionMode: "NONE"}, {AnnotationProxyConfig: "interceptionMode: NONE"}} {
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			pod.Annotations = annos
			res, err := Inject(pod, "app", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(res.Pod.Spec.InitContainers); got != c.want {
				t.Errorf("values %s, %v: init containers %q, want %q", c.values, annos, got, c.want)
			}
			var st Status
			if err := json.Unmarshal([]byte(res.Pod.Annotations[AnnotationStatus]), &st); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(st.InitContainers, ","); got != c.want {
				t.Errorf("values %s, %v: status initContainers %q, want %q", c.values, annos, got, c.want)
			}
		}
	}
}

func TestReinjectClassicToNative(t *testing.T) {
	pod := loadPod(t, "testdata/golden/native-probes.in.yaml")
	delete(pod.Annotations, AnnotationNativeSidecar)
	cfg := config.Default()
	classic, err := Inject(pod, "shop", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if names(classic.Pod.Spec.Containers) != "web,sidecar-log,istio-proxy" {
		t.Fatalf("classic containers %s", names(classic.Pod.Spec.Containers))
	}
	in := applyPatch(t, pod, classic)
	in.Annotations[AnnotationNativeSidecar] = "true"
	native, err := Inject(in, "shop", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := applyPatch(t, in, native)
	if names(got.Spec.Containers) != "web,sidecar-log" || names(got.Spec.InitContainers) != "istio-init,istio-proxy,migrate" {
		t.Fatalf("native re-injection: containers %s init %s", names(got.Spec.Containers), names(got.Spec.InitContainers))
	}
	// The probers recorded by the first injection survive (the app probes are already rewritten).
	var probers string
	for _, e := range got.Spec.InitContainers[1].Env {
		if e.Name == envAppProbers {
			probers = e.Value
		}
	}
	if !strings.Contains(probers, `"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTPS"}`) {
		t.Fatalf("probers lost on re-injection: %s", probers)
	}
}

func names(cs []corev1.Container) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return strings.Join(out, ",")
}

func TestInjectProxyEnvFromURL(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	res, err := Inject(pod, "app", config.Default(), Options{ProxyEnv: map[string]string{
		"ISTIO_META_NETWORK": "net-b", "ISTIO_META_CLUSTER_ID": "east", "FOO": "bar",
	}})
	if err != nil {
		t.Fatal(err)
	}
	proxy := res.Pod.Spec.Containers[len(res.Pod.Spec.Containers)-1]
	var names []string
	values := map[string]string{}
	for _, e := range proxy.Env {
		names = append(names, e.Name)
		values[e.Name] = e.Value
	}
	joined := strings.Join(names, ",")
	if strings.Count(joined, "ISTIO_META_CLUSTER_ID") != 1 || values["ISTIO_META_CLUSTER_ID"] != "east" {
		t.Fatalf("cluster id not replaced: %s", joined)
	}
	if !strings.Contains(joined, "TRUST_DOMAIN,FOO,ISTIO_META_CLUSTER_ID,ISTIO_META_NETWORK") {
		t.Fatalf("URL envs not appended in sorted order after the template envs: %s", joined)
	}
	if res.Pod.Labels[LabelNetwork] != "net-b" {
		t.Fatalf("network label %q", res.Pod.Labels[LabelNetwork])
	}
}

// TestNativeSidecarsAuto: the cluster's detected support decides only when
// neither the pod's annotation nor the values do; a detected "no" that
// decides is explained in a warning.
func TestNativeSidecarsAuto(t *testing.T) {
	yes, no := true, false
	valuesOff, err := config.Load(nil, []byte("global: {nativeSidecars: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	const note = "node n1 runs kubelet v1.32.0"
	for _, tc := range []struct {
		name       string
		cfg        *config.Snapshot
		annotation string
		detected   *bool
		wantNative bool
		wantWarn   bool
	}{
		{name: "unknown: classic", cfg: config.Default()},
		{name: "detected yes", cfg: config.Default(), detected: &yes, wantNative: true},
		{name: "detected no: warned", cfg: config.Default(), detected: &no, wantWarn: true},
		{name: "values decide over detection", cfg: valuesOff, detected: &yes},
		{name: "annotation decides over detection", cfg: config.Default(), annotation: "true", detected: &no, wantNative: true},
		{name: "annotation false, no warning", cfg: config.Default(), annotation: "false", detected: &yes},
		// Istio's template: `ne (annotation | default .NativeSidecars) "false"`.
		{name: "annotation FALSE is not false", cfg: config.Default(), annotation: "FALSE", detected: &no, wantNative: true},
		{name: "annotation yes is native", cfg: valuesOff, annotation: "yes", wantNative: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationNativeSidecar: tc.annotation}
			}
			res, err := Inject(pod, "app", tc.cfg, Options{NativeSidecars: tc.detected, NativeSidecarsNote: note})
			if err != nil {
				t.Fatal(err)
			}
			native := false
			for _, c := range res.Pod.Spec.InitContainers {
				if c.Name == ProxyContainerName {
					native = true
				}
			}
			if native != tc.wantNative {
				t.Errorf("native %v, want %v", native, tc.wantNative)
			}
			warned := strings.Contains(strings.Join(res.Warnings, "\n"), note)
			if warned != tc.wantWarn {
				t.Errorf("warnings %q: note present %v, want %v", res.Warnings, warned, tc.wantWarn)
			}
		})
	}
}

// TestReinvocationKeepsAPITokenMounts: after meshguard's first call the API
// server runs its admission plugins again, and the ServiceAccount plugin
// mounts the token into every container without a mount at its path, the
// injected ones included (plugin/pkg/admission/serviceaccount
// mountServiceAccountToken). The reinvocation must keep those mounts: no
// patch, and the pod Istio's injector (reinvocationPolicy Never) leaves.
func TestReinvocationKeepsAPITokenMounts(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	cfg, err := config.Inputs{}.Load() // Istio's stock templates, for both paths
	if err != nil {
		t.Fatal(err)
	}
	generic := forceGeneric(cfg)
	mount := corev1.VolumeMount{Name: "kube-api-access-x7k2p", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}
	for name, inject := range map[string]func(*corev1.Pod) (*Result, error){
		"typed":   func(p *corev1.Pod) (*Result, error) { return Inject(p, "shop", cfg, Options{}) },
		"generic": func(p *corev1.Pod) (*Result, error) { return Inject(p, "shop", generic, Options{}) },
	} {
		t.Run(name, func(t *testing.T) {
			first, err := inject(pod)
			if err != nil {
				t.Fatal(err)
			}
			in := applyPatch(t, pod, first)
			for _, cs := range [][]corev1.Container{in.Spec.InitContainers, in.Spec.Containers} {
				for i := range cs {
					cs[i].VolumeMounts = append(cs[i].VolumeMounts, mount)
				}
			}
			again, err := inject(in)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Patch) != 0 {
				t.Errorf("reinvocation patch: %+v", again.Patch)
			}
			for _, cs := range [][]corev1.Container{again.Pod.Spec.InitContainers, again.Pod.Spec.Containers} {
				for _, c := range cs {
					if n := len(c.VolumeMounts); n == 0 || c.VolumeMounts[n-1] != mount {
						t.Errorf("container %s lost the token mount: %+v", c.Name, c.VolumeMounts)
					}
				}
			}
		})
	}
}

// forceGeneric is cfg with its templates always rendered by the generic
// path, for tests that compare the two paths on the same settings.
func forceGeneric(cfg *config.Snapshot) *config.Snapshot {
	generic := *cfg
	tmpl := *cfg.Templates
	tmpl.AlwaysGeneric = true
	generic.Templates = &tmpl
	return &generic
}

// TestInjectedAnnotationsOverrideStatus: Istio's applyMetadata
// (pkg/kube/inject/webhook.go) writes sidecar.istio.io/status and then the
// configured injectedAnnotations, so an injected annotation of that name
// wins. Every path (typed sidecar, typed grpc-simple, generic) must agree.
func TestInjectedAnnotationsOverrideStatus(t *testing.T) {
	cfg, err := config.Inputs{Values: []byte(`{"sidecarInjectorWebhook":{"injectedAnnotations":{"sidecar.istio.io/status":"custom","x":"y"}}}`)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{"", TemplateGrpcSimple} {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		if tmpl != "" {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[AnnotationInjectTemplates] = tmpl
		}
		for name, run := range map[string]func() (*Result, error){
			"typed":   func() (*Result, error) { return inject(pod.DeepCopy(), "shop", cfg, Options{}) },
			"generic": func() (*Result, error) { return InjectGeneric(pod.DeepCopy(), "shop", cfg, Options{}) },
			"Inject":  func() (*Result, error) { return Inject(pod.DeepCopy(), "shop", cfg, Options{}) },
		} {
			res, err := run()
			if err != nil {
				t.Fatalf("%s %q: %v", name, tmpl, err)
			}
			if got := res.Pod.Annotations[AnnotationStatus]; got != "custom" || res.Pod.Annotations["x"] != "y" {
				t.Errorf("%s %q: status %q, x %q; want the injected annotations to win", name, tmpl, got, res.Pod.Annotations["x"])
			}
		}
	}
}

// TestProbersMergedWhenStatusPresent: Istio's applyRewrite
// (pkg/kube/inject/webhook.go) merges ISTIO_KUBE_APP_PROBERS into the
// sidecar's existing one whenever the pod has a sidecar.istio.io/status
// annotation, parsable or not; only without one does it append.
func TestProbersMergedWhenStatusPresent(t *testing.T) {
	cfg, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{AnnotationStatus: "not json"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "x", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/new", Port: intstr.FromInt32(8080)}}}},
			{Name: ProxyContainerName, Image: "auto", Env: []corev1.EnvVar{{Name: envAppProbers, Value: `{"/app-health/old/readyz":{"httpGet":{"path":"/old","port":9}}}`}}},
		}},
	}
	for name, run := range typedAndGeneric {
		res, err := run(pod.DeepCopy(), "shop", cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var values []string
		for _, e := range template.FindSidecar(res.Pod).Env {
			if e.Name == envAppProbers {
				values = append(values, e.Value)
			}
		}
		if len(values) != 1 || !strings.Contains(values[0], "/app-health/old/readyz") || !strings.Contains(values[0], "/app-health/app/readyz") {
			t.Errorf("%s: %s = %q; want one value with the old and the new prober", name, envAppProbers, values)
		}
	}
}

// TestTemplateSeesRequestNamespace: Istio's webhook.go inject sets the
// pod's metadata.namespace from the admission request when the object has
// none, before the templates see .ObjectMeta.
func TestTemplateSeesRequestNamespace(t *testing.T) {
	cfg, err := config.Inputs{Config: []byte(`
defaultTemplates: [ns]
templates:
  ns: |
    metadata:
      annotations:
        seen: "{{ .ObjectMeta.Namespace }}/{{ .DeploymentMeta.Namespace }}"
`)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for podNS, want := range map[string]string{"": "shop/shop", "shop": "shop/shop"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: podNS, Annotations: map[string]string{AnnotationInjectTemplates: "ns"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}},
		}
		res, err := Inject(pod, "shop", cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Pod.Annotations["seen"]; got != want {
			t.Errorf("pod namespace %q: template saw %q, want %q", podNS, got, want)
		}
		for _, op := range res.Patch {
			if strings.HasPrefix(op.Path, "/metadata/namespace") {
				t.Errorf("pod namespace %q: patch changes the namespace: %+v", podNS, op)
			}
		}
	}
}

// TestOpenTelemetryProviderInjects: Istio's otelResourceAttributes
// (pkg/kube/inject/template.go), called by the stock sidecar template,
// returns "" unless an OpenTelemetry provider asks for
// OTEL_SEMANTIC_CONVENTIONS, and then computes OTEL_RESOURCE_ATTRIBUTES
// from the pod; a mesh with an OpenTelemetry tracing provider must inject.
func TestOpenTelemetryProviderInjects(t *testing.T) {
	for _, c := range []struct{ mesh, want string }{
		{`extensionProviders: [{name: otel, opentelemetry: {service: otel.istio-system.svc.cluster.local, port: 4317}}]`, ""},
		{`extensionProviders: [{name: otel, opentelemetry: {service: otel.istio-system.svc.cluster.local, port: 4317, serviceAttributeEnrichment: OTEL_SEMANTIC_CONVENTIONS}}]`,
			"service.namespace=shop,service.version=v1,service.instance.id=shop.$(POD_NAME).hello"},
	} {
		cfg, err := config.Inputs{Mesh: []byte(c.mesh)}.Load()
		if err != nil {
			t.Fatal(err)
		}
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		pod.Labels["app.kubernetes.io/version"] = "v1"
		res, err := Inject(pod, "shop", cfg, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.mesh, err)
		}
		got := ""
		for _, e := range template.FindSidecar(res.Pod).Env {
			if e.Name == "OTEL_RESOURCE_ATTRIBUTES" {
				got = e.Value
			}
		}
		if got != c.want {
			t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES %q, want %q", c.mesh, got, c.want)
		}
	}
}

// TestStatusJSON checks Status.JSON byte for byte against encoding/json,
// whose output the annotation had before (null for nil lists, [] for empty
// ones, encoding/json's escaping).
func TestStatusJSON(t *testing.T) {
	for _, st := range []Status{
		{},
		{InitContainers: []string{}, Containers: []string{}, Volumes: []string{}, ImagePullSecrets: []string{}},
		{InitContainers: []string{"istio-init"}, Containers: []string{ProxyContainerName}, Volumes: []string{"workload-socket", "istio-envoy"}, Revision: "default"},
		{Volumes: []string{"<a&b>", "\u2028\u2029", "quote\"back\\slash", "\t\n\r\b\f\x00\x1f", "bad\xffutf8", "ünï"}, ImagePullSecrets: []string{"s"}, Revision: "canary<1>"},
	} {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.JSON(); got != string(want) {
			t.Errorf("Status.JSON:\n got %s\nwant %s", got, want)
		}
	}
}

// TestInitContainersBeforeProxy: Istio's reorderPod (pkg/kube/inject/webhook.go)
// runs the init containers named in sidecar.istio.io/init-containers-before-proxy
// between istio-init/istio-validation and a native istio-proxy; the pod is
// Istio's testdata/inject/native-sidecar-order-override.yaml (without the
// istiod feature flag that test also sets). Typed and generic paths, the
// patch, and re-injection must all give that order.
func TestInitContainersBeforeProxy(t *testing.T) {
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict([]byte(`
metadata:
  name: hello
  annotations: {"sidecar.istio.io/init-containers-before-proxy": "other-sidecar"}
spec:
  initContainers:
  - {name: other-sidecar, image: x, restartPolicy: Always}
  - {name: override-sidecar, image: x, restartPolicy: Always}
  containers:
  - {name: hello, image: x}
`), pod); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		values, annotation, want, wantContainers string
	}{
		{`{"global":{"nativeSidecars":true}}`, "other-sidecar", "istio-init,other-sidecar,istio-proxy,override-sidecar", "hello"},
		{`{"global":{"nativeSidecars":true}}`, "override-sidecar,nope,other-sidecar", "istio-init,override-sidecar,other-sidecar,istio-proxy", "hello"},
		{`{"global":{"nativeSidecars":true},"pilot":{"cni":{"enabled":true}}}`, "override-sidecar", "istio-validation,override-sidecar,istio-proxy,other-sidecar", "hello"},
		{`{"global":{"nativeSidecars":true}}`, "", "istio-init,istio-proxy,other-sidecar,override-sidecar", "hello"},
		// Classic sidecar: the annotation changes nothing.
		{`{"global":{"nativeSidecars":false}}`, "override-sidecar", "other-sidecar,override-sidecar,istio-init", "hello,istio-proxy"},
	} {
		cfg, err := config.Inputs{Values: []byte(c.values)}.Load()
		if err != nil {
			t.Fatal(err)
		}
		in := pod.DeepCopy()
		in.Annotations[template.AnnotationInitContainersBeforeProxy] = c.annotation
		for name, run := range map[string]func(*corev1.Pod) (*Result, error){
			"typed":   func(p *corev1.Pod) (*Result, error) { return Inject(p, "default", cfg, Options{}) },
			"generic": func(p *corev1.Pod) (*Result, error) { return Inject(p, "default", forceGeneric(cfg), Options{}) },
		} {
			res, err := run(in.DeepCopy())
			if err != nil {
				t.Fatalf("%s %s %q: %v", name, c.values, c.annotation, err)
			}
			got := applyPatch(t, in, res)
			if names(got.Spec.InitContainers) != c.want || names(got.Spec.Containers) != c.wantContainers {
				t.Errorf("%s %s %q: init %s containers %s, want %s / %s", name, c.values, c.annotation,
					names(got.Spec.InitContainers), names(got.Spec.Containers), c.want, c.wantContainers)
			}
			again, err := run(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Patch) != 0 {
				t.Errorf("%s %s %q: re-injection patch %+v", name, c.values, c.annotation, again.Patch)
			}
		}
	}
}
