package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/template"
	"github.com/meshguard/meshguard/internal/manifest"
)

// Istio's injector reads three inputs: the `config` and `values` keys of
// ConfigMap istio-sidecar-injector and the `mesh` key of ConfigMap istio.
// This file is the one loader of them, as raw key content or as whole
// ConfigMap YAML, from files (meshguard inject --injectConfigFile/
// --valuesFile/--meshConfigFile, like istioctl kube-inject; the webhook's
// file flags) or from the cluster (the webhook), into one Snapshot.

// Names of Istio's ConfigMaps and their keys (Istio's defaults).
const (
	InjectorConfigMapName = "istio-sidecar-injector"
	MeshConfigMapName     = "istio"
	KeyConfig             = "config"
	KeyValues             = "values"
	KeyMesh               = "mesh"
)

// MaxInputBytes bounds one input file (a ConfigMap holds at most 1 MiB; a
// file may hold a whole ConfigMap YAML with escaping): every CLI input's
// limit.
const MaxInputBytes = manifest.DefaultMaxInputBytes

// InjectorConfig is the `config` key of Istio's istio-sidecar-injector
// ConfigMap (Istio's pkg/kube/inject/webhook.go Config).
type InjectorConfig struct {
	Policy               string                 `json:"policy,omitempty"`
	NeverInjectSelector  []metav1.LabelSelector `json:"neverInjectSelector,omitempty"`
	AlwaysInjectSelector []metav1.LabelSelector `json:"alwaysInjectSelector,omitempty"`
	InjectedAnnotations  map[string]string      `json:"injectedAnnotations,omitempty"`
	DefaultTemplates     []string               `json:"defaultTemplates,omitempty"`
	Aliases              map[string][]string    `json:"aliases,omitempty"`
	Templates            map[string]string      `json:"templates,omitempty"`
	// Template is Istio's deprecated single template; stock installs carry a
	// placeholder there that Istio ignores when templates is set.
	Template string `json:"template,omitempty"`
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
	// typedAgrees caches TypedAgrees per template name; shared by copies.
	typedAgrees *agreement
}

// agreement is read on every request and written once per template, so
// reads take no lock: byName is replaced, never changed in place.
type agreement struct {
	mu     sync.Mutex // one check at a time
	byName atomic.Pointer[map[string]bool]
}

// TypedAgrees reports whether the typed injector builds template name as
// these templates and values render it, running check (the injector's
// comparison of both paths) once per loaded configuration and template:
// values the typed injector does not model make it false, and the pods then
// take the generic renderer.
func (t *Templates) TypedAgrees(name string, check func() bool) bool {
	a := t.typedAgrees
	if a == nil { // Templates built by hand (tests)
		return check()
	}
	if m := a.byName.Load(); m != nil {
		if ok, done := (*m)[name]; done {
			return ok
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old := map[string]bool{}
	if m := a.byName.Load(); m != nil {
		if ok, done := (*m)[name]; done {
			return ok
		}
		old = *m
	}
	ok := check()
	next := maps.Clone(old)
	next[name] = ok
	a.byName.Store(&next)
	return ok
}

// Select is the template names a pod with these annotations gets (Istio's
// pkg/kube/inject/inject.go selectTemplates, aliases expanded).
func (t *Templates) Select(annotations map[string]string) []string {
	return template.SelectTemplates(annotations, t.Defaults, t.Aliases)
}

// Inputs are Istio's three injector inputs, each the key's content or the
// whole ConfigMap YAML (nil or blank: not given, Istio's defaults). The
// Source fields say where each came from, for errors.
type Inputs struct {
	Config, Values, Mesh                   []byte
	ConfigSource, ValuesSource, MeshSource string
	// keyContentOnly refuses a whole ConfigMap (LoadFiles).
	keyContentOnly bool
}

// KeyContent returns data itself, or, when data is a whole ConfigMap
// (kind: ConfigMap), the content of its key. A ConfigMap must be one YAML
// document (manifest.SingleDocument) and its keys are read strictly: a data
// key given twice is an error, as in the key's content, rather than its last
// value. Raw key content is checked by the key's own parser (the same rules).
func KeyContent(data []byte, key string) ([]byte, error) {
	var cm struct {
		Kind     string                `json:"kind"`
		Metadata struct{ Name string } `json:"metadata"`
		Data     map[string]string     `json:"data"`
	}
	// Raw key content is a YAML or JSON mapping without kind; anything that
	// does not parse is left to the key's own parser to report.
	if err := yaml.Unmarshal(data, &cm); err != nil || cm.Kind != "ConfigMap" {
		return data, nil //nolint:nilerr // not a ConfigMap: raw key content
	}
	if err := manifest.SingleDocument(data); err != nil {
		return nil, fmt.Errorf("ConfigMap %s: %w", cm.Metadata.Name, err)
	}
	if _, err := yaml.YAMLToJSONStrict(data); err != nil {
		return nil, fmt.Errorf("ConfigMap %s: %w", cm.Metadata.Name, err)
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

func blank(b []byte) bool { return len(strings.TrimSpace(string(b))) == 0 }

// Load validates the three inputs together into one Snapshot. The
// injector config's policy, selectors and injected annotations take the
// place of the values' (Istio's pkg/kube/inject/webhook.go injectRequired
// reads them from Config only); the templates are the config's plus
// values.sidecarInjectorWebhook.templates, which win on a name clash, as
// Istio's chart merges them into `config`.
func (in Inputs) Load() (*Snapshot, error) {
	name := func(what, src string) string {
		if src == "" {
			return what
		}
		return what + " " + src
	}
	cfgName, valuesName, meshName := name("injector config", in.ConfigSource), name("injector values", in.ValuesSource), name("mesh config", in.MeshSource)
	var err error
	for _, f := range []struct {
		data      *[]byte
		key, name string
	}{{&in.Config, KeyConfig, cfgName}, {&in.Values, KeyValues, valuesName}, {&in.Mesh, KeyMesh, meshName}} {
		content, err := KeyContent(*f.data, f.key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if in.keyContentOnly && len(content) != len(*f.data) {
			return nil, fmt.Errorf("%s: a whole ConfigMap is not accepted here; give the content of its key %q", f.name, f.key)
		}
		*f.data = content
	}
	var cfg *InjectorConfig
	if !blank(in.Config) {
		if cfg, err = parseInjectorConfig(in.Config); err != nil {
			return nil, fmt.Errorf("%s: %w", cfgName, err)
		}
	}
	values := map[string]any{}
	if !blank(in.Values) {
		// A duplicate key, or a second document, is an error, as in the
		// mesh config (Istio keeps the last key, the first document).
		if err := manifest.SingleDocument(in.Values); err != nil {
			return nil, fmt.Errorf("%s: %w", valuesName, err)
		}
		js, err := yaml.YAMLToJSONStrict(in.Values)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", valuesName, err)
		}
		if err := json.Unmarshal(js, &values); err != nil {
			return nil, fmt.Errorf("%s: %w", valuesName, err)
		}
		if values == nil {
			values = map[string]any{}
		}
	}
	typedValues, err := withConfig(values, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", valuesName, err)
	}
	s, err := Load(in.Mesh, typedValues)
	if err != nil {
		// Either input may be at fault (a setting of one checked against
		// the other): name the files given, not a default's empty name.
		var given []string
		if in.ValuesSource != "" {
			given = append(given, valuesName)
		}
		if in.MeshSource != "" {
			given = append(given, meshName)
		}
		if len(given) > 0 {
			return nil, fmt.Errorf("%s: %w", strings.Join(given, ", "), err)
		}
		return nil, err
	}
	t, err := templatesOf(cfg, values, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgName, err)
	}
	s.Templates = t
	return s, nil
}

// parseInjectorConfig parses the injector `config` key content. Unlike
// Istio's UnmarshalConfig, a key InjectorConfig does not have is an error
// (docs/compatibility.md): a misspelt templates or selector key would leave
// its setting at the default, and a bare template given as the config would
// be ignored for Istio's stock templates.
func parseInjectorConfig(data []byte) (*InjectorConfig, error) {
	// A second document (Istio reads the first) and a duplicate key are
	// errors: the mesh config's rules.
	if err := manifest.SingleDocument(data); err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	// kjson names the field with its path (neverInjectSelector[0].matchLabel).
	var c InjectorConfig
	strictErrs, err := kjson.UnmarshalStrict(js, &c)
	if err != nil {
		return nil, err
	}
	if len(strictErrs) > 0 {
		return nil, errors.Join(strictErrs...)
	}
	switch c.Policy {
	case "", "enabled", "disabled":
	default:
		return nil, fmt.Errorf("config.policy: %q is not enabled or disabled", c.Policy)
	}
	return &c, nil
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
	var bad error
	// sub returns the object at m[k], adding an empty one when k is absent
	// or null; anything else is refused, as the typed parse would without a
	// config (Istio's NewValuesConfig refuses it), instead of replaced.
	sub := func(m map[string]any, k, path string) map[string]any {
		if c, ok := m[k].(map[string]any); ok {
			return c
		}
		if m[k] != nil && bad == nil {
			bad = fmt.Errorf("%s: want an object, got %T", path, m[k])
		}
		c := map[string]any{}
		m[k] = c
		return c
	}
	if cfg.Policy != "" {
		sub(sub(v, "global", "global"), "proxy", "global.proxy")["autoInject"] = cfg.Policy
	}
	siw := sub(v, "sidecarInjectorWebhook", "sidecarInjectorWebhook")
	siw["neverInjectSelector"] = cfg.NeverInjectSelector
	siw["alwaysInjectSelector"] = cfg.AlwaysInjectSelector
	siw["injectedAnnotations"] = cfg.InjectedAnnotations
	if bad != nil {
		return nil, bad
	}
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

// templatesOf parses the templates: the config's and the values', or
// Istio's stock ones (stock.go) when neither carries any.
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
			// An empty entry is the chart's default (no custom template).
			if strings.TrimSpace(str) != "" {
				raw[k] = str
			}
		}
	} else if t, ok := siw["templates"]; ok && t != nil {
		return nil, errors.New("values sidecarInjectorWebhook.templates: not a map")
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
	} else if d := siw["defaultTemplates"]; !ok && d != nil {
		// Istio's values type has a list here (NewValuesConfig refuses
		// anything else); ignoring it would inject other templates.
		return nil, errors.New("values sidecarInjectorWebhook.defaultTemplates: not a list")
	}
	if len(defaults) == 0 {
		defaults = []string{"sidecar"} // Istio's UnmarshalConfig default
	}
	builtin := len(raw) == 0
	if builtin {
		// No templates given: Istio's stock ones (stock.go).
		stock, err := stockTemplates()
		if err != nil {
			return nil, err
		}
		raw = stock
	}
	set, err := template.Parse(raw, template.Options{ProxyConfigJSON: ProxyConfigJSON})
	if err != nil {
		return nil, err
	}
	t := &Templates{Set: set, Stock: map[string]template.StockVersion{}, Defaults: defaults, Aliases: aliases, Values: values,
		typedAgrees: &agreement{}}
	// A default template that does not exist would fail every pod at
	// admission (Istio's "requested template ... not found"): refuse the
	// configuration instead.
	for _, name := range t.Select(nil) {
		if !set.Has(name) {
			return nil, fmt.Errorf("defaultTemplates: template %q (from %q) is not defined in templates", name, strings.Join(defaults, ","))
		}
	}
	for name, text := range raw {
		if v, ok := template.StockOf(name, text); ok {
			t.Stock[name] = v
		}
	}
	if len(values) == 0 || builtin {
		// The templates see meshguard's values (its defaults and the
		// settings it models); with Istio's stock templates in effect, over a
		// default install's values (the keys the typed values leave out as
		// zero) and under the user's own values, as Istio's chart renders them.
		b, err := json.Marshal(s.Values)
		if err != nil {
			return nil, err
		}
		typed := map[string]any{}
		if err := json.Unmarshal(b, &typed); err != nil {
			return nil, err
		}
		if !builtin {
			t.Values = typed
			return t, nil
		}
		base, err := stockValues()
		if err != nil {
			return nil, err
		}
		t.Values = mergeValues(mergeValues(base, typed), values)
	}
	return t, nil
}
