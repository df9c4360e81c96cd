package template

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshguard/meshguard/meshconfig"
)

// Injection templates are the operator's configuration, bounded by
// MaxRenderTime and MaxRenderedBytes, not by their cost: a template whose
// cost is a matter of a number (`until 100000`, `repeat`, nested loops)
// is skipped so every execution stays cheap. bigNumber matches numbers of
// four digits and more (also as hex or with an exponent); multiplier the
// functions and actions whose cost multiplies.
var (
	bigNumber  = regexp.MustCompile(`[0-9]{4}|[0-9][eE]|0[xXoObB]`)
	multiplier = regexp.MustCompile(`until|seq|repeat|template|range`)
)

func costlyTemplate(text string) bool {
	return bigNumber.MatchString(text) || len(multiplier.FindAllStringIndex(text, 3)) > 2 ||
		strings.Count(text, "repeat")+strings.Count(text, "until")+strings.Count(text, "seq") > 1
}

// FuzzRender parses and renders an arbitrary custom injection template
// against a pod, as the injector's generic path does (Parse, then
// Set.Render): no panic, not even one execute recovers; an error names the
// template; a rendered pod leaves the request's pod as it was and
// marshals as the patch will be computed from it.
func FuzzRender(f *testing.F) {
	pod := `{"metadata":{"name":"p","namespace":"ns","labels":{"app":"a"},"annotations":{"sidecar.istio.io/proxyImage":"x/proxy:1"}},"spec":{"containers":[{"name":"app","image":"a:1","ports":[{"containerPort":8080}]},{"name":"istio-proxy","env":[{"name":"A","value":"b"}]}]}}`
	f.Add("spec:\n  containers:\n  - name: istio-proxy\n    image: {{ .ProxyImage }}\n    args: [{{ .ObjectMeta.Name | quote }}]\n", pod, false)
	f.Add("spec:\n  initContainers:\n  - name: istio-proxy\n    restartPolicy: Always\n    env: {{ toJson .Spec.Containers }}\n", pod, true)
	f.Add("{{ toYaml .Spec | indent 2 }}\nlabels: {a: b}\n", pod, false)
	f.Add("metadata:\n  annotations: {{ .ObjectMeta.Annotations | toJson }}\nspec:\n  containers:\n  - $patch: delete\n    name: app\n", pod, false)
	f.Add("spec:\n  $setElementOrder/containers: [{name: x}]\n  containers: {{ .Values.global.proxy }}\n", pod, false)
	f.Add("{{ fail \"custom template refuses\" }}", pod, false)
	f.Add("{{ define \"x\" }}spec: {}{{ end }}{{ template \"x\" . }}", "{}", false)
	f.Add("{{ .Nope.Field }}", "{}", false)
	f.Add("spec: [", "{}", false)
	f.Add("{{ range .Spec.Containers }}- {{ .Name }}\n{{ end }}", pod, true)
	f.Fuzz(func(t *testing.T, text, podJSON string, native bool) {
		if len(text) > 1<<10 || len(podJSON) > 4<<10 || costlyTemplate(text) {
			return
		}
		var p corev1.Pod
		if err := json.Unmarshal([]byte(podJSON), &p); err != nil {
			return // not a pod the webhook decodes
		}
		const name = "custom"
		s, err := Parse(map[string]string{name: text}, Options{MaxRenderTime: 500 * time.Millisecond})
		if err != nil {
			if !strings.Contains(err.Error(), `template "custom"`) {
				t.Fatalf("parse error names no template: %v", err)
			}
			return
		}
		before := p.DeepCopy()
		data := &Data{
			TypeMeta:       metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			DeploymentMeta: types.NamespacedName{Namespace: p.Namespace, Name: p.Name},
			ObjectMeta:     p.ObjectMeta,
			Spec:           p.Spec,
			ProxyConfig:    meshconfig.DefaultProxyConfig(),
			MeshConfig:     meshconfig.DefaultMeshConfig(),
			Values:         map[string]any{"global": map[string]any{"proxy": map[string]any{"image": "proxyv2"}}},
			NativeSidecars: native,
			ProxyImage:     "x/proxy:1",
		}
		merged, injected, _, err := s.Render([]string{name}, data, &p, native)
		s.executions.Wait() // an abandoned execution ends before the next input
		if err != nil {
			// A strategicpatch panic strategicMerge recovered is a finding
			// unless it is the known null-item one (TestRenderNullListItem).
			unknownPanic := errors.Is(err, errMergePanicked) && !errors.Is(err, errNullItemInEmptyList)
			if !strings.Contains(err.Error(), `template "custom"`) || strings.Contains(err.Error(), "execution panicked") || unknownPanic {
				t.Fatalf("render error: %v", err)
			}
			return
		}
		if merged == nil || injected == nil {
			t.Fatalf("rendered without a pod: merged %v, injected %v", merged, injected)
		}
		if !reflect.DeepEqual(before, &p) {
			t.Fatal("Render changed the request's pod")
		}
		if _, err := json.Marshal(merged); err != nil {
			t.Fatalf("merged pod does not marshal: %v", err)
		}
	})
}
