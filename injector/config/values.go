// Package config holds the injector's settings: the Istio mesh config
// (istio.io/api MeshConfig) and the subset of Istio's Helm `values` that the
// default `sidecar` template reads, with Istio's defaults (from
// manifests/charts/istio-control/istio-discovery/values.yaml), loaded and validated into
// an immutable Snapshot.
package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Values is the subset of Istio's injector `values` (the JSON the
// istio-sidecar-injector ConfigMap carries under key "values") that meshguard
// understands. Unknown keys are ignored so a real Istio values file loads.
type Values struct {
	Revision               string                `json:"revision,omitempty"`
	Global                 GlobalValues          `json:"global"`
	SidecarInjectorWebhook SidecarInjectorValues `json:"sidecarInjectorWebhook"`
	Pilot                  PilotValues           `json:"pilot"`
	// Meshguard is meshguard's own section (not in Istio's values): the
	// allow-list for pod-level image and privilege overrides (security.go).
	Meshguard SecurityValues `json:"meshguard"`
}

// GlobalValues mirrors Helm `global.*`.
type GlobalValues struct {
	Hub               string            `json:"hub,omitempty"`
	Tag               string            `json:"tag,omitempty"`
	Variant           string            `json:"variant,omitempty"`
	ImagePullPolicy   corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	ImagePullSecrets  []string          `json:"imagePullSecrets,omitempty"`
	IstioNamespace    string            `json:"istioNamespace,omitempty"`
	Network           string            `json:"network,omitempty"`
	MeshID            string            `json:"meshID,omitempty"`
	TrustDomain       string            `json:"trustDomain,omitempty"`
	PilotCertProvider string            `json:"pilotCertProvider,omitempty"`
	CAAddress         string            `json:"caAddress,omitempty"`
	TrustBundleName   string            `json:"trustBundleName,omitempty"`
	MountMtlsCerts    bool              `json:"mountMtlsCerts,omitempty"`
	LogAsJSON         bool              `json:"logAsJson,omitempty"`
	NativeNftables    bool              `json:"nativeNftables,omitempty"`
	// Platform is Helm's global.platform, which Istio's chart hands istiod
	// as PLATFORM; "openshift" turns on the namespace's OpenShift UID range
	// (injector.IsOpenShift).
	Platform string `json:"platform,omitempty"`
	// NativeSidecars is meshguard's cluster-wide switch for Kubernetes native
	// sidecars (Istio: ENABLE_NATIVE_SIDECARS, decided from node versions).
	NativeSidecars *bool           `json:"nativeSidecars,omitempty"`
	Logging        LoggingValues   `json:"logging"`
	Proxy          ProxyValues     `json:"proxy"`
	ProxyInit      ProxyInitValues `json:"proxy_init"`
	MultiCluster   MultiCluster    `json:"multiCluster"`
	Sds            SdsValues       `json:"sds"`
}

// LoggingValues mirrors `global.logging`.
type LoggingValues struct {
	Level string `json:"level,omitempty"`
}

// MultiCluster mirrors `global.multiCluster`.
type MultiCluster struct {
	ClusterName string `json:"clusterName,omitempty"`
}

// SdsValues mirrors `global.sds`.
type SdsValues struct {
	Token struct {
		Aud string `json:"aud,omitempty"`
	} `json:"token"`
}

// ProxyValues mirrors `global.proxy`.
type ProxyValues struct {
	Image                           string `json:"image,omitempty"`
	AutoInject                      string `json:"autoInject,omitempty"`
	ClusterDomain                   string `json:"clusterDomain,omitempty"`
	StatusPort                      *int32 `json:"statusPort,omitempty"`
	LogLevel                        string `json:"logLevel,omitempty"`
	ComponentLogLevel               string `json:"componentLogLevel,omitempty"`
	Privileged                      bool   `json:"privileged,omitempty"`
	HoldApplicationUntilProxyStarts bool   `json:"holdApplicationUntilProxyStarts,omitempty"`
	// CapNetBindService: the template compares its printed form with "true".
	CapNetBindService            any               `json:"capNetBindService,omitempty"`
	IncludeIPRanges              *string           `json:"includeIPRanges,omitempty"`
	ExcludeIPRanges              *string           `json:"excludeIPRanges,omitempty"`
	IncludeInboundPorts          *string           `json:"includeInboundPorts,omitempty"`
	ExcludeInboundPorts          *string           `json:"excludeInboundPorts,omitempty"`
	IncludeOutboundPorts         *string           `json:"includeOutboundPorts,omitempty"`
	ExcludeOutboundPorts         *string           `json:"excludeOutboundPorts,omitempty"`
	ReadinessInitialDelaySeconds *int32            `json:"readinessInitialDelaySeconds,omitempty"`
	ReadinessPeriodSeconds       *int32            `json:"readinessPeriodSeconds,omitempty"`
	ReadinessFailureThreshold    *int32            `json:"readinessFailureThreshold,omitempty"`
	StartupProbe                 StartupProbe      `json:"startupProbe"`
	Resources                    *ResourceValues   `json:"resources,omitempty"`
	Lifecycle                    *corev1.Lifecycle `json:"lifecycle,omitempty"`
}

// StartupProbe mirrors `global.proxy.startupProbe`.
type StartupProbe struct {
	Enabled          *bool  `json:"enabled,omitempty"`
	FailureThreshold *int32 `json:"failureThreshold,omitempty"`
}

// ResourceValues is `global.proxy.resources`; nil (null) entries are dropped
// like Istio's omitNil. Like the rest of a Snapshot it is read only once
// used: Requirements builds its lists once.
type ResourceValues struct {
	Requests map[corev1.ResourceName]*resource.Quantity `json:"requests,omitempty"`
	Limits   map[corev1.ResourceName]*resource.Quantity `json:"limits,omitempty"`

	built atomic.Pointer[corev1.ResourceRequirements] // Requirements' result
}

// Requirements is the injected proxy's resources: the lists without their
// null entries (Istio's injection template renders `omitNil
// .Values.global.proxy.resources`, pkg/kube/inject/template.go omitNil), a
// list without entries left out. They are built on first use and shared by
// every pod injected with these values: read only, like the rest of an
// injection's Result.Pod (of two concurrent first uses, the first to
// store its lists wins and both return them).
func (r *ResourceValues) Requirements() corev1.ResourceRequirements {
	if b := r.built.Load(); b != nil {
		return *b
	}
	conv := func(in map[corev1.ResourceName]*resource.Quantity) corev1.ResourceList {
		var l corev1.ResourceList
		for k, q := range in {
			if q == nil {
				continue
			}
			if l == nil {
				l = corev1.ResourceList{}
			}
			l[k] = q.DeepCopy()
		}
		return l
	}
	b := &corev1.ResourceRequirements{Requests: conv(r.Requests), Limits: conv(r.Limits)}
	if !r.built.CompareAndSwap(nil, b) {
		b = r.built.Load() // another request's, equal: every pod shares one
	}
	return *b
}

// ProxyInitValues mirrors `global.proxy_init`.
type ProxyInitValues struct {
	Image              string `json:"image,omitempty"`
	ForceApplyIptables bool   `json:"forceApplyIptables,omitempty"`
}

// SidecarInjectorValues mirrors `sidecarInjectorWebhook.*` (plus the
// selectors Istio's ConfigMap `config` key carries).
type SidecarInjectorValues struct {
	RewriteAppHTTPProbe  *bool                  `json:"rewriteAppHTTPProbe,omitempty"`
	NeverInjectSelector  []metav1.LabelSelector `json:"neverInjectSelector,omitempty"`
	AlwaysInjectSelector []metav1.LabelSelector `json:"alwaysInjectSelector,omitempty"`
	InjectedAnnotations  map[string]string      `json:"injectedAnnotations,omitempty"`
	// EnableNamespacesByDefault is Helm's
	// sidecarInjectorWebhook.enableNamespacesByDefault. meshguard's injector
	// does not act on it (docs/compatibility.md); `meshguard analyze` reads it
	// for IST0148 (analysis/injection.go), as Istio's injection analyzer does.
	EnableNamespacesByDefault bool `json:"enableNamespacesByDefault,omitempty"`
}

// PilotValues mirrors `pilot.*`.
type PilotValues struct {
	CNI struct {
		Enabled  bool   `json:"enabled,omitempty"`
		Provider string `json:"provider,omitempty"`
	} `json:"cni"`
}

func ptr[T any](v T) *T { return &v }

// ImageURL is the image the injector renders for image name (global.proxy.image,
// global.proxy_init.image) with image type imageType: name itself when it
// contains "/", else <hub>/<name>:<tag>[-<imageType>] (Istio's
// pkg/kube/inject/inject.go imageURL, updateImageTypeIfPresent). An empty
// imageType leaves the tag as configured; any other replaces a -distroless or
// -debug suffix of the tag, "default" by none. The injector (injector/sidecar.go
// params.image) and `meshguard analyze` (analysis/injectorimage.go) both use it.
func (g *GlobalValues) ImageURL(name, imageType string) string {
	if strings.Contains(name, "/") {
		return name
	}
	tag := g.Tag
	if imageType != "" {
		for _, known := range []string{"distroless", "debug"} {
			if t, ok := strings.CutSuffix(tag, "-"+known); ok {
				tag = t
				break
			}
		}
		if imageType != "default" {
			tag += "-" + imageType
		}
	}
	return g.Hub + "/" + name + ":" + tag
}

// LoadValues parses injector values (the "values" key of an
// istio-sidecar-injector ConfigMap, JSON or YAML) as Load does, with Istio's
// defaults, and validates them.
func LoadValues(valuesYAML []byte) (Values, error) {
	s, err := Load(nil, valuesYAML)
	if err != nil {
		return Values{}, err
	}
	return s.Values, nil
}

// defPtr sets an unset (nil) pointer field to d.
func defPtr[T any](p **T, d T) {
	if *p == nil {
		*p = ptr(d)
	}
}

// applyDefaults fills every unset field with Istio's chart default.
func (v *Values) applyDefaults() {
	g := &v.Global
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&g.Hub, "registry.istio.io/testing")
	def(&g.Tag, "latest")
	def(&g.IstioNamespace, "istio-system")
	def(&g.PilotCertProvider, "istiod")
	def(&g.TrustBundleName, "istio-ca-root-cert")
	def(&g.Logging.Level, "default:info")
	def(&g.Sds.Token.Aud, "istio-ca")
	def(&g.ProxyInit.Image, "proxyv2")
	p := &g.Proxy
	def(&p.Image, "proxyv2")
	def(&p.AutoInject, "enabled")
	def(&p.ClusterDomain, "cluster.local")
	def(&p.LogLevel, "warning")
	def(&p.ComponentLogLevel, "misc:error")
	// Pointer fields: an explicit empty or zero value is kept.
	defPtr(&p.IncludeIPRanges, "*")
	defPtr(&p.ExcludeIPRanges, "")
	defPtr(&p.IncludeInboundPorts, "*")
	defPtr(&p.ExcludeInboundPorts, "")
	defPtr(&p.IncludeOutboundPorts, "")
	defPtr(&p.ExcludeOutboundPorts, "")
	defPtr(&p.StatusPort, 15020)
	defPtr(&p.ReadinessInitialDelaySeconds, 0)
	defPtr(&p.ReadinessPeriodSeconds, 15)
	defPtr(&p.ReadinessFailureThreshold, 4)
	defPtr(&p.StartupProbe.FailureThreshold, 600)
	defPtr(&p.StartupProbe.Enabled, true)
	if p.Resources == nil {
		p.Resources = &ResourceValues{
			Requests: map[corev1.ResourceName]*resource.Quantity{
				corev1.ResourceCPU: ptr(resource.MustParse("100m")), corev1.ResourceMemory: ptr(resource.MustParse("128Mi")),
			},
			Limits: map[corev1.ResourceName]*resource.Quantity{
				corev1.ResourceCPU: ptr(resource.MustParse("2000m")), corev1.ResourceMemory: ptr(resource.MustParse("1024Mi")),
			},
		}
	}
	defPtr(&v.SidecarInjectorWebhook.RewriteAppHTTPProbe, true)
	def(&v.Pilot.CNI.Provider, "default")
}

// unquoteNumbers gives the values document with a string at a number field
// of Values read as Istio reads it: Istio decodes the values with jsonpb
// (pkg/kube/inject/webhook.go NewValuesConfig, protomarshal.ApplyYAML), which
// strips the quotes of the JSON string and decodes the rest as the number
// (github.com/golang/protobuf jsonpb unmarshalSingularValue, trimQuote), so
// `statusPort: "15020"` is 15020. A string whose inside is not a JSON number
// is left for the typed decode to refuse, as Istio refuses it. The document is
// returned unchanged when there is nothing to unquote (or it does not parse:
// the typed decode reports that).
func unquoteNumbers(doc []byte) []byte {
	var v any
	if yaml.Unmarshal(doc, &v) != nil || !unquoteIn(v, reflect.TypeFor[Values]()) {
		return doc
	}
	b, err := json.Marshal(v)
	if err != nil {
		return doc
	}
	return b
}

// unquoteIn rewrites, in the decoded object v, the quoted numbers at the
// number fields of struct type t and of its nested structs of this package
// (not the Kubernetes types, which Istio does not decode with jsonpb), and
// says whether it changed anything.
func unquoteIn(v any, t reflect.Type) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		val, ok := m[name]
		if !ok || name == "" || name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			if ft.PkgPath() == t.PkgPath() && unquoteIn(val, ft) {
				changed = true
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
			s, ok := val.(string)
			if !ok {
				continue
			}
			// jsonpb json.Unmarshals the inside of the JSON string (as
			// sigs.k8s.io/yaml YAMLToJSON wrote it) into the number type.
			quoted, _ := json.Marshal(s)
			n := reflect.New(ft)
			if json.Unmarshal(quoted[1:len(quoted)-1], n.Interface()) == nil {
				m[name] = n.Elem().Interface()
				changed = true
			}
		}
	}
	return changed
}
