package injector

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
	"github.com/meshguard/meshguard/validation"
)

// Annotation and label keys read or written by injection (Istio's pkg/kube/inject and
// injection-template.yaml).
const (
	AnnotationInject            = "sidecar.istio.io/inject" // also a label, which wins
	AnnotationStatus            = "sidecar.istio.io/status"
	AnnotationInterceptionMode  = "sidecar.istio.io/interceptionMode"
	AnnotationProxyImage        = "sidecar.istio.io/proxyImage"
	AnnotationProxyImageType    = "sidecar.istio.io/proxyImageType"
	AnnotationProxyCPU          = "sidecar.istio.io/proxyCPU"
	AnnotationProxyMemory       = "sidecar.istio.io/proxyMemory"
	AnnotationProxyCPULimit     = "sidecar.istio.io/proxyCPULimit"
	AnnotationProxyMemoryLimit  = "sidecar.istio.io/proxyMemoryLimit"
	AnnotationLogLevel          = "sidecar.istio.io/logLevel"
	AnnotationComponentLog      = "sidecar.istio.io/componentLogLevel"
	AnnotationAgentLogLevel     = "sidecar.istio.io/agentLogLevel"
	AnnotationNativeSidecar     = "sidecar.istio.io/nativeSidecar"
	AnnotationRewriteProbes     = "sidecar.istio.io/rewriteAppHTTPProbers"
	AnnotationBootstrapOverride = "sidecar.istio.io/bootstrapOverride"
	AnnotationCapNetBind        = "sidecar.istio.io/capNetBindService"
	AnnotationUserVolume        = "sidecar.istio.io/userVolume"
	AnnotationUserVolumeMount   = "sidecar.istio.io/userVolumeMount"
	AnnotationStatusPort        = "status.sidecar.istio.io/port"
	AnnotationReadinessDelay    = "readiness.status.sidecar.istio.io/initialDelaySeconds"
	AnnotationReadinessPeriod   = "readiness.status.sidecar.istio.io/periodSeconds"
	AnnotationReadinessFailure  = "readiness.status.sidecar.istio.io/failureThreshold"
	// AnnotationReadinessAppPorts is Istio's (deprecated) list of application
	// ports; AnnotationTrafficAppPorts is the spelling users also write. Both
	// are validated as port lists so "-1" is denied rather than carried along.
	AnnotationReadinessAppPorts    = "readiness.status.sidecar.istio.io/applicationPorts"
	AnnotationTrafficAppPorts      = "traffic.sidecar.istio.io/applicationPorts"
	AnnotationIncludeOutboundIPs   = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	AnnotationExcludeOutboundIPs   = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	AnnotationIncludeInboundPorts  = "traffic.sidecar.istio.io/includeInboundPorts"
	AnnotationExcludeInboundPorts  = "traffic.sidecar.istio.io/excludeInboundPorts"
	AnnotationIncludeOutboundPorts = "traffic.sidecar.istio.io/includeOutboundPorts"
	AnnotationExcludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
	AnnotationKubevirtInterfaces   = "traffic.sidecar.istio.io/kubevirtInterfaces"
	AnnotationExcludeInterfaces    = "traffic.sidecar.istio.io/excludeInterfaces"
	AnnotationRerouteVirtual       = "istio.io/reroute-virtual-interfaces"
	AnnotationProxyConfig          = "proxy.istio.io/config"
	AnnotationMergeMetrics         = "prometheus.istio.io/merge-metrics"
	AnnotationRev                  = "istio.io/rev"
	AnnotationDefaultContainer     = "kubectl.kubernetes.io/default-container"
	AnnotationDefaultLogsContainer = "kubectl.kubernetes.io/default-logs-container"
	AnnotationPromScrape           = "prometheus.io/scrape"
	AnnotationPromPort             = "prometheus.io/port"
	AnnotationPromPath             = "prometheus.io/path"
	AnnotationPromScrapeTargets    = "prometheus.istio.io/scrape-targets"
	AnnotationInjectTemplates      = "inject.istio.io/templates"

	LabelTLSMode           = "security.istio.io/tlsMode"
	LabelCanonicalName     = "service.istio.io/canonical-name"
	LabelCanonicalRevision = "service.istio.io/canonical-revision"
	LabelWorkloadName      = "service.istio.io/workload-name"
	LabelNetwork           = "topology.istio.io/network"

	ProxyContainerName      = "istio-proxy"
	InitContainerName       = "istio-init"
	ValidationContainerName = "istio-validation"
)

// Optional is an annotation's parsed value and whether the pod set it.
type Optional[T any] struct {
	Value T
	Set   bool
}

// Or is the value, or def when the pod did not set the annotation.
func (o Optional[T]) Or(def T) T {
	if o.Set {
		return o.Value
	}
	return def
}

func some[T any](v T) Optional[T] { return Optional[T]{Value: v, Set: true} }

// Annotations are the pod's injection annotations, each parsed once into its
// typed value by ParseAnnotations; resolution and rendering read only these.
// Lists that istio-iptables receives verbatim (CIDRs, ports, interfaces) are
// validated and kept as written, as Istio's template passes them on.
type Annotations struct {
	// Template is inject.istio.io/templates: TemplateSidecar when absent.
	Template string
	// ProxyConfig holds only the fields proxy.istio.io/config sets; nil when absent.
	ProxyConfig      *meshv1alpha1.ProxyConfig
	InterceptionMode Optional[meshv1alpha1.ProxyConfig_InboundInterceptionMode]
	StatusPort       Optional[int32] // 0 turns the status server off
	// Readiness probe settings of istio-proxy.
	ReadinessInitialDelaySeconds Optional[int32]
	ReadinessPeriodSeconds       Optional[int32]
	ReadinessFailureThreshold    Optional[int32]

	IncludeOutboundIPRanges  Optional[string]
	ExcludeOutboundIPRanges  Optional[string]
	IncludeInboundPorts      Optional[string]
	ExcludeInboundPorts      Optional[string]
	IncludeOutboundPorts     Optional[string]
	ExcludeOutboundPorts     Optional[string]
	ReadinessAppPorts        Optional[string] // validated only: pilot-agent reads it from the pod
	TrafficAppPorts          Optional[string] // validated only
	ExcludeInterfaces        Optional[string]
	KubevirtInterfaces       Optional[string]
	RerouteVirtualInterfaces Optional[string]

	MergeMetrics Optional[bool]
	// ScrapeTargets is prometheus.istio.io/scrape-targets; each port is a
	// port number the sidecar does not reserve (the status port is checked
	// where the merge knows it).
	ScrapeTargets []ScrapeTarget
	// Resources are the proxy's requests and limits from the four resource
	// annotations, only the annotated fields; nil when none is set (the
	// values' resources apply, Istio's injection-template.yaml).
	Resources *corev1.ResourceRequirements

	NativeSidecar         Optional[bool] // an invalid value is ignored with a warning
	RewriteAppHTTPProbers Optional[bool] // an invalid value is ignored with a warning
	// ProxyImage is a full image name; a value without "/" is not one and
	// is ignored, as Istio's template ignores it.
	ProxyImage        Optional[string]
	ProxyImageType    Optional[string]
	LogLevel          Optional[string]
	ComponentLogLevel Optional[string]
	AgentLogLevel     Optional[string]
	// BootstrapOverride names the ConfigMap of a custom Envoy bootstrap.
	BootstrapOverride Optional[string]
	CapNetBindService Optional[string] // as written: only "true" turns it on (Istio's template); see params.netBindService
	// UserVolumes and UserVolumeMounts are read by the sidecar template only
	// (the others do not parse them).
	UserVolumes      []corev1.Volume
	UserVolumeMounts []corev1.VolumeMount

	// Warnings are for values that are ignored rather than denied.
	Warnings []string
}

// AnnotationError is why ParseAnnotations rejects one annotation's value:
// the one rule for the webhook, which denies the pod with it (inside a
// *FieldError naming the annotation: its text is the webhook's), and for
// analyze, which reports it as IST0125 in Istio's words when Istio rejects
// the value too.
type AnnotationError struct {
	Key, Value string
	// Err is meshguard's reason, the text the webhook returns.
	Err error
	// Istio is the error Istio's validator of the annotation
	// (pkg/kube/inject/validate.go AnnotationValidation, which Istio's
	// annotation analyzer also runs) returns for Value, in its words; nil
	// when Istio does not validate the annotation or accepts the value
	// (where meshguard is stricter, docs/compatibility.md).
	Istio error
}

func (e *AnnotationError) Error() string { return e.Err.Error() }
func (e *AnnotationError) Unwrap() error { return e.Err }

// AnnotationErrors splits an error of ParseAnnotations into its
// per-annotation errors, by annotation name: each is the webhook's error
// for it (a *FieldError naming the annotation, wrapping an
// *AnnotationError). Other errors are not in the map.
func AnnotationErrors(err error) map[string]error {
	out := map[string]error{}
	var walk func(error)
	walk = func(err error) {
		var ae *AnnotationError
		if fe, ok := err.(*FieldError); ok && errors.As(fe.Err, &ae) {
			out[ae.Key] = fe
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// istioText is a check's error together with the text Istio's validate.go
// helper returns for the same value (the check's verdict is Istio's: where
// meshguard is stricter, the check returns a plain error instead).
type istioText struct {
	err   error
	istio string
}

func (e *istioText) Error() string { return e.err.Error() }
func (e *istioText) Unwrap() error { return e.err }

// istioVerdict is the error of an annotation Istio validates: err as the
// webhook says it, istio as Istio's validator does.
type istioVerdict struct {
	err   error
	istio error
}

func (e *istioVerdict) Error() string { return e.err.Error() }
func (e *istioVerdict) Unwrap() error { return e.err }

// istioValidated marks parse as the check of an annotation in Istio's
// validate.go AnnotationValidation: an error it returns with Istio's text
// (istioText) gets prefix, the "<parameter> invalid: " Istio's validator of
// that annotation adds ("" when it adds none), and becomes the annotation's
// AnnotationError.Istio. The checks of annotations Istio does not validate
// are not wrapped, so their AnnotationError.Istio is nil.
func istioValidated[T any](prefix string, parse func(string) (T, error)) func(string) (T, error) {
	return func(s string) (T, error) {
		v, err := parse(s)
		var t *istioText
		if err != nil && errors.As(err, &t) {
			return v, &istioVerdict{err: err, istio: errors.New(prefix + t.istio)}
		}
		return v, err
	}
}

// annotationParser collects the parse errors of one pod's annotations.
type annotationParser struct {
	annos map[string]string
	errs  []error
}

func (ap *annotationParser) bad(key string, err error) {
	ae := &AnnotationError{Key: key, Value: ap.annos[key], Err: err}
	var v *istioVerdict
	if errors.As(err, &v) {
		ae.Istio = v.istio
	}
	ap.errs = append(ap.errs, fieldErr("annotation "+key, ae))
}

// parseProxyConfigAnnotation parses proxy.istio.io/config and checks it as
// Istio's pkg/kube/inject/validate.go validateProxyConfig does: applied onto
// Istio's default ProxyConfig (not the mesh's), the result must pass
// ValidateMeshConfigProxyConfig (validation.MeshProxyConfig). The value kept
// is the annotation's own fields, which apply over the mesh's defaults.
//
// Istio's text of a value that does not parse is "failed to convert to
// apply proxy config: " and the parser's error, of one the validation
// rejects the validation's errors; the parser's and the validation's own
// words are meshguard's (protomarshal's and ValidateMeshConfigProxyConfig's
// texts are not reproduced).
func parseProxyConfigAnnotation(s string) (*meshv1alpha1.ProxyConfig, error) {
	unparsable := func(err error) error {
		return &istioText{err: err, istio: "failed to convert to apply proxy config: " + err.Error()}
	}
	own, err := config.ParseProxyConfig(&meshv1alpha1.ProxyConfig{}, s)
	if err != nil {
		return nil, unparsable(err)
	}
	onDefaults, err := config.ParseProxyConfig(config.DefaultProxyConfig(), s)
	if err != nil {
		return nil, unparsable(err)
	}
	if errs := validation.MeshProxyConfig(onDefaults); len(errs) > 0 {
		agg := errs.ToAggregate()
		return nil, &istioText{err: agg, istio: agg.Error()}
	}
	return own, nil
}

// get returns the annotation's value, parsed by parse; a parse error names
// the annotation and leaves it unset.
func get[T any](ap *annotationParser, key string, parse func(string) (T, error)) Optional[T] {
	s, ok := ap.annos[key]
	if !ok {
		return Optional[T]{}
	}
	v, err := parse(s)
	if err != nil {
		ap.bad(key, err)
		return Optional[T]{}
	}
	return some(v)
}

// checked is the annotation as written, after check accepts it.
func checked(check func(string) error) func(string) (string, error) {
	return func(s string) (string, error) { return s, check(s) }
}

func verbatim(s string) (string, error) { return s, nil }

// ParseAnnotations parses the injection annotations of a pod. Invalid values
// deny the pod (Istio's pkg/kube/inject/validate.go validateAnnotations):
// the error joins one FieldError per bad annotation, each wrapping its
// *AnnotationError (AnnotationErrors splits them). Values Istio ignores
// when invalid (nativeSidecar, rewriteAppHTTPProbers) become Warnings.
func ParseAnnotations(annos map[string]string) (*Annotations, error) {
	ap := &annotationParser{annos: annos}
	a := &Annotations{Template: TemplateSidecar}
	if t := get(ap, AnnotationInjectTemplates, typedTemplate); t.Set {
		a.Template = t.Value
	}
	// The annotations of Istio's validate.go AnnotationValidation, each
	// with the prefix its Istio validator adds to the check's text.
	a.ProxyConfig = get(ap, AnnotationProxyConfig, istioValidated("", parseProxyConfigAnnotation)).Value
	a.InterceptionMode = get(ap, AnnotationInterceptionMode, istioValidated("", parseInterceptionMode))
	a.StatusPort = get(ap, AnnotationStatusPort, istioValidated("excludeInboundPorts invalid: ", parseStatusPort)) // sic: Istio's validateStatusPort
	a.ReadinessInitialDelaySeconds = get(ap, AnnotationReadinessDelay, istioValidated("", parseProbeInt))
	a.ReadinessPeriodSeconds = get(ap, AnnotationReadinessPeriod, istioValidated("", parseProbeInt))
	a.ReadinessFailureThreshold = get(ap, AnnotationReadinessFailure, istioValidated("", parseProbeInt))
	a.IncludeOutboundIPRanges = get(ap, AnnotationIncludeOutboundIPs, istioValidated("includeIPRanges invalid: ", checked(wildcardOr(checkCIDRList))))
	a.ExcludeOutboundIPRanges = get(ap, AnnotationExcludeOutboundIPs, istioValidated("excludeIPRanges invalid: ", checked(checkCIDRList)))
	a.IncludeInboundPorts = get(ap, AnnotationIncludeInboundPorts, istioValidated("includeInboundPorts invalid: ", checked(wildcardOr(checkPortList))))
	a.ExcludeInboundPorts = get(ap, AnnotationExcludeInboundPorts, istioValidated("excludeInboundPorts invalid: ", checked(checkPortList)))
	a.ExcludeOutboundPorts = get(ap, AnnotationExcludeOutboundPorts, istioValidated("excludeOutboundPorts invalid: ", checked(checkPortList)))
	a.MergeMetrics = get(ap, AnnotationMergeMetrics, istioValidated("", parseMergeMetrics))
	// Annotations Istio does not validate.
	a.IncludeOutboundPorts = get(ap, AnnotationIncludeOutboundPorts, checked(checkPortList))
	a.ReadinessAppPorts = get(ap, AnnotationReadinessAppPorts, checked(checkPortList))
	a.TrafficAppPorts = get(ap, AnnotationTrafficAppPorts, checked(checkPortList))
	a.ExcludeInterfaces = get(ap, AnnotationExcludeInterfaces, checked(validateInterfaces))
	a.KubevirtInterfaces = get(ap, AnnotationKubevirtInterfaces, checked(validateInterfaces))
	a.RerouteVirtualInterfaces = get(ap, AnnotationRerouteVirtual, checked(validateInterfaces))
	a.Resources = ap.resources()
	a.ScrapeTargets = get(ap, AnnotationPromScrapeTargets, parseScrapeTargets).Value

	// Istio's sidecar template: `ne (annotation | default .NativeSidecars)
	// "false"`: empty is the default, exactly "false" is off, anything else on.
	if v := annos[AnnotationNativeSidecar]; v != "" {
		a.NativeSidecar = some(v != "false")
		if v != "false" && v != "true" {
			a.Warnings = append(a.Warnings, fmt.Sprintf("annotation %s %q is not \"false\": native sidecar (as Istio's template reads it)", AnnotationNativeSidecar, v))
		}
	}
	a.RewriteAppHTTPProbers = ap.lenientBool(a, AnnotationRewriteProbes, "not a boolean", strconv.ParseBool)
	if img := get(ap, AnnotationProxyImage, verbatim); strings.Contains(img.Value, "/") {
		a.ProxyImage = img
	}
	a.ProxyImageType = get(ap, AnnotationProxyImageType, verbatim)
	a.LogLevel = get(ap, AnnotationLogLevel, verbatim)
	a.ComponentLogLevel = get(ap, AnnotationComponentLog, verbatim)
	a.AgentLogLevel = get(ap, AnnotationAgentLogLevel, verbatim)
	a.BootstrapOverride = get(ap, AnnotationBootstrapOverride, verbatim)
	a.CapNetBindService = get(ap, AnnotationCapNetBind, verbatim)
	if a.Template == TemplateSidecar {
		a.UserVolumes = get(ap, AnnotationUserVolume, func(s string) ([]corev1.Volume, error) {
			return parseNamedList(s, func(v *corev1.Volume) *string { return &v.Name })
		}).Value
		a.UserVolumeMounts = get(ap, AnnotationUserVolumeMount, func(s string) ([]corev1.VolumeMount, error) {
			return parseNamedList(s, func(m *corev1.VolumeMount) *string { return &m.Name })
		}).Value
	}
	if len(ap.errs) > 0 {
		return nil, errors.Join(ap.errs...)
	}
	return a, nil
}

// typedTemplate reads inject.istio.io/templates with the one parse every
// path uses (template.ParseTemplateNames, which bounds the count), then
// picks the typed injector's template (parseTemplates).
func typedTemplate(s string) (string, error) {
	names, err := template.ParseTemplateNames(s)
	if err != nil {
		return TemplateSidecar, err
	}
	return parseTemplates(names)
}

// checkTemplateNames is ParseAnnotations' error for an
// inject.istio.io/templates over template.MaxSelectedTemplates names, for
// the generic path, which selects the names itself (genericParams): the
// same *FieldError around an *AnnotationError.
func checkTemplateNames(annos map[string]string) error {
	ap := &annotationParser{annos: annos}
	get(ap, AnnotationInjectTemplates, template.ParseTemplateNames)
	return errors.Join(ap.errs...)
}

// lenientBool parses a boolean Istio ignores when invalid: the value is then
// unset and a warning says so.
func (ap *annotationParser) lenientBool(a *Annotations, key, what string, parse func(string) (bool, error)) Optional[bool] {
	s, ok := ap.annos[key]
	if !ok {
		return Optional[bool]{}
	}
	b, err := parse(s)
	if err != nil {
		a.Warnings = append(a.Warnings, fmt.Sprintf("annotation %s %s is %s; ignored", key, strconv.Quote(s), what))
		return Optional[bool]{}
	}
	return some(b)
}

// resources reads the four resource annotations: any of them replaces the
// values' resources with only the annotated fields (Istio's injection-template.yaml).
func (ap *annotationParser) resources() *corev1.ResourceRequirements {
	var out *corev1.ResourceRequirements
	for _, r := range []struct {
		key   string
		limit bool
		name  corev1.ResourceName
	}{
		{AnnotationProxyCPU, false, corev1.ResourceCPU},
		{AnnotationProxyMemory, false, corev1.ResourceMemory},
		{AnnotationProxyCPULimit, true, corev1.ResourceCPU},
		{AnnotationProxyMemoryLimit, true, corev1.ResourceMemory},
	} {
		if _, ok := ap.annos[r.key]; !ok {
			continue
		}
		if out == nil {
			out = &corev1.ResourceRequirements{}
		}
		q := get(ap, r.key, parseQuantity)
		if !q.Set {
			continue
		}
		target := &out.Requests
		if r.limit {
			target = &out.Limits
		}
		if *target == nil {
			*target = corev1.ResourceList{}
		}
		(*target)[r.name] = q.Value
	}
	return out
}

// parseInterceptionMode accepts Istio's three modes, spelled exactly
// (Istio's validate.go validateInterceptionMode).
func parseInterceptionMode(s string) (meshv1alpha1.ProxyConfig_InboundInterceptionMode, error) {
	switch s {
	case "REDIRECT":
		return meshv1alpha1.ProxyConfig_REDIRECT, nil
	case "TPROXY":
		return meshv1alpha1.ProxyConfig_TPROXY, nil
	case "NONE":
		return meshv1alpha1.ProxyConfig_NONE, nil
	}
	return 0, &istioText{fmt.Errorf("%q is not REDIRECT, TPROXY or NONE", s), "interceptionMode invalid, use REDIRECT,TPROXY,NONE: " + s}
}

// parseMergeMetrics reads prometheus.istio.io/merge-metrics as Istio's
// validate.go validateBool does: strconv.ParseBool.
func parseMergeMetrics(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &istioText{fmt.Errorf("%q is not a boolean", s), err.Error()}
	}
	return b, nil
}

// parseProbeInt reads a readiness probe setting. Istio validates a uint32
// (validate.go validateUInt32) but the probe field is an int32, so a value
// above 2^31-1 would make Istio's injected pod undecodable; it is denied here
// (an error without Istio's text: Istio accepts it).
//
// The value must also be written canonically (canonicalInt): Istio's
// sidecar template writes it unquoted into the probe, where YAML 1.1 reads
// "010" as octal 8, so Istio's pod would not carry the number its
// validator accepted.
func parseProbeInt(s string) (int32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, &istioText{fmt.Errorf("%q is not a non-negative integer", s), err.Error()}
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return canonicalInt(s, int32(n))
}

// canonicalInt is n when s is exactly its decimal spelling, else an error
// (without Istio's text: Istio's validate.go accepts a leading zero, and
// around a port spaces). It is the one rule for the integer annotations
// Istio's templates copy as written (the readiness settings, the status
// port): with "010" or " 15030" the stock template (run by the generic
// renderer, as Istio runs it) would read another number, or copy the
// spaces, than the typed injector, which uses the number; denying every
// other spelling keeps both paths and Istio's well-defined cases equal
// (docs/compatibility.md).
func canonicalInt(s string, n int32) (int32, error) {
	if want := strconv.Itoa(int(n)); s != want {
		return 0, fmt.Errorf("%q is not written canonically (want %q: no sign, spaces or leading zeros)", s, want)
	}
	return n, nil
}

// annotationPort is one port of a port annotation: parsePort with 0
// allowed (a trimmed uint16, Istio's validate.go parsePort), its error
// carrying Istio's text, which quotes strconv's error of the same parse.
func annotationPort(s string) (int32, error) {
	n, err := parsePort(s, true)
	if err != nil {
		why := error(err)
		if _, e := strconv.ParseUint(strings.TrimSpace(s), 10, 16); e != nil {
			why = e
		}
		return 0, &istioText{err, fmt.Sprintf("failed parsing port '%s': %v", s, why)}
	}
	return n, nil
}

// parseStatusPort reads status.sidecar.istio.io/port (Istio's validate.go
// validateStatusPort): one port, 0 turning the status server off, written
// canonically (canonicalInt): Istio's sidecar template compares the raw
// value with "0" (so "00" keeps a status server on port 0) and copies it
// into -d and --debug-port (so " 15030" or "015030" reach pilot-agent as
// written).
func parseStatusPort(s string) (int32, error) {
	n, err := annotationPort(s)
	if err != nil {
		return 0, err
	}
	return canonicalInt(s, n)
}

// wildcardOr accepts "*" (exactly) or what check accepts (Istio's
// validate.go ValidateIncludeIPRanges, ValidateIncludeInboundPorts).
func wildcardOr(check func(string) error) func(string) error {
	return func(s string) error {
		if s == "*" {
			return nil
		}
		return check(s)
	}
}

// checkCIDRList accepts "" or comma-separated CIDRs, each exactly a prefix:
// no spaces, no empty items (Istio's validate.go validateCIDRList).
// istio-iptables skips an item it cannot parse, so such an item would
// silently not be captured or excluded.
func checkCIDRList(s string) error {
	if s == "" {
		return nil
	}
	for _, c := range strings.Split(s, ",") {
		if _, err := netip.ParsePrefix(c); err != nil {
			return &istioText{fmt.Errorf("%q is not a CIDR", c), fmt.Sprintf("failed parsing cidr '%s': %v", c, err)}
		}
	}
	return nil
}

// checkPortList accepts a comma-separated list of ports 0-65535, spaces
// around items allowed, or "" (Istio's validate.go parsePorts, which wraps
// parsePort's error once more).
func checkPortList(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, f := range strings.Split(s, ",") {
		if _, err := annotationPort(f); err != nil {
			var t *istioText
			if !errors.As(err, &t) {
				return err
			}
			return &istioText{t.err, fmt.Sprintf("failed parsing port '%s': %s", f, t.istio)}
		}
	}
	return nil
}
