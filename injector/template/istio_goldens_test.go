package template_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
)

// TestIstioTemplateGoldens runs Istio's own goldens for templates other
// than the sidecar (testdata/istio, see its NOTICE) through the
// `meshguard inject` code path with the default install's inputs: the
// proxyless gRPC template with an agent (Istio's samples/grpc-echo uses it)
// and a user's own template from values.sidecarInjectorWebhook.templates.
// Both render generically (grpc-agent is not built by the typed injector;
// custom is not a stock template). The goldens are Istio's output.
func TestIstioTemplateGoldens(t *testing.T) {
	dir := injectionDir(t)
	install := filepath.Join(dir, "istio-default-install")
	for _, tc := range []struct {
		input, golden string
		extraValues   string // merged into the install's values
	}{
		{input: "grpc-agent.yaml", golden: "grpc-agent.yaml.injected"},
		{input: "custom-template.yaml", golden: "custom-template.yaml.injected", extraValues: "custom-template.values.yaml"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			valuesPath := filepath.Join(install, "values")
			if tc.extraValues != "" {
				valuesPath = mergedValues(t, valuesPath, filepath.Join("testdata", "istio", tc.extraValues))
			}
			s := loadFiles(t, filepath.Join(install, "config"), valuesPath, filepath.Join(install, "mesh"))
			input := []byte(mustRead(t, filepath.Join("testdata", "istio", tc.input)))
			golden := []byte(mustRead(t, filepath.Join("testdata", "istio", tc.golden)))
			for _, native := range []bool{true, false} {
				got := workloads(t, inject(t, withNative(s, native, false), input), true)
				if d := compareWorkloads(got, workloads(t, golden, true)); len(d) > 0 {
					t.Errorf("native sidecars %v: meshguard (got) differs from Istio's golden %s (want) (%d differences):\n%s",
						native, tc.golden, len(d), strings.Join(d, "\n"))
				}
			}
		})
	}
}

// With no input at all (`meshguard inject -f` without flags, `serve`
// without files), Istio's stock templates are in effect: a pod asking for
// grpc-agent gets Istio's golden pod, as with the default install's files.
func TestIstioTemplateGoldensWithoutInputs(t *testing.T) {
	s, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	input := []byte(mustRead(t, filepath.Join("testdata", "istio", "grpc-agent.yaml")))
	golden := []byte(mustRead(t, filepath.Join("testdata", "istio", "grpc-agent.yaml.injected")))
	for _, native := range []bool{true, false} {
		got := workloads(t, inject(t, withNative(s, native, false), input), true)
		if d := compareWorkloads(got, workloads(t, golden, true)); len(d) > 0 {
			t.Errorf("native sidecars %v: meshguard (got) differs from Istio's golden grpc-agent.yaml.injected (want) (%d differences):\n%s",
				native, len(d), strings.Join(d, "\n"))
		}
	}
}

// mergedValues writes the install's values with extra's keys merged in
// (maps merged key by key, as istioctl merges an IstioOperator's
// spec.values over the chart's).
func mergedValues(t *testing.T, base, extra string) string {
	t.Helper()
	var b, e map[string]any
	if err := yaml.Unmarshal([]byte(mustRead(t, base)), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(mustRead(t, extra)), &e); err != nil {
		t.Fatal(err)
	}
	var merge func(dst, src map[string]any)
	merge = func(dst, src map[string]any) {
		for k, v := range src {
			sm, ok := v.(map[string]any)
			dm, ok2 := dst[k].(map[string]any)
			if ok && ok2 {
				merge(dm, sm)
				continue
			}
			dst[k] = v
		}
	}
	merge(b, e)
	out, err := yaml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "values")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMultipleTemplatesAndAliases is Istio's TestMultipleInjectionTemplates
// (pkg/kube/inject/inject_test.go): templates listed in
// inject.istio.io/templates, or an alias of them, are rendered in order and
// each merged onto the pod; the status annotation lists what they added.
// Istio's test runs with an empty mesh config (status port 0, so its
// expectation has prometheus.io/port "0"); here the mesh has Istio's
// default status port, 15020.
func TestMultipleTemplatesAndAliases(t *testing.T) {
	s, err := config.Inputs{Config: []byte(`aliases:
  both: [sidecar, init]
templates:
  sidecar: |
    spec:
      containers:
      - name: istio-proxy
        image: proxy
  init: |
    spec:
     initContainers:
     - name: istio-init
       image: proxy
`), Values: []byte("{}")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := func(selection string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  annotations:
    inject.istio.io/templates: ` + selection + `
    prometheus.io/path: /stats/prometheus
    prometheus.io/port: "15020"
    prometheus.io/scrape: "true"
    sidecar.istio.io/status: '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":null,"imagePullSecrets":null,"revision":"default"}'
  name: hello
spec:
  initContainers:
  - name: istio-init
    image: proxy
  containers:
  - name: hello
    image: fake.docker.io/google-samples/hello-go-gke:1.0
  - name: istio-proxy
    image: proxy
`
	}
	for _, selection := range []string{"sidecar,init", "both"} {
		t.Run(selection, func(t *testing.T) {
			input := `apiVersion: v1
kind: Pod
metadata:
  name: hello
  annotations:
    inject.istio.io/templates: ` + selection + `
spec:
  containers:
  - name: hello
    image: "fake.docker.io/google-samples/hello-go-gke:1.0"
`
			got := workloads(t, inject(t, withNative(s, false, false), []byte(input)), false)
			if d := compareWorkloads(got, workloads(t, []byte(want(selection)), false)); len(d) > 0 {
				t.Errorf("(%d differences):\n%s", len(d), strings.Join(d, "\n"))
			}
		})
	}
}

// TestCombinedWithStockSidecar: "sidecar,<own>" (Istio's documented way to
// add to the sidecar, e.g. `inject.istio.io/templates: sidecar,custom`)
// gives Istio's golden pod for the stock sidecar plus exactly what the own
// template adds, merged into istio-proxy by name. The own template follows
// the native-sidecar choice as Istio's stock templates do (.NativeSidecars:
// istio-proxy is an init container then).
func TestCombinedWithStockSidecar(t *testing.T) {
	dir := injectionDir(t)
	install := filepath.Join(dir, "istio-default-install")
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(extra, []byte(`sidecarInjectorWebhook:
  templates:
    logging: |
      spec:
        {{ if .NativeSidecars }}initContainers{{ else }}containers{{ end }}:
        - name: istio-proxy
          env:
          - name: EXTRA_LOGGING
            value: "{{ .DeploymentMeta.Name }}"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := loadFiles(t, filepath.Join(install, "config"), mergedValues(t, filepath.Join(install, "values"), extra), filepath.Join(install, "mesh"))
	input := strings.Replace(mustRead(t, filepath.Join(dir, "cases", "hello.yaml")),
		"      labels:\n", "      annotations:\n        inject.istio.io/templates: sidecar,logging\n      labels:\n", 1)
	if !strings.Contains(input, "sidecar,logging") {
		t.Fatal("could not annotate hello.yaml's pod template")
	}
	out := string(inject(t, withNative(s, true, false), []byte(input)))
	// Take out exactly the two additions; the rest must be Istio's golden.
	for _, added := range []string{
		"        - name: EXTRA_LOGGING\n          value: hello\n",
		"        inject.istio.io/templates: sidecar,logging\n",
	} {
		if strings.Count(out, added) != 1 {
			t.Fatalf("output has %d times %q, want 1:\n%s", strings.Count(out, added), added, out)
		}
		out = strings.Replace(out, added, "", 1)
	}
	got := workloads(t, []byte(out), true)
	want := workloads(t, []byte(mustRead(t, filepath.Join(dir, "cases", "hello.yaml.injected"))), true)
	if d := compareWorkloads(got, want); len(d) > 0 {
		t.Errorf("besides EXTRA_LOGGING and the annotation, the pod differs from Istio's hello golden (%d differences):\n%s", len(d), strings.Join(d, "\n"))
	}
	var pod struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(inject(t, withNative(s, true, false), []byte(input)), &pod); err != nil {
		t.Fatal(err)
	}
	var proxy *corev1.Container
	for i, c := range pod.Spec.Template.Spec.InitContainers {
		if c.Name == "istio-proxy" {
			proxy = &pod.Spec.Template.Spec.InitContainers[i]
		}
	}
	if proxy == nil {
		t.Fatal("no istio-proxy native sidecar")
	}
	if v, ok := envValue(*proxy, "EXTRA_LOGGING"); !ok || v != "hello" {
		t.Errorf("istio-proxy EXTRA_LOGGING = %q (set %v), want hello", v, ok)
	}
}

// TestTemplateDuplicatingAContainerIsRefused: with native sidecars, a
// template that adds to istio-proxy under containers (not initContainers)
// makes Istio's merge produce a pod with istio-proxy twice, which the API
// server would reject; meshguard refuses it naming the container and the
// templates (docs/compatibility.md). Without native sidecars the same
// template merges into the one istio-proxy.
func TestTemplateDuplicatingAContainerIsRefused(t *testing.T) {
	dir := injectionDir(t)
	install := filepath.Join(dir, "istio-default-install")
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(extra, []byte(`sidecarInjectorWebhook:
  templates:
    naive: |
      spec:
        containers:
        - name: istio-proxy
          env:
          - name: EXTRA
            value: "1"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := loadFiles(t, filepath.Join(install, "config"), mergedValues(t, filepath.Join(install, "values"), extra), filepath.Join(install, "mesh"))
	pod := []byte(`apiVersion: v1
kind: Pod
metadata:
  name: app
  annotations: {inject.istio.io/templates: "sidecar,naive"}
spec:
  containers:
  - name: app
    image: app:1
`)
	_, err := kubeinject.InjectData(pod, withNative(s, true, false))
	if err == nil || !strings.Contains(err.Error(), `container "istio-proxy" is in spec.initContainers and spec.containers`) ||
		!strings.Contains(err.Error(), "sidecar,naive") {
		t.Fatalf("native sidecars: err = %v, want the duplicate istio-proxy and the templates named", err)
	}
	var out corev1.Pod
	if err := yaml.Unmarshal(inject(t, withNative(s, false, false), pod), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Spec.Containers) != 2 || out.Spec.Containers[1].Name != "istio-proxy" {
		t.Fatalf("classic sidecar: containers %v, want app and one istio-proxy", out.Spec.Containers)
	}
	if v, ok := envValue(out.Spec.Containers[1], "EXTRA"); !ok || v != "1" {
		t.Errorf("classic sidecar: istio-proxy EXTRA = %q (set %v), want 1", v, ok)
	}
}
