//lint:file-ignore SA1019 Istio's rows ported here set the deprecated Stackdriver maxNumberOfAnnotations and read it back.

package meshconfig

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/validation"
)

// Istio's own unit tests of the mesh config (istio/istio
// pkg/config/mesh/mesh_test.go; pkg/config/mesh/kubemesh/watcher_test.go
// for parse errors), re-expressed as our own inputs and run through
// meshguard's entry points: Parse (ApplyMeshConfigDefaults), Validate
// (ValidateMeshConfig), ParseProxyConfig (ApplyProxyConfig / applyProxyConfig,
// the field-by-field overlay) and DefaultMeshConfig/DefaultProxyConfig.
// Test names are Istio's function and row. The merge rules of these rows hold
// in the newer mesh.go as well (ApplyMeshConfig: defaultConfig merged,
// proxyMetadata key by key via mergeMap, extensionProviders by name,
// trustDomainAliases sorted and deduplicated).
//
// Not asserted, with the reason:
//   - TestDeepMerge applies onto a MeshConfig that is not Istio's default
//     (defaultProviders.metrics [stackdriver], one stackdriver provider with
//     maxNumberOfAttributes 3, aliases [default, both]). meshguard has no
//     entry point that parses over anything but DefaultMeshConfig (one file,
//     no user-config layering), so each row is ported over the default base
//     with the outcome Istio's rule gives there (TestIstioDeepMerge). The union
//     with a previous base's aliases and defaultProviders' field-by-field merge
//     onto a non-empty base have no counterpart.
//   - TestApplyMeshNetworksDefaults, TestResolveHostsInNetworksConfig:
//     MeshNetworks, which meshguard does not read.
//   - kubemesh TestExtraConfigmap's core/user precedence and
//     TestNewConfigMapWatcher's add/update/delete steps: ConfigMap watching
//     (webhook/inject_configmaps*.go, reload.Store), not parsing; only their
//     parse outcomes are ported (TestIstioConfigMapWatcherParse).
//   - Newer Istio's MergeProxyConfig keeps the base's proxyHeaders members
//     that the applied YAML leaves unset (correctProxyHeaders). No meshguard
//     path applies field by field onto a base with proxyHeaders: Parse
//     applies defaultConfig onto DefaultProxyConfig (none), the annotation's
//     check onto the same default, and pod-level layers are merged with
//     proto.Merge (MergeProxyConfig), which keeps them.

// TestIstioApplyProxyConfig: ApplyProxyConfig's rows through ParseProxyConfig
// onto the mesh's defaultConfig.
func TestIstioApplyProxyConfig(t *testing.T) {
	metaBase := func() *meshv1alpha1.ProxyConfig {
		pc := DefaultProxyConfig()
		pc.ProxyMetadata = map[string]string{"merged": "original", "default": "foo"}
		return pc
	}
	for _, tc := range []struct {
		name  string
		base  func() *meshv1alpha1.ProxyConfig
		yaml  string
		check func(t *testing.T, pc *meshv1alpha1.ProxyConfig)
	}{
		{"apply single", DefaultProxyConfig, "discoveryAddress: foo", func(t *testing.T, pc *meshv1alpha1.ProxyConfig) {
			if pc.GetDiscoveryAddress() != "foo" {
				t.Errorf("discoveryAddress %q, want foo", pc.GetDiscoveryAddress())
			}
		}},
		{"apply again", DefaultProxyConfig, "drainDuration: 5s", func(t *testing.T, pc *meshv1alpha1.ProxyConfig) {
			if pc.GetDiscoveryAddress() != "istiod.istio-system.svc:15012" {
				t.Errorf("discoveryAddress %q, want the default kept", pc.GetDiscoveryAddress())
			}
			if d := pc.GetDrainDuration().AsDuration(); d != 5*time.Second {
				t.Errorf("drainDuration %v, want 5s", d)
			}
		}},
		{"apply proxy metadata", metaBase, `proxyMetadata: {"merged":"override","override":"bar"}`, func(t *testing.T, pc *meshv1alpha1.ProxyConfig) {
			want := map[string]string{"merged": "override", "default": "foo", "override": "bar"}
			if got := pc.GetProxyMetadata(); !mapsEqual(got, want) {
				t.Errorf("proxyMetadata %v, want %v", got, want)
			}
		}},
		{"apply should not modify", func() *meshv1alpha1.ProxyConfig {
			pc := DefaultProxyConfig()
			pc.ProxyMetadata = map[string]string{"foo": "bar"}
			return pc
		}, `proxyMetadata: {"merged":"override","override":"bar"}`, func(t *testing.T, pc *meshv1alpha1.ProxyConfig) {
			want := map[string]string{"foo": "bar", "merged": "override", "override": "bar"}
			if got := pc.GetProxyMetadata(); !mapsEqual(got, want) {
				t.Errorf("proxyMetadata %v, want %v", got, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base()
			pc, err := ParseProxyConfig(base, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, pc)
			if !proto.Equal(base, tc.base()) {
				t.Errorf("the base was modified: %v", base)
			}
		})
	}
}

// TestIstioApplyProxyConfig/apply proxy metadata to mesh config: a mesh
// defaultConfig's proxyMetadata merges key by key into the base's
// (Istio's base has two keys; meshguard's base is Istio's default, with
// none, so the mesh's keys come out alone and a null one is dropped).
func TestIstioApplyProxyConfigMetadataToMeshConfig(t *testing.T) {
	m, err := Parse([]byte("defaultConfig:\n  proxyMetadata: {\"merged\":\"override\",\"override\":\"bar\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"merged": "override", "override": "bar"}
	if got := m.GetDefaultConfig().GetProxyMetadata(); !mapsEqual(got, want) {
		t.Errorf("proxyMetadata %v, want %v", got, want)
	}
	if d := m.GetDefaultConfig().GetDrainDuration().AsDuration(); d != 45*time.Second {
		t.Errorf("drainDuration %v: the rest of the default ProxyConfig was not kept", d)
	}
}

// TestIstioDefaultProxyConfig and TestIstioDefaultMeshConfig: Istio's
// defaults pass Istio's checks (ValidateMeshConfigProxyConfig,
// ValidateMeshConfig).
func TestIstioDefaultProxyConfig(t *testing.T) {
	if errs := validation.MeshProxyConfig(DefaultProxyConfig()); len(errs) > 0 {
		t.Errorf("default ProxyConfig rejected: %v", errs)
	}
}

func TestIstioDefaultMeshConfig(t *testing.T) {
	if err := Validate(DefaultMeshConfig()); err != nil {
		t.Errorf("default MeshConfig rejected: %v", err)
	}
}

// TestIstioApplyMeshConfigDefaults: a defaultConfig of one field gives
// exactly Istio's defaults with that field changed; then the overrides row.
func TestIstioApplyMeshConfigDefaults(t *testing.T) {
	t.Run("defaultConfig configPath", func(t *testing.T) {
		got, err := Parse([]byte("\ndefaultConfig:\n  configPath: /test/config/patch\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultMeshConfig()
		want.DefaultConfig.ConfigPath = "/test/config/patch"
		if !proto.Equal(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
	})

	// Istio's row spells serviceSettings' hosts as "host" and sets
	// clusterLocalNamespaces, which MeshConfig does not have: Istio ignores
	// both, meshguard refuses unknown fields (docs/compatibility.md, Mesh
	// config). The rest of the row is asserted with "hosts" and without
	// clusterLocalNamespaces.
	overrides := `
serviceSettings:
  - settings:
      clusterLocal: true
    hosts:
      - "*.myns.svc.cluster.local"
ingressClass: foo
enableTracing: false
trustDomainAliases: ["default", "both"]
defaultServiceExportTo:
- "foo"
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
defaultProviders:
  tracing: [foo]
extensionProviders:
- name: sd
  stackdriver: {}
defaultConfig:
  tracing: {}
  concurrency: 4`
	t.Run("overrides", func(t *testing.T) {
		got, err := Parse([]byte(overrides))
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(got); err != nil {
			t.Fatal(err)
		}
		if tr := got.GetDefaultConfig().GetTracing(); tr == nil || tr.GetZipkin() != nil {
			t.Errorf("tracing %v, want set and empty", tr)
		}
		if c := got.GetDefaultConfig().GetConcurrency(); c == nil || c.GetValue() != 4 {
			t.Errorf("concurrency %v, want 4", c)
		}
		if m := got.GetDefaultProviders().GetMetrics(); len(m) != 0 {
			t.Errorf("defaultProviders.metrics %v, want none", m)
		}
		if tr := got.GetDefaultProviders().GetTracing(); !slices.Equal(tr, []string{"foo"}) {
			t.Errorf("defaultProviders.tracing %v, want [foo]", tr)
		}
		if names := providerNames(got); !slices.Equal(names, []string{"prometheus", "stackdriver", "envoy", "sd"}) {
			t.Errorf("extension providers %v", names)
		}
		if a := got.GetTrustDomainAliases(); !slices.Equal(a, []string{"both", "default"}) {
			t.Errorf("trustDomainAliases %v, want [both default]", a)
		}
		if got.GetIngressClass() != "foo" || got.GetEnableTracing() || !slices.Equal(got.GetDefaultServiceExportTo(), []string{"foo"}) ||
			got.GetOutboundTrafficPolicy().GetMode() != meshv1alpha1.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY ||
			len(got.GetServiceSettings()) != 1 || !got.GetServiceSettings()[0].GetSettings().GetClusterLocal() {
			t.Errorf("a top-level override was lost: %v", got)
		}
		if got.GetDefaultConfig().GetDiscoveryAddress() != "istiod.istio-system.svc:15012" {
			t.Errorf("defaultConfig replaced, not merged: %v", got.GetDefaultConfig())
		}
	})
	for _, tc := range []struct{ name, edit, field string }{
		{"as written: serviceSettings host", `    hosts:`, "serviceSettings[0].host"},
		{"as written: clusterLocalNamespaces", "ingressClass: foo", "clusterLocalNamespaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := overrides
			if tc.field == "clusterLocalNamespaces" {
				in = strings.Replace(in, tc.edit, "clusterLocalNamespaces:\n- \"foons\"\n"+tc.edit, 1)
			} else {
				in = strings.Replace(in, tc.edit, "    host:", 1)
			}
			if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Parse: %v, want the unknown field %s named", err, tc.field)
			}
		})
	}
}

// TestIstioDeepMerge: each row's input over Istio's default MeshConfig
// (meshguard's only base; see the comment at the top), with the outcome
// ApplyMeshConfig's rules give there: defaultProviders as given, a provider
// named as a default replaces it in place, others are appended,
// trustDomainAliases sorted.
func TestIstioDeepMerge(t *testing.T) {
	for _, tc := range []struct {
		name, in      string
		wantProviders []string
		check         func(t *testing.T, m *meshv1alpha1.MeshConfig)
	}{
		{"set other default provider", "\ndefaultProviders:\n  tracing: [foo]",
			[]string{"prometheus", "stackdriver", "envoy"}, func(t *testing.T, m *meshv1alpha1.MeshConfig) {
				if dp := m.GetDefaultProviders(); !slices.Equal(dp.GetTracing(), []string{"foo"}) || len(dp.GetMetrics()) != 0 {
					t.Errorf("defaultProviders %v", dp)
				}
			}},
		{"override default provider", "\ndefaultProviders:\n  metrics: [foo]",
			[]string{"prometheus", "stackdriver", "envoy"}, func(t *testing.T, m *meshv1alpha1.MeshConfig) {
				if dp := m.GetDefaultProviders(); !slices.Equal(dp.GetMetrics(), []string{"foo"}) {
					t.Errorf("defaultProviders %v", dp)
				}
			}},
		{"replace builtin provider", "\nextensionProviders:\n- name: stackdriver\n  stackdriver:\n    maxNumberOfAnnotations: 5",
			[]string{"prometheus", "stackdriver", "envoy"}, func(t *testing.T, m *meshv1alpha1.MeshConfig) {
				if sd := m.GetExtensionProviders()[1].GetStackdriver(); sd.GetMaxNumberOfAnnotations().GetValue() != 5 {
					t.Errorf("stackdriver provider %v, want maxNumberOfAnnotations 5", sd)
				}
			}},
		{"add provider with existing type", "\nextensionProviders:\n- name: stackdriver-annotations\n  stackdriver:\n    maxNumberOfAnnotations: 5",
			[]string{"prometheus", "stackdriver", "envoy", "stackdriver-annotations"}, func(t *testing.T, m *meshv1alpha1.MeshConfig) {
				if sd := m.GetExtensionProviders()[1].GetStackdriver(); sd == nil || sd.GetMaxNumberOfAnnotations() != nil {
					t.Errorf("the default stackdriver provider changed: %v", sd)
				}
				if sd := m.GetExtensionProviders()[3].GetStackdriver(); sd.GetMaxNumberOfAnnotations().GetValue() != 5 {
					t.Errorf("added provider %v", sd)
				}
			}},
		{"add provider", "\nextensionProviders:\n- name: prometheus\n  prometheus: {}",
			[]string{"prometheus", "stackdriver", "envoy"}, func(t *testing.T, m *meshv1alpha1.MeshConfig) {
				if m.GetExtensionProviders()[0].GetPrometheus() == nil {
					t.Errorf("prometheus provider %v", m.GetExtensionProviders()[0])
				}
			}},
		{"add trust domain aliases", "\ntrustDomainAliases: [\"added\", \"both\"]",
			[]string{"prometheus", "stackdriver", "envoy"}, func(t *testing.T, m *meshv1alpha1.MeshConfig) {
				if a := m.GetTrustDomainAliases(); !slices.Equal(a, []string{"added", "both"}) {
					t.Errorf("trustDomainAliases %v", a)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(m); err != nil {
				t.Fatal(err)
			}
			if names := providerNames(m); !slices.Equal(names, tc.wantProviders) {
				t.Fatalf("extension providers %v, want %v", names, tc.wantProviders)
			}
			tc.check(t, m)
		})
	}
}

// TestIstioConfigMapWatcherParse: the mesh configs kubemesh's watcher tests
// feed (TestNewConfigMapWatcher, TestExtraConfigmap): a valid one is Istio's
// defaults with the field set; "bad yaml" (a string, not an object) and
// "ingressClass: 1" (a number for a string) are refused, so the last good
// config stays.
func TestIstioConfigMapWatcherParse(t *testing.T) {
	m, err := Parse([]byte("trustDomain: something.new"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultMeshConfig()
	want.TrustDomain = "something.new"
	if !proto.Equal(m, want) {
		t.Errorf("TestNewConfigMapWatcher: got %v, want the defaults with trustDomain something.new", m)
	}
	for _, tc := range []struct{ name, in, field string }{
		{"TestNewConfigMapWatcher/badCM2", "bad yaml", "MeshConfig"},
		{"TestExtraConfigmap/invalid user config", "ingressClass: 1", "ingressClass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Parse(%q): %v, want an error naming %s", tc.in, err, tc.field)
			}
		})
	}
}

func providerNames(m *meshv1alpha1.MeshConfig) []string {
	var names []string
	for _, p := range m.GetExtensionProviders() {
		names = append(names, p.GetName())
	}
	return names
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if got, ok := a[k]; !ok || got != v {
			return false
		}
	}
	return true
}
