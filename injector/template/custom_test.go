package template_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
)

// installFiles returns the default install's three input files.
func installFiles(t *testing.T) (cfg, values, mesh string) {
	d := filepath.Join(injectionDir(t), "istio-default-install")
	return filepath.Join(d, "config"), filepath.Join(d, "values"), filepath.Join(d, "mesh")
}

func loadFiles(t *testing.T, cfg, values, mesh string) *config.Snapshot {
	t.Helper()
	s, err := loadPaths(cfg, values, mesh)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// editedSidecarConfig writes a copy of the default install's config whose
// sidecar template sets one more env var and a changed --domain argument.
func editedSidecarConfig(t *testing.T) string {
	cfgPath, _, _ := installFiles(t)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	edits := []struct{ old, new string }{
		// The first occurrences are in the sidecar template (the first one).
		{"        - name: PILOT_CERT_PROVIDER\n", "        - name: EDITED_BY\n          value: \"meshguard-test-{{ .DeploymentMeta.Name }}\"\n        - name: PILOT_CERT_PROVIDER\n"},
		{"        - $(POD_NAMESPACE).svc.{{ .Values.global.proxy.clusterDomain }}\n", "        - $(POD_NAMESPACE).svc.edited.example\n"},
	}
	for _, e := range edits {
		if !strings.Contains(s, e.old) {
			t.Fatalf("default install config no longer contains %q", e.old)
		}
		s = strings.Replace(s, e.old, e.new, 1)
	}
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func proxyOf(t *testing.T, stream []byte) corev1.Container {
	t.Helper()
	var d struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(stream, &d); err != nil {
		t.Fatal(err)
	}
	ps := d.Spec.Template.Spec
	for _, c := range append(ps.InitContainers, ps.Containers...) {
		if c.Name == "istio-proxy" {
			return c
		}
	}
	t.Fatalf("no istio-proxy in\n%s", stream)
	return corev1.Container{}
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// TestEditedSidecarTemplateIsHonoured: a customised `sidecar` template in
// the injector config is rendered (not replaced by the typed stock one),
// and the injected pod differs from the stock rendering by exactly the edit.
func TestEditedSidecarTemplateIsHonoured(t *testing.T) {
	cfgPath, valuesPath, meshPath := installFiles(t)
	dir := injectionDir(t)
	input, err := os.ReadFile(filepath.Join(dir, "cases", "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stock := loadFiles(t, cfgPath, valuesPath, meshPath)
	edited := loadFiles(t, editedSidecarConfig(t), valuesPath, meshPath)
	if _, ok := edited.Templates.Stock["sidecar"]; ok {
		t.Fatal("the edited sidecar template is recognised as Istio's stock one")
	}
	if _, ok := edited.Templates.Stock["gateway"]; !ok {
		t.Fatal("the unedited gateway template is not recognised as stock")
	}
	for _, native := range []bool{true, false} {
		// The edited config takes its own path (no forcing): the edit must show.
		got := inject(t, withNative(edited, native, false), input)
		proxy := proxyOf(t, got)
		if v, ok := envValue(proxy, "EDITED_BY"); !ok || v != "meshguard-test-hello" {
			t.Errorf("native=%v: istio-proxy env EDITED_BY = %q (present %v), want meshguard-test-hello", native, v, ok)
		}
		if i := slices.Index(proxy.Args, "--domain"); i < 0 || proxy.Args[i+1] != "$(POD_NAMESPACE).svc.edited.example" {
			t.Errorf("native=%v: istio-proxy args %q lack the edited --domain", native, proxy.Args)
		}
		// Against the stock templates rendered the same way, the edit is the
		// only difference.
		want := workloads(t, inject(t, withNative(stock, native, true), input), false)
		d := compareWorkloads(workloads(t, got, false), want)
		joined := strings.Join(d, "\n")
		if len(d) == 0 || !strings.Contains(joined, "EDITED_BY") || !strings.Contains(joined, "edited.example") {
			t.Errorf("native=%v: differences from the stock rendering do not show the edit:\n%s", native, joined)
		}
		for _, line := range d {
			if !strings.Contains(line, "EDITED_BY") && !strings.Contains(line, "edited.example") &&
				!strings.Contains(line, "PILOT_CERT_PROVIDER") && !strings.Contains(line, ".env[") {
				t.Errorf("native=%v: unexpected difference: %s", native, line)
			}
		}
	}
}

// TestConfigMapAndRawKeysAgree: the three inputs given as whole ConfigMaps
// load to the same injection as their raw keys; a ConfigMap without the key
// is an error naming it.
func TestConfigMapAndRawKeysAgree(t *testing.T) {
	cfgPath, valuesPath, meshPath := installFiles(t)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tmp := t.TempDir()
	writeCM := func(file, name string, data map[string]string) string {
		b, err := yaml.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": "istio-system"},
			"data":     data,
		})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, file)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	injectorCM := writeCM("injector.yaml", "istio-sidecar-injector", map[string]string{"config": read(cfgPath), "values": read(valuesPath)})
	meshCM := writeCM("mesh.yaml", "istio", map[string]string{"mesh": read(meshPath)})

	raw := loadFiles(t, cfgPath, valuesPath, meshPath)
	cms := loadFiles(t, injectorCM, injectorCM, meshCM)
	input, err := os.ReadFile(filepath.Join(injectionDir(t), "cases", "hello-probes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, generic := range []bool{false, true} {
		a := inject(t, withNative(raw, true, generic), input)
		b := inject(t, withNative(cms, true, generic), input)
		if !bytes.Equal(a, b) {
			t.Errorf("generic=%v: ConfigMap inputs inject differently from raw keys:\n%s", generic,
				strings.Join(compareWorkloads(workloads(t, b, false), workloads(t, a, false)), "\n"))
		}
	}
	if _, err := loadPaths(meshCM, "", ""); err == nil || !strings.Contains(err.Error(), `ConfigMap istio has no data key "config"`) {
		t.Errorf("the istio ConfigMap as --injectConfigFile: err = %v, want no data key \"config\"", err)
	}
}

// TestUserTemplateSelectedByAnnotationAndAlias: a user's own template from
// values.sidecarInjectorWebhook.templates, selected with
// inject.istio.io/templates (directly and through an alias), is merged onto
// the pod after the sidecar template as Istio merges templates.
func TestUserTemplateSelectedByAnnotationAndAlias(t *testing.T) {
	cfgPath, valuesPath, meshPath := installFiles(t)
	tmp := t.TempDir()
	var values map[string]any
	if err := yaml.Unmarshal([]byte(mustRead(t, valuesPath)), &values); err != nil {
		t.Fatal(err)
	}
	values["sidecarInjectorWebhook"].(map[string]any)["templates"] = map[string]any{
		"team-env": `metadata:
  annotations:
    example.com/injected-by: team-env
spec:
  containers:
  - name: istio-proxy
    env:
    - name: TEAM
      value: "{{ index .ObjectMeta.Labels "team" | default "none" }}-{{ .DeploymentMeta.Name }}"
`,
	}
	vb, _ := yaml.Marshal(values)
	vPath := filepath.Join(tmp, "values")
	cfg := "aliases:\n  with-team: [sidecar, team-env]\n" + mustRead(t, cfgPath)
	cPath := filepath.Join(tmp, "config")
	for p, b := range map[string][]byte{vPath: vb, cPath: []byte(cfg)} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snap := withNative(loadFiles(t, cPath, vPath, meshPath), false, false)
	for _, sel := range []string{"sidecar,team-env", "with-team"} {
		pod := `apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: shop
  labels: {team: payments}
  annotations: {inject.istio.io/templates: "` + sel + `"}
spec:
  containers:
  - name: app
    image: app:1
`
		res, err := kubeinject.InjectData([]byte(pod), snap)
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		var out corev1.Pod
		if err := yaml.Unmarshal(res.Output, &out); err != nil {
			t.Fatal(err)
		}
		if got := out.Annotations["example.com/injected-by"]; got != "team-env" {
			t.Errorf("%s: annotation example.com/injected-by = %q, want team-env", sel, got)
		}
		names := []string{}
		for _, c := range out.Spec.Containers {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, []string{"app", "istio-proxy"}) {
			t.Errorf("%s: containers %v, want [app istio-proxy]", sel, names)
		}
		proxy := out.Spec.Containers[len(out.Spec.Containers)-1]
		if v, _ := envValue(proxy, "TEAM"); v != "payments-app" {
			t.Errorf("%s: istio-proxy env TEAM = %q, want payments-app", sel, v)
		}
		if _, ok := envValue(proxy, "PILOT_CERT_PROVIDER"); !ok {
			t.Errorf("%s: the sidecar template's env was replaced instead of merged: %v", sel, proxy.Env)
		}
		if !strings.Contains(out.Annotations["sidecar.istio.io/status"], `"containers":["istio-proxy"]`) {
			t.Errorf("%s: status %s", sel, out.Annotations["sidecar.istio.io/status"])
		}
	}
	// An unknown template name is Istio's error, not a silent fallback.
	bad := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  annotations: {inject.istio.io/templates: nope}\nspec:\n  containers: [{name: a, image: a}]\n"
	if _, err := kubeinject.InjectData([]byte(bad), snap); err == nil || !strings.Contains(err.Error(), `requested template "nope" not found`) {
		t.Errorf("unknown template: err = %v", err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
