package template

import (
	"reflect"
	"strings"
	"testing"
	ttemplate "text/template"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func otelMesh(e meshv1alpha1.MeshConfig_ExtensionProvider_ServiceAttributeEnrichment) *meshv1alpha1.MeshConfig {
	return &meshv1alpha1.MeshConfig{ExtensionProviders: []*meshv1alpha1.MeshConfig_ExtensionProvider{
		{Name: "z", Provider: &meshv1alpha1.MeshConfig_ExtensionProvider_Zipkin{}},
		{Name: "o", Provider: &meshv1alpha1.MeshConfig_ExtensionProvider_Opentelemetry{Opentelemetry: &meshv1alpha1.MeshConfig_ExtensionProvider_OpenTelemetryTracingProvider{ServiceAttributeEnrichment: e}}},
	}}
}

// Expected values follow Istio's pkg/kube/inject/template.go and
// template_test.go.
func TestIstioFuncs(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"excludeInboundPort adds", ExcludeInboundPort(15020, "80,8080"), "80,8080,15020"},
		{"excludeInboundPort present", ExcludeInboundPort("15020", "15020"), "15020"},
		{"excludeInboundPort zero", ExcludeInboundPort("0", "80"), "80"},
		{"excludeInboundPort empty list", ExcludeInboundPort(15020, ""), "15020"},
		{"indent skips the first line", indent(2, "a\nb\nc"), "a\n  b\n  c"},
		{"appendMultusNetwork empty", AppendMultusNetwork("", "istio-cni"), "istio-cni"},
		{"appendMultusNetwork list", AppendMultusNetwork("a, b", "istio-cni"), "a, b, istio-cni"},
		{"appendMultusNetwork present", AppendMultusNetwork("a, istio-cni", "istio-cni"), "a, istio-cni"},
		{"appendMultusNetwork json", AppendMultusNetwork(`[{"name": "a"}]`, "istio-cni"), `[{"name": "a"}, {"name": "istio-cni"}]`},
		{"valueOrDefault empty", valueOrDefault("", "d"), "d"},
		{"valueOrDefault set", valueOrDefault("v", "d"), "v"},
		{"omitNil", omitNil(map[string]any{"limits": map[string]any{"cpu": nil}, "requests": map[string]any{"cpu": "10m", "memory": nil}}),
			map[string]any{"requests": map[string]any{"cpu": "10m"}}},
		{"strdict odd", strdict("a", "1", "b"), map[string]string{"a": "1", "b": ""}},
		{"includeInboundPorts skips UDP", includeInboundPorts([]corev1.Container{{Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}, {Ports: []corev1.ContainerPort{{ContainerPort: 90}}}}), "80,90"},
		{"directory", directory("/etc/istio/proxy/envoy.json"), "/etc/istio/proxy/"},
		// An annotation present with an empty value is set and is "" (getAnnotation, isset).
		{"annotation present but empty", getAnnotation(metav1.ObjectMeta{Annotations: map[string]string{"a": ""}}, "a", "d"), ""},
		{"annotation absent", getAnnotation(metav1.ObjectMeta{}, "a", 15020), "15020"},
		{"isset present but empty", isset(map[string]string{"a": ""}, "a"), true},
		{"structToJSON nil", structToJSON(nil), "{}"},
		// Items are compared before trimming (splitPorts is strings.Split).
		{"excludeInboundPort compares untrimmed items", ExcludeInboundPort(15020, "80, 15020"), "80,15020,15020"},
		{"includeInboundPorts skips SCTP", includeInboundPorts([]corev1.Container{{Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 9, Protocol: corev1.ProtocolSCTP}}}}), "80"},
		{"applicationPorts skips istio-proxy", applicationPorts([]corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}, {Name: "istio-proxy", Ports: []corev1.ContainerPort{{ContainerPort: 15090}}}}), "80"},
		{"otelResourceAttributes without OTEL_SEMANTIC_CONVENTIONS", otelResourceAttributes(otelMesh(meshv1alpha1.MeshConfig_ExtensionProvider_ISTIO_CANONICAL), nil, nil, "ns", []corev1.Container{{Name: "a", Image: "x:1"}}), ""},
		{"otelResourceAttributes tag and digest", otelResourceAttributes(otelMesh(meshv1alpha1.MeshConfig_ExtensionProvider_OTEL_SEMANTIC_CONVENTIONS), nil, nil, "ns", []corev1.Container{{Name: "a", Image: "reg:5000/x:1.2@sha256:ab"}}),
			"service.namespace=ns,service.version=1.2@sha256:ab,service.instance.id=ns.$(POD_NAME).a"},
		{"otelResourceAttributes registry port, annotations", otelResourceAttributes(otelMesh(meshv1alpha1.MeshConfig_ExtensionProvider_OTEL_SEMANTIC_CONVENTIONS),
			map[string]string{"resource.opentelemetry.io/service.namespace": "sn", "resource.opentelemetry.io/service.instance.id": "id"}, nil, "ns", []corev1.Container{{Name: "a", Image: "reg:5000/x"}}),
			"service.namespace=sn,service.instance.id=id"},
		{"otelResourceAttributes two containers", otelResourceAttributes(otelMesh(meshv1alpha1.MeshConfig_ExtensionProvider_OTEL_SEMANTIC_CONVENTIONS), nil, nil, "", []corev1.Container{{Name: "a", Image: "x:1"}, {Name: "b"}}),
			"service.instance.id=.$(POD_NAME).a"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestSelectTemplates(t *testing.T) {
	aliases := map[string][]string{"both": {"sidecar", "extra"}}
	for _, c := range []struct {
		annos map[string]string
		want  []string
	}{
		{nil, []string{"sidecar"}},
		{map[string]string{"inject.istio.io/templates": " gateway , extra"}, []string{"gateway", "extra"}},
		{map[string]string{"inject.istio.io/templates": "both"}, []string{"sidecar", "extra"}},
	} {
		if got := SelectTemplates(c.annos, []string{"sidecar"}, aliases); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: got %v, want %v", c.annos, got, c.want)
		}
	}
}

func TestReorder(t *testing.T) {
	names := func(cs []corev1.Container) string {
		var n []string
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return strings.Join(n, ",")
	}
	cs := func(n ...string) []corev1.Container {
		var out []corev1.Container
		for _, x := range n {
			out = append(out, corev1.Container{Name: x})
		}
		return out
	}
	for _, c := range []struct {
		hold                   bool
		beforeProxy            string // sidecar.istio.io/init-containers-before-proxy, "-" for none
		containers, inits      []corev1.Container
		wantContainers, wantIn string
	}{
		{false, "-", cs("istio-proxy", "app"), cs("istio-init", "user"), "app,istio-proxy", "user,istio-init"},
		{true, "-", cs("app", "istio-proxy"), cs("user", "istio-validation"), "istio-proxy,app", "istio-validation,user"},
		{false, "-", cs("app"), cs("user", "istio-proxy", "istio-init"), "app", "istio-init,istio-proxy,user"},
		// Istio webhook.go reorderPod: with a native sidecar, the named init
		// containers run after istio-init/istio-validation and before
		// istio-proxy, in the annotation's order (first occurrence wins);
		// names that match nothing are ignored, and without a native
		// sidecar the annotation changes nothing.
		{false, "b,a", cs("app"), cs("a", "b", "c", "istio-proxy", "istio-init"), "app", "istio-init,b,a,istio-proxy,c"},
		{false, "c,,nope,c,a", cs("app"), cs("a", "b", "c", "istio-validation", "enable-core-dump", "istio-proxy"), "app", "istio-validation,c,a,istio-proxy,enable-core-dump,b"},
		{false, "", cs("app"), cs("a", "istio-proxy", "istio-init"), "app", "istio-init,istio-proxy,a"},
		{false, "a", cs("app", "istio-proxy"), cs("a", "b", "istio-init"), "app,istio-proxy", "a,b,istio-init"},
		// reorderPod moves istio-validation first and then istio-init, so
		// with both present istio-init runs first; without a native sidecar
		// enable-core-dump (a pod's own of that name too) goes last.
		{false, "-", cs("app"), cs("istio-validation", "x", "istio-proxy", "istio-init"), "app", "istio-init,istio-validation,istio-proxy,x"},
		{false, "-", cs("app"), cs("enable-core-dump", "x", "istio-init", "y"), "app", "x,y,istio-init,enable-core-dump"},
	} {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: c.containers, InitContainers: c.inits}}
		if c.beforeProxy != "-" {
			p.Annotations = map[string]string{"sidecar.istio.io/init-containers-before-proxy": c.beforeProxy}
		}
		Reorder(p, c.hold)
		if got := names(p.Spec.Containers); got != c.wantContainers {
			t.Errorf("hold=%v containers %s, want %s", c.hold, got, c.wantContainers)
		}
		if got := names(p.Spec.InitContainers); got != c.wantIn {
			t.Errorf("hold=%v init containers %s, want %s", c.hold, got, c.wantIn)
		}
	}
}

func TestParseAndRenderErrors(t *testing.T) {
	if _, err := Parse(map[string]string{"bad": "{{ .X", "ok": "metadata: {}"}, Options{}); err == nil || !strings.Contains(err.Error(), `template "bad"`) {
		t.Errorf("parse error does not name the template: %v", err)
	}
	if _, err := Parse(map[string]string{"envx": `{{ expandenv "$HOME" }}`}, Options{}); err == nil {
		t.Error("expandenv (process environment) must not be available")
	}
	s, err := Parse(map[string]string{
		"loop":    `{{ range 10000000 }}xxxxxxxxxx{{ end }}`,
		"notapod": `spec: [1, 2]`,
		"env":     `metadata: {annotations: {a: "{{ env "X" "dflt" }}"}}`,
	}, Options{Env: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if _, _, _, err := s.Render([]string{"loop"}, &Data{}, pod, false); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("unbounded output: %v", err)
	}
	if _, _, _, err := s.Render([]string{"notapod"}, &Data{}, pod, false); err == nil {
		t.Error("a template rendering no pod overlay must fail")
	}
	if _, _, _, err := s.Render([]string{"missing"}, &Data{}, pod, false); err == nil || !strings.Contains(err.Error(), `"missing" not found`) {
		t.Errorf("missing template: %v", err)
	}
	merged, _, _, err := s.Render([]string{"env"}, &Data{}, pod, false)
	if err != nil || merged.Annotations["a"] != "dflt" {
		t.Errorf("env default: %v %v", merged, err)
	}
}

func TestStockOf(t *testing.T) {
	if _, ok := StockOf("sidecar", "metadata: {}\n"); ok {
		t.Error("arbitrary text recognised as stock")
	}
	for name, h := range stockTemplates[Istio86c9f01] {
		if len(h) != 64 {
			t.Errorf("%s: hash %q is not SHA-256 hex", name, h)
		}
	}
}

// TestTemplateNamespaceIsIstios: Istio parses every template under the name
// "inject" (pkg/kube/inject/inject.go parseDryTemplate), so a template may
// `define` a helper with its own name (accepted by Istio, refused before as
// "multiple definition") and not one called "inject".
func TestTemplateNamespaceIsIstios(t *testing.T) {
	s, err := Parse(map[string]string{"custom": `{{ define "custom" }}v{{ end }}metadata: {annotations: {a: "{{ template "custom" }}"}}`}, Options{})
	if err != nil {
		t.Fatalf("a define named like the template: %v", err)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	merged, _, _, err := s.Render([]string{"custom"}, &Data{}, pod, false)
	if err != nil || merged.Annotations["a"] != "v" {
		t.Errorf("rendered %v, %v; want annotation a=v", merged.Annotations, err)
	}
	if _, err := Parse(map[string]string{"custom": `{{ define "inject" }}v{{ end }}spec: {}`}, Options{}); err == nil ||
		!strings.Contains(err.Error(), `template "custom"`) || !strings.Contains(err.Error(), "multiple definition") {
		t.Errorf("a define named inject: err = %v, want Istio's multiple definition, naming the template", err)
	}
}

// TestRenderedFieldsThePodLacks: what a template renders is decoded into
// the pod as Istio's applyOverlayYAML decodes it (json.Unmarshal): a value of
// the wrong type fails naming the template, a field name in another case
// matches, and a field the pod does not have is dropped as in Istio, e.g. the
// top-level `labels:` of the spire template in Istio's SPIRE guide (used as
// inject.istio.io/templates: sidecar,spire), which must still inject; a
// warning names the template and the field.
func TestRenderedFieldsThePodLacks(t *testing.T) {
	spire := `labels:
  spiffe.io/spire-managed-identity: "true"
spec:
  containers:
  - name: istio-proxy
    volumeMounts:
    - name: workload-socket
      mountPath: /run/secrets/workload-spiffe-uds
      readOnly: true
  volumes:
  - name: workload-socket
    csi:
      driver: "csi.spiffe.io"
      readOnly: true
`
	for _, c := range []struct {
		name, text, wantErr, wantWarning string
	}{
		{"spire guide template", spire, "", `template "custom": unknown field "labels": not a pod field, ignored`},
		{"misspelt container field", "spec:\n  containers:\n  - name: istio-proxy\n    image: proxy\n    securityContxt: {privileged: false}\n", "", `template "custom": unknown field "securityContxt"`},
		{"field name in another case", "spec:\n  containers:\n  - name: istio-proxy\n    Image: proxy\n", "", ""},
		{"wrong type", "spec:\n  containers: istio-proxy\n", "cannot unmarshal string", ""},
		{"annotation not a string", "metadata:\n  annotations:\n    a: 1\n", "cannot unmarshal number", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(map[string]string{"custom": c.text}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
			merged, _, warnings, err := s.Render([]string{"custom"}, &Data{}, pod, false)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), `template "custom"`) || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("err = %v, want one naming the template and %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := FindContainer("istio-proxy", merged.Spec.Containers); p == nil {
				t.Errorf("containers %+v, want istio-proxy merged", merged.Spec.Containers)
			}
			got := strings.Join(warnings, "\n")
			if (c.wantWarning == "") != (got == "") || !strings.Contains(got, c.wantWarning) {
				t.Errorf("warnings %q, want %q", got, c.wantWarning)
			}
		})
	}
}

// TestRenderTimeBound: a template that loops without end and without
// (much) output fails within the time bound, naming the template, instead of
// holding the request (it ran to its end before: minutes for this count,
// 12 s for a hundredth of it on 2 cores); the abandoned execution ends at
// its next write.
func TestRenderTimeBound(t *testing.T) {
	s, err := Parse(map[string]string{
		"spin": "# {{ range $i := 400000000 }}{{ if eq (mod $i 10000) 0 }}.{{ end }}{{ end }}\nspec: {}\n",
	}, Options{MaxRenderTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	start := time.Now()
	_, _, _, err = s.Render([]string{"spin"}, &Data{}, pod, false)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), `template "spin": execution took longer than 100ms`) || took > 2*time.Second {
		t.Fatalf("err = %v after %v, want the time bound naming the template", err, took)
	}
	// The abandoned execution ends at its next write: await this Set's
	// executions (not the process's goroutine count, which other tests'
	// goroutines change). The bound is generous for a loaded machine, and
	// far below the minutes the loop runs when it is not abandoned.
	ended := make(chan struct{})
	go func() {
		s.executions.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the abandoned execution still runs 30s after the time bound")
	}
}

// TestAllocationBounds: a function whose result grows with a number the
// template passes fails naming itself once the result would exceed
// MaxRenderedBytes, instead of allocating it (`until 1000000000`: 8 GB before
// any output); below that it is sprig's or Istio's function unchanged.
func TestAllocationBounds(t *testing.T) {
	for _, c := range []struct{ call, want, wantErr string }{
		{`until 3`, "[0 1 2]", ""},
		{`untilStep 0 10 4`, "[0 4 8]", ""},
		{`seq 3`, "1 2 3", ""},
		{`seq 5 3`, "5 4 3", ""},
		{`seq 0 5 10`, "0 5 10", ""},
		{`repeat 3 "ab"`, "ababab", ""},
		{`indent 2 "a\nb"`, "a\n  b", ""},
		{`nindent 1 "c"`, "\n c", ""},
		{`randAlphaNum 4 | len`, "4", ""},
		{`until 1000000000`, "", "until: result of 8000000000 bytes exceeds"},
		{`until -1000000000`, "", "until: result of"},
		{`untilStep 0 1000000000 1`, "", "untilStep: result of"},
		{`seq 1000000000`, "", "seq: result of"},
		{`repeat 100000000 "ab"`, "", "repeat: result of"},
		{`indent 100000000 "a\nb"`, "", "indent: result of"},
		{`nindent 100000000 "a"`, "", "nindent: result of"},
		{`randBytes 100000000`, "", "randBytes: result of"},
	} {
		s, err := Parse(map[string]string{"t": `metadata: {annotations: {a: {{ quote (print (` + c.call + `)) }}}}`}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		merged, _, _, err := s.Render([]string{"t"}, &Data{}, pod, false)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), `template "t"`) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want %q naming the template", c.call, err, c.wantErr)
			}
			continue
		}
		if err != nil || merged.Annotations["a"] != c.want {
			t.Errorf("%s: got %q (%v), want %q", c.call, merged.Annotations["a"], err, c.want)
		}
	}
}

// TestFuncsAsIstios renders with the template function map the calls whose
// result Istio's current pkg/kube/inject/template.go InjectionFuncmap (over
// sprig) defines: functions meshguard lacked, omitNil keeping maps and lists
// it does not change (`{}` stays `{}`), and toJson being sprig's (Istio no
// longer maps it to its map[string]string toJSON).
func TestFuncsAsIstios(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{`{{ excludeInterfaces "eth0,eth1" }}`, "eth0,eth1"},
		{`{{ mergeMaps (strdict "a" "1" "c" "0") (strdict "a" "2" "b" "3") | toJSON }}`, `{"a":"2","b":"3","c":"0"}`},
		{`{{ mergeMaps | toJSON }}`, `{}`}, // nil map: toJSON's "{}"
		{`{{ toJsonMap }}`, `null`},
		{`{{ toJsonMap (strdict "a" "1") (strdict "a" "2") }}`, `{"a":"2"}`},
		{`{{ toJson (fromJSON "{\"a\":[1,true]}") }}`, `{"a":[1,true]}`},
		{`{{ toJson .Labels }}`, `null`},
		{`{{ omitNil (fromJSON "{}") | toJson }}`, `{}`},
		{`{{ omitNil (fromJSON "[]") | toJson }}`, `[]`},
		{`{{ omitNil (fromJSON "{\"a\":{},\"b\":[]}") | toJson }}`, `{"a":{},"b":[]}`},
		{`{{ omitNil (fromJSON "{\"a\":{\"x\":null},\"b\":{}}") | toJson }}`, `{"b":{}}`},
		{`{{ omitNil (fromJSON "{\"a\":null}") | toJson }}`, `null`},
		{`{{ omitNil (fromJSON "[null,{},1]") | toJson }}`, `[{},1]`},
		{`{{ indent -2 "a\nb" }}`, "a\n  b"},
		// The stock waypoint template's `omit .InfrastructureAnnotations "kubectl.kubernetes.io/last-applied-configuration" ...`.
		{`{{ omit (strdict "a" "1" "b" "2" "c" "3") "a" "c" | toJSON }}`, `{"b":"2"}`},
	} {
		tm, err := ttemplate.New("t").Funcs(funcs(Options{}, &budget{})).Parse(c.tmpl)
		if err != nil {
			t.Errorf("%s: %v", c.tmpl, err)
			continue
		}
		var b strings.Builder
		if err := tm.Execute(&b, struct{ Labels map[string]string }{}); err != nil {
			t.Errorf("%s: %v", c.tmpl, err)
			continue
		}
		if b.String() != c.want {
			t.Errorf("%s: got %q, want %q", c.tmpl, b.String(), c.want)
		}
	}
}
