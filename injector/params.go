package injector

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	clientnetworking "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/meshguard/meshguard/injector/config"
)

// params are the per-pod inputs of the sidecar, resolved from annotations and
// config once, after validation (Istio's pkg/kube/inject/webhook.go inject).
type params struct {
	cfg       *config.Snapshot
	template  string // TemplateSidecar or TemplateGateway
	namespace string
	owner     Owner
	annos     map[string]string
	proxyCfg  *meshv1alpha1.ProxyConfig
	// operatorCfg is the mesh defaultConfig with the root namespace's
	// ProxyConfig resource: the operator's settings, not allow-listed.
	operatorCfg *meshv1alpha1.ProxyConfig
	// podLayers are what each pod-level ProxyConfig input sets, lowest
	// precedence first, to name the source of a setting in messages.
	podLayers  []proxyConfigLayer
	proxyJSON  string
	mode       string // REDIRECT, TPROXY or NONE
	native     bool
	hold       bool
	cni        bool
	statusPort int32 // template side (values / annotation)
	proxyUID   int64 // 1337, or the namespace's OpenShift range (openshift.go)
	proxyGID   int64
	meshStatus int32 // Go side (mesh defaultConfig / annotation)
	resources  corev1.ResourceRequirements
	overrides  []corev1.Container // user-declared injected containers (Istio's reapplyOverwrittenContainers)
	proxyEnv   map[string]string  // from the webhook URL path (Istio's pkg/kube/inject/webhook.go)
	warnings   []string
	userVols   []corev1.Volume // from sidecar.istio.io/userVolume
	// userMountList is sidecar.istio.io/userVolumeMount, as parsed.
	userMountList []corev1.VolumeMount
}

// network is the mesh network of the pod: URL path, else values.
func (p *params) network() string {
	if n := p.proxyEnv["ISTIO_META_NETWORK"]; n != "" {
		return n
	}
	return p.cfg.Values.Global.Network
}

func (p *params) anno(key, def string) string {
	if v, ok := p.annos[key]; ok {
		return v
	}
	return def
}

// resolveParams validates the pod's injection annotations and resolves the
// effective settings. Invalid annotations deny the pod (as Istio does) with an
// error naming each bad annotation.
func resolveParams(pod *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options) (*params, error) {
	p := &params{cfg: cfg, namespace: namespace, annos: pod.Annotations}
	if p.annos == nil {
		p.annos = map[string]string{}
	}
	var errs []error
	bad := func(key string, err error) {
		errs = append(errs, fieldErr("annotation "+key, err))
	}
	a := p.annos
	v := cfg.Values.Global

	p.template = TemplateSidecar
	if t, ok := a[AnnotationInjectTemplates]; ok {
		tmpl, err := parseTemplates(t)
		if err != nil {
			bad(AnnotationInjectTemplates, err)
		}
		p.template = tmpl
	}

	// The effective ProxyConfig, lowest precedence first (Istio's
	// EffectiveProxyConfig): mesh defaultConfig, the root namespace's
	// ProxyConfig resource (together: the operator's), then the pod
	// namespace's resource, the proxy.istio.io/config annotation and a
	// resource selecting the pod (pod-level, allow-listed in guard.go).
	levels := pickProxyConfigs(opts.ProxyConfigs, cfg.Mesh.GetRootNamespace(), namespace, pod.Labels)
	p.operatorCfg = applyProxyConfig(cfg.Mesh.DefaultConfig, levels.root)
	p.proxyCfg = p.operatorCfg
	addLayer := func(source string, cr *clientnetworking.ProxyConfig) {
		if cr != nil {
			p.proxyCfg = applyProxyConfig(p.proxyCfg, cr)
			p.podLayers = append(p.podLayers, proxyConfigLayer{source, applyProxyConfig(&meshv1alpha1.ProxyConfig{}, cr)})
		}
	}
	addLayer(crSource(levels.namespace), levels.namespace)
	if s, ok := a[AnnotationProxyConfig]; ok {
		pc, err := config.ParseProxyConfig(p.proxyCfg, s)
		own, ownErr := config.ParseProxyConfig(&meshv1alpha1.ProxyConfig{}, s)
		if err == nil {
			err = ownErr
		}
		if err != nil {
			bad(AnnotationProxyConfig, err)
		} else {
			p.proxyCfg = pc
			p.podLayers = append(p.podLayers, proxyConfigLayer{"annotation " + AnnotationProxyConfig, own})
		}
	}
	addLayer(crSource(levels.workload), levels.workload)
	p.proxyJSON = cfg.ProxyConfigJSON
	if p.proxyCfg != cfg.Mesh.DefaultConfig {
		js, err := config.ProxyConfigJSON(p.proxyCfg)
		if err != nil {
			bad(AnnotationProxyConfig, err)
		}
		p.proxyJSON = js
	}

	p.mode = p.proxyCfg.GetInterceptionMode().String()
	if s, ok := a[AnnotationInterceptionMode]; ok {
		switch s {
		case "REDIRECT", "TPROXY", "NONE":
			p.mode = s
		default:
			bad(AnnotationInterceptionMode, fmt.Errorf("%q is not REDIRECT, TPROXY or NONE", s))
		}
	}

	p.statusPort = *v.Proxy.StatusPort
	p.meshStatus = p.proxyCfg.GetStatusPort()
	if s, ok := a[AnnotationStatusPort]; ok {
		n, err := parsePort(s, true)
		if err != nil {
			bad(AnnotationStatusPort, err)
		}
		p.statusPort, p.meshStatus = n, n
	}
	for _, k := range []string{AnnotationReadinessDelay, AnnotationReadinessPeriod, AnnotationReadinessFailure} {
		if s, ok := a[k]; ok {
			if _, err := strconv.ParseUint(s, 10, 31); err != nil {
				bad(k, fmt.Errorf("%q is not a non-negative integer", s))
			}
		}
	}
	checks := []struct {
		key string
		fn  func(string) error
	}{
		{AnnotationIncludeOutboundIPs, config.ValidateIncludeCIDRs},
		{AnnotationExcludeOutboundIPs, config.ValidateCIDRs},
		{AnnotationIncludeInboundPorts, config.ValidateIncludePorts},
		{AnnotationExcludeInboundPorts, config.ValidatePorts},
		{AnnotationIncludeOutboundPorts, config.ValidatePorts},
		{AnnotationExcludeOutboundPorts, config.ValidatePorts},
		{AnnotationReadinessAppPorts, config.ValidatePorts},
		{AnnotationTrafficAppPorts, config.ValidatePorts},
		{AnnotationExcludeInterfaces, validateInterfaces},
		{AnnotationKubevirtInterfaces, validateInterfaces},
		{AnnotationRerouteVirtual, validateInterfaces},
	}
	for _, c := range checks {
		if s, ok := a[c.key]; ok {
			if err := c.fn(s); err != nil {
				bad(c.key, err)
			}
		}
	}
	if s, ok := a[AnnotationMergeMetrics]; ok {
		if _, err := strconv.ParseBool(s); err != nil {
			bad(AnnotationMergeMetrics, fmt.Errorf("%q is not a boolean", s))
		}
	}

	// Resources: any annotation → only annotated fields (Istio's injection-template.yaml).
	resAnnos := []struct {
		key  string
		lim  bool
		name corev1.ResourceName
	}{
		{AnnotationProxyCPU, false, corev1.ResourceCPU},
		{AnnotationProxyMemory, false, corev1.ResourceMemory},
		{AnnotationProxyCPULimit, true, corev1.ResourceCPU},
		{AnnotationProxyMemoryLimit, true, corev1.ResourceMemory},
	}
	anyRes := false
	for _, r := range resAnnos {
		s, ok := a[r.key]
		if !ok {
			continue
		}
		anyRes = true
		q, err := parseQuantity(s)
		if err != nil {
			bad(r.key, err)
			continue
		}
		target := &p.resources.Requests
		if r.lim {
			target = &p.resources.Limits
		}
		if *target == nil {
			*target = corev1.ResourceList{}
		}
		(*target)[r.name] = q
	}
	if !anyRes && v.Proxy.Resources != nil {
		p.resources = omitNil(v.Proxy.Resources)
	}

	// Native sidecars: the pod's annotation, else the values (or the
	// --native-sidecars flag folded into them), else the cluster's
	// auto-detected support (Options.NativeSidecars; off when unknown).
	native, auto := false, false
	switch {
	case v.NativeSidecars != nil:
		native = *v.NativeSidecars
	case opts.NativeSidecars != nil:
		native, auto = *opts.NativeSidecars, true
	}
	if s, ok := a[AnnotationNativeSidecar]; ok {
		switch strings.ToLower(s) {
		case "true":
			native, auto = true, false
		case "false":
			native, auto = false, false
		default:
			p.warnings = append(p.warnings, fmt.Sprintf("annotation %s %q is not true or false; ignored", AnnotationNativeSidecar, s))
		}
	}
	if auto && !native && opts.NativeSidecarsNote != "" && p.template == TemplateSidecar {
		p.warnings = append(p.warnings, "classic (not native) sidecar injected: "+opts.NativeSidecarsNote)
	}
	// The gateway template has no native-sidecar form: the proxy is the pod.
	p.native = native && p.template != TemplateGateway
	p.hold = v.Proxy.HoldApplicationUntilProxyStarts
	if h := p.proxyCfg.GetHoldApplicationUntilProxyStarts(); h != nil {
		p.hold = h.GetValue()
	}
	p.cni = cfg.Values.Pilot.CNI.Enabled
	p.owner = InferOwner(pod, namespace)
	p.proxyUID, p.proxyGID = proxyIDs(opts.NamespaceAnnotations)
	// The gateway template ignores the annotations that would make the
	// proxy privileged, so only the sidecar's are checked.
	if len(errs) == 0 && p.template == TemplateSidecar {
		if err := p.checkPrivilegedAnnotations(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if pod.Spec.DNSPolicy != "" && pod.Spec.DNSPolicy != corev1.DNSClusterFirst {
		p.warnings = append(p.warnings, fmt.Sprintf("spec.dnsPolicy %q is not ClusterFirst; the sidecar's DNS proxying may not work", pod.Spec.DNSPolicy))
	}
	if _, ok := pod.Labels[AnnotationInject]; !ok {
		if _, ok := a[AnnotationInject]; ok {
			p.warnings = append(p.warnings, "annotation "+AnnotationInject+" is deprecated; use the label of the same name")
		}
	}
	return p, nil
}

// parseTemplates reads inject.istio.io/templates: comma-separated names,
// trimmed, repeats allowed (Istio's pkg/kube/inject/inject.go RunTemplate). meshguard
// builds the sidecar and
// gateway templates; any other name, or both at once, is an error rather
// than a pod injected differently from what was asked.
func parseTemplates(s string) (string, error) {
	var names []string
	for _, name := range strings.Split(s, ",") {
		n := strings.TrimSpace(name)
		switch {
		case n == "":
		case n != TemplateSidecar && n != TemplateGateway && n != TemplateGrpcSimple:
			return TemplateSidecar, fmt.Errorf("template %q is not supported (meshguard injects the %q, %q and %q templates)", n, TemplateSidecar, TemplateGateway, TemplateGrpcSimple)
		case !slices.Contains(names, n):
			names = append(names, n)
		}
	}
	switch len(names) {
	case 0:
		return TemplateSidecar, nil
	case 1:
		return names[0], nil
	default:
		return TemplateSidecar, fmt.Errorf("templates %q and %q cannot be combined", names[0], names[1])
	}
}

func omitNil(r *config.ResourceValues) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
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
	out.Requests = conv(r.Requests)
	out.Limits = conv(r.Limits)
	return out
}

func parseQuantity(s string) (resource.Quantity, error) {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return resource.Quantity{}, fmt.Errorf("%q contains control characters", s)
		}
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, fmt.Errorf("%q is not a quantity: %w", s, err)
	}
	return q, nil
}

func parsePort(s string, allowZero bool) (int32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || (n == 0 && !allowZero) {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return int32(n), nil
}

func validateInterfaces(s string) error {
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if len(f) > 15 || strings.ContainsAny(f, "/ \t") {
			return fmt.Errorf("%q is not an interface name", f)
		}
	}
	return nil
}

// prober is one entry of the ISTIO_KUBE_APP_PROBERS map (Istio app_probe.go Prober).
type prober struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

func marshalSorted(m map[string]*prober) string {
	// encoding/json sorts map keys, which makes the value deterministic.
	b, _ := json.Marshal(m)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
