package kubeinject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/test/conformance"
)

// The extra Istio goldens (testdata/istio-extra) are further cases of Istio's
// pkg/kube/inject TestInjection that run with a case's own settings (values
// and mesh config, as inject_test.go gives them) or expect an error. They are
// Istio's output, not ours. MESHGUARD_ISTIO_EXTRA_DIR points the test at
// another directory of the same layout (to try cases before adding them).

// extraCase is one line of testdata/istio-extra/cases.tsv.
type extraCase struct {
	input, golden string
	native        bool
	values, mesh  string // JSON fragments ("-": none)
	wantErr       string // substring of the expected error ("-": none)
}

func istioExtraDir() string {
	if d := os.Getenv("MESHGUARD_ISTIO_EXTRA_DIR"); d != "" {
		return d
	}
	return filepath.Join("testdata", "istio-extra")
}

// readExtraCases reads dir/cases.tsv with test/conformance's strict reader
// (every line well-formed, every file under cases/ named, every named file
// present).
func readExtraCases(t *testing.T, dir string) []extraCase {
	t.Helper()
	var cases []extraCase
	for _, c := range conformance.ExtraInjectionCases(t, dir) {
		cases = append(cases, extraCase{input: c.Input, golden: c.Golden, native: c.Native, values: c.Values, mesh: c.Mesh, wantErr: c.WantErr})
	}
	return cases
}

// extraSnapshot loads Istio's defaults with the case's values (merged over
// {"global":{"nativeSidecars":…}}) and mesh config.
func extraSnapshot(t *testing.T, c extraCase) *config.Snapshot {
	t.Helper()
	values := map[string]any{}
	if c.values != "-" {
		if err := json.Unmarshal([]byte(c.values), &values); err != nil {
			t.Fatalf("values of %s: %v", c.golden, err)
		}
	}
	global, _ := values["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		values["global"] = global
	}
	global["nativeSidecars"] = c.native
	vb, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	var mesh []byte
	if c.mesh != "-" {
		if mesh, err = yaml.JSONToYAML([]byte(c.mesh)); err != nil {
			t.Fatalf("mesh of %s: %v", c.golden, err)
		}
	}
	s, err := config.Load(mesh, vb)
	if err != nil {
		t.Fatalf("settings of %s: %v", c.golden, err)
	}
	return s
}

// TestIstioExtraGoldens runs every case of testdata/istio-extra through the
// code path of `meshguard inject -f` and compares as TestInjectionConformance
// does; error cases must fail naming what Istio's error names.
func TestIstioExtraGoldens(t *testing.T) {
	dir := istioExtraDir()
	cases := readExtraCases(t, dir)
	passed := 0
	for _, c := range cases {
		name := c.golden
		if c.wantErr != "-" {
			name = c.input
		}
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(dir, "cases", c.input))
			if err != nil {
				t.Fatal(err)
			}
			res, err := InjectData(in, extraSnapshot(t, c))
			if c.wantErr != "-" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), c.wantErr) {
					t.Fatalf("want an error naming %q (as Istio's), got %v", c.wantErr, err)
				}
				passed++
				return
			}
			if err != nil {
				t.Fatalf("inject failed: %v", err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "cases", c.golden))
			if err != nil {
				t.Fatal(err)
			}
			want, err = toTemplateOf86c9f01(want)
			if err != nil {
				t.Fatal(err)
			}
			diffs, err := compareWorkloads(res.Output, want)
			if err != nil {
				t.Fatal(err)
			}
			if matchesGolden(t, c.golden, c.native, diffs) {
				passed++
			}
		})
	}
	t.Logf("extra Istio goldens: %d/%d cases match", passed, len(cases))
}

// toTemplateOf86c9f01 brings a golden that Istio generated at another commit
// than 86c9f01 (the commit of ../shared's goldens and install inputs) to that
// commit's sidecar template, changing only what the template itself changed,
// as all 55 goldens of ../shared and the install's template show it. Older
// goldens: the GOMAXPROCS env is gone, the resourceFieldRef divisors are "1"
// (were "0"), and the istio-ca-crl ConfigMap volume follows istiod-ca-cert
// (volume, proxy mount, status annotation). Newer goldens: the template
// envs ISTIO_NATIVE_SIDECAR and ISTIO_ENVOY_ADMIN_TRANSPORT=TCP (its
// default) do not exist at 86c9f01. A golden already at 86c9f01 is unchanged.
func toTemplateOf86c9f01(stream []byte) ([]byte, error) {
	var out bytes.Buffer
	for i, doc := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("golden document %d: %w", i+1, err)
		}
		upgradeTemplateDrift(obj)
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out.Write(b)
		out.WriteString("---\n")
	}
	return out.Bytes(), nil
}

func upgradeTemplateDrift(v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			upgradeTemplateDrift(e)
		}
	case map[string]any:
		for k, e := range x {
			switch k {
			case "env":
				x[k] = upgradeEnv(e)
			case "volumes":
				x[k] = insertAfterNamed(e, "istiod-ca-cert", "istio-ca-crl", map[string]any{
					"name": "istio-ca-crl", "configMap": map[string]any{"name": "istio-ca-crl", "optional": true},
				})
			case "volumeMounts":
				if x["name"] == "istio-proxy" {
					x[k] = insertAfterNamed(e, "istiod-ca-cert", "istio-ca-crl", map[string]any{
						"name": "istio-ca-crl", "mountPath": "/var/run/secrets/istio/crl",
					})
				}
			case "sidecar.istio.io/status":
				if s, ok := e.(string); ok {
					x[k] = upgradeStatus(s)
				}
			}
			upgradeTemplateDrift(x[k])
		}
	}
}

func upgradeEnv(v any) any {
	l, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, 0, len(l))
	for _, e := range l {
		m, _ := e.(map[string]any)
		switch m["name"] {
		case "GOMAXPROCS", "ISTIO_NATIVE_SIDECAR":
			continue
		case "ISTIO_ENVOY_ADMIN_TRANSPORT":
			if m["value"] == "TCP" {
				continue
			}
		}
		if vf, ok := m["valueFrom"].(map[string]any); ok {
			if rf, ok := vf["resourceFieldRef"].(map[string]any); ok && rf["divisor"] == "0" {
				rf["divisor"] = "1"
			}
		}
		out = append(out, e)
	}
	return out
}

// insertAfterNamed inserts add after the element named after unless an
// element named name exists.
func insertAfterNamed(v any, after, name string, add map[string]any) any {
	l, ok := v.([]any)
	if !ok {
		return v
	}
	at := -1
	for i, e := range l {
		m, _ := e.(map[string]any)
		switch m["name"] {
		case name:
			return v
		case after:
			at = i
		}
	}
	if at < 0 {
		return v
	}
	out := append(append(append([]any{}, l[:at+1]...), add), l[at+1:]...)
	return out
}

func upgradeStatus(s string) string {
	var st map[string]any
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return s
	}
	vols, _ := st["volumes"].([]any)
	var out []any
	has := false
	for _, v := range vols {
		if v == "istio-ca-crl" {
			has = true
		}
	}
	for _, v := range vols {
		out = append(out, v)
		if v == "istiod-ca-cert" && !has {
			out = append(out, "istio-ca-crl")
		}
	}
	if out != nil {
		st["volumes"] = out
	}
	b, err := json.Marshal(st)
	if err != nil {
		return s
	}
	return string(b)
}
