package injector

import (
	"encoding/json"
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

// params are the per-pod inputs of the sidecar, resolved completely by
// resolveParams before anything is rendered (Istio's pkg/kube/inject/webhook.go inject).
type params struct {
	cfg       *config.Snapshot
	template  string // TemplateSidecar, TemplateGateway or TemplateGrpcSimple
	namespace string
	owner     Owner
	annos     *Annotations // the pod's injection annotations, parsed
	labels    map[string]string
	proxyCfg  *meshv1alpha1.ProxyConfig
	// operatorCfg is the mesh defaultConfig with the root namespace's
	// ProxyConfig resource: the operator's settings, not allow-listed.
	operatorCfg *meshv1alpha1.ProxyConfig
	// podLayers are what each pod-level ProxyConfig input sets, lowest
	// precedence first, to name the source of a setting in messages.
	podLayers []proxyConfigLayer
	// metadataEnvs is the effective proxyMetadata as the env vars rendered (metadataEnv).
	metadataEnvs []corev1.EnvVar
	proxyJSON    string
	mode         meshv1alpha1.ProxyConfig_InboundInterceptionMode // REDIRECT, TPROXY or NONE
	native       bool
	hold         bool
	cni          bool
	statusPort   int32 // template side (values / annotation)
	proxyUID     int64 // 1337, or the namespace's OpenShift range (openshift.go)
	proxyGID     int64
	meshStatus   int32 // Go side (mesh defaultConfig / annotation)
	// probePorts: which probe ports are rewritten (probePortInclusion),
	// computed on the first rewritten container.
	probePorts    map[int32]bool
	probePortsSet bool
	resources     corev1.ResourceRequirements
	overrides     []corev1.Container // user-declared injected containers (Istio's reapplyOverwrittenContainers)
	// overridePlaces: where the overrides the pod itself declares stood (takeOverrides).
	overridePlaces map[string]containerPlace
	// specContainers are .Spec.Containers as Istio's templates see them
	// (takeOverrides); nil: the pod's own.
	specContainers []corev1.Container
	proxyEnv       map[string]string // from the webhook URL path (Istio's pkg/kube/inject/webhook.go)
	warnings       []string
	userVols       []corev1.Volume // userVolume entries actually injected (volumes)
	securityBlocks []securityBlock // not yet handed out (newSecurityBlock)
}

// network is the mesh network of the pod (Istio's pkg/kube/inject/inject.go
// RunTemplate): values, overridden by the URL path, overridden by the pod's
// explicit topology.istio.io/network label.
func (p *params) network() string {
	n := p.cfg.Values.Global.Network
	if u := p.proxyEnv["ISTIO_META_NETWORK"]; u != "" {
		n = u
	}
	if l, ok := p.labels[LabelNetwork]; ok {
		n = l
	}
	return n
}

// resolveParams parses the pod's injection annotations once and resolves
// every setting the renderers read, in named steps. overrides are the
// user-declared injected containers (takeOverrides). Invalid annotations
// deny the pod (as Istio does) with an error naming each bad annotation.
func resolveParams(pod *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options, overrides []corev1.Container) (*params, error) {
	annos, err := ParseAnnotations(pod.Annotations)
	if err != nil {
		return nil, err
	}
	p := &params{cfg: cfg, namespace: namespace, annos: annos, labels: pod.Labels, template: annos.Template,
		overrides: overrides, proxyEnv: opts.ProxyEnv}
	p.warnings = append(p.warnings, annos.Warnings...)
	if err := p.resolveProxyConfig(pod.Labels, opts.ProxyConfigs); err != nil {
		return nil, err
	}
	p.resolveCapture()
	p.resolveResources()
	p.resolveNativeSidecar(opts)
	p.resolveIdentity(pod, opts)
	// The gateway template ignores the annotations that would make the
	// proxy privileged, so only the sidecar's are checked.
	if p.template == TemplateSidecar {
		if err := p.checkPrivilegedAnnotations(); err != nil {
			return nil, err
		}
	}
	p.warnPod(pod)
	return p, nil
}

// resolveProxyConfig computes the effective ProxyConfig, lowest precedence
// first (Istio's EffectiveProxyConfig): mesh defaultConfig, the root
// namespace's ProxyConfig resource (together: the operator's), then the pod
// namespace's resource, the proxy.istio.io/config annotation and a resource
// selecting the pod (pod-level, allow-listed in guard.go).
func (p *params) resolveProxyConfig(labels map[string]string, crs []*clientnetworking.ProxyConfig) error {
	cfg := p.cfg
	levels := pickProxyConfigs(crs, cfg.Mesh.GetRootNamespace(), p.namespace, labels)
	p.operatorCfg = applyProxyConfig(cfg.ProxyConfig, levels.root)
	p.proxyCfg = p.operatorCfg
	addLayer := func(source string, cr *clientnetworking.ProxyConfig) {
		if cr != nil {
			p.proxyCfg = applyProxyConfig(p.proxyCfg, cr)
			p.podLayers = append(p.podLayers, proxyConfigLayer{source, applyProxyConfig(&meshv1alpha1.ProxyConfig{}, cr)})
		}
	}
	addLayer(crSource(levels.namespace), levels.namespace)
	if own := p.annos.ProxyConfig; own != nil {
		// The annotation's own fields, merged over the lower levels as
		// EffectiveProxyConfig merges them (not replacing whole fields as
		// kube-inject's mesh.ApplyProxyConfig does).
		p.proxyCfg = config.MergeProxyConfig(p.proxyCfg, own)
		p.podLayers = append(p.podLayers, proxyConfigLayer{"annotation " + AnnotationProxyConfig, own})
	}
	addLayer(crSource(levels.workload), levels.workload)
	var err error
	if p.metadataEnvs, err = p.metadataEnv(levels.root); err != nil {
		return err
	}
	p.proxyJSON = cfg.ProxyConfigEnv
	if p.proxyCfg != cfg.ProxyConfig {
		js, err := config.ProxyConfigJSON(p.proxyCfg)
		if err != nil {
			return fieldErr("annotation "+AnnotationProxyConfig, err)
		}
		p.proxyJSON = js + "\n" // as ProxyConfigEnv
	}
	// Either setting holds the app (Istio's template: `or .ProxyConfig.HoldApplicationUntilProxyStarts.GetValue
	// .Values.global.proxy.holdApplicationUntilProxyStarts`; webhook.go reorderPod ORs them too), so a
	// ProxyConfig "false" does not undo the values' "true".
	p.hold = p.proxyCfg.GetHoldApplicationUntilProxyStarts().GetValue() || cfg.Values.Global.Proxy.HoldApplicationUntilProxyStarts
	return nil
}

// resolveCapture settles traffic capture: interception mode, status ports
// (the template's and pilot-agent's) and CNI.
func (p *params) resolveCapture() {
	a := p.annos
	p.mode = a.InterceptionMode.Or(p.proxyCfg.GetInterceptionMode())
	p.statusPort = a.StatusPort.Or(*p.cfg.Values.Global.Proxy.StatusPort)
	p.meshStatus = a.StatusPort.Or(p.proxyCfg.GetStatusPort())
	p.cni = p.cfg.Values.Pilot.CNI.Enabled
}

// resolveResources: the resource annotations, else the values'.
func (p *params) resolveResources() {
	switch r := p.cfg.Values.Global.Proxy.Resources; {
	case p.annos.Resources != nil:
		p.resources = *p.annos.Resources
	case r != nil:
		p.resources = r.Requirements() // shared by the snapshot's pods, read only
	}
}

// resolveNativeSidecar: the pod's annotation, else the values (or the
// --native-sidecars flag folded into them), else the cluster's
// auto-detected support (Options.NativeSidecars; off when unknown).
func (p *params) resolveNativeSidecar(opts Options) {
	native, auto := false, false
	switch v := p.cfg.Values.Global; {
	case v.NativeSidecars != nil:
		native = *v.NativeSidecars
	case opts.NativeSidecars != nil:
		native, auto = *opts.NativeSidecars, true
	}
	if a := p.annos.NativeSidecar; a.Set {
		native, auto = a.Value, false
	}
	if auto && !native && opts.NativeSidecarsNote != "" && p.template == TemplateSidecar {
		p.warnings = append(p.warnings, "classic (not native) sidecar injected: "+opts.NativeSidecarsNote)
	}
	// The gateway template has no native-sidecar form: the proxy is the pod.
	p.native = native && p.template != TemplateGateway
}

// netBindService is Istio's template's `eq (annotation .ObjectMeta
// "sidecar.istio.io/capNetBindService" .Values.global.proxy.capNetBindService)
// "true"`: the annotation as written when present, else the values' setting.
func (p *params) netBindService() bool {
	if a := p.annos.CapNetBindService; a.Set {
		return a.Value == "true"
	}
	return p.valuesNetBindService()
}

func (p *params) valuesNetBindService() bool {
	switch v := p.cfg.Values.Global.Proxy.CapNetBindService.(type) {
	case nil: // unset: the usual case, without printing
		return false
	case bool:
		return v
	default:
		return fmt.Sprint(v) == "true"
	}
}

// resolveIdentity: the owning workload (given, else inferred) and the
// proxy's UID/GID (on OpenShift the namespace's range, else 1337).
func (p *params) resolveIdentity(pod *corev1.Pod, opts Options) {
	if opts.Owner != nil {
		p.owner = *opts.Owner
	} else {
		p.owner = InferOwner(pod, p.namespace)
	}
	p.proxyUID, p.proxyGID = proxyIDsFor(p.cfg, opts.NamespaceAnnotations)
}

// warnPod warns about pod settings that injection keeps but that may not
// work as the user expects.
func (p *params) warnPod(pod *corev1.Pod) {
	if pod.Spec.DNSPolicy != "" && pod.Spec.DNSPolicy != corev1.DNSClusterFirst {
		p.warnings = append(p.warnings, fmt.Sprintf("spec.dnsPolicy %q is not ClusterFirst; the sidecar's DNS proxying may not work", pod.Spec.DNSPolicy))
	}
	if _, ok := pod.Labels[AnnotationInject]; !ok {
		if _, ok := pod.Annotations[AnnotationInject]; ok {
			p.warnings = append(p.warnings, "annotation "+AnnotationInject+" is deprecated; use the label of the same name")
		}
	}
}

// parseTemplates is the typed injector's choice from the names of
// inject.istio.io/templates (template.ParseTemplateNames: trimmed, repeats
// allowed, as Istio's pkg/kube/inject/inject.go RunTemplate reads them).
// meshguard builds the sidecar and gateway templates; any other name, or
// both at once, is an error rather than a pod injected differently from
// what was asked.
func parseTemplates(all []string) (string, error) {
	var names []string
	for _, n := range all {
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
