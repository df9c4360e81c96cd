package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/template"
)

// Istio's injector reads three inputs: the `config` and `values` keys of
// ConfigMap istio-sidecar-injector and the `mesh` key of ConfigMap istio.
// This file reads them, as raw key content or as whole ConfigMap YAML, from
// files (meshguard inject --injectConfigFile/--valuesFile/--meshConfigFile,
// like istioctl kube-inject) or from the cluster (webhook), into one
// Snapshot.

// Names of Istio's ConfigMaps and their keys (Istio's defaults).
const (
	InjectorConfigMapName = "istio-sidecar-injector"
	MeshConfigMapName     = "istio"
	KeyConfig             = "config"
	KeyValues             = "values"
	KeyMesh               = "mesh"
)

// MaxInputBytes bounds one input file (a ConfigMap holds at most 1 MiB).
const MaxInputBytes = 4 << 20

// InjectorConfig is the `config` key of ConfigMap istio-sidecar-injector
// (Istio pkg/kube/inject/inject.go Config). Unknown keys (e.g. the legacy
// `template`) are ignored, as Istio does.
type InjectorConfig struct {
	Policy               string                 `json:"policy"`
	DefaultTemplates     []string               `json:"defaultTemplates"`
	Templates            map[string]string      `json:"templates"`
	Aliases              map[string][]string    `json:"aliases"`
	NeverInjectSelector  []metav1.LabelSelector `json:"neverInjectSelector"`
	AlwaysInjectSelector []metav1.LabelSelector `json:"alwaysInjectSelector"`
	InjectedAnnotations  map[string]string      `json:"injectedAnnotations"`
}

// Templates are the injection templates in effect, parsed once.
type Templates struct {
	Set *template.Set
	// Stock names the templates whose text is Istio's stock template of a
	// known version (template.StockOf): the typed injector builds those.
	Stock map[string]template.StockVersion
	// Defaults are used when a pod has no inject.istio.io/templates.
	Defaults []string
	Aliases  map[string][]string
	// Values is the injector values as templates see them (`.Values`).
	Values map[string]any
	// AlwaysGeneric renders even Istio's stock templates generically
	// instead of building them with the typed injector: for the tests that
	// compare the two paths, and benchmarks.
	AlwaysGeneric bool
}

// Select is the template names a pod with these annotations gets (Istio
// selectTemplates, aliases expanded).
func (t *Templates) Select(annotations map[string]string) []string {
	return template.SelectTemplates(annotations, t.Defaults, t.Aliases)
}

// IstioInputs are the three inputs as raw key content (empty: not given).
// The Source fields name where each came from, for errors.
type IstioInputs struct {
	Config, Values, Mesh                   []byte
	ConfigSource, ValuesSource, MeshSource string
}

// ReadIstioFiles reads the three input files (empty path: not given); each
// may hold the key's content or the whole ConfigMap.
func ReadIstioFiles(configPath, valuesPath, meshPath string) (IstioInputs, error) {
	in := IstioInputs{ConfigSource: configPath, ValuesSource: valuesPath, MeshSource: meshPath}
	var errs []error
	read := func(path, key string) []byte {
		if path == "" {
			return nil
		}
		b, err := readBounded(path)
		if err == nil {
			b, err = KeyContent(b, key)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
		return b
	}
	in.Config = read(configPath, KeyConfig)
	in.Values = read(valuesPath, KeyValues)
	in.Mesh = read(meshPath, KeyMesh)
	return in, errors.Join(errs...)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxInputBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxInputBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxInputBytes)
	}
	return b, nil
}

// KeyContent returns data itself, or, when data is a whole ConfigMap
// (kind: ConfigMap), the content of its key.
func KeyContent(data []byte, key string) ([]byte, error) {
	var cm struct {
		APIVersion string                `json:"apiVersion"`
		Kind       string                `json:"kind"`
		Metadata   struct{ Name string } `json:"metadata"`
		Data       map[string]string     `json:"data"`
	}
	// Raw key content is a YAML or JSON mapping without kind; anything that
	// does not parse is left to the key's own parser to report.
	if err := yaml.Unmarshal(data, &cm); err != nil || cm.Kind != "ConfigMap" {
		return data, nil
	}
	v, ok := cm.Data[key]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s has no data key %q (have %s)", cm.Metadata.Name, key, strings.Join(sortedKeys(cm.Data), ", "))
	}
	return []byte(v), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// LoadIstio validates the three inputs together into one Snapshot. The
// injector config's policy, selectors and injected annotations take the
// place of the values' (Istio reads them from `config` only); the
// templates are the config's plus values.sidecarInjectorWebhook.templates,
// which win on a name clash, as Istio's chart merges them into `config`.
func LoadIstio(in IstioInputs) (*Snapshot, error) {
	src := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	var cfg *InjectorConfig
	if len(strings.TrimSpace(string(in.Config))) > 0 {
		cfg = &InjectorConfig{}
		if err := yaml.Unmarshal(in.Config, cfg); err != nil {
			return nil, fmt.Errorf("injector config %s: %w", src(in.ConfigSource, "(config)"), err)
		}
	}
	values := map[string]any{}
	if len(strings.TrimSpace(string(in.Values))) > 0 {
		if err := yaml.Unmarshal(in.Values, &values); err != nil {
			return nil, fmt.Errorf("injector values %s: %w", src(in.ValuesSource, "(values)"), err)
		}
		if values == nil {
			values = map[string]any{}
		}
	}
	typedValues, err := withConfig(values, cfg)
	if err != nil {
		return nil, err
	}
	s, err := Load(in.Mesh, typedValues)
	if err != nil {
		return nil, err
	}
	t, err := templatesOf(cfg, values, s)
	if err != nil {
		return nil, fmt.Errorf("injector config %s: %w", src(in.ConfigSource, "(config)"), err)
	}
	s.Templates = t
	return s, nil
}

// withConfig returns the values JSON the typed Values are parsed from:
// values with the config's policy, selectors and injected annotations.
func withConfig(values map[string]any, cfg *InjectorConfig) ([]byte, error) {
	if cfg == nil {
		return json.Marshal(values)
	}
	v, err := deepCopyJSON(values)
	if err != nil {
		return nil, err
	}
	sub := func(m map[string]any, k string) map[string]any {
		if c, ok := m[k].(map[string]any); ok {
			return c
		}
		c := map[string]any{}
		m[k] = c
		return c
	}
	if cfg.Policy != "" {
		sub(sub(v, "global"), "proxy")["autoInject"] = cfg.Policy
	}
	siw := sub(v, "sidecarInjectorWebhook")
	siw["neverInjectSelector"] = cfg.NeverInjectSelector
	siw["alwaysInjectSelector"] = cfg.AlwaysInjectSelector
	siw["injectedAnnotations"] = cfg.InjectedAnnotations
	return json.Marshal(v)
}

func deepCopyJSON(m map[string]any) (map[string]any, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	return out, json.Unmarshal(b, &out)
}

// templatesOf parses the templates; nil when neither the config nor the
// values carry any (meshguard's built-in templates only).
func templatesOf(cfg *InjectorConfig, values map[string]any, s *Snapshot) (*Templates, error) {
	raw := map[string]string{}
	var defaults []string
	var aliases map[string][]string
	if cfg != nil {
		for k, v := range cfg.Templates {
			raw[k] = v
		}
		defaults, aliases = cfg.DefaultTemplates, cfg.Aliases
	}
	siw, _ := values["sidecarInjectorWebhook"].(map[string]any)
	if vt, ok := siw["templates"].(map[string]any); ok {
		for k, v := range vt {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("values sidecarInjectorWebhook.templates.%s: not a string", k)
			}
			raw[k] = str
		}
	}
	if vd, ok := siw["defaultTemplates"].([]any); ok && len(vd) > 0 {
		defaults = nil
		for i, d := range vd {
			str, ok := d.(string)
			if !ok {
				return nil, fmt.Errorf("values sidecarInjectorWebhook.defaultTemplates[%d]: not a string", i)
			}
			defaults = append(defaults, str)
		}
	}
	if cfg == nil && len(raw) == 0 {
		return nil, nil
	}
	if len(defaults) == 0 {
		defaults = []string{"sidecar"} // Istio UnmarshalConfig's default
	}
	set, err := template.Parse(raw, template.Options{ProxyConfigJSON: ProxyConfigJSON})
	if err != nil {
		return nil, err
	}
	t := &Templates{Set: set, Stock: map[string]template.StockVersion{}, Defaults: defaults, Aliases: aliases, Values: values}
	for name, text := range raw {
		if v, ok := template.StockOf(name, text); ok {
			t.Stock[name] = v
		}
	}
	if len(values) == 0 {
		// No values given: the templates see meshguard's defaults.
		b, err := json.Marshal(s.Values)
		if err != nil {
			return nil, err
		}
		t.Values = map[string]any{}
		if err := json.Unmarshal(b, &t.Values); err != nil {
			return nil, err
		}
	}
	return t, nil
}
