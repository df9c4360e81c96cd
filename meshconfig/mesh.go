// Package meshconfig holds the mesh-wide configuration (Istio's MeshConfig,
// ConfigMap "istio", key "mesh"): Istio's defaults, parsing over those
// defaults and validation. The sidecar injector and the ext_authz evaluator
// both read it from here, so one file means the same to both.
package meshconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	fieldpath "k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/validation"
)

// DefaultProxyConfig returns Istio's default ProxyConfig (mesh.DefaultProxyConfig
// in istio/istio pkg/config/mesh, Istio's defaults for the fields injection renders).
// It has no tracing: Istio dropped the default zipkin tracer in 1.22
// (istio/istio#49615); Istio's golden hello-tracing-disabled, which its
// webhook path builds over this default, depends on it.
func DefaultProxyConfig() *meshv1alpha1.ProxyConfig {
	return &meshv1alpha1.ProxyConfig{
		ConfigPath:               "./etc/istio/proxy",
		ClusterName:              &meshv1alpha1.ProxyConfig_ServiceCluster{ServiceCluster: "istio-proxy"},
		DrainDuration:            durationpb.New(45 * time.Second),
		TerminationDrainDuration: durationpb.New(5 * time.Second),
		ProxyAdminPort:           15000,
		ControlPlaneAuthPolicy:   meshv1alpha1.AuthenticationPolicy_MUTUAL_TLS,
		DiscoveryAddress:         "istiod.istio-system.svc:15012",
		BinaryPath:               "/usr/local/bin/envoy",
		StatNameLength:           189,
		StatusPort:               15020,
	}
}

// DefaultMeshConfig returns Istio's mesh.DefaultMeshConfig
// (pkg/config/mesh/mesh.go): custom injection templates see it as
// .MeshConfig, so every field Istio sets is set here.
func DefaultMeshConfig() *meshv1alpha1.MeshConfig {
	return &meshv1alpha1.MeshConfig{
		EnableTracing:            true,
		AccessLogEncoding:        meshv1alpha1.MeshConfig_TEXT,
		ProtocolDetectionTimeout: durationpb.New(0),
		IngressService:           "istio-ingressgateway",
		IngressControllerMode:    meshv1alpha1.MeshConfig_STRICT,
		IngressClass:             "istio",
		TrustDomain:              "cluster.local",
		EnableAutoMtls:           wrapperspb.Bool(true),
		OutboundTrafficPolicy: &meshv1alpha1.MeshConfig_OutboundTrafficPolicy{
			Mode: meshv1alpha1.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY,
		},
		InboundTrafficPolicy: &meshv1alpha1.MeshConfig_InboundTrafficPolicy{
			Mode: meshv1alpha1.MeshConfig_InboundTrafficPolicy_PASSTHROUGH,
		},
		LocalityLbSetting:              &networkingv1alpha3.LocalityLoadBalancerSetting{Enabled: wrapperspb.Bool(true)},
		DefaultConfig:                  DefaultProxyConfig(),
		RootNamespace:                  "istio-system",
		ProxyListenPort:                15001,
		ProxyInboundListenPort:         15006,
		ConnectTimeout:                 durationpb.New(10 * time.Second),
		DefaultServiceExportTo:         []string{"*"},
		DefaultVirtualServiceExportTo:  []string{"*"},
		DefaultDestinationRuleExportTo: []string{"*"},
		DnsRefreshRate:                 durationpb.New(60 * time.Second),
		DefaultProviders:               &meshv1alpha1.MeshConfig_DefaultProviders{},
		ExtensionProviders: []*meshv1alpha1.MeshConfig_ExtensionProvider{
			{Name: "prometheus", Provider: &meshv1alpha1.MeshConfig_ExtensionProvider_Prometheus{
				Prometheus: &meshv1alpha1.MeshConfig_ExtensionProvider_PrometheusMetricsProvider{}}},
			{Name: "stackdriver", Provider: &meshv1alpha1.MeshConfig_ExtensionProvider_Stackdriver{
				Stackdriver: &meshv1alpha1.MeshConfig_ExtensionProvider_StackdriverProvider{}}},
			{Name: "envoy", Provider: &meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyFileAccessLog{
				EnvoyFileAccessLog: &meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyFileAccessLogProvider{Path: "/dev/stdout"}}},
		},
		EnablePrometheusMerge: wrapperspb.Bool(true),
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
	m, err := ParseFile(path)
	if err != nil {
		return nil, err
	}
	if err := Validate(m); err != nil {
		return nil, fmt.Errorf("%s: mesh config: %w", path, err)
	}
	return m, nil
}

// ParseFile reads and parses (Parse) the mesh config file at path, not
// validating it: for a caller that validates it with Validated, which
// returns the parsed discoverySelectors too.
func ParseFile(path string) (*meshv1alpha1.MeshConfig, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Load parses (Parse) and validates (Validate) mesh config YAML.
func Load(data []byte) (*meshv1alpha1.MeshConfig, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := Validate(m); err != nil {
		return nil, fmt.Errorf("mesh config: %w", err)
	}
	return m, nil
}

// ReadFile reads a mesh config file, refusing one larger than MaxFileBytes
// and anything but a regular file (manifest.ReadFile): opening a FIFO would
// block start-up, or a reload and every later one, until a writer came.
func ReadFile(path string) ([]byte, error) {
	data, err := manifest.ReadFile(path, MaxFileBytes)
	if errors.Is(err, manifest.ErrTooLarge) {
		return nil, fmt.Errorf("reading mesh config %s: larger than %d bytes", path, MaxFileBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("reading mesh config: %w", err)
	}
	return data, nil
}

// Parse parses MeshConfig YAML over Istio's defaults as Istio's
// pkg/config/mesh/mesh.go ApplyMeshConfig does: every top-level field given
// replaces the default, defaultConfig is applied field by field onto the
// default ProxyConfig (proxyMetadata key by key), trustDomainAliases come
// out sorted and deduplicated. Values are decoded as Istio's decoder does
// (overlay). Empty input, or only comments, means the defaults. Content in a
// second YAML document is an error (manifest.SingleDocument), where Istio
// reads the first document only (docs/compatibility.md). It does not
// Validate.
func Parse(data []byte) (*meshv1alpha1.MeshConfig, error) {
	if err := manifest.SingleDocument(data); err != nil {
		return nil, fmt.Errorf("mesh config: %w", err)
	}
	out := &meshv1alpha1.MeshConfig{}
	err := overlay(DefaultMeshConfig(), data, out, func(key string, base, user any) any {
		switch key {
		case "defaultConfig":
			return overlayProxyConfig(base, user)
		case "extensionProviders":
			return mergeByName(base, user)
		}
		return user
	})
	if err != nil {
		return nil, fmt.Errorf("mesh config: %w", err)
	}
	out.TrustDomainAliases = sortedUnique(out.TrustDomainAliases)
	return out, nil
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return s
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// Validate checks a mesh config as Istio's ValidateMeshConfig does
// (validation.MeshConfig, which the proxy.istio.io/config annotation's check
// shares), plus proxyInboundListenPort, which injection writes into
// istio-init's arguments, a non-empty rootNamespace and a pathNormalization
// ext_authz knows, and defaultConfig.proxyMetadata entries Istio's sidecar
// template can render (TemplateEnv), and discoverySelectors that parse
// (parseDiscoverySelectors): checked here, once, so ext_authz and
// analyze refuse the file injection refuses. Errors name the field; warnings
// (Istio only prints them: TLS settings meshguard does not read, the
// deprecated ISTIO_META_DNS_AUTO_ALLOCATE) are not returned.
func Validate(m *meshv1alpha1.MeshConfig) error {
	_, err := Validated(m)
	return err
}

// Validated is Validate returning m's discoverySelectors as parsed in
// checking them, so that a caller that applies them (ext_authz's
// authz.Options) does not parse them a second time.
func Validated(m *meshv1alpha1.MeshConfig) (DiscoverySelectors, error) {
	errs := validation.MeshConfig(m).Errors
	md := m.GetDefaultConfig().GetProxyMetadata()
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if _, _, err := TemplateEnv(k, md[k]); err != nil {
			errs = append(errs, fieldpath.Invalid(fieldpath.NewPath("mesh", "defaultConfig", "proxyMetadata", k), md[k], err.Error()))
		}
	}
	if p := m.GetProxyInboundListenPort(); p <= 0 || p > 65535 {
		errs = append(errs, fieldpath.Invalid(fieldpath.NewPath("mesh", "proxyInboundListenPort"), p, "port out of range 1-65535"))
	}
	if n := m.GetPathNormalization().GetNormalization(); meshv1alpha1.MeshConfig_ProxyPathNormalization_NormalizationType_name[int32(n)] == "" {
		// protojson takes any enum number; ext_authz must know how to normalize.
		errs = append(errs, fieldpath.NotSupported(fieldpath.NewPath("mesh", "pathNormalization", "normalization"), n,
			[]string{"DEFAULT", "NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"}))
	}
	// discoverySelectors: ext_authz drops the policies of the namespaces
	// they leave out, as istiod does (parseDiscoverySelectors).
	selectors, selErrs := parseDiscoverySelectors(m)
	errs = append(errs, selErrs...)
	if m.GetRootNamespace() == "" {
		// Istio leaves "" to each reader; injection would match no root
		// ProxyConfig while ext_authz would default to istio-system.
		errs = append(errs, fieldpath.Required(fieldpath.NewPath("mesh", "rootNamespace"), "the root namespace must be set"))
	}
	if err := errs.ToAggregate(); err != nil {
		return DiscoverySelectors{}, err
	}
	return selectors, nil
}

// TemplateEnv is what Istio's sidecar template
// (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml,
// the proxyMetadata range) makes of a proxyMetadata entry: it writes
// `- name: {{ $key }}` and `value: "{{ $value }}"`, so the name is read back
// as a plain YAML scalar and the value as a YAML double-quoted one (escapes
// such as \t decoded). An entry that does not read back as one name and one
// value, both strings (a name such as `true` or `a: b`, a value with a stray
// `"` or an unknown escape such as \d), fails Istio's injection with a YAML
// or decoding error, and is an error here.
func TemplateEnv(name, value string) (string, string, error) {
	var doc map[string]any
	err := yaml.Unmarshal([]byte("name: "+name+"\nvalue: \""+value+"\""), &doc)
	n, ok1 := doc["name"].(string)
	v, ok2 := doc["value"].(string)
	if err != nil || !ok1 || !ok2 || len(doc) != 2 {
		if err == nil {
			err = errors.New("it does not read back as one string name and one string value")
		}
		return "", "", fmt.Errorf("name %q, value %q: not what Istio's template reads back from `- name: <name>` and `value: \"<value>\"`: %w", name, value, err)
	}
	return n, v, nil
}

// ParseProxyConfig parses a proxy.istio.io/config annotation (or a
// ProxyConfig YAML) and applies it onto base field by field, proxyMetadata
// key by key (Istio's pkg/config/mesh/mesh.go applyProxyConfig). Content in
// a second YAML document is an error, as in Parse.
func ParseProxyConfig(base *meshv1alpha1.ProxyConfig, data string) (*meshv1alpha1.ProxyConfig, error) {
	if err := manifest.SingleDocument([]byte(data)); err != nil {
		return nil, err
	}
	out := &meshv1alpha1.ProxyConfig{}
	if err := overlay(base, []byte(data), out, proxyConfigField); err != nil {
		return nil, err
	}
	return out, nil
}

// MergeProxyConfig returns base with over laid over it as Istio's webhook
// layers the inputs of a pod's ProxyConfig (pilot/pkg/model/proxy_config.go
// mergeWithPrecedence, called by EffectiveProxyConfig for the mesh
// defaultConfig over the default ProxyConfig, each ProxyConfig resource and
// the proxy.istio.io/config annotation): proto.Merge, so nested messages
// (tracing, proxyStatsMatcher, proxyHeaders) merge field by field, lists
// append, maps merge key by key and a scalar at its zero value (a wrapper's
// false too) is not applied; concurrency and image replace whenever set.
// Neither argument is modified.
func MergeProxyConfig(base, over *meshv1alpha1.ProxyConfig) *meshv1alpha1.ProxyConfig {
	out := &meshv1alpha1.ProxyConfig{}
	proto.Merge(out, base)
	proto.Merge(out, over)
	if c := over.GetConcurrency(); c != nil {
		out.Concurrency = wrapperspb.Int32(c.GetValue())
	}
	if img := over.GetImage(); img != nil {
		out.Image = proto.Clone(img).(*networkingv1beta1.ProxyImage)
	}
	return out
}

// proxyConfigField is how one ProxyConfig field is applied (applyProxyConfig):
// proxyMetadata key by key (mergeMap), every other field replaced.
func proxyConfigField(key string, base, user any) any {
	if key == "proxyMetadata" {
		return mergeObjects(base, user)
	}
	return user
}

// overlayProxyConfig applies a user defaultConfig object onto the default
// one (both decoded JSON) as ParseProxyConfig applies an annotation.
func overlayProxyConfig(base, user any) any {
	bm, ok1 := base.(map[string]any)
	um, ok2 := user.(map[string]any)
	if !ok1 || !ok2 {
		return user
	}
	out := maps.Clone(bm)
	applyFields(out, um, (&meshv1alpha1.ProxyConfig{}).ProtoReflect().Descriptor(), proxyConfigField)
	return out
}

// applyFields applies the user's fields of message md onto obj (both
// decoded JSON, user's keys normalized) as jsonpb does, each through apply:
// a null field is not set, at every level, and a member of a oneof replaces
// the default's other member (tracingServiceName over serviceCluster), where
// protojson would refuse an object holding both. A user object naming two
// members of one oneof keeps both, and protojson refuses it.
func applyFields(obj, user map[string]any, md protoreflect.MessageDescriptor, apply func(key string, base, user any) any) {
	for key, v := range user {
		if v == nil {
			continue
		}
		if fd := md.Fields().ByJSONName(key); fd != nil {
			if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
				for i := 0; i < o.Fields().Len(); i++ {
					if sib := o.Fields().Get(i).JSONName(); sib != key && user[sib] == nil {
						delete(obj, sib)
					}
				}
			}
		}
		obj[key] = apply(key, obj[key], v)
	}
}

// mergeByName merges the user's extension providers into the defaults as
// ApplyMeshConfig does: one named as a default replaces its provider, the
// others are appended in order.
func mergeByName(base, user any) any {
	bl, ok1 := base.([]any)
	ul, ok2 := user.([]any)
	if !ok1 || !ok2 {
		return user
	}
	out := slices.Clone(bl)
	for _, u := range ul {
		um, _ := u.(map[string]any)
		found := false
		for i, b := range out {
			if bm, _ := b.(map[string]any); um != nil && bm != nil && bm["name"] == um["name"] {
				out[i], found = u, true
				break
			}
		}
		if !found {
			out = append(out, u)
		}
	}
	return out
}

// mergeObjects returns base with user's non-null keys set over it (mergeMap).
func mergeObjects(base, user any) any {
	bm, _ := base.(map[string]any)
	um, ok := user.(map[string]any)
	if !ok {
		return user
	}
	out := maps.Clone(bm)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range um {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// overlay decodes the user's YAML for base's message type and applies its
// top-level fields onto base (protojson form) through apply, into out.
//
// Values mean what they mean to Istio, which decodes with golang/protobuf
// jsonpb (pkg/util/protomarshal ApplyYAML): a document that is only null
// (empty, or comments) changes nothing, a field set to null keeps its
// default, a field set to its zero value (statusPort: 0, trustDomain: "")
// is set, and durations are Go durations ("1m" as well as "60s"). Unlike
// Istio, unknown fields are errors, as typos are (docs/compatibility.md,
// "Mesh config"), and so are duplicate keys, which Istio's decoder resolves
// to the last (one of two trustDomain lines would silently win). Errors name
// the field.
func overlay(base proto.Message, userYAML []byte, out proto.Message, apply func(key string, base, user any) any) error {
	js, err := yaml.YAMLToJSONStrict(userYAML)
	if err != nil {
		return err
	}
	var user any
	if err := json.Unmarshal(js, &user); err != nil {
		return err
	}
	bj, err := protojson.Marshal(base)
	if err != nil {
		return err
	}
	var merged map[string]any
	if err := json.Unmarshal(bj, &merged); err != nil {
		return err
	}
	if user != nil {
		um, ok := user.(map[string]any)
		if !ok {
			return fmt.Errorf("want an object of %s fields, got %s", base.ProtoReflect().Descriptor().Name(), jsonKind(user))
		}
		if err := normalize(um, base.ProtoReflect().Descriptor(), ""); err != nil {
			return err
		}
		applyFields(merged, um, base.ProtoReflect().Descriptor(), apply)
	}
	mj, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(mj, out)
}

// jsonNameOnly are the MeshConfig fields Istio's ApplyMeshConfig takes only
// under their JSON name: it decodes default_config and default_providers
// like any proto name, then puts back the previous value and applies what
// extractYamlField("defaultConfig"/"defaultProviders") finds, so these
// spellings are silently ignored there. They are refused rather than applied
// with a meaning Istio's proxies (pilot-agent reads the same file) do not give them.
var jsonNameOnly = map[protoreflect.FullName]bool{
	"istio.mesh.v1alpha1.MeshConfig.default_config":    true,
	"istio.mesh.v1alpha1.MeshConfig.default_providers": true,
}

// normalize rewrites the decoded JSON object obj of message md in place to
// the form protojson reads with Istio's meaning: field names to their JSON
// names, Go durations to protobuf's "<seconds>s". Every value of a
// well-known type (durations, wrappers) is checked here, so the error
// names the field; an unknown field is an error.
func normalize(obj map[string]any, md protoreflect.MessageDescriptor, path string) error {
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		v := obj[key]
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByTextName(key)
		}
		field := path + key
		if fd == nil {
			return fmt.Errorf("%s: unknown field in %s", field, md.FullName())
		}
		if name := fd.JSONName(); name != key {
			if jsonNameOnly[fd.FullName()] {
				return fmt.Errorf("%s: Istio ignores this field unless it is spelt %s; write %s", field, name, path+name)
			}
			if _, dup := obj[name]; dup {
				return fmt.Errorf("%s: given twice (as %s and %s)", path+name, key, name)
			}
			delete(obj, key)
			obj[name] = v
			field = path + name
		}
		if v == nil || fd.Kind() != protoreflect.MessageKind {
			continue
		}
		var err error
		switch {
		case fd.IsMap():
			if m, ok := v.(map[string]any); ok && fd.MapValue().Kind() == protoreflect.MessageKind {
				for k, e := range m {
					if m[k], err = normalizeValue(e, fd.MapValue().Message(), field+"."+k); err != nil {
						return err
					}
				}
			}
		case fd.IsList():
			if l, ok := v.([]any); ok {
				for i, e := range l {
					if l[i], err = normalizeValue(e, fd.Message(), fmt.Sprintf("%s[%d]", field, i)); err != nil {
						return err
					}
				}
			}
		default:
			if obj[fd.JSONName()], err = normalizeValue(v, fd.Message(), field); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalizeValue normalizes one value of message type md.
func normalizeValue(v any, md protoreflect.MessageDescriptor, field string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if md.FullName() == "google.protobuf.Duration" {
		if s, ok := v.(string); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("%s: invalid duration %q", field, s)
			}
			v = strings.Trim(protojsonDuration(d), `"`)
		}
	}
	if md.ParentFile().Package() == "google.protobuf" {
		// A well-known type: check it here to name the field.
		b, err := json.Marshal(v)
		if err == nil {
			err = protojson.Unmarshal(b, dynamicpb.NewMessage(md))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return v, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an object of %s fields, got %s", field, md.Name(), jsonKind(v))
	}
	return obj, normalize(obj, md, field+".")
}

func protojsonDuration(d time.Duration) string {
	b, _ := protojson.Marshal(durationpb.New(d))
	return string(b)
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
