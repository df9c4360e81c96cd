package meshconfig

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1beta1 "istio.io/api/networking/v1beta1"

	"github.com/meshguard/meshguard/validation"
)

// The oracle is Istio's pkg/config/mesh/mesh.go DefaultMeshConfig and
// DefaultProxyConfig (istio/istio commit 0048ecc8f27e30b33cb09e5b67e27bbb62fad0d4,
// ProxyInboundListenPort and InboundTrafficPolicy from later releases' same
// function) and ApplyMeshConfig's merge rules; the expected values below
// are copied from there, not from this package.

// field reads one setting from a parsed mesh config.
type field struct {
	name string
	get  func(*meshv1alpha1.MeshConfig) any
}

var (
	trustDomain        = field{"trustDomain", func(m *meshv1alpha1.MeshConfig) any { return m.GetTrustDomain() }}
	trustDomainAliases = field{"trustDomainAliases", func(m *meshv1alpha1.MeshConfig) any { return m.GetTrustDomainAliases() }}
	rootNamespace      = field{"rootNamespace", func(m *meshv1alpha1.MeshConfig) any { return m.GetRootNamespace() }}
	proxyListenPort    = field{"proxyListenPort", func(m *meshv1alpha1.MeshConfig) any { return m.GetProxyListenPort() }}
	inboundListenPort  = field{"proxyInboundListenPort", func(m *meshv1alpha1.MeshConfig) any { return m.GetProxyInboundListenPort() }}
	inboundPolicy      = field{"inboundTrafficPolicy.mode", func(m *meshv1alpha1.MeshConfig) any { return m.GetInboundTrafficPolicy().GetMode().String() }}
	prometheusMerge    = field{"enablePrometheusMerge", func(m *meshv1alpha1.MeshConfig) any { return m.GetEnablePrometheusMerge().GetValue() }}
	pathNormalization  = field{"pathNormalization", func(m *meshv1alpha1.MeshConfig) any { return m.GetPathNormalization().GetNormalization().String() }}
	discoveryAddress   = field{"defaultConfig.discoveryAddress", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetDiscoveryAddress() }}
	drainDuration      = field{"defaultConfig.drainDuration", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetDrainDuration().AsDuration() }}
	terminationDrain   = field{"defaultConfig.terminationDrainDuration", func(m *meshv1alpha1.MeshConfig) any {
		return m.GetDefaultConfig().GetTerminationDrainDuration().AsDuration()
	}}
	adminPort      = field{"defaultConfig.proxyAdminPort", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetProxyAdminPort() }}
	statusPort     = field{"defaultConfig.statusPort", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetStatusPort() }}
	statNameLength = field{"defaultConfig.statNameLength", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetStatNameLength() }}
	binaryPath     = field{"defaultConfig.binaryPath", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetBinaryPath() }}
	configPath     = field{"defaultConfig.configPath", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetConfigPath() }}
	serviceCluster = field{"defaultConfig.serviceCluster", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetServiceCluster() }}
	authPolicy     = field{"defaultConfig.controlPlaneAuthPolicy", func(m *meshv1alpha1.MeshConfig) any {
		return m.GetDefaultConfig().GetControlPlaneAuthPolicy().String()
	}}
	zipkinAddress = field{"defaultConfig.tracing.zipkin.address", func(m *meshv1alpha1.MeshConfig) any {
		return m.GetDefaultConfig().GetTracing().GetZipkin().GetAddress()
	}}
	proxyMetadata = field{"defaultConfig.proxyMetadata", func(m *meshv1alpha1.MeshConfig) any { return m.GetDefaultConfig().GetProxyMetadata() }}
)

type want struct {
	f     field
	value any
}

// istioDefaults are Istio's DefaultMeshConfig values for the fields
// meshguard reads (pkg/config/mesh/mesh.go; constants.ConfigPathDir,
// ServiceClusterName, BinaryPathFilename, DefaultClusterLocalDomain,
// IstioSystemNamespace from pkg/config/constants).
var istioDefaults = []want{
	{trustDomain, "cluster.local"},
	{rootNamespace, "istio-system"},
	{proxyListenPort, int32(15001)},
	{inboundListenPort, int32(15006)},
	{inboundPolicy, "PASSTHROUGH"},
	{prometheusMerge, true},
	{discoveryAddress, "istiod.istio-system.svc:15012"},
	{drainDuration, 45 * time.Second},
	{terminationDrain, 5 * time.Second},
	{adminPort, int32(15000)},
	{statusPort, int32(15020)},
	{statNameLength, int32(189)},
	{binaryPath, "/usr/local/bin/envoy"},
	{configPath, "./etc/istio/proxy"},
	{serviceCluster, "istio-proxy"},
	{authPolicy, "MUTUAL_TLS"},
	{zipkinAddress, ""}, // no default tracer since Istio 1.22 (istio/istio#49615)
}

func check(t *testing.T, m *meshv1alpha1.MeshConfig, wants []want) {
	t.Helper()
	for _, w := range wants {
		got := w.f.get(m)
		switch g := got.(type) {
		case []string:
			if ws, _ := w.value.([]string); !slices.Equal(g, ws) {
				t.Errorf("%s = %q, want %q", w.f.name, g, w.value)
			}
			continue
		case map[string]string:
			wm, _ := w.value.(map[string]string)
			if len(g) != len(wm) {
				t.Errorf("%s = %v, want %v", w.f.name, g, wm)
			}
			for k, v := range wm {
				if g[k] != v {
					t.Errorf("%s = %v, want %v", w.f.name, g, wm)
				}
			}
			continue
		}
		if got != w.value {
			t.Errorf("%s = %v, want %v", w.f.name, got, w.value)
		}
	}
}

// An empty or absent mesh config means Istio's defaults.
func TestEmptyMeansIstioDefaults(t *testing.T) {
	for _, in := range []string{"", "  \n", "# only a comment\n", "{}"} {
		m, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		check(t, m, istioDefaults)
		if err := Validate(m); err != nil {
			t.Errorf("Parse(%q): defaults do not validate: %v", in, err)
		}
	}
	m, err := LoadFile("")
	if err != nil {
		t.Fatal(err)
	}
	check(t, m, istioDefaults)
}

// Settings override the defaults one by one; defaultConfig is merged into
// the default ProxyConfig, not replaced (Istio's ApplyMeshConfig: "all
// fields are overrides, except proxy config is a merge", proxyMetadata
// merged key by key by mergeMap); trustDomainAliases come out deduplicated
// and sorted (ApplyMeshConfig's sets.New(...).SortedList()).
func TestParseOverridesDefaults(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		wants []want
	}{
		{"trust domain, the rest default", "trustDomain: example.org\n",
			[]want{{trustDomain, "example.org"}, {rootNamespace, "istio-system"}, {discoveryAddress, "istiod.istio-system.svc:15012"}}},
		{"root namespace", "rootNamespace: mesh-root\n", []want{{rootNamespace, "mesh-root"}, {trustDomain, "cluster.local"}}},
		{"trust-domain aliases", "trustDomainAliases: [old.td, legacy.td]\n",
			[]want{{trustDomainAliases, []string{"legacy.td", "old.td"}}, {trustDomain, "cluster.local"}}},
		{"trust-domain aliases deduplicated", "trustDomain: new.td\ntrustDomainAliases: [old.td, old.td]\n",
			[]want{{trustDomainAliases, []string{"old.td"}}, {trustDomain, "new.td"}}},
		{"no aliases by default", "trustDomain: new.td\n", []want{{trustDomainAliases, []string(nil)}}},
		{"enablePrometheusMerge false overrides the default true", "enablePrometheusMerge: false\n", []want{{prometheusMerge, false}}},
		{"path normalization", "pathNormalization: {normalization: MERGE_SLASHES}\n", []want{{pathNormalization, "MERGE_SLASHES"}}},
		{"ports", "proxyListenPort: 15101\nproxyInboundListenPort: 15106\n",
			[]want{{proxyListenPort, int32(15101)}, {inboundListenPort, int32(15106)}}},
		{"inbound traffic policy", "inboundTrafficPolicy: {mode: LOCALHOST}\n", []want{{inboundPolicy, "LOCALHOST"}}},
		{"defaultConfig merges into the default ProxyConfig", "defaultConfig:\n  discoveryAddress: istiod.custom.svc:15012\n",
			[]want{{discoveryAddress, "istiod.custom.svc:15012"}, {drainDuration, 45 * time.Second}, {statusPort, int32(15020)},
				{zipkinAddress, ""}}},
		{"defaultConfig durations", "defaultConfig: {drainDuration: 10s, terminationDrainDuration: 1m}\n",
			[]want{{drainDuration, 10 * time.Second}, {terminationDrain, time.Minute}, {adminPort, int32(15000)}}},
		{"defaultConfig proxyMetadata", "defaultConfig:\n  proxyMetadata: {ISTIO_META_DNS_CAPTURE: \"true\"}\n",
			[]want{{proxyMetadata, map[string]string{"ISTIO_META_DNS_CAPTURE": "true"}}, {statNameLength, int32(189)}}},
		{"the ConfigMap's JSON form", `{"trustDomain": "json.td", "defaultConfig": {"statusPort": 15021}}`,
			[]want{{trustDomain, "json.td"}, {statusPort, int32(15021)}, {adminPort, int32(15000)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(c.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := Validate(m); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			check(t, m, c.wants)
		})
	}
}

// Parsing never changes Istio's defaults for the next caller.
func TestParseDoesNotAlterDefaults(t *testing.T) {
	if _, err := Parse([]byte("trustDomain: x.td\ndefaultConfig: {discoveryAddress: elsewhere:1}\n")); err != nil {
		t.Fatal(err)
	}
	check(t, DefaultMeshConfig(), istioDefaults)
}

// Input that cannot be understood is an error naming the field (fail
// closed), from Parse or from Validate.
func TestInvalidMeshConfigNamesTheField(t *testing.T) {
	cases := []struct {
		name, yaml string
		wantInErr  []string
	}{
		{"not YAML", "trustDomain: [unterminated\n", []string{"mesh config"}},
		{"wrong type", "trustDomain: [a, b]\n", []string{"trustDomain"}},
		{"bad wrapper", "enablePrometheusMerge: maybe\n", []string{"enablePrometheusMerge"}},
		{"bad duration", "defaultConfig: {drainDuration: forever}\n", []string{"drainDuration"}},
		{"bad enum", "inboundTrafficPolicy: {mode: SIDEWAYS}\n", []string{"SIDEWAYS"}},
		// Unknown fields: rejected where Istio ignores them (docs/compatibility.md, Mesh config).
		{"unknown field (a typo)", "trustDomainAlias: [old.td]\n", []string{"trustDomainAlias"}},
		{"unknown defaultConfig field", "defaultConfig: {discoveryAdress: x}\n", []string{"discoveryAdress"}},
		// Duplicate keys: refused where Istio keeps the last (docs/compatibility.md, Mesh config).
		{"duplicate key", "trustDomain: a.td\ntrustDomain: b.td\n", []string{`"trustDomain" already set`, "line 2"}},
		{"duplicate nested key", "defaultConfig:\n  statusPort: 15020\n  statusPort: 15021\n", []string{`"statusPort" already set`}},
		// ApplyMeshConfig decodes these proto names and then discards them
		// (extractYamlField reads defaultConfig/defaultProviders only).
		{"defaultConfig spelt default_config", "default_config: {discoveryAddress: istiod.other.svc:15012}\n", []string{"default_config", "write defaultConfig"}},
		{"defaultProviders spelt default_providers", "default_providers: {metrics: [prometheus]}\n", []string{"default_providers", "write defaultProviders"}},
		{"listen port out of range", "proxyListenPort: 70000\n", []string{"mesh.proxyListenPort", "70000"}},
		{"inbound port negative", "proxyInboundListenPort: -1\n", []string{"mesh.proxyInboundListenPort"}},
		// Istio's ValidatePort bounds, 1-65535, at both ends.
		{"inbound port zero", "proxyInboundListenPort: 0\n", []string{"mesh.proxyInboundListenPort"}},
		{"inbound port over 65535", "proxyInboundListenPort: 65536\n", []string{"mesh.proxyInboundListenPort", "65536"}},
		// One field under its JSON and its proto name: refused, as a duplicate key is.
		{"one field under both names", "trustDomain: a.td\ntrust_domain: b.td\n", []string{"trustDomain", "given twice"}},
		{"status port zero", "defaultConfig: {statusPort: 0}\n", []string{"mesh.defaultConfig.statusPort"}},
		// Istio's ValidateMeshConfig (validation.MeshConfig), the check the
		// proxy.istio.io/config annotation gets too.
		{"discovery address without a port", "defaultConfig: {discoveryAddress: istiod}\n", []string{"mesh.defaultConfig.discoveryAddress"}},
		{"drain duration below a second's precision", "defaultConfig: {drainDuration: 1500ms}\n", []string{"mesh.defaultConfig.drainDuration"}},
		{"connect timeout over an hour", "connectTimeout: 2h\n", []string{"mesh.connectTimeout"}},
		// ValidateMeshConfig: meshMTLS takes no ECDH curves (tlsDefaults does).
		{"mesh mTLS ECDH curves", "meshMTLS: {ecdhCurves: [P-256]}\n", []string{"mesh.meshMTLS.ecdhCurves"}},
		// ValidateProtocolDetectionTimeout: 0 or whole milliseconds.
		{"protocol detection timeout below a millisecond's precision", "protocolDetectionTimeout: 1500us\n", []string{"mesh.protocolDetectionTimeout"}},
		{"trust domain alias not a domain", "trustDomainAliases: [old.td, td/ns]\n", []string{"mesh.trustDomainAliases[1]", "td/ns"}},
		{"empty trust domain", "trustDomain: \"\"\n", []string{"mesh.trustDomain"}},
		{"service settings host", "serviceSettings: [{hosts: [foo.bar.*]}]\n", []string{"mesh.serviceSettings[0].hosts[0]"}},
		{"trust domain wildcard", "trustDomain: \"*\"\n", []string{"mesh.trustDomain"}},
		{"trust domain alias wildcard", "trustDomainAliases: [\"*.example.com\"]\n", []string{"mesh.trustDomainAliases[0]"}},
		{"connect timeout zero", "connectTimeout: 0s\n", []string{"mesh.connectTimeout"}},
		{"empty root namespace", "rootNamespace: \"\"\n", []string{"mesh.rootNamespace"}},
		// Replacing the default's oneof member is jsonpb's; naming two members is refused, whichever comes first.
		{"two members of one oneof", "defaultConfig: {serviceCluster: a, tracingServiceName: APP_LABEL_AND_NAMESPACE}\n", []string{"oneof"}},
		{"unknown path normalization number", "pathNormalization: {normalization: 7}\n", []string{"mesh.pathNormalization.normalization"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(c.yaml))
			if err == nil {
				err = Validate(m)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range c.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

// LoadFile reads, parses and validates; errors name the file, and a file
// larger than a ConfigMap can hold is refused before parsing.
func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "trustDomain: file.td\n")
	m, err := LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	check(t, m, []want{{trustDomain, "file.td"}, {rootNamespace, "istio-system"}})

	badPort := write("port.yaml", "proxyListenPort: 0\n")
	if _, err := LoadFile(badPort); err == nil || !strings.Contains(err.Error(), badPort) || !strings.Contains(err.Error(), "mesh.proxyListenPort") {
		t.Errorf("invalid port: %v, want the file and the field named", err)
	}
	huge := write("huge.yaml", "trustDomain: x\n"+strings.Repeat("#", MaxFileBytes))
	if _, err := LoadFile(huge); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
	missing := filepath.Join(dir, "absent.yaml")
	if _, err := LoadFile(missing); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// proxy.istio.io/config overlays the mesh's defaultConfig: named fields
// replace, proxyMetadata merges key by key (Istio's
// pkg/config/mesh/mesh.go applyProxyConfig with mergeMap).
func TestParseProxyConfigOverlay(t *testing.T) {
	base := DefaultProxyConfig()
	base.ProxyMetadata = map[string]string{"A": "mesh", "B": "mesh"}
	pc, err := ParseProxyConfig(base, "proxyMetadata: {B: pod, C: pod}\nholdApplicationUntilProxyStarts: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := pc.GetProxyMetadata(); len(got) != 3 || got["A"] != "mesh" || got["B"] != "pod" || got["C"] != "pod" {
		t.Errorf("proxyMetadata = %v, want A=mesh B=pod C=pod", got)
	}
	if !pc.GetHoldApplicationUntilProxyStarts().GetValue() || pc.GetDiscoveryAddress() != "istiod.istio-system.svc:15012" {
		t.Errorf("overlay lost a field: %v", pc)
	}
	if base.GetProxyMetadata()["B"] != "mesh" {
		t.Error("the base was modified")
	}
	if _, err := ParseProxyConfig(base, "statusPort: high\n"); err == nil || !strings.Contains(err.Error(), "statusPort") {
		t.Errorf("bad annotation: %v, want statusPort named", err)
	}
}

// Istio's default ProxyConfig passes the ProxyConfig check (the injector
// checks proxy.istio.io/config annotations applied onto it).
func TestDefaultProxyConfigValid(t *testing.T) {
	if errs := validation.MeshProxyConfig(DefaultProxyConfig()); len(errs) > 0 {
		t.Errorf("default ProxyConfig rejected: %v", errs)
	}
}

// Values as Istio's jsonpb decoder (ApplyMeshConfig, applyProxyConfig)
// applies them: one member of a oneof replaces another (tracingServiceName
// over the default serviceCluster), and a null field keeps its default at
// every level, inside defaultConfig and proxyMetadata too.
func TestParseAsJSONPB(t *testing.T) {
	m, err := Parse([]byte("defaultConfig:\n  tracingServiceName: CANONICAL_NAME_ONLY\n  statusPort: null\n  drainDuration: null\n" +
		"  proxyMetadata: {A: \"1\", B: null}\n"))
	if err != nil {
		t.Fatalf("Parse: %v (Istio accepts it)", err)
	}
	if err := Validate(m); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	pc := m.GetDefaultConfig()
	if pc.GetTracingServiceName() != meshv1alpha1.ProxyConfig_CANONICAL_NAME_ONLY || pc.GetServiceCluster() != "" {
		t.Errorf("clusterName = %v, want tracingServiceName CANONICAL_NAME_ONLY alone", pc.GetClusterName())
	}
	check(t, m, []want{{statusPort, int32(15020)}, {drainDuration, 45 * time.Second}, {proxyMetadata, map[string]string{"A": "1"}}})
	ann, err := ParseProxyConfig(DefaultProxyConfig(), "tracingServiceName: APP_LABEL_AND_NAMESPACE\n")
	if err != nil {
		t.Fatalf("ParseProxyConfig: %v (Istio accepts it)", err)
	}
	if ann.GetServiceCluster() != "" || ann.GetTracingServiceName() != meshv1alpha1.ProxyConfig_APP_LABEL_AND_NAMESPACE {
		t.Errorf("annotation clusterName = %v", ann.GetClusterName())
	}
}

// Istio's DefaultMeshConfig is what custom templates see as .MeshConfig;
// extension providers merge with the defaults by name (ApplyMeshConfig).
func TestDefaultsTemplatesSee(t *testing.T) {
	m, err := Parse([]byte("extensionProviders:\n- {name: envoy, envoyFileAccessLog: {path: /dev/stderr}}\n- {name: authz, envoyExtAuthzGrpc: {service: meshguard.meshguard.svc.cluster.local, port: 9191}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.GetEnableTracing() || !m.GetEnableAutoMtls().GetValue() || m.GetIngressClass() != "istio" ||
		m.GetOutboundTrafficPolicy().GetMode() != meshv1alpha1.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY ||
		m.GetConnectTimeout().AsDuration() != 10*time.Second || !slices.Equal(m.GetDefaultServiceExportTo(), []string{"*"}) ||
		!m.GetLocalityLbSetting().GetEnabled().GetValue() {
		t.Errorf("Istio's defaults missing: %v", m)
	}
	var got []string
	for _, p := range m.GetExtensionProviders() {
		got = append(got, p.GetName())
	}
	if want := []string{"prometheus", "stackdriver", "envoy", "authz"}; !slices.Equal(got, want) {
		t.Errorf("extension providers %v, want %v", got, want)
	}
	if p := m.GetExtensionProviders()[2].GetEnvoyFileAccessLog().GetPath(); p != "/dev/stderr" {
		t.Errorf("envoy provider path %q, want the user's /dev/stderr", p)
	}
}

// TestLoadFileRefusesNonRegular: a FIFO at --mesh-config is refused, not
// opened: opening it blocks until a writer comes, which would hang serve's
// start-up and, on reload, the watcher (no later change would be seen).
func TestLoadFileRefusesNonRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := LoadFile(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), fifo) {
			t.Fatalf("LoadFile of a FIFO: %v, want not a regular file, naming it", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadFile of a FIFO blocked")
	}
}

// TestMergeProxyConfig: MergeProxyConfig layers ProxyConfigs as Istio's
// pilot/pkg/model/proxy_config.go mergeWithPrecedence does: proto.Merge, so
// a scalar or wrapper at its zero value is not applied, except concurrency
// and image, which replace whenever the higher-priority one sets them
// (concurrency 0, all cores, must override a default of 2).
func TestMergeProxyConfig(t *testing.T) {
	base := func() *meshv1alpha1.ProxyConfig {
		return &meshv1alpha1.ProxyConfig{StatusPort: 15020, Concurrency: wrapperspb.Int32(2),
			HoldApplicationUntilProxyStarts: wrapperspb.Bool(true),
			Image:                           &networkingv1beta1.ProxyImage{ImageType: "distroless"},
			ProxyMetadata:                   map[string]string{"A": "1"}}
	}
	for _, tc := range []struct {
		name       string
		over, want *meshv1alpha1.ProxyConfig
	}{
		{"nothing set", &meshv1alpha1.ProxyConfig{}, base()},
		{"concurrency 0 replaces", &meshv1alpha1.ProxyConfig{Concurrency: wrapperspb.Int32(0)},
			func() *meshv1alpha1.ProxyConfig { b := base(); b.Concurrency = wrapperspb.Int32(0); return b }()},
		{"image replaces, not merged", &meshv1alpha1.ProxyConfig{Image: &networkingv1beta1.ProxyImage{}},
			func() *meshv1alpha1.ProxyConfig { b := base(); b.Image = &networkingv1beta1.ProxyImage{}; return b }()},
		{"a wrapper's false is not applied (proto.Merge)", &meshv1alpha1.ProxyConfig{HoldApplicationUntilProxyStarts: wrapperspb.Bool(false)}, base()},
		{"scalars and maps merge", &meshv1alpha1.ProxyConfig{StatusPort: 15021, ProxyMetadata: map[string]string{"B": "2"}},
			func() *meshv1alpha1.ProxyConfig {
				b := base()
				b.StatusPort, b.ProxyMetadata["B"] = 15021, "2"
				return b
			}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, o := base(), proto.Clone(tc.over).(*meshv1alpha1.ProxyConfig)
			got := MergeProxyConfig(b, o)
			if !proto.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			if !proto.Equal(b, base()) || !proto.Equal(o, tc.over) {
				t.Error("an argument was modified")
			}
		})
	}
}
