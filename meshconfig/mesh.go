// Package meshconfig holds the mesh-wide configuration (Istio's MeshConfig,
// ConfigMap "istio", key "mesh"): Istio's defaults, parsing over those
// defaults and validation. The sidecar injector and the ext_authz evaluator
// both read it from here, so one file means the same to both.
package meshconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// DefaultProxyConfig returns Istio's default ProxyConfig (mesh.DefaultProxyConfig
// in istio/istio pkg/config/mesh, Istio's defaults for the fields injection renders).
func DefaultProxyConfig() *meshv1alpha1.ProxyConfig {
	return &meshv1alpha1.ProxyConfig{
		ConfigPath:               "./etc/istio/proxy",
		ClusterName:              &meshv1alpha1.ProxyConfig_ServiceCluster{ServiceCluster: "istio-proxy"},
		DrainDuration:            durationpb.New(45 * time.Second),
		TerminationDrainDuration: durationpb.New(5 * time.Second),
		ProxyAdminPort:           15000,
		ControlPlaneAuthPolicy:   meshv1alpha1.AuthenticationPolicy_MUTUAL_TLS,
		DiscoveryAddress:         "istiod.istio-system.svc:15012",
		Tracing: &meshv1alpha1.Tracing{Tracer: &meshv1alpha1.Tracing_Zipkin_{
			Zipkin: &meshv1alpha1.Tracing_Zipkin{Address: "zipkin.istio-system:9411"},
		}},
		BinaryPath:     "/usr/local/bin/envoy",
		StatNameLength: 189,
		StatusPort:     15020,
	}
}

// DefaultMeshConfig returns the parts of Istio's mesh.DefaultMeshConfig that
// injection reads.
func DefaultMeshConfig() *meshv1alpha1.MeshConfig {
	return &meshv1alpha1.MeshConfig{
		ProxyListenPort:        15001,
		ProxyInboundListenPort: 15006,
		EnablePrometheusMerge:  wrapperspb.Bool(true),
		TrustDomain:            "cluster.local",
		RootNamespace:          "istio-system",
		DefaultConfig:          DefaultProxyConfig(),
		InboundTrafficPolicy: &meshv1alpha1.MeshConfig_InboundTrafficPolicy{
			Mode: meshv1alpha1.MeshConfig_InboundTrafficPolicy_PASSTHROUGH,
		},
	}
}

// CleanProxyConfig returns a copy of pc without the fields that equal Istio's
// defaults, which is what Istio writes into PROXY_CONFIG (cleanProxyConfig).
func CleanProxyConfig(pc *meshv1alpha1.ProxyConfig) *meshv1alpha1.ProxyConfig {
	out := proto.Clone(pc).(*meshv1alpha1.ProxyConfig)
	def := DefaultProxyConfig().ProtoReflect()
	m := out.ProtoReflect()
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if def.Has(fd) && def.Get(fd).Equal(v) {
			clear = append(clear, fd)
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
	return out
}

// MaxFileBytes bounds a mesh config file (a ConfigMap holds at most 1 MiB).
const MaxFileBytes = 1 << 20

// LoadFile reads, parses and validates the mesh config file at path; an
// empty path means Istio's defaults.
func LoadFile(path string) (*meshv1alpha1.MeshConfig, error) {
	if path == "" {
		return DefaultMeshConfig(), nil
	}
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := Validate(m); err != nil {
		return nil, fmt.Errorf("mesh config %s: %w", path, err)
	}
	return m, nil
}

// ReadFile reads a mesh config file, refusing one larger than MaxFileBytes.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading mesh config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading mesh config: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("reading mesh config %s: larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}

// Parse parses MeshConfig YAML over Istio's defaults (Istio's
// pkg/config/mesh ApplyMeshConfig: unknown fields are errors). Empty input
// means the defaults. It does not Validate.
func Parse(data []byte) (*meshv1alpha1.MeshConfig, error) {
	mesh := DefaultMeshConfig()
	if len(strings.TrimSpace(string(data))) == 0 {
		return mesh, nil
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("mesh config: %w", err)
	}
	out := &meshv1alpha1.MeshConfig{}
	if err := overlay(mesh, js, &meshv1alpha1.MeshConfig{}, out); err != nil {
		return nil, fmt.Errorf("mesh config: %w", err)
	}
	return out, nil
}

// Validate checks the fields meshguard relies on, naming each bad field.
func Validate(m *meshv1alpha1.MeshConfig) error {
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	add("mesh.proxyListenPort", checkPort(m.GetProxyListenPort()))
	add("mesh.proxyInboundListenPort", checkPort(m.GetProxyInboundListenPort()))
	add("mesh.defaultConfig.statusPort", checkPort(m.GetDefaultConfig().GetStatusPort()))
	if m.GetDefaultConfig() == nil {
		errs = append(errs, errors.New("mesh.defaultConfig: must be set"))
	}
	return errors.Join(errs...)
}

func checkPort(p int32) error {
	if p <= 0 || p > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", p)
	}
	return nil
}

// ParseProxyConfig parses a proxy.istio.io/config annotation (or a
// ProxyConfig YAML) and overlays it on base.
func ParseProxyConfig(base *meshv1alpha1.ProxyConfig, data string) (*meshv1alpha1.ProxyConfig, error) {
	js, err := yaml.YAMLToJSON([]byte(data))
	if err != nil {
		return nil, err
	}
	out := &meshv1alpha1.ProxyConfig{}
	if err := overlay(base, js, &meshv1alpha1.ProxyConfig{}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// overlay applies user JSON over base like Istio's ApplyMeshConfig (JSON
// unmarshalled onto the defaults): objects and maps merge key by key, any
// other value (scalars, wrappers such as enablePrometheusMerge: false,
// durations, lists) replaces the default. proto.Merge cannot do this: it
// ignores a wrapper set to false. user is a scratch message that validates
// userJSON and normalises its field names.
func overlay(base proto.Message, userJSON []byte, user, out proto.Message) error {
	if err := protojson.Unmarshal(userJSON, user); err != nil {
		return err
	}
	uj, err := protojson.Marshal(user)
	if err != nil {
		return err
	}
	bj, err := protojson.Marshal(base)
	if err != nil {
		return err
	}
	var bm, um map[string]any
	if err := json.Unmarshal(bj, &bm); err != nil {
		return err
	}
	if err := json.Unmarshal(uj, &um); err != nil {
		return err
	}
	merged, err := json.Marshal(deepMerge(bm, um))
	if err != nil {
		return err
	}
	return protojson.Unmarshal(merged, out)
}

func deepMerge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = deepMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}
