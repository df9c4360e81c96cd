package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/meshconfig"
)

// Snapshot is one validated, immutable injector configuration. It is shared
// by concurrent requests and replaced as a whole on reload.
type Snapshot struct {
	Mesh   *meshv1alpha1.MeshConfig
	Values Values
	// NeverInject and AlwaysInject are the parsed selectors (Istio's
	// pkg/kube/inject/inject.go injectRequired).
	NeverInject  []labels.Selector
	AlwaysInject []labels.Selector
	// ProxyConfig is the mesh-level ProxyConfig every pod's starts from:
	// Mesh.DefaultConfig merged over Istio's default ProxyConfig, as
	// EffectiveProxyConfig begins (MergeProxyConfig).
	ProxyConfig *meshv1alpha1.ProxyConfig
	// ProxyConfigEnv is PROXY_CONFIG for pods ProxyConfig applies to
	// unchanged: ProxyConfigJSON's value with the newline Istio's template
	// leaves after it (a `|` block scalar).
	ProxyConfigEnv string
	// Templates are the injection templates of Istio's injector `config`
	// (injectorconfig.go); nil when none were given: meshguard's built-in templates.
	Templates *Templates
}

// Revision returns the revision name recorded on pods ("default" when unset).
func (s *Snapshot) Revision() string {
	if s.Values.Revision == "" {
		return "default"
	}
	return s.Values.Revision
}

// Default returns the snapshot built from Istio's defaults only.
func Default() *Snapshot {
	s, err := Load(nil, nil)
	if err != nil {
		panic(err) // defaults are static; a failure is a programming error
	}
	return s
}

// LoadFiles reads and validates the mesh config and values files of
// `meshguard serve` (--mesh-config, --injector-values) through the same
// loader as `meshguard inject` (Inputs.Load). An empty path means
// "defaults". Each file holds the key's content only: ext_authz reads the same --mesh-config with
// meshconfig.LoadFile, which takes no ConfigMap wrapper and has the same
// size bound, so injection must not accept more than it does.
func LoadFiles(meshPath, valuesPath string) (*Snapshot, error) {
	in := Inputs{ValuesSource: valuesPath, MeshSource: meshPath, keyContentOnly: true}
	var err error
	if meshPath != "" {
		if in.Mesh, err = meshconfig.ReadFile(meshPath); err != nil {
			return nil, err
		}
	}
	if valuesPath != "" {
		// A regular file only, as for the mesh config: a FIFO would block.
		if in.Values, err = manifest.ReadFile(valuesPath, MaxInputBytes); err != nil {
			return nil, fmt.Errorf("reading injector values: %w", err)
		}
	}
	return in.Load()
}

// Load parses mesh config YAML (MeshConfig, applied over Istio's defaults) and
// injector values YAML/JSON, applies defaults and validates everything. Nothing
// is returned unless the whole configuration is valid.
func Load(meshYAML, valuesYAML []byte) (*Snapshot, error) {
	mesh, err := meshconfig.Parse(meshYAML)
	if err != nil {
		return nil, err
	}
	var v Values
	if len(strings.TrimSpace(string(valuesYAML))) > 0 {
		if err := manifest.SingleDocument(valuesYAML); err != nil {
			return nil, fmt.Errorf("injector values: %w", err)
		}
		if err := yaml.Unmarshal(unquoteNumbers(valuesYAML), &v); err != nil {
			return nil, fmt.Errorf("injector values: %w", err)
		}
	}
	v.applyDefaults()
	s := &Snapshot{Mesh: mesh, Values: v}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.NeverInject, err = selectors("sidecarInjectorWebhook.neverInjectSelector", v.SidecarInjectorWebhook.NeverInjectSelector); err != nil {
		return nil, err
	}
	if s.AlwaysInject, err = selectors("sidecarInjectorWebhook.alwaysInjectSelector", v.SidecarInjectorWebhook.AlwaysInjectSelector); err != nil {
		return nil, err
	}
	s.ProxyConfig = MergeProxyConfig(DefaultProxyConfig(), mesh.DefaultConfig)
	js, err := ProxyConfigJSON(s.ProxyConfig)
	if err != nil {
		return nil, err
	}
	s.ProxyConfigEnv = js + "\n"
	return s, nil
}

// ProxyConfigJSON renders the PROXY_CONFIG value for an effective ProxyConfig.
func ProxyConfigJSON(pc *meshv1alpha1.ProxyConfig) (string, error) {
	b, err := protojson.MarshalOptions{}.Marshal(CleanProxyConfig(pc))
	if err != nil {
		return "", fmt.Errorf("rendering PROXY_CONFIG: %w", err)
	}
	// protojson may emit spaces nondeterministically; compact for stability.
	return compactJSON(b), nil
}

func (s *Snapshot) validate() error {
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	if err := meshconfig.Validate(s.Mesh); err != nil {
		errs = append(errs, err)
	}
	g := s.Values.Global
	p := g.Proxy
	if *p.StatusPort != 0 {
		add("values.global.proxy.statusPort", checkPort(*p.StatusPort))
	}
	switch p.AutoInject {
	case "enabled", "disabled":
	default:
		errs = append(errs, fmt.Errorf("values.global.proxy.autoInject: %q is not enabled or disabled", p.AutoInject))
	}
	add("values.global.proxy.includeIPRanges", ValidateIncludeCIDRs(*p.IncludeIPRanges))
	add("values.global.proxy.excludeIPRanges", ValidateCIDRs(*p.ExcludeIPRanges))
	add("values.global.proxy.includeInboundPorts", ValidateIncludePorts(*p.IncludeInboundPorts))
	add("values.global.proxy.excludeInboundPorts", ValidatePorts(*p.ExcludeInboundPorts))
	add("values.global.proxy.includeOutboundPorts", ValidatePorts(*p.IncludeOutboundPorts))
	add("values.global.proxy.excludeOutboundPorts", ValidatePorts(*p.ExcludeOutboundPorts))
	switch g.ImagePullPolicy {
	case "", "Always", "Never", "IfNotPresent":
	default:
		errs = append(errs, fmt.Errorf("values.global.imagePullPolicy: %q is not Always, Never or IfNotPresent", g.ImagePullPolicy))
	}
	for _, n := range []struct {
		f string
		v *int32
	}{
		{"readinessInitialDelaySeconds", p.ReadinessInitialDelaySeconds},
		{"readinessPeriodSeconds", p.ReadinessPeriodSeconds},
		{"readinessFailureThreshold", p.ReadinessFailureThreshold},
		{"startupProbe.failureThreshold", p.StartupProbe.FailureThreshold},
	} {
		if *n.v < 0 {
			errs = append(errs, fmt.Errorf("values.global.proxy.%s: %d is negative", n.f, *n.v))
		}
	}
	if g.Hub == "" || g.Proxy.Image == "" {
		errs = append(errs, errors.New("values.global.hub and global.proxy.image must not be empty"))
	}
	if err := s.Values.Meshguard.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func selectors(field string, in []metav1.LabelSelector) ([]labels.Selector, error) {
	out := make([]labels.Selector, 0, len(in))
	for i := range in {
		sel, err := metav1.LabelSelectorAsSelector(&in[i])
		if err != nil {
			return nil, fmt.Errorf("values.%s[%d]: %w", field, i, err)
		}
		out = append(out, sel)
	}
	return out, nil
}

func checkPort(p int32) error {
	if p <= 0 || p > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", p)
	}
	return nil
}

// ValidatePorts checks a comma-separated port list ("" allowed).
func ValidatePorts(s string) error {
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%q is not a port number", f)
		}
	}
	return nil
}

// ValidateIncludePorts is ValidatePorts that also accepts "*".
func ValidateIncludePorts(s string) error {
	if strings.TrimSpace(s) == "*" {
		return nil
	}
	return ValidatePorts(s)
}

// ValidateCIDRs checks a comma-separated CIDR list ("" allowed).
func ValidateCIDRs(s string) error {
	for _, f := range splitList(s) {
		if _, _, err := net.ParseCIDR(f); err != nil {
			return fmt.Errorf("%q is not a CIDR", f)
		}
	}
	return nil
}

// ValidateIncludeCIDRs is ValidateCIDRs that also accepts "*".
func ValidateIncludeCIDRs(s string) error {
	if strings.TrimSpace(s) == "*" {
		return nil
	}
	return ValidateCIDRs(s)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func compactJSON(b []byte) string {
	var sb strings.Builder
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case inStr:
			sb.WriteByte(c)
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
			sb.WriteByte(c)
		case c == ' ' || c == '\n' || c == '\t':
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
