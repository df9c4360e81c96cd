package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/conformance"
)

// installDir is Istio's injection test data (test/conformance): the
// default install's injector inputs and the golden cases.
func installDir(t *testing.T) string { return conformance.Dir(t, "injection") }

func runInject(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newInjectCmd()
	cmd.SetArgs(args)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}

// TestInjectIstioctlFlags: istioctl's flag names, meshguard's older names
// (aliases) and whole ConfigMaps give the same output; an alias and its flag
// together are refused.
func TestInjectIstioctlFlags(t *testing.T) {
	d := installDir(t)
	inst := filepath.Join(d, "istio-default-install")
	app := filepath.Join(d, "cases", "hello-probes.yaml")
	cfg, values, mesh := filepath.Join(inst, "config"), filepath.Join(inst, "values"), filepath.Join(inst, "mesh")

	want, err := runInject(t, "--injectConfigFile", cfg, "--valuesFile", values, "--meshConfigFile", mesh, "-f", app)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, "name: istio-proxy") {
		t.Fatalf("not injected:\n%s", want)
	}
	got, err := runInject(t, "--injectConfigFile", cfg, "--values", values, "--mesh-config", mesh, "-f", app)
	if err != nil || got != want {
		t.Errorf("aliases --values/--mesh-config: err %v, same output %v", err, got == want)
	}

	tmp := t.TempDir()
	cm := func(name string, data map[string]string) string {
		b, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]string{"name": name}, "data": data})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, name+".yaml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	injector := cm("istio-sidecar-injector", map[string]string{"config": read(cfg), "values": read(values)})
	meshCM := cm("istio", map[string]string{"mesh": read(mesh)})
	outFile := filepath.Join(tmp, "out.yaml")
	if _, err := runInject(t, "--injectConfigFile", injector, "--valuesFile", injector, "--meshConfigFile", meshCM, "-f", app, "-o", outFile); err != nil {
		t.Fatal(err)
	}
	if got := read(outFile); got != want {
		t.Errorf("ConfigMap inputs with -o: output differs from raw keys")
	}

	_, err = runInject(t, "--valuesFile", values, "--values", values, "-f", app)
	var exit exitError
	if !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, "--valuesFile and its alias --values") {
		t.Errorf("alias conflict: %v", err)
	}
	_, err = runInject(t, "--injectConfigFile", meshCM, "-f", app)
	if !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, `has no data key "config"`) {
		t.Errorf("wrong ConfigMap: %v", err)
	}
}
