package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/scheme"
)

const cliBadVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: prod}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}, weight: -15}]
`

const cliGoodDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
`

const cliService = `apiVersion: v1
kind: Service
metadata: {name: reviews}
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", cliGoodDR+"---\n"+cliService)
	mixed := writeFile(t, dir, "mixed.yaml", cliGoodDR+"---\n# only a comment\n---\n"+cliBadVS)
	writeFile(t, dir, "tree/a.yml", cliGoodDR)
	writeFile(t, dir, "tree/notes.txt", "not yaml: [")
	broken := writeFile(t, dir, "broken.yaml", "kind: [\n")

	cases := []struct {
		name   string
		files  []string
		stdin  string
		code   int
		stdout []string
		stderr string
	}{
		{"valid file", []string{good}, "", 0, []string{good + "#1: skipped: Service default/reviews: not an Istio API group"}, ""},
		{"invalid doc named with file and index", []string{mixed}, "", 1,
			[]string{mixed + "#1: VirtualService prod/reviews: spec.http[0].route[0].weight: Invalid value: -15: weight -15 < 0"}, ""},
		{"directory", []string{filepath.Join(dir, "tree")}, "", 0, nil, ""},
		{"stdin", []string{"-"}, cliBadVS, 1, []string{"-#0: VirtualService prod/reviews: spec.http[0].route[0].weight"}, ""},
		{"unreadable wins", []string{broken, mixed}, "", 2, []string{"weight -15 < 0"}, broken + "#0: unreadable"},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, "", 2, nil, "no such file"},
		// A separator line with content after it (as YAMLReader refuses it)
		// ends the reading: the input is unreadable, not valid.
		{"invalid separator", []string{"-"}, cliGoodDR + "--- apiVersion: v1\n" + cliBadVS, 2, nil, "-#0: unreadable: reading document 0: invalid Yaml document separator: apiVersion: v1"},
		{"default namespace", []string{"-"}, strings.Replace(cliBadVS, ", namespace: prod", "", 1), 1, []string{"VirtualService default/reviews"}, ""},
		// A skipped kind known to be cluster-scoped is named without the
		// default namespace (or one it sets, which the API server clears);
		// an unknown kind's scope is unknown offline: it keeps it.
		{"cluster-scoped skipped kinds", []string{"-"}, "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\n" +
			"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader, namespace: prod}\n---\n" +
			"apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: ca}\n---\n" +
			"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", 0,
			[]string{"-#0: skipped: Namespace prod: not", "-#1: skipped: ClusterRole reader: not", "-#2: skipped: ClusterIssuer ca: not",
				"-#3: skipped: Widget default/w: not"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runValidate(context.Background(), validateOptions{files: c.files, output: "text", namespace: "default"}, strings.NewReader(c.stdin), &out, &errOut)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out.String(), errOut.String())
			}
			for _, want := range c.stdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			if c.stdout == nil && out.Len() != 0 {
				t.Errorf("unexpected stdout:\n%s", out.String())
			}
			if !strings.Contains(errOut.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, errOut.String())
			}
		})
	}
}

func TestRunValidateJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runValidate(context.Background(), validateOptions{files: []string{"-"}, output: "json", namespace: "default"},
		strings.NewReader(cliGoodDR+"---\n"+cliBadVS), &out, &errOut)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	var reports []struct {
		File     string `json:"file"`
		Document int    `json:"document"`
		Valid    bool   `json:"valid"`
		Kind     string `json:"kind"`
		Errors   []struct{ Field, Message string }
	}
	if err := json.Unmarshal(out.Bytes(), &reports); err != nil {
		t.Fatalf("invalid JSON %q: %v", out.String(), err)
	}
	if len(reports) != 2 || !reports[0].Valid || reports[1].Valid || reports[1].Kind != "VirtualService" || reports[1].Document != 1 ||
		len(reports[1].Errors) != 1 || reports[1].Errors[0].Field != "spec.http[0].route[0].weight" {
		t.Errorf("unexpected report: %+v", reports)
	}
	// No report at all is still a JSON array.
	out.Reset()
	if code := runValidate(context.Background(), validateOptions{files: []string{"-"}, output: "json", namespace: "default"}, strings.NewReader("# nothing\n"), &out, &errOut); code != 0 || out.String() != "[]\n" {
		t.Errorf("no document: exit %d, stdout %q; want 0 and []", code, out.String())
	}
	if code := runValidate(context.Background(), validateOptions{files: []string{"-"}, output: "yaml"}, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Errorf("unsupported output format: exit %d, want 2", code)
	}
}

func TestValidateCommandExitCode(t *testing.T) {
	cmd := newValidateCmd()
	cmd.SetArgs([]string{"-f", "-"})
	cmd.SetIn(strings.NewReader(cliBadVS))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	var exit exitError
	if err == nil || !asExit(err, &exit) || exit.code != 1 {
		t.Fatalf("want exitError code 1, got %v", err)
	}
	// No input at all is not an invalid object: 2, as unreadable input.
	cmd = newValidateCmd()
	cmd.SetArgs(nil)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.Execute(); !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, "filename") {
		t.Fatalf("validate without -f: want exitError code 2 naming -f's flag, got %v", err)
	}
}

func asExit(err error, target *exitError) bool {
	e, ok := err.(exitError)
	if ok {
		*target = e
	}
	return ok
}

// TestValidateAcceptsReferential: istioctl validate keeps -x/--referential
// as a hidden flag without effect (istioctl/pkg/validate/validate.go
// NewValidateCommand); scripts passing it must not fail on an unknown flag.
func TestValidateAcceptsReferential(t *testing.T) {
	for _, args := range [][]string{{"-x", "-f", "-"}, {"--referential=false", "-f", "-"}} {
		cmd := newValidateCmd()
		cmd.SetArgs(args)
		cmd.SetIn(strings.NewReader(cliGoodDR))
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		if err := cmd.Execute(); err != nil {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
	}
}

// TestValidateEmptyNamespaceIsDefault: with -n "" an object without a
// namespace was validated (and named) with none; istioctl validate uses
// "default" then (validateResource: defaultNamespace == "" ->
// metav1.NamespaceDefault).
func TestValidateEmptyNamespaceIsDefault(t *testing.T) {
	var out, errOut bytes.Buffer
	in := strings.Replace(cliBadVS, ", namespace: prod", "", 1)
	code := runValidate(context.Background(), validateOptions{files: []string{"-"}, output: "text", namespace: ""}, strings.NewReader(in), &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "-#0: VirtualService default/reviews: ") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// TestClusterScopedKindsMatchClientGo: clusterScopedKinds holds exactly the
// cluster-scoped kinds of the generated clientsets of meshguard's scheme
// (a resource whose client takes no namespace: +genclient:nonNamespaced):
// Kubernetes', apiextensions', cert-manager's and Istio's (none).
func TestClusterScopedKindsMatchClientGo(t *testing.T) {
	want := map[schema.GroupKind]bool{}
	for _, clientset := range []reflect.Type{reflect.TypeFor[kubernetes.Interface](), reflect.TypeFor[apiextensionsclient.Interface](),
		reflect.TypeFor[cmclient.Interface](), reflect.TypeFor[istioclient.Interface]()} {
		clusterScopedClients(t, clientset, want)
	}
	for gk := range want {
		if !clusterScopedKinds[gk] {
			t.Errorf("%s is cluster-scoped in its clientset but not in clusterScopedKinds", gk)
		}
	}
	for gk := range clusterScopedKinds {
		if !want[gk] {
			t.Errorf("clusterScopedKinds has %s, which no clientset lists as cluster-scoped", gk)
		}
	}
	if len(want) < 30 {
		t.Fatalf("found only %d cluster-scoped kinds: the reflection no longer sees the clients", len(want))
	}
}

// clusterScopedClients adds to kinds the kind, as meshguard's scheme knows
// it, of every resource client of clientset that takes no namespace.
func clusterScopedClients(t *testing.T, clientset reflect.Type, kinds map[schema.GroupKind]bool) {
	t.Helper()
	for i := range clientset.NumMethod() {
		group := clientset.Method(i).Type // e.g. RbacV1() RbacV1Interface
		if group.NumIn() != 0 || group.NumOut() != 1 || group.Out(0).Kind() != reflect.Interface {
			continue
		}
		for j := range group.Out(0).NumMethod() {
			res := group.Out(0).Method(j).Type // ClusterRoles() ClusterRoleInterface; Roles(namespace string) RoleInterface
			if res.NumIn() != 0 || res.NumOut() != 1 || res.Out(0).Kind() != reflect.Interface {
				continue
			}
			create, ok := res.Out(0).MethodByName("Create")
			if !ok || create.Type.NumOut() != 2 || create.Type.Out(0).Kind() != reflect.Pointer {
				continue
			}
			obj, ok := reflect.New(create.Type.Out(0).Elem()).Interface().(runtime.Object)
			if !ok {
				continue
			}
			gvks, _, err := scheme.Scheme.ObjectKinds(obj)
			if err != nil {
				continue // a version meshguard's scheme leaves out (apiextensions v1beta1)
			}
			kinds[gvks[0].GroupKind()] = true
		}
	}
}
