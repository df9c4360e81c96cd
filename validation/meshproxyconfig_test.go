package validation

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
)

// TestMeshProxyConfigEmpty: an empty ProxyConfig fails on every field Istio
// requires. (That Istio's defaults pass is checked in package meshconfig,
// which holds them.)
func TestMeshProxyConfigEmpty(t *testing.T) {
	want := map[string]bool{"configPath": true, "binaryPath": true, "serviceCluster": true, "drainDuration": true,
		"discoveryAddress": true, "proxyAdminPort": true, "statusPort": true}
	for _, e := range MeshProxyConfig(nil) {
		delete(want, e.Field)
	}
	if len(want) > 0 {
		t.Errorf("an empty ProxyConfig passes on %v", want)
	}
}

// TestMeshConfigIstioCases ports Istio's TestValidateMeshConfig
// (pkg/config/validation/agent/validation_test.go): the same invalid mesh
// config gives one error per field Istio lists, in its order, and its two
// ECDH warnings; an empty mesh config is an error.
func TestMeshConfigIstioCases(t *testing.T) {
	if len(MeshConfig(&meshv1alpha1.MeshConfig{}).Errors) == 0 {
		t.Error("an empty mesh config passes")
	}
	invalid := &meshv1alpha1.MeshConfig{
		ProxyListenPort:    0,
		ConnectTimeout:     durationpb.New(-1 * time.Second),
		DefaultConfig:      &meshv1alpha1.ProxyConfig{},
		TrustDomain:        "",
		TrustDomainAliases: []string{"a.$b", "a/b", ""},
		MeshMTLS:           &meshv1alpha1.MeshConfig_TLSConfig{EcdhCurves: []string{"P-256"}},
		TlsDefaults:        &meshv1alpha1.MeshConfig_TLSConfig{EcdhCurves: []string{"P-256", "P-256", "invalid"}},
	}
	got := MeshConfig(invalid)
	var fields []string
	for _, e := range got.Errors {
		fields = append(fields, e.Field)
	}
	want := []string{"mesh.proxyListenPort", "mesh.connectTimeout", "mesh.defaultConfig.configPath",
		"mesh.defaultConfig.binaryPath", "mesh.defaultConfig.serviceCluster", "mesh.defaultConfig.drainDuration",
		"mesh.defaultConfig.discoveryAddress", "mesh.defaultConfig.proxyAdminPort", "mesh.defaultConfig.statusPort",
		"mesh.trustDomain", "mesh.trustDomainAliases[0]", "mesh.trustDomainAliases[1]", "mesh.trustDomainAliases[2]",
		"mesh.meshMTLS.ecdhCurves"}
	if !slices.Equal(fields, want) {
		t.Errorf("errors on\n %v\nwant\n %v", fields, want)
	}
	var warned []string
	for _, w := range got.Warnings {
		warned = append(warned, w.Field)
	}
	if want := []string{"mesh.tlsDefaults.ecdhCurves[1]", "mesh.tlsDefaults.ecdhCurves[2]"}; !slices.Equal(warned, want) {
		t.Errorf("warnings on %v, want %v", warned, want)
	}
}

// TestMeshConfigFieldChecks ports Istio's TestValidateConnectTimeout,
// TestValidateProtocolDetectionTimeout and TestServiceSettings, and its
// ValidateTrustDomain rules, onto a mesh config that is otherwise valid.
func TestMeshConfigFieldChecks(t *testing.T) {
	valid := func() *meshv1alpha1.MeshConfig {
		return &meshv1alpha1.MeshConfig{ProxyListenPort: 15001, ConnectTimeout: durationpb.New(10 * time.Second),
			TrustDomain: "cluster.local", DefaultConfig: &meshv1alpha1.ProxyConfig{ConfigPath: "/etc/istio/proxy",
				BinaryPath: "/usr/local/bin/envoy", ClusterName: &meshv1alpha1.ProxyConfig_ServiceCluster{ServiceCluster: "istio-proxy"},
				DrainDuration: durationpb.New(45 * time.Second), DiscoveryAddress: "istiod.istio-system.svc:15012",
				ProxyAdminPort: 15000, StatusPort: 15020}}
	}
	cases := []struct {
		name string
		set  func(*meshv1alpha1.MeshConfig)
		ok   bool
	}{
		{"valid", func(*meshv1alpha1.MeshConfig) {}, true},
		{"connect timeout 1s", func(m *meshv1alpha1.MeshConfig) { m.ConnectTimeout = &durationpb.Duration{Seconds: 1} }, true},
		{"connect timeout 99999ns", func(m *meshv1alpha1.MeshConfig) { m.ConnectTimeout = &durationpb.Duration{Nanos: 99999} }, false},
		{"connect timeout 999999999s", func(m *meshv1alpha1.MeshConfig) { m.ConnectTimeout = &durationpb.Duration{Seconds: 999999999} }, false},
		{"connect timeout unset", func(m *meshv1alpha1.MeshConfig) { m.ConnectTimeout = nil }, false},
		{"protocol detection 1s", func(m *meshv1alpha1.MeshConfig) { m.ProtocolDetectionTimeout = &durationpb.Duration{Seconds: 1} }, true},
		{"protocol detection 99999ns", func(m *meshv1alpha1.MeshConfig) { m.ProtocolDetectionTimeout = &durationpb.Duration{Nanos: 99999} }, false},
		{"protocol detection 0", func(m *meshv1alpha1.MeshConfig) { m.ProtocolDetectionTimeout = &durationpb.Duration{} }, true},
		{"service settings good", func(m *meshv1alpha1.MeshConfig) {
			m.ServiceSettings = []*meshv1alpha1.MeshConfig_ServiceSettings{{Hosts: []string{"*.foo.bar", "bar.baz.svc.cluster.local"}}}
		}, true},
		{"service settings bad", func(m *meshv1alpha1.MeshConfig) {
			m.ServiceSettings = []*meshv1alpha1.MeshConfig_ServiceSettings{{Hosts: []string{"foo.bar.*"}}}
		}, false},
		{"trust domain with a trailing dot", func(m *meshv1alpha1.MeshConfig) { m.TrustDomain = "istio.io." }, true},
		{"trust domain upper case", func(m *meshv1alpha1.MeshConfig) { m.TrustDomain = "Example.ORG" }, true},
		{"trust domain empty label", func(m *meshv1alpha1.MeshConfig) { m.TrustDomain = "a..b" }, false},
		{"trust domain a dot", func(m *meshv1alpha1.MeshConfig) { m.TrustDomain = "." }, false},
		{"alias with a slash", func(m *meshv1alpha1.MeshConfig) { m.TrustDomainAliases = []string{"ok.td", "td/ns"} }, false},
		{"discovery address without a port", func(m *meshv1alpha1.MeshConfig) { m.DefaultConfig.DiscoveryAddress = "istiod" }, false},
		{"no default config", func(m *meshv1alpha1.MeshConfig) { m.DefaultConfig = nil }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := valid()
			c.set(m)
			if errs := MeshConfig(m).Errors; (len(errs) == 0) != c.ok {
				t.Errorf("errors %v, want ok=%v", errs, c.ok)
			}
		})
	}
}
