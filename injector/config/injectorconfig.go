package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// maxInputBytes bounds each configuration file read by LoadInputs.
const maxInputBytes = 8 << 20

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

// stockTemplateSHA256 is the SHA-256 of each stock template text of the
// supported Istio version (github.com/istio/istio commit
// 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c, manifests/charts/istio-control/
// istio-discovery/files/*.yaml as rendered into the istio-sidecar-injector
// ConfigMap). meshguard renders these with its typed injector; any other text
// would need a generic text/template renderer, which meshguard does not have
// yet, so it is refused (docs/compatibility.md "Injection").
var stockTemplateSHA256 = map[string]string{
	"agentgateway":          "14b132edb9432d5d0e7a15469e99623d97fa651527312e628579c5f24dc7b5b6",
	"agentgateway-waypoint": "fff0c64dba0f5dac93ddf4ebc0d4c21d963e0b741631a9dc15cad572859b3725",
	"gateway":               "266a2162fe6795521563915d655d55957a12c7d6ffaed22e74dbab2c43666b04",
	"grpc-agent":            "79e57936d94e4194011cccc22f2adc39a8b20032ead5e7ad2cc1a0e79ef84c84",
	"grpc-simple":           "cc0c60252f24558ef15b6c2ba77350f3c84a52b16f0009fcee440e98ca94c2da",
	"kube-gateway":          "25ab106e6a5ddbd4702a011252069f29ed42e1e487c08496308473980adbb389",
	"sidecar":               "9d7bd5fc214ff1004b115158be8992b92618e8017d993244aac8329cf10fff27",
	"waypoint":              "9993b07c0b42fa1f773088bea3f13fae52317b3baa5ae9cd33e36d64257d78dc",
}

// checkStockTemplates refuses any template that is not the stock text of the
// same name: silently rendering the built-in one instead would change the
// meaning of the user's configuration.
func checkStockTemplates(field string, templates map[string]string) error {
	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sum := sha256.Sum256([]byte(templates[n]))
		if want, ok := stockTemplateSHA256[n]; !ok || hex.EncodeToString(sum[:]) != want {
			return fmt.Errorf("%s.%s: custom injection template is not supported (only Istio's stock templates are; "+
				"meshguard has no generic template renderer yet)", field, n)
		}
	}
	return nil
}

// ParseInjectorConfig parses the injector `config` (raw key content) and
// checks its templates, defaultTemplates and aliases.
func ParseInjectorConfig(data []byte) (*InjectorConfig, error) {
	var c InjectorConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("injector config: %w", err)
	}
	switch c.Policy {
	case "", "enabled", "disabled":
	default:
		return nil, fmt.Errorf("injector config.policy: %q is not enabled or disabled", c.Policy)
	}
	if err := checkStockTemplates("injector config.templates", c.Templates); err != nil {
		return nil, err
	}
	resolve := func(name string) []string {
		if a, ok := c.Aliases[name]; ok {
			return a
		}
		return []string{name}
	}
	for _, d := range c.DefaultTemplates {
		for _, t := range resolve(d) {
			// The typed injector renders the default pod with the sidecar
			// template only; anything else would silently differ.
			if t != "sidecar" {
				return nil, fmt.Errorf("injector config.defaultTemplates: %q (template %q) is not supported as a default; only sidecar is", d, t)
			}
		}
	}
	return &c, nil
}

// configMapKey returns key `key` of a ConfigMap YAML document, or data
// itself when it is not a ConfigMap (raw key content).
func configMapKey(data []byte, name, key string) ([]byte, error) {
	var head struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil || head.Kind != "ConfigMap" {
		return data, nil //nolint:nilerr // not a ConfigMap: raw key content, parsed by the caller
	}
	v, ok := head.Data[key]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s: no data key %q", name, key)
	}
	return []byte(v), nil
}

func readBounded(path, what string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if fi.Size() > maxInputBytes {
		return nil, fmt.Errorf("reading %s %s: larger than %d bytes", what, path, maxInputBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return b, nil
}

// LoadInputs reads Istio's three injector inputs as `istioctl kube-inject`
// takes them (--injectConfigFile, --valuesFile, --meshConfigFile): each file
// holds either the raw key content or the whole ConfigMap
// (istio-sidecar-injector with keys config and values; istio with key mesh).
// An empty path means Istio's defaults.
func LoadInputs(injectConfigPath, valuesPath, meshPath string) (*Snapshot, error) {
	cfgData, err := readBounded(injectConfigPath, "injector config")
	if err != nil {
		return nil, err
	}
	valuesData, err := readBounded(valuesPath, "injector values")
	if err != nil {
		return nil, err
	}
	meshData, err := readBounded(meshPath, "mesh config")
	if err != nil {
		return nil, err
	}
	return LoadInputData(cfgData, valuesData, meshData)
}

// LoadInputData is LoadInputs over file contents.
func LoadInputData(cfgData, valuesData, meshData []byte) (*Snapshot, error) {
	var err error
	if cfgData != nil {
		if cfgData, err = configMapKey(cfgData, "istio-sidecar-injector", "config"); err != nil {
			return nil, err
		}
	}
	if valuesData != nil {
		if valuesData, err = configMapKey(valuesData, "istio-sidecar-injector", "values"); err != nil {
			return nil, err
		}
	}
	if meshData != nil {
		if meshData, err = configMapKey(meshData, "istio", "mesh"); err != nil {
			return nil, err
		}
	}
	values := map[string]any{}
	if len(strings.TrimSpace(string(valuesData))) > 0 {
		if err := yaml.Unmarshal(valuesData, &values); err != nil {
			return nil, fmt.Errorf("injector values: %w", err)
		}
		if values == nil {
			values = map[string]any{}
		}
	}
	sw, _ := values["sidecarInjectorWebhook"].(map[string]any)
	if t, ok := sw["templates"]; ok && t != nil {
		tm, ok := t.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("injector values.sidecarInjectorWebhook.templates: not a map")
		}
		texts := make(map[string]string, len(tm))
		for k, v := range tm {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("injector values.sidecarInjectorWebhook.templates.%s: not a string", k)
			}
			texts[k] = s
		}
		// An empty entry is the chart's default (no custom template).
		for k, v := range texts {
			if strings.TrimSpace(v) == "" {
				delete(texts, k)
			}
		}
		if err := checkStockTemplates("injector values.sidecarInjectorWebhook.templates", texts); err != nil {
			return nil, err
		}
	}
	if cfgData != nil {
		ic, err := ParseInjectorConfig(cfgData)
		if err != nil {
			return nil, err
		}
		// The injector follows its config key, not the values it was rendered
		// from (Istio's pkg/kube/inject/webhook.go injectRequired reads Config).
		if sw == nil {
			sw = map[string]any{}
			values["sidecarInjectorWebhook"] = sw
		}
		sw["neverInjectSelector"] = ic.NeverInjectSelector
		sw["alwaysInjectSelector"] = ic.AlwaysInjectSelector
		sw["injectedAnnotations"] = ic.InjectedAnnotations
		if ic.Policy != "" {
			g, _ := values["global"].(map[string]any)
			if g == nil {
				g = map[string]any{}
				values["global"] = g
			}
			p, _ := g["proxy"].(map[string]any)
			if p == nil {
				p = map[string]any{}
				g["proxy"] = p
			}
			p["autoInject"] = ic.Policy
		}
	}
	// Only the keys the typed values know survive the round trip; Load parses
	// and validates them once.
	delete(sw, "templates")
	merged, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("injector values: %w", err)
	}
	return Load(meshData, merged)
}
