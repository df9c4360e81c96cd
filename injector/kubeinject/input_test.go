package kubeinject

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/internal/manifest"
)

const (
	podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	podYAML = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {containers: [{name: c, image: i}]}\n"
)

// TestInjectRefusesContentAfterTheFirstObject: a document holding a second
// object (JSON objects back to back, objects after a "..." line) is refused
// naming the document, as `meshguard validate` refuses it
// (manifest.OneDocument). The YAML decoder reads the first object only, so the
// second Pod was dropped from the output, or a ConfigMap first passed the
// whole document through with the Pod after it uninjected (exit 0).
func TestInjectRefusesContentAfterTheFirstObject(t *testing.T) {
	const cm = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}`
	for _, tc := range []struct{ name, in, doc string }{
		{"two Pods back to back", fmt.Sprintf(podJSON, "a") + fmt.Sprintf(podJSON, "b") + "\n", "document 1"},
		{"a ConfigMap then a Pod", cm + "\n" + fmt.Sprintf(podJSON, "p") + "\n", "document 1"},
		{"a Pod after a ... line", fmt.Sprintf(podYAML, "a") + "...\n" + fmt.Sprintf(podYAML, "b"), "document 1"},
		{"in the second document", fmt.Sprintf(podYAML, "a") + "---\n" + cm + cm + "\n", "document 2"},
		{"in a List's document", `{"apiVersion":"v1","kind":"List","items":[]}` + fmt.Sprintf(podJSON, "p") + "\n", "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := InjectData([]byte(tc.in), config.Default())
			if err == nil {
				t.Fatalf("accepted; output:\n%s", res.Output)
			}
			if want := tc.doc + ": cannot parse YAML/JSON: more than one document"; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q, want it to contain %q", err, want)
			}
		})
	}
	// One object, in flow style or with a "..." end, is still injected.
	for _, in := range []string{fmt.Sprintf(podJSON, "a") + "\n", fmt.Sprintf(podYAML, "a") + "...\n"} {
		res, err := InjectData([]byte(in), config.Default())
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !strings.Contains(string(res.Output), "sidecar.istio.io/status") {
			t.Errorf("%q: not injected:\n%s", in, res.Output)
		}
	}
}

// TestInjectListOverOneObjectLimit: the 3 MiB limit of one object applies to
// each item of a v1 List, which kubectl apply sends one by one, not to the
// List (istioctl takes it too); the whole input stays bounded by the CLI's
// --max-input-size. An item over the limit is refused naming it.
func TestInjectListOverOneObjectLimit(t *testing.T) {
	item := func(i, size int) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm%d"},"data":{"a":"%s"}}`, i, strings.Repeat("x", size))
	}
	var b strings.Builder
	b.WriteString(`{"apiVersion":"v1","kind":"List","items":[`)
	n := 0
	for ; b.Len() <= manifest.MaxDocumentBytes; n++ {
		b.WriteString(item(n, 1<<10) + ",")
	}
	b.WriteString(fmt.Sprintf(podJSON, "last") + "]}\n")
	res, err := InjectData([]byte(b.String()), config.Default())
	if err != nil {
		t.Fatalf("a List of %d bytes (%d small items): %v", b.Len(), n+1, err)
	}
	var out struct {
		Items []map[string]any `json:"items"`
	}
	if err := yaml.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != n+1 {
		t.Fatalf("%d items out, want %d", len(out.Items), n+1)
	}
	last, _ := yaml.Marshal(out.Items[n])
	var pod corev1.Pod
	if err := yaml.Unmarshal(last, &pod); err != nil || pod.Annotations["sidecar.istio.io/status"] == "" {
		t.Errorf("the Pod after the ConfigMaps is not injected (%v):\n%s", err, last)
	}

	big := `{"apiVersion":"v1","kind":"List","items":[` + item(0, 10) + "," + item(1, manifest.MaxDocumentBytes) + "]}\n"
	_, err = InjectData([]byte(big), config.Default())
	if want := "document 1: items[1] of the List: input too large: object of"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a List item over 3 MiB: error %v, want it to contain %q", err, want)
	}
	// Any other document over the limit is still refused whole.
	other := `{"apiVersion":"v1","kind":"ConfigMapList","items":[` + item(0, manifest.MaxDocumentBytes) + "]}\n"
	_, err = InjectData([]byte(other), config.Default())
	if want := "document 1: input too large: document of"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a ConfigMapList over 3 MiB: error %v, want it to contain %q", err, want)
	}
}

// TestInjectDecodeErrorsNameObjectAndField: a document that does not decode
// into its kind's type is refused naming the object and the field's path
// (manifest.DecodeStrict), not with the JSON decoder's message alone.
func TestInjectDecodeErrorsNameObjectAndField(t *testing.T) {
	const dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n"
	for _, tc := range []struct{ name, in, want string }{
		{"unknown field", dep + "      containerz: []\n      containers: [{name: c, image: i}]\n",
			"document 1: Deployment d: field spec.template.spec.containerz: unknown field"},
		{"two unknown fields", dep + "      containerz: []\n      containers: [{name: c, image: i, imagez: j}]\n",
			"document 1: Deployment d: field spec.template.spec.containers[0].imagez: unknown field; field spec.template.spec.containerz: unknown field"},
		// The API server's field names are case-sensitive; encoding/json's
		// are not, so "Containers" was read as containers.
		{"a field spelt with another case", dep + "      Containers: [{name: c, image: i}]\n",
			"document 1: Deployment d: field spec.template.spec.Containers: unknown field"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: many\n",
			"document 1: Deployment d: field spec.replicas: cannot decode string as int32"},
		{"wrong type in a list", dep + "      containers: [{name: c, image: i, ports: [{containerPort: 80}, {containerPort: eighty}]}]\n",
			"document 1: Deployment d: field spec.template.spec.containers[0].ports[1].containerPort: cannot decode string as int32"},
		{"a map where a list is", dep + "      containers: [{name: c, image: i}, {name: d, image: i, ports: {containerPort: 80}}]\n",
			"document 1: Deployment d: field spec.template.spec.containers[1].ports: cannot decode object as a list"},
		{"a quantity that is not one", dep + "      containers: [{name: c, image: i, resources: {limits: {cpu: lots}}}]\n",
			"document 1: Deployment d: field spec.template.spec.containers[0].resources.limits.cpu: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
		{"duplicate key", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n  containers: []\n",
			`document 1: Pod p: line 6: key "containers" already set in map`},
		{"JSON duplicate key", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[],"containers":[{"name":"c","image":"i"}]}}` + "\n",
			`document 1: Pod p: line 1: key "containers" already set in map`},
		{"DeploymentConfig template", "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata: {name: dc}\nspec:\n  template:\n    spec:\n      containerz: []\n      containers: [{name: c, image: i}]\n",
			"document 1: DeploymentConfig dc: field spec.template.spec.containerz: unknown field"},
		{"DeploymentConfig metadata", "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata: {name: dc, namspace: x}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n",
			"document 1: DeploymentConfig dc: field metadata.namspace: unknown field"},
		{"List item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec: {containerz: [], containers: [{name: c, image: i}]}\n",
			"document 1: items[0] of the List: Pod p: field spec.containerz: unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := InjectData([]byte(tc.in), config.Default())
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}

// TestInjectWritesScalarsAsStringsAsIstioctl: a number or boolean where the
// pod has a string (an env value, a nodeSelector value) is injected and
// written as the string istioctl kube-inject writes (its decoding,
// sigs.k8s.io/yaml Unmarshal, converts by the field's type); decoded as
// untyped YAML it was refused ("cannot decode number as string").
func TestInjectWritesScalarsAsStringsAsIstioctl(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
	const dc = "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata: {name: dc}\nspec:\n  template:\n    spec:\n"
	for _, tc := range []struct{ name, in, want string }{ // want: a regular expression
		{"env value a number", pod + "  containers: [{name: c, image: i, env: [{name: P, value: 8080}]}]\n", `- name: P\n\s+value: "8080"\n`},
		{"env value on", pod + "  containers: [{name: c, image: i, env: [{name: P, value: on}]}]\n", `- name: P\n\s+value: "true"\n`},
		{"nodeSelector a boolean", pod + "  containers: [{name: c, image: i}]\n  nodeSelector: {disktype: true}\n", `nodeSelector:\n\s+disktype: "true"\n`},
		{"a DeploymentConfig's env value", dc + "      containers: [{name: c, image: i, env: [{name: P, value: 8080}]}]\n", `- name: P\n\s+value: "8080"\n`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := InjectData([]byte(tc.in), config.Default())
			if err != nil {
				t.Fatal(err)
			}
			out := string(res.Output)
			if !regexp.MustCompile(tc.want).MatchString(out) || !strings.Contains(out, "sidecar.istio.io/status") {
				t.Fatalf("output does not match %q or is not injected:\n%s", tc.want, out)
			}
		})
	}
	// The app container is what istioctl's decoding (FromRawToObject:
	// sigs.k8s.io/yaml Unmarshal into the kind's type) reads.
	in := pod + "  containers: [{name: c, image: i, args: [1, 2.5, off], env: [{name: P, value: 8080}, {name: Q, value: 1.5e10}]}]\n  nodeSelector: {disktype: true, n: 7}\n"
	var want corev1.Pod
	if err := yaml.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	res, err := InjectData([]byte(in), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := yaml.UnmarshalStrict(res.Output, &got); err != nil {
		t.Fatal(err)
	}
	var app *corev1.Container
	for i := range got.Spec.Containers {
		if got.Spec.Containers[i].Name == "c" {
			app = &got.Spec.Containers[i]
		}
	}
	if app == nil || !reflect.DeepEqual(app.Args, want.Spec.Containers[0].Args) || !reflect.DeepEqual(app.Env, want.Spec.Containers[0].Env) ||
		!reflect.DeepEqual(got.Spec.NodeSelector, want.Spec.NodeSelector) {
		t.Fatalf("injected\n%s\nwant args %q env %v nodeSelector %v (istioctl's decoding)", res.Output, want.Spec.Containers[0].Args, want.Spec.Containers[0].Env, want.Spec.NodeSelector)
	}
}

// TestInjectDeploymentConfigKeepsIntegers: a DeploymentConfig, decoded into
// OpenShift's type (deploymentConfig), keeps every integer as written;
// decoded through map[string]any, 9007199254740993 became the float64
// 9007199254740992.
func TestInjectDeploymentConfigKeepsIntegers(t *testing.T) {
	const in = `apiVersion: apps.openshift.io/v1
kind: DeploymentConfig
metadata: {name: dc}
spec:
  minReadySeconds: 0
  strategy: {type: Recreate, recreateParams: {timeoutSeconds: 9007199254740993}}
  template:
    spec:
      activeDeadlineSeconds: 9007199254740993
      containers: [{name: c, image: i}]
`
	res, err := InjectData([]byte(in), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Output)
	for _, want := range []string{"timeoutSeconds: 9007199254740993\n", "activeDeadlineSeconds: 9007199254740993\n", "sidecar.istio.io/status"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A zero minReadySeconds is dropped, as OpenShift's Go type writes it.
	if strings.Contains(out, "minReadySeconds") {
		t.Errorf("zero minReadySeconds kept:\n%s", out)
	}
}
