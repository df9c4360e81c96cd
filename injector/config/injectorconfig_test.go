package config

import (
	"strings"
	"testing"
)

func TestLoadInputDataRefuses(t *testing.T) {
	for _, tc := range []struct {
		name              string
		cfg, values, mesh string
		wantErr           string
	}{
		{"bad policy", "policy: maybe\n", "", "", "config.policy"},
		{"default template gateway", "defaultTemplates: [gateway]\n", "", "", "defaultTemplates"},
		{"alias to gateway", "defaultTemplates: [gw]\naliases: {gw: [gateway]}\n", "", "", "defaultTemplates"},
		{"unknown template", "templates: {mine: 'spec: {}'}\n", "", "", "config.templates.mine"},
		{"configmap without key", "kind: ConfigMap\ndata: {values: '{}'}\n", "", "", `no data key "config"`},
		{"mesh configmap without key", "", "", "kind: ConfigMap\ndata: {config: ''}\n", `no data key "mesh"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := func(s string) []byte {
				if s == "" {
					return nil
				}
				return []byte(s)
			}
			_, err := LoadInputData(b(tc.cfg), b(tc.values), b(tc.mesh))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadInputDataAppliesConfig(t *testing.T) {
	s, err := LoadInputData([]byte("policy: disabled\nneverInjectSelector: [{matchLabels: {skip: \"yes\"}}]\ninjectedAnnotations: {a: b}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Values.Global.Proxy.AutoInject != "disabled" || len(s.NeverInject) != 1 || s.Values.SidecarInjectorWebhook.InjectedAnnotations["a"] != "b" {
		t.Fatalf("config not applied: autoInject=%q never=%d annotations=%v", s.Values.Global.Proxy.AutoInject, len(s.NeverInject), s.Values.SidecarInjectorWebhook.InjectedAnnotations)
	}
}
