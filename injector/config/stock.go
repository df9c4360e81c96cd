package config

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
)

// Istio's default install (istio/NOTICE): the `config` key (its stock
// templates) and the `values` key of ConfigMap istio-sidecar-injector.
var (
	//go:embed istio/injector-config-86c9f01.yaml
	istioInjectorConfig []byte
	//go:embed istio/values-86c9f01.json
	istioValues []byte
)

var stockInputs = sync.OnceValues(func() (*InjectorConfig, error) {
	cfg, err := parseInjectorConfig(istioInjectorConfig)
	if err != nil {
		return nil, fmt.Errorf("embedded Istio injector config: %w", err)
	}
	return cfg, nil
})

// stockTemplates returns a copy of Istio's stock templates (sidecar,
// gateway, grpc-simple, grpc-agent, waypoint, …): the templates in effect
// when neither the injector config nor the values give any, as in a default
// install of Istio, so that `inject.istio.io/templates: grpc-agent` works
// without a config file.
func stockTemplates() (map[string]string, error) {
	cfg, err := stockInputs()
	if err != nil {
		return nil, err
	}
	return maps.Clone(cfg.Templates), nil
}

// stockValues returns a fresh copy of a default install's values: what
// Istio's chart renders into the ConfigMap before a user's overrides.
func stockValues() (map[string]any, error) {
	v := map[string]any{}
	if err := json.Unmarshal(istioValues, &v); err != nil {
		return nil, fmt.Errorf("embedded Istio values: %w", err)
	}
	return v, nil
}

// mergeValues merges over into base key by key (maps recursively, anything
// else replaced), as Helm merges a user's values over a chart's.
func mergeValues(base, over map[string]any) map[string]any {
	for k, v := range over {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				base[k] = mergeValues(bm, om)
				continue
			}
		}
		base[k] = v
	}
	return base
}
