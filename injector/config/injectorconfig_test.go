package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestLoadInputDataRefuses(t *testing.T) {
	for _, tc := range []struct {
		name              string
		cfg, values, mesh string
		wantErr           string
	}{
		{"bad policy", "policy: maybe\n", "", "", "config.policy"},
		{"default template not stock", "defaultTemplates: [nosuch]\n", "", "", `template "nosuch"`},
		{"alias to a template not stock", "defaultTemplates: [gw]\naliases: {gw: [nosuch]}\n", "", "", `template "nosuch"`},
		{"default template not defined", "templates: {mine: 'spec: {}'}\ndefaultTemplates: [other]\n", "", "", `template "other"`},
		{"sidecar default not defined", "templates: {mine: 'spec: {}'}\n", "", "", `template "sidecar"`},
		{"configmap without key", "kind: ConfigMap\ndata: {values: '{}'}\n", "", "", `no data key "config"`},
		{"mesh configmap without key", "", "", "kind: ConfigMap\ndata: {config: ''}\n", `no data key "mesh"`},
		// The config's policy and selectors are written into the values: a
		// values section that is not an object must still be refused, as it
		// is without a config (Istio's NewValuesConfig refuses it).
		{"values global not an object, with a config", "policy: enabled\n", `{"global": "oops"}`, "", "global"},
		{"values global.proxy not an object, with a config", "policy: enabled\n", `{"global": {"proxy": 3}}`, "", "global.proxy"},
		{"values sidecarInjectorWebhook not an object, with a config", "policy: enabled\n", `{"sidecarInjectorWebhook": [1]}`, "", "sidecarInjectorWebhook"},
		// Keys Istio's Config does not have are refused (Istio ignores
		// them): a misspelt key must not leave its setting at the default.
		{"config key misspelt", "tempaltes: {sidecar: 'spec: {}'}\n", "", "", `unknown field "tempaltes"`},
		{"config selector key misspelt", "neverInjectSelector: [{matchLabel: {legacy: \"true\"}}]\n", "", "", `unknown field "neverInjectSelector[0].matchLabel"`},
		{"a bare template as the config", "metadata:\n  labels: {hello: world}\n", "", "", `unknown field "metadata"`},
		// Duplicate keys are refused where Istio keeps the last, in all three inputs.
		{"config duplicate key", "policy: enabled\npolicy: disabled\n", "", "", `"policy" already set`},
		{"values duplicate key", "", "global:\n  hub: a\n  hub: b\n", "", "injector values: yaml: unmarshal errors:\n  line 3: key \"hub\" already set"},
		{"mesh duplicate key", "", "", "trustDomain: a\ntrustDomain: b\n", `"trustDomain" already set`},
		{"values defaultTemplates not a list", "", `{"sidecarInjectorWebhook": {"defaultTemplates": "gateway"}}`, "", "sidecarInjectorWebhook.defaultTemplates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := func(s string) []byte {
				if s == "" {
					return nil
				}
				return []byte(s)
			}
			_, err := Inputs{Config: b(tc.cfg), Values: b(tc.values), Mesh: b(tc.mesh)}.Load()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestLoadInputDataAppliesConfig: the config's policy, selectors and
// injected annotations are what injection reads (Istio's
// pkg/kube/inject/inject.go injectRequired reads config.Policy,
// NeverInjectSelector and AlwaysInjectSelector).
func TestLoadInputDataAppliesConfig(t *testing.T) {
	s, err := Inputs{Config: []byte("policy: disabled\nneverInjectSelector: [{matchLabels: {skip: \"yes\"}}]\nalwaysInjectSelector: [{matchLabels: {mesh: \"yes\"}}]\ninjectedAnnotations: {a: b}\n")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if s.Values.Global.Proxy.AutoInject != "disabled" || len(s.NeverInject) != 1 || s.Values.SidecarInjectorWebhook.InjectedAnnotations["a"] != "b" {
		t.Fatalf("config not applied: autoInject=%q never=%d annotations=%v", s.Values.Global.Proxy.AutoInject, len(s.NeverInject), s.Values.SidecarInjectorWebhook.InjectedAnnotations)
	}
	if len(s.AlwaysInject) != 1 || !s.AlwaysInject[0].Matches(labels.Set{"mesh": "yes"}) {
		t.Fatalf("alwaysInjectSelector from config not applied: %v", s.AlwaysInject)
	}
}

func TestLoadInputsPrecedence(t *testing.T) {
	cfg := `policy: disabled
defaultTemplates: [sidecar]
aliases:
  both: [sidecar, extra]
neverInjectSelector:
- matchLabels: {legacy: "true"}
injectedAnnotations:
  example.com/from: config
templates:
  sidecar: "metadata: {}"
  extra: "metadata: {}"
`
	values := `{"global": {"proxy": {"autoInject": "enabled"}},
"sidecarInjectorWebhook": {"injectedAnnotations": {"example.com/from": "values"},
  "defaultTemplates": ["mine"], "templates": {"extra": "metadata: {labels: {a: b}}", "mine": "metadata: {}"}}}`
	s, err := Inputs{Config: []byte(cfg), Values: []byte(values)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Values.Global.Proxy.AutoInject; got != "disabled" {
		t.Errorf("policy: autoInject %q, want the config's disabled", got)
	}
	if len(s.NeverInject) != 1 || !s.NeverInject[0].Matches(labels.Set{"legacy": "true"}) {
		t.Errorf("neverInjectSelector from config not applied: %v", s.NeverInject)
	}
	if got := s.Values.SidecarInjectorWebhook.InjectedAnnotations["example.com/from"]; got != "config" {
		t.Errorf("injectedAnnotations: %q, want the config's", got)
	}
	tp := s.Templates
	if got := strings.Join(tp.Defaults, ","); got != "mine" {
		t.Errorf("defaultTemplates %q, want the values' non-empty list", got)
	}
	if got := strings.Join(tp.Select(map[string]string{"inject.istio.io/templates": "both"}), ","); got != "sidecar,extra" {
		t.Errorf("alias: %q", got)
	}
	if !tp.Set.Has("mine") || !tp.Set.Has("extra") {
		t.Errorf("templates: %v", tp.Set.Names())
	}
	if len(tp.Stock) != 0 {
		t.Errorf("no template here is Istio's stock text: %v", tp.Stock)
	}
	// The templates see the values as given, not the config overlay.
	if got := tp.Values["global"].(map[string]any)["proxy"].(map[string]any)["autoInject"]; got != "enabled" {
		t.Errorf(".Values.global.proxy.autoInject = %v, want the values' own", got)
	}
}

func TestLoadInputsErrorsNameTheSource(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Inputs
		want string
	}{
		{"config not YAML", Inputs{Config: []byte("templates: ["), ConfigSource: "cfg.yaml"}, "injector config cfg.yaml"},
		{"template does not parse", Inputs{Config: []byte("templates:\n  bad: '{{ .X'\n"), ConfigSource: "cfg.yaml"}, `template "bad"`},
		{"bad policy", Inputs{Config: []byte("policy: sometimes\n")}, "config.policy"},
		{"mesh ConfigMap without its key", Inputs{Mesh: []byte("kind: ConfigMap\nmetadata: {name: istio}\ndata: {config: x}\n"), MeshSource: "m.yaml"}, `mesh config m.yaml: ConfigMap istio has no data key "mesh"`},
		{"bad selector", Inputs{Config: []byte("neverInjectSelector:\n- matchExpressions: [{key: a, operator: Bogus}]\n")}, "neverInjectSelector"},
		{"values template not a string", Inputs{Values: []byte(`{"sidecarInjectorWebhook": {"templates": {"x": 1}}}`)}, "sidecarInjectorWebhook.templates.x"},
	} {
		if _, err := c.in.Load(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
	// A values error with no mesh config file given names the values file
	// only (it read "injector values v.yaml, mesh config: ...").
	bad := Inputs{Values: []byte("global:\n  proxy:\n    image: [1]\n"), ValuesSource: "v.yaml"}
	if _, err := bad.Load(); err == nil || !strings.HasPrefix(err.Error(), "injector values v.yaml: ") || strings.Contains(err.Error(), "mesh config") {
		t.Errorf("values error without a mesh file: %v", err)
	}
	bad.MeshSource = "m.yaml"
	if _, err := bad.Load(); err == nil || !strings.HasPrefix(err.Error(), "injector values v.yaml, mesh config m.yaml: ") {
		t.Errorf("values error with a mesh file: %v", err)
	}
}

func TestKeyContent(t *testing.T) {
	raw := []byte("defaultTemplates: [sidecar]\n")
	if got, err := KeyContent(raw, KeyConfig); err != nil || string(got) != string(raw) {
		t.Errorf("raw content: %q %v", got, err)
	}
	cm := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'trustDomain: x'\n")
	if got, err := KeyContent(cm, KeyMesh); err != nil || string(got) != "trustDomain: x" {
		t.Errorf("ConfigMap key: %q %v", got, err)
	}
	if _, err := KeyContent(cm, KeyConfig); err == nil || !strings.Contains(err.Error(), `ConfigMap istio has no data key "config" (have mesh)`) {
		t.Errorf("missing key: %v", err)
	}
	// Without templates anywhere, Istio's stock ones are in effect,
	// sidecar by default, and grpc-agent can be asked for.
	s, err := Inputs{Mesh: []byte("trustDomain: x\n")}.Load()
	if err != nil || s.Templates == nil || s.Mesh.GetTrustDomain() != "x" {
		t.Fatalf("mesh only: templates %v err %v", s.Templates, err)
	}
	if _, stock := s.Templates.Stock["grpc-agent"]; !stock || !slices.Equal(s.Templates.Select(nil), []string{"sidecar"}) {
		t.Errorf("mesh only: stock %v, default selection %v", s.Templates.Stock, s.Templates.Select(nil))
	}
}

// TestLoadFilesTakesKeyContentOnly: `meshguard serve --mesh-config` is also
// read by ext_authz (meshconfig.LoadFile, no ConfigMap wrapper), so the
// injector's file loader refuses a whole ConfigMap there, while
// Inputs.Load (meshguard inject) accepts it.
func TestLoadFilesTakesKeyContentOnly(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw := write("mesh-raw", "trustDomain: example.org\n")
	cm := write("mesh-cm", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'trustDomain: example.org'\n")
	if s, err := LoadFiles(raw, ""); err != nil || s.Mesh.GetTrustDomain() != "example.org" {
		t.Fatalf("raw mesh: %v", err)
	}
	if _, err := LoadFiles(cm, ""); err == nil || !strings.Contains(err.Error(), "whole ConfigMap is not accepted") || !strings.Contains(err.Error(), cm) {
		t.Fatalf("ConfigMap mesh in LoadFiles: err = %v, want a refusal naming the file", err)
	}
	cmData, err := os.ReadFile(cm)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := (Inputs{Mesh: cmData}).Load(); err != nil || s.Mesh.GetTrustDomain() != "example.org" {
		t.Fatalf("ConfigMap mesh in Inputs.Load: %v", err)
	}
}
