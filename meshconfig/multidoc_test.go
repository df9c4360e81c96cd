package meshconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Content in a second YAML document of the mesh config is refused, naming
// the document, instead of dropped (Istio's ApplyYAML reads the first only):
// a trust domain or its aliases there would otherwise silently not apply.
func TestMeshConfigRefusesASecondDocument(t *testing.T) {
	for _, in := range []string{
		"rootNamespace: a\n---\ntrustDomain: evil.example\n",
		"trustDomain: a.example\n---\ntrustDomainAliases: [old.example]\n",
		"---\n---\ntrustDomain: x.example\n",
		"trustDomain: x.example\n...\nrootNamespace: zz\n",
	} {
		m, err := Load([]byte(in))
		if err == nil {
			t.Errorf("%q: accepted (trustDomain %q, aliases %v), want an error", in, m.GetTrustDomain(), m.GetTrustDomainAliases())
			continue
		}
		if !strings.Contains(err.Error(), "document") {
			t.Errorf("%q: %v, want an error naming the document", in, err)
		}
	}
	// Empty documents around the content are fine.
	m, err := Load([]byte("---\ntrustDomain: a.example\n---\n"))
	if err != nil || m.GetTrustDomain() != "a.example" {
		t.Fatalf("a leading and trailing ---: %v, trust domain %q", err, m.GetTrustDomain())
	}
}

// LoadFile (ext_authz's --mesh-config, analyze) names the file.
func TestMeshConfigFileRefusesASecondDocument(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(p, []byte("trustDomain: a.example\n---\ntrustDomainAliases: [old.example]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "document 2") {
		t.Fatalf("got %v, want an error naming %s and document 2", err, p)
	}
}

// A proxyMetadata entry Istio's sidecar template cannot render is invalid
// mesh config for every reader (ext_authz, analyze), not only injection.
func TestValidateProxyMetadataAsTheTemplateRendersIt(t *testing.T) {
	_, err := Load([]byte("defaultConfig: {proxyMetadata: {FOO: 'a\\d'}}\n"))
	if err == nil || !strings.Contains(err.Error(), "defaultConfig.proxyMetadata") || !strings.Contains(err.Error(), "FOO") {
		t.Fatalf("got %v, want an error naming defaultConfig.proxyMetadata FOO", err)
	}
	if _, err := Load([]byte("defaultConfig: {proxyMetadata: {FOO: 'a\\tb'}}\n")); err != nil {
		t.Fatalf("a known escape: %v", err)
	}
}

// The proxy.istio.io/config annotation (and a ProxyConfig read by the
// authorizer) follows the same rule: a second document's fields would be
// dropped.
func TestProxyConfigRefusesASecondDocument(t *testing.T) {
	if _, err := ParseProxyConfig(DefaultProxyConfig(), "concurrency: 2\n---\nholdApplicationUntilProxyStarts: true\n"); err == nil || !strings.Contains(err.Error(), "document") {
		t.Fatalf("a second document: %v, want an error naming the document", err)
	}
	pc, err := ParseProxyConfig(DefaultProxyConfig(), "---\nconcurrency: 2\n")
	if err != nil || pc.GetConcurrency().GetValue() != 2 {
		t.Fatalf("a leading ---: %v, concurrency %v", err, pc.GetConcurrency())
	}
}
