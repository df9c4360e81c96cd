package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzInputsLoad loads arbitrary injector config, values and mesh config
// as kube-inject and the injector's ConfigMaps do (Inputs.Load): no panic,
// and a snapshot it returns is complete (PROXY_CONFIG JSON, templates, the
// values' pointers all set), as injection reads it without further checks.
func FuzzInputsLoad(f *testing.F) {
	f.Add("", "", "")
	f.Add("policy: disabled\nneverInjectSelector: [{matchLabels: {skip: \"yes\"}}]\ninjectedAnnotations: {a: b}\n", "", "")
	f.Add("templates: {mine: 'spec: {}'}\ndefaultTemplates: [mine]\naliases: {m: [mine]}\n", "", "")
	f.Add("", `{"global": {"proxy": {"statusPort": 0, "includeIPRanges": "10.0.0.0/8", "excludeInboundPorts": "1,2"}}, "sidecarInjectorWebhook": {"defaultTemplates": ["sidecar"]}}`, "")
	f.Add("", "global:\n  hub: h\n  tag: \"1.2\"\n  proxy: {image: p, readinessPeriodSeconds: \"3\"}\n", "defaultConfig: {proxyMetadata: {A: b}, concurrency: 2}\n")
	f.Add("kind: ConfigMap\ndata: {config: 'policy: enabled'}\n", "", "kind: ConfigMap\ndata: {mesh: 'trustDomain: x'}\n")
	f.Add("", `{"global": "oops"}`, "defaultConfig: {proxyMetadata: {\"a b\": c}}\n")
	f.Fuzz(func(t *testing.T, cfg, values, mesh string) {
		if len(cfg)+len(values)+len(mesh) > 1<<14 {
			return
		}
		s, err := Inputs{Config: []byte(cfg), Values: []byte(values), Mesh: []byte(mesh)}.Load()
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("error without a message")
			}
			return
		}
		if s.Mesh == nil || s.ProxyConfig == nil || s.Templates == nil || !json.Valid([]byte(s.ProxyConfigEnv)) {
			t.Fatalf("incomplete snapshot: mesh %v, proxy config %v, templates %v, PROXY_CONFIG %q", s.Mesh != nil, s.ProxyConfig != nil, s.Templates != nil, s.ProxyConfigEnv)
		}
	})
}
