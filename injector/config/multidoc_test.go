package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every injector input refuses content in a second YAML document, naming
// the input and the document, where Istio's decoders keep the first
// document only.
func TestInputsRefuseASecondDocument(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Inputs
		want string // the input named in the error
	}{
		{"values", Inputs{Values: []byte("---\n---\nglobal:\n  hub: evil.example\n"), ValuesSource: "v.yaml"}, "injector values v.yaml"},
		{"config", Inputs{Config: []byte("policy: enabled\n---\npolicy: disabled\n"), ConfigSource: "c.yaml"}, "injector config c.yaml"},
		{"mesh", Inputs{Mesh: []byte("trustDomain: a.example\n---\ntrustDomainAliases: [old.example]\n"), MeshSource: "m.yaml"}, "m.yaml"},
		{"mesh in a ConfigMap", Inputs{Mesh: []byte("kind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: |\n    trustDomain: a.example\n    ---\n    trustDomain: b.example\n"), MeshSource: "cm.yaml"}, "cm.yaml"},
		{"a second ConfigMap", Inputs{Mesh: []byte("kind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'trustDomain: a.example'\n---\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'trustDomain: b.example'\n"), MeshSource: "cm.yaml"}, "cm.yaml"},
	} {
		s, err := c.in.Load()
		if err == nil {
			t.Errorf("%s: accepted (hub %s, policy %s, trust domain %s), want an error", c.name, s.Values.Global.Hub, s.Values.Global.Proxy.AutoInject, s.Mesh.GetTrustDomain())
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "document 2") {
			t.Errorf("%s: %v, want an error naming %q and document 2", c.name, err, c.want)
		}
	}
}

// serve's --mesh-config/--injector-values files go the same way.
func TestLoadFilesRefuseASecondDocument(t *testing.T) {
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(values, []byte("global: {hub: a.example}\n---\nglobal: {hub: evil.example}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFiles("", values)
	if err == nil || !strings.Contains(err.Error(), values) || !strings.Contains(err.Error(), "document 2") {
		t.Fatalf("got %v, want an error naming %s and document 2", err, values)
	}
}

// Load (mesh YAML plus values YAML) refuses a second values document too.
func TestLoadRefusesASecondValuesDocument(t *testing.T) {
	if _, err := Load(nil, []byte("global: {hub: a.example}\n---\nglobal: {hub: evil.example}\n")); err == nil || !strings.Contains(err.Error(), "document 2") {
		t.Fatalf("got %v, want an error naming document 2", err)
	}
}

// A whole ConfigMap with a data key given twice is refused (the key's own
// content already refuses duplicate keys), not read as its last value.
func TestKeyContentRefusesADuplicateKey(t *testing.T) {
	cm := []byte("kind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'trustDomain: a.example'\n  mesh: 'trustDomain: b.example'\n")
	if got, err := KeyContent(cm, KeyMesh); err == nil {
		t.Fatalf("KeyContent: %q, want an error", got)
	} else if !strings.Contains(err.Error(), "mesh") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("KeyContent: %v, want an error naming the key and its line", err)
	}
	if s, err := (Inputs{Mesh: cm, MeshSource: "cm.yaml"}).Load(); err == nil {
		t.Fatalf("Inputs.Load: accepted with trust domain %s", s.Mesh.GetTrustDomain())
	}
}

// The injector takes the proxyMetadata check from meshconfig.Validate.
func TestInputsRefuseProxyMetadataTheTemplateCannotRender(t *testing.T) {
	_, err := Inputs{Mesh: []byte("defaultConfig: {proxyMetadata: {FOO: 'a\\d'}}\n")}.Load()
	if err == nil || !strings.Contains(err.Error(), "defaultConfig.proxyMetadata") {
		t.Fatalf("got %v, want an error naming defaultConfig.proxyMetadata", err)
	}
}
