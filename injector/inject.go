package injector

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	clientnetworking "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// Result is the outcome of Inject.
type Result struct {
	// Pod is the injected pod (a new object; the input is not modified).
	// The containers injection adds may share read-only values with each
	// other (istio-init's resource lists are istio-proxy's) and with Patch:
	// DeepCopy it before changing it.
	Pod *corev1.Pod
	// Patch turns the input pod into Pod; empty when nothing changes
	// (e.g. re-injection of an injected pod with unchanged settings).
	Patch []jsonpatch.JsonPatchOperation
	// Warnings are for ignored or questionable annotation values.
	Warnings []string
}

// Status is the sidecar.istio.io/status annotation (Istio's pkg/kube/inject/inject.go).
type Status struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

// JSON is json.Marshal(st) (the annotation's value) without its reflection
// (0.73 → 0.19 µs and three allocations → two per injection, measured
// in one process on 2026-12-06).
func (st Status) JSON() string {
	n := len(st.Revision) + 96
	for _, ss := range [][]string{st.InitContainers, st.Containers, st.Volumes, st.ImagePullSecrets} {
		for _, s := range ss {
			n += len(s) + 3
		}
	}
	b := make([]byte, 0, n)
	b = appendJSONStrings(append(b, `{"initContainers":`...), st.InitContainers)
	b = appendJSONStrings(append(b, `,"containers":`...), st.Containers)
	b = appendJSONStrings(append(b, `,"volumes":`...), st.Volumes)
	b = appendJSONStrings(append(b, `,"imagePullSecrets":`...), st.ImagePullSecrets)
	b = AppendJSONString(append(b, `,"revision":`...), st.Revision)
	return string(append(b, '}'))
}

// Options are Inject's per-request inputs beyond the pod and the config;
// every field is optional.
type Options struct {
	// Owner is the pod's owning workload when the caller knows it (meshguard
	// inject on a Deployment etc.); nil infers it from the pod (InferOwner).
	Owner *Owner
	// ProxyEnv are extra istio-proxy env vars (from the webhook URL path, e.g.
	// ISTIO_META_CLUSTER_ID, ISTIO_META_NETWORK); they replace same-named
	// template envs and are appended in sorted order (Istio's pkg/kube/inject/webhook.go).
	ProxyEnv map[string]string
	// ProxyConfigs are the ProxyConfig resources of the mesh's root namespace
	// and the pod's namespace (others are ignored), in any order; the
	// webhook lists them from its cache.
	ProxyConfigs []*clientnetworking.ProxyConfig
	// NativeSidecars is the cluster's native-sidecar support as the webhook
	// detected it from node kubelet versions (Istio's
	// ENABLE_NATIVE_SIDECARS=auto), used when neither the pod's annotation
	// nor the values decide; nil means unknown, which injects classic
	// sidecars (Istio without a node client).
	NativeSidecars *bool
	// NamespaceAnnotations are the annotations of the pod's namespace; on
	// OpenShift they carry the UID range the proxy must run in.
	NamespaceAnnotations map[string]string
	// NativeSidecarsNote says why NativeSidecars is false (e.g. a node with
	// an older kubelet); it becomes an admission warning when it decides.
	NativeSidecarsNote string
	// PodNamespaceAsIs: templates see the pod's own metadata.namespace,
	// empty or not, as `istioctl kube-inject` renders a pod template's
	// metadata (Istio's pkg/kube/inject/inject.go IntoObject → injectPod);
	// the webhook fills an empty one with the request's namespace first
	// (Istio's webhook.go Webhook.inject). The namespace argument of Inject
	// still decides everything else.
	PodNamespaceAsIs bool
}

// Inject builds the injected pod for pod (admitted into namespace, or the
// pod's own when empty) and the JSON Patch from pod to it; opts carries the
// per-request inputs (the zero Options: none). It does not decide whether to
// inject (see Decide) and does not modify pod. Errors name the offending
// annotation or field; they deny the pod.
func Inject(pod *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options) (*Result, error) {
	if useGenericTemplates(pod, cfg) { // a template that is not Istio's stock one (generic.go)
		return InjectGeneric(pod, namespace, cfg, opts)
	}
	return inject(pod, namespace, cfg, opts)
}

func inject(pod *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options) (*Result, error) {
	if namespace == "" {
		namespace = pod.Namespace
	}
	if NoContainers(pod) {
		return nil, fmt.Errorf("pod %s: spec.containers: must not be empty", podName(pod, namespace))
	}
	// managedFields are irrelevant and can be large (Istio PR #34805): don't copy them.
	mf := pod.ManagedFields
	pod.ManagedFields = nil
	out := pod.DeepCopy()
	pod.ManagedFields = mf

	prev := strip(out, cfg.ProxyConfig.GetStatusPort())
	userOverrides, specContainers, places, err := takeOverrides(out, prev.overrides)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podName(pod, namespace), err)
	}
	p, err := resolveParams(out, namespace, cfg, opts, userOverrides)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podName(pod, namespace), err)
	}
	p.specContainers = specContainers
	p.overridePlaces = places
	apply := p.apply
	if p.template == TemplateGrpcSimple {
		apply = p.applyGrpcSimple
	}
	if err := apply(out, prev); err != nil {
		return nil, fmt.Errorf("pod %s: %w", podName(pod, namespace), err)
	}
	out.ManagedFields = mf
	keepAPITokenMounts(pod, out)
	return &Result{Pod: out, Patch: CreatePatch(pod, out), Warnings: p.warnings}, nil
}

// NoContainers reports a pod that has no containers and was not injected
// before, which meshguard denies (docs/compatibility.md). An injected pod
// may have none: a native sidecar leaves `containers: []` when istio-proxy
// was the only container (Istio's golden only-proxy-container), and Istio
// re-injects it (webhook.go injectPod has no such check; stripPod and
// reinsertOverrides restore what was injected).
func NoContainers(pod *corev1.Pod) bool {
	_, injected := pod.Annotations[AnnotationStatus]
	return len(pod.Spec.Containers) == 0 && !injected
}

// apiTokenMountPath is where the API server's ServiceAccount admission
// plugin mounts the pod's token into every container without a mount there
// (k8s.io/kubernetes plugin/pkg/admission/serviceaccount
// DefaultAPITokenMountPath).
const apiTokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// keepAPITokenMounts gives each re-injected container of out the token mount
// its previous instance in in had. After a webhook changed a pod, the API
// server runs its admission plugins again, so the ServiceAccount plugin
// mounts the token into istio-proxy and istio-init too (Istio's pods have
// it); with reinvocationPolicy IfNeeded meshguard is then called again, and
// rebuilding the two without it would take the mounts out again: a patch on
// every reinvocation and a pod unlike Istio's.
func keepAPITokenMounts(in, out *corev1.Pod) {
	if _, ok := in.Annotations[AnnotationStatus]; !ok {
		return // no previous injection: nothing is re-injected
	}
	prev := map[string]corev1.VolumeMount{}
	for _, cs := range [][]corev1.Container{in.Spec.InitContainers, in.Spec.Containers} {
		for i := range cs {
			if m := apiTokenMount(&cs[i]); m != nil {
				prev[cs[i].Name] = *m
			}
		}
	}
	for _, cs := range [][]corev1.Container{out.Spec.InitContainers, out.Spec.Containers} {
		for i := range cs {
			if m, ok := prev[cs[i].Name]; ok && apiTokenMount(&cs[i]) == nil {
				// Clipped: the mounts may share memory with other objects.
				cs[i].VolumeMounts = append(slices.Clip(cs[i].VolumeMounts), m)
			}
		}
	}
}

func apiTokenMount(c *corev1.Container) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == apiTokenMountPath {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func podName(pod *corev1.Pod, ns string) string {
	n := pod.Name
	if n == "" {
		n = pod.GenerateName + "*"
	}
	return ns + "/" + n
}

// previous is what a prior injection left that cannot be recovered from the
// stripped pod: probes already rewritten and the Prometheus annotations.
type previous struct {
	probers    map[string]*prober
	prometheus *promConfig
	overrides  string // AnnotationOverrides of the previous injection
	// volumes are the volumes the previous injection listed, as the pod
	// has them: an injected volume the pod had declared too (merged into
	// it, e.g. istio-envoy with a sizeLimit) keeps the pod's fields.
	volumes []corev1.Volume
	// initPlaces: where each init container the previous injection listed
	// stood, counted among the pod's init containers that stay; images:
	// the image each container it listed had. Istio re-injects into the
	// pod as it is (RunTemplate merges onto params.pod), so what a template
	// merges into stays where it stood and keeps an image the template does
	// not set (grpc-simple: its bootstrap init container, the app
	// containers, an image "auto" the overrides record empty).
	initPlaces map[string]int
	images     map[string]string
	// statusPorts: the status ports the previous injection recorded
	// (fromInjected), where its merge pointed prometheus.io/port.
	statusPorts []string
	// hasStatus: the pod had a sidecar.istio.io/status annotation, parsable
	// or not; Istio's applyRewrite then merges ISTIO_KUBE_APP_PROBERS into
	// the sidecar's existing one instead of appending another.
	hasStatus bool
}

// strip removes a previous injection recorded in sidecar.istio.io/status, so
// re-injection starts from the user's pod (Istio's pkg/kube/inject/inject.go
// stripPod); meshStatusPort is the mesh's defaultConfig.statusPort
// (undoPostProcess).
func strip(pod *corev1.Pod, meshStatusPort int32) previous {
	var prev previous
	raw, ok := pod.Annotations[AnnotationStatus]
	if !ok {
		return prev
	}
	prev.hasStatus = true
	var st Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return prev
	}
	injected := append(append([]string{}, st.InitContainers...), st.Containers...)
	prev.fromInjected(pod, injected)
	containerName := func(c corev1.Container) string { return c.Name }
	listed := nameSetOf(injected, func(s string) string { return s })
	prev.images = map[string]string{}
	prev.initPlaces = map[string]int{}
	stay := 0
	for _, c := range pod.Spec.InitContainers {
		if listed.has(c.Name) {
			prev.initPlaces[c.Name] = stay
			prev.images[c.Name] = c.Image
			continue
		}
		stay++
	}
	for _, c := range pod.Spec.Containers {
		if listed.has(c.Name) {
			prev.images[c.Name] = c.Image
		}
	}
	pod.Spec.InitContainers = dropNamed(pod.Spec.InitContainers, injected, containerName)
	pod.Spec.Containers = dropNamed(pod.Spec.Containers, injected, containerName)
	injectedVols := nameSetOf(st.Volumes, func(s string) string { return s })
	for _, v := range pod.Spec.Volumes {
		if injectedVols.has(v.Name) {
			prev.volumes = append(prev.volumes, v)
		}
	}
	pod.Spec.Volumes = dropNamed(pod.Spec.Volumes, st.Volumes, func(v corev1.Volume) string { return v.Name })
	pod.Spec.ImagePullSecrets = dropNamed(pod.Spec.ImagePullSecrets, st.ImagePullSecrets,
		func(r corev1.LocalObjectReference) string { return r.Name })
	delete(pod.Annotations, AnnotationStatus)
	prev.overrides = pod.Annotations[AnnotationOverrides]
	delete(pod.Annotations, AnnotationOverrides)
	undoPostProcess(pod, prev.probers, prev.prometheus, prev.statusPorts, meshStatusPort)
	return prev
}

// undoPostProcess gives a pod stripped of a previous injection back the
// parts of its own that the injection's post-processing changed (Istio's
// webhook.go postProcessPod: applyPrometheusMerge, applyRewrite), so
// re-injection decides from the pod as the app wrote it, whatever changed
// since (rewriting turned off, status port 0 or another one). The one rule
// for both paths: strip (typed) and injectGeneric (templates).
//
//   - Each app probe and lifecycle hook still pointing at the path its
//     rewrite gives it (/app-health/<container>/readyz, …) gets back the
//     target probers (the old ISTIO_KUBE_APP_PROBERS) recorded for that path.
//     Istio keeps the rewritten probe and the old env var instead
//     (inject.go RunTemplate merges onto the injected pod, mergedPod =
//     params.pod), so with rewriting now off its kubelet still calls
//     pilot-agent, and with status port 0 nothing: the probe fails.
//     Rewriting again gives the same probe and probers as before.
//   - The Prometheus annotations: the app's own recorded in prom (the old
//     ISTIO_PROMETHEUS_ANNOTATIONS) when given; else every spelling is
//     cleared when the previous merge wrote them, and the merge now decides
//     again (with a new status port it points there; with 0 it leaves none)
//     instead of taking the old target for the app's and denying it as a
//     sidecar port, or recording it as the app's. The previous merge wrote
//     them when prometheus.io/port is the mesh's defaultConfig.statusPort
//     (meshStatusPort; Istio's inject.go stripPod), or when they are what
//     the merge writes pointing at a status port the previous injection
//     recorded (mergeWritten, statusPorts: previous.fromInjected). Istio's
//     stripPod, comparing with the new port only, records the old target as
//     the app's when the mesh's statusPort changed. Annotations of the
//     merge's shape on any other port (Envoy's 15090, an undeclared 9102)
//     are the app's: a merge that was off left them, and nothing would
//     write them back.
func undoPostProcess(pod *corev1.Pod, probers map[string]*prober, prom *promConfig, statusPorts []string, meshStatusPort int32) {
	if len(probers) > 0 {
		for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for i := range cs {
				if cs[i].Name != ProxyContainerName {
					restoreContainer(&cs[i], probers)
				}
			}
		}
	}
	if pod.Annotations == nil {
		return
	}
	switch {
	case prom != nil:
		for k, v := range map[string]string{AnnotationPromScrape: prom.Scrape, AnnotationPromPath: prom.Path, AnnotationPromPort: prom.Port,
			AnnotationPromScrapeTargets: formatScrapeTargets(prom.Targets)} {
			if v == "" {
				delete(pod.Annotations, k)
			} else {
				pod.Annotations[k] = v
			}
		}
	case promPortIs(pod.Annotations, strconv.Itoa(int(meshStatusPort))), mergeWritten(pod, statusPorts):
		for k := range pod.Annotations {
			switch promNorm(k) {
			case promLabelScrape, promLabelPort, promLabelPath:
				delete(pod.Annotations, k)
			}
		}
	}
}

// mergeWritten says whether the pod's Prometheus annotations are exactly
// what mergePrometheus writes pointing at one of statusPorts (the status
// ports the previous injection recorded) or at the pod's
// status.sidecar.istio.io/port (the port pilot-agent serves on, read by
// it from the pod's annotations: Istio's pilot/cmd/pilot-agent/config/config.go
// applyAnnotations): prometheus.io/scrape "true", prometheus.io/path
// "/stats/prometheus", that prometheus.io/port, and no other spelling of the
// three (the merge clears them). Only asked when the previous injection
// recorded no app config (no ISTIO_PROMETHEUS_ANNOTATIONS): a merge that ran
// then wrote them, or found them pointing at its own status port already.
func mergeWritten(pod *corev1.Pod, statusPorts []string) bool {
	a := pod.Annotations
	port, ok := a[AnnotationPromPort]
	if !ok || a[AnnotationPromScrape] != "true" || a[AnnotationPromPath] != "/stats/prometheus" {
		return false
	}
	if !slices.Contains(statusPorts, port) && a[AnnotationStatusPort] != port {
		return false
	}
	for k := range a {
		switch promNorm(k) {
		case promLabelScrape, promLabelPort, promLabelPath:
			if k != AnnotationPromScrape && k != AnnotationPromPort && k != AnnotationPromPath {
				return false
			}
		}
	}
	return true
}

// fromInjected reads the previous injection's record (the old
// ISTIO_KUBE_APP_PROBERS and ISTIO_PROMETHEUS_ANNOTATIONS) from the
// istio-proxy it injected: only when injected, the containers and init
// containers its sidecar.istio.io/status lists, names it; an istio-proxy it
// does not list is the pod's own. The one place both paths read it from:
// strip (typed) and injectGeneric (templates).
//
// It also reads the status ports the previous injection used, from the
// containers it lists (Istio's injection-template.yaml): the istio-proxy's
// PROXY_CONFIG (pilot-agent's statusPort unless status.sidecar.istio.io/port
// overrides it; absent, Istio's default 15020, as cleanProxyConfig drops
// defaults) and the last port of an init container's istio-iptables "-d"
// argument ("15090,15021," then excludeInboundPort, which appends the
// status port the template saw, the annotation's or the values'). Neither
// alone covers both: a status.sidecar.istio.io/port since removed is only in
// "-d", a proxy.istio.io/config statusPort since removed only in
// PROXY_CONFIG.
func (prev *previous) fromInjected(pod *corev1.Pod, injected []string) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !slices.Contains(injected, cs[i].Name) {
				continue
			}
			if cs[i].Name == ProxyContainerName {
				prev.fromProxy(&cs[i])
			}
			own, listed := pod.Annotations[AnnotationExcludeInboundPorts]
			if p := excludedStatusPort(cs[i].Args, own, listed); p != "" {
				prev.statusPorts = append(prev.statusPorts, p)
			}
		}
	}
}

// excludedStatusPort is the status port an istio-iptables "-d" argument
// excludes (Istio's injection-template.yaml at istio/istio
// 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c, config/istio here:
// "15090,15021,{{ excludeInboundPort statusPort excludeInboundPorts }}"):
// its last port after Envoy's fixed 15090 and 15021, "" when there is none
// (status port 0 and no exclusions). pkg/kube/inject/template.go
// excludeInboundPort appends the status port only when no item of the
// exclusions equals it, and otherwise returns them unchanged; so when the
// rest of "-d" is exactly the pod's own excludeInboundPorts annotation (own,
// when listed), nothing was appended and its last port is the pod's, not
// necessarily the status port ("15020,9102"): "" then, and the previous
// status port is known from PROXY_CONFIG and the annotations only, as in
// Istio's stripPod, which compares with the mesh's status port alone. With
// the CNI plugin the injection writes the annotation as "-d" has it, so "-d"
// never names the previous status port then.
func excludedStatusPort(args []string, own string, listed bool) string {
	i := slices.Index(args, "-d")
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	ports := strings.Split(args[i+1], ",")
	for len(ports) > 0 && (strings.TrimSpace(ports[0]) == "15090" || strings.TrimSpace(ports[0]) == "15021") {
		ports = ports[1:]
	}
	if listed && strings.Join(ports, ",") == own {
		return ""
	}
	for j := len(ports) - 1; j >= 0; j-- {
		if p := strings.TrimSpace(ports[j]); p != "" {
			return p
		}
	}
	return ""
}

// envProxyConfig is the proxy's PROXY_CONFIG (sidecar.go proxyContainer).
const envProxyConfig = "PROXY_CONFIG"

func (prev *previous) fromProxy(c *corev1.Container) {
	for _, e := range c.Env {
		switch e.Name {
		case envAppProbers:
			var m map[string]*prober
			if json.Unmarshal([]byte(e.Value), &m) == nil {
				prev.probers = m
			}
		case envPromAnnotations:
			var pc promConfig
			if json.Unmarshal([]byte(e.Value), &pc) == nil {
				prev.prometheus = &pc
			}
		case envProxyConfig:
			var pc struct {
				StatusPort *int32 `json:"statusPort"`
			}
			if json.Unmarshal([]byte(e.Value), &pc) == nil {
				sp := config.DefaultProxyConfig().GetStatusPort()
				if pc.StatusPort != nil {
					sp = *pc.StatusPort
				}
				prev.statusPorts = append(prev.statusPorts, strconv.Itoa(int(sp)))
			}
		}
	}
}

// apply injects into pod (already stripped) in place.
func (p *params) apply(pod *corev1.Pod, prev previous) error {
	v := p.cfg.Values
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	var init *corev1.Container
	// No istio-init, nor with CNI istio-validation, in mode NONE (Istio's
	// sidecar template: `if ne (annotation … interceptionMode …) "NONE"`).
	if p.template == TemplateSidecar && p.mode != meshv1alpha1.ProxyConfig_NONE {
		init = p.initContainer()
	}
	if err := p.checkOverridePlaces(init); err != nil {
		return err
	}
	injected := func(name string) bool { return name == ProxyContainerName || (init != nil && name == init.Name) }
	p.keepNotInjected(pod, injected)
	p.reinsertRecorded(pod, prev, injected)
	proxy, err := p.proxyContainer(pod)
	if err != nil {
		return err
	}
	var userProxy *corev1.Container
	for i, o := range p.overrides {
		switch {
		case o.Name == ProxyContainerName:
			if proxy, err = p.override(proxy, o); err != nil {
				return err
			}
			userProxy = &p.overrides[i]
		case init != nil && o.Name == init.Name:
			if init, err = p.override(init, o); err != nil {
				return err
			}
		default:
			p.warnings = append(p.warnings, fmt.Sprintf("container %q is not injected with these settings; the user-declared one is ignored", o.Name))
		}
	}
	if userProxy != nil {
		overrideUser(init, *userProxy, p.mode == meshv1alpha1.ProxyConfig_TPROXY)
	}
	vols, err := p.volumes(pod)
	if err != nil {
		return err
	}
	if err := p.checkHostPath(p.userVols, pod.Spec.Volumes, init, proxy); err != nil {
		return err
	}
	if err := p.checkUserMounts(pod.Spec.Volumes, vols); err != nil {
		return err
	}

	// The status's names in one allocation: the volumes', then the
	// injected containers' (each list clipped, so none grows into another).
	names := make([]string, len(vols), len(vols)+2)
	st := Status{Revision: p.cfg.Revision(), Volumes: names[:len(vols):len(vols)]}
	for i, vol := range vols {
		names[i] = vol.Name
	}
	if init != nil {
		names = append(names, init.Name)
	}
	if p.native {
		names = append(names, ProxyContainerName)
		st.InitContainers = names[len(vols):len(names):len(names)]
	} else {
		st.InitContainers = names[len(vols):len(names):len(names)]
		names = append(names, ProxyContainerName)
		st.Containers = names[len(names)-1 : len(names) : len(names)]
	}
	if len(st.InitContainers) == 0 {
		st.InitContainers = nil // as before: none is null in the status
	}
	st.ImagePullSecrets = append(st.ImagePullSecrets, v.Global.ImagePullSecrets...)

	// Post-processing on the app containers (before the proxy is added, so
	// it is never rewritten itself).
	// ISTIO_PROMETHEUS_ANNOTATIONS before ISTIO_KUBE_APP_PROBERS: Istio's
	// webhook.go postProcessPod runs applyPrometheusMerge, then applyRewrite.
	promEnv, err := p.mergePrometheus(pod, prev.prometheus)
	if err != nil {
		return err
	}
	if promEnv != nil {
		proxy.Env = append(proxy.Env, *promEnv)
	}
	// (The probers map only when there is something to record.)
	if p.rewriteProbes() && (len(prev.probers) > 0 || hasProbesOrHooks(pod)) {
		probers := map[string]*prober{}
		for i := range pod.Spec.InitContainers {
			p.rewriteContainer(&pod.Spec.InitContainers[i], probers)
		}
		for i := range pod.Spec.Containers {
			p.rewriteContainer(&pod.Spec.Containers[i], probers)
		}
		for k, pr := range prev.probers {
			if _, ok := probers[k]; !ok {
				probers[k] = pr
			}
		}
		if len(probers) > 0 {
			proxy.Env = mergeOrAppendProbers(prev.hasStatus, proxy.Env, marshalSorted(probers))
		}
	}

	// Containers and init containers, in Istio's order (pkg/kube/inject/webhook.go postProcessPod).
	switch {
	case p.native:
		inits := make([]corev1.Container, 0, len(pod.Spec.InitContainers)+2)
		if init != nil {
			inits = append(inits, *init)
		}
		inits = append(inits, *proxy)
		pod.Spec.InitContainers = append(inits, pod.Spec.InitContainers...)
	default:
		if init != nil {
			if init.Name == ValidationContainerName {
				pod.Spec.InitContainers = append([]corev1.Container{*init}, pod.Spec.InitContainers...)
			} else {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, *init)
			}
		}
		if p.hold {
			pod.Spec.Containers = append([]corev1.Container{*proxy}, pod.Spec.Containers...)
		} else {
			pod.Spec.Containers = append(pod.Spec.Containers, *proxy)
		}
	}
	// The pod's own containers may be named in init-containers-before-proxy
	// or enable-core-dump; template.Reorder moves them as Istio does, and
	// leaves the injected ones where they already are.
	template.Reorder(pod, p.hold)
	// Volumes and pull secrets: template items first (strategic merge), as in Istio's
	// pkg/kube/inject/webhook.go.
	// A volume of the previous injection that is injected again is merged
	// as the pod's own (Istio's stripPod keeps volumes), so re-injection
	// keeps what the pod had merged into it; one no longer injected, or of
	// another kind now, is dropped with the rest of the old injection.
	existing := pod.Spec.Volumes
	if len(prev.volumes) > 0 {
		index := make(map[string]int, len(vols))
		for i, v := range vols {
			index[v.Name] = i
		}
		for _, pv := range prev.volumes {
			if i, ok := index[pv.Name]; ok && slices.Equal(volumeSourceKinds(pv.VolumeSource), volumeSourceKinds(vols[i].VolumeSource)) {
				existing = append(existing, pv)
			}
		}
	}
	if pod.Spec.Volumes, err = mergeVolumes(vols, existing); err != nil {
		return err
	}
	if len(v.Global.ImagePullSecrets) > 0 {
		secrets := make([]corev1.LocalObjectReference, 0, len(v.Global.ImagePullSecrets))
		for _, s := range v.Global.ImagePullSecrets {
			secrets = append(secrets, corev1.LocalObjectReference{Name: s})
		}
		pod.Spec.ImagePullSecrets = mergeByName(secrets, pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) string { return r.Name })
	}

	if p.template == TemplateGateway {
		gatewayPodSecurity(pod)
	}
	p.metadata(pod, st)
	return nil
}

// override applies a user-declared container over the injected one, subject
// to the allow-list: a disallowed image is ignored with a warning, a weakened
// securityContext denies the pod (guard.go).
func (p *params) override(injected *corev1.Container, o corev1.Container) (*corev1.Container, error) {
	if o.Image != "" && o.Image != "auto" {
		o.Image = p.allowImage(o.Image, injected.Image, fmt.Sprintf("user-declared container %q image", o.Name))
	}
	merged, err := applyOverride(injected, o)
	if err != nil {
		return nil, err
	}
	if err := p.checkOverrideSecurity(o.Name, injected, merged); err != nil {
		return nil, err
	}
	return merged, nil
}

// dropNamed removes, in place, the items whose name is in names; nil when
// none remain (the stripped pod must equal the user's, which had none).
func dropNamed[T any](items []T, names []string, name func(T) string) []T {
	in := nameSetOf(names, func(s string) string { return s })
	items = slices.DeleteFunc(items, func(it T) bool { return in.has(name(it)) })
	if len(items) == 0 {
		return nil
	}
	return items
}

// nameSet tells whether a name is among items'. A template's short list is
// searched linearly; a long one (a status or userVolume annotation can list
// thousands) through a map, so hostile pods cost linear time.
type nameSet[T any] struct {
	items []T
	name  func(T) string
	set   map[string]struct{} // long lists only
}

func nameSetOf[T any](items []T, name func(T) string) nameSet[T] {
	s := nameSet[T]{items: items, name: name}
	if len(items) > 16 {
		s.set = make(map[string]struct{}, len(items))
		for _, it := range items {
			s.set[name(it)] = struct{}{}
		}
	}
	return s
}

func (s nameSet[T]) has(n string) bool {
	if s.set != nil {
		_, ok := s.set[n]
		return ok
	}
	for _, it := range s.items {
		if s.name(it) == n {
			return true
		}
	}
	return false
}

// mergeByName returns tmpl followed by the items of existing not named in
// tmpl. tmpl must be the caller's own: its spare capacity, if enough, holds
// the result.
func mergeByName[T any](tmpl, existing []T, name func(T) string) []T {
	out := tmpl
	if cap(tmpl)-len(tmpl) < len(existing) {
		out = make([]T, 0, len(tmpl)+len(existing))
		out = append(out, tmpl...)
	}
	inTmpl := nameSetOf(tmpl, name)
	for _, e := range existing {
		if !inTmpl.has(name(e)) {
			out = append(out, e)
		}
	}
	return out
}

// mergeVolumes is mergeByName for volumes, where a pod volume named as an
// injected one is merged into it as Istio's strategic merge of the template
// does (pkg/kube/inject/webhook.go applyOverlayYAML): the same kind of source
// merges field by field; two kinds make a volume with two sources, which the
// API server rejects, so the pod is denied here, naming the volume, instead
// of the pod's volume being replaced unseen (a PersistentVolumeClaim by an
// emptyDir).
func mergeVolumes(tmpl, existing []corev1.Volume) ([]corev1.Volume, error) {
	inTmpl := nameSetOf(tmpl, volumeName)
	for _, e := range existing {
		if !inTmpl.has(e.Name) {
			continue
		}
		i := slices.IndexFunc(tmpl, func(t corev1.Volume) bool { return t.Name == e.Name })
		merged, err := mergeVolume(e, tmpl[i])
		if err != nil {
			return nil, err
		}
		tmpl[i] = merged
	}
	return mergeByName(tmpl, existing, volumeName), nil
}

func volumeName(v corev1.Volume) string { return v.Name }

func mergeVolume(pod, injected corev1.Volume) (corev1.Volume, error) {
	if reflect.DeepEqual(pod, injected) {
		return injected, nil
	}
	base, err := json.Marshal(pod)
	if err != nil {
		return injected, fmt.Errorf("spec.volumes[%s]: %w", pod.Name, err)
	}
	patch, err := json.Marshal(injected)
	if err != nil {
		return injected, fmt.Errorf("spec.volumes[%s]: %w", pod.Name, err)
	}
	out, err := strategicpatch.StrategicMergePatch(base, patch, corev1.Volume{})
	if err != nil {
		return injected, fmt.Errorf("spec.volumes[%s]: merging the injected volume of that name: %w", pod.Name, err)
	}
	var merged corev1.Volume
	if err := json.Unmarshal(out, &merged); err != nil {
		return injected, fmt.Errorf("spec.volumes[%s]: %w", pod.Name, err)
	}
	if err := checkVolumeSources(merged); err != nil {
		return injected, err
	}
	return merged, nil
}

// checkVolumeSources refuses a volume with more than one source, which is
// what merging a pod's volume with an injected one of another kind gives.
func checkVolumeSources(v corev1.Volume) error {
	if kinds := volumeSourceKinds(v.VolumeSource); len(kinds) > 1 {
		return fmt.Errorf("spec.volumes[%s]: the pod's volume of that name and the injected one have different sources "+
			"(%s): Istio's injector merges them into a volume the API server rejects; rename the pod's volume",
			v.Name, strings.Join(kinds, ", "))
	}
	return nil
}

// volumeSourceKinds lists the source fields a volume sets (JSON names).
func volumeSourceKinds(vs corev1.VolumeSource) []string {
	var out []string
	v, t := reflect.ValueOf(vs), reflect.TypeOf(vs)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
	}
	return out
}

// metadata sets the labels and annotations the template writes (Istio's injection-template.yaml).
func (p *params) metadata(pod *corev1.Pod, st Status) {
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	l := pod.Labels
	setIfAbsent := func(m map[string]string, k, v string) {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	// An empty label counts as unset: the templates fill these with sprig's
	// default (index .ObjectMeta.Labels … | default …), which replaces "".
	setIfEmpty := func(m map[string]string, k, v string) {
		if m[k] == "" {
			m[k] = v
		}
	}
	sidecar := p.template == TemplateSidecar
	if sidecar {
		setIfEmpty(l, LabelTLSMode, "istio")
	}
	if l[LabelCanonicalName] == "" {
		name := firstNonEmpty(l["app.kubernetes.io/name"], l["app"], p.owner.Name)
		if sidecar { // the gateway template does not shorten it
			if len(name) > 63 {
				name = name[:63]
			}
			name = strings.Trim(name, "-_.")
		}
		l[LabelCanonicalName] = name
	}
	setIfEmpty(l, LabelCanonicalRevision, firstNonEmpty(l["app.kubernetes.io/version"], l["version"], "latest"))
	if md := p.proxyCfg.GetProxyMetadata(); sidecar && md["ISTIO_META_ENABLE_HBONE"] == "true" {
		setIfAbsent(l, "networking.istio.io/tunnel", "http")
	}
	if n := p.network(); n != "" {
		setIfAbsent(l, LabelNetwork, n)
	}

	a := pod.Annotations
	a[AnnotationRev] = p.cfg.Revision()
	var apps []string
	for i := range pod.Spec.Containers {
		if n := pod.Spec.Containers[i].Name; n != ProxyContainerName {
			apps = append(apps, n)
		}
	}
	// Both templates name the first app container ({{ if ge (len $containers) 1 }}
	// in Istio's injection-template.yaml sidecar and gateway).
	if len(apps) > 0 {
		setIfAbsent(a, AnnotationDefaultLogsContainer, apps[0])
		setIfAbsent(a, AnnotationDefaultContainer, apps[0])
	}
	if p.cni && sidecar {
		v, pa := p.cfg.Values.Global.Proxy, p.annos
		a[AnnotationInterceptionMode] = p.mode.String()
		// The IP ranges only when non-empty (the template's {{ with … }}).
		if s := pa.IncludeOutboundIPRanges.Or(*v.IncludeIPRanges); s != "" {
			a[AnnotationIncludeOutboundIPs] = s
		}
		if s := pa.ExcludeOutboundIPRanges.Or(*v.ExcludeIPRanges); s != "" {
			a[AnnotationExcludeOutboundIPs] = s
		}
		a[AnnotationIncludeInboundPorts], a[AnnotationExcludeInboundPorts] = p.inboundPorts()
		if s := pa.IncludeOutboundPorts.Or(*v.IncludeOutboundPorts); s != "" {
			a[AnnotationIncludeOutboundPorts] = s
		}
		if s := pa.ExcludeOutboundPorts.Or(*v.ExcludeOutboundPorts); s != "" {
			a[AnnotationExcludeOutboundPorts] = s
		}
		if p.cfg.Values.Pilot.CNI.Provider == "multus" {
			a["k8s.v1.cni.cncf.io/networks"] = appendMultus(a["k8s.v1.cni.cncf.io/networks"])
		}
	}
	if len(p.overrides) > 0 {
		a[AnnotationOverrides] = recordOverrides(p.overrides, p.native)
	}
	// The status first: injectedAnnotations may override it (Istio
	// webhook.go applyMetadata).
	a[AnnotationStatus] = st.JSON()
	for k, v := range p.cfg.Values.SidecarInjectorWebhook.InjectedAnnotations {
		a[k] = v
	}
}

// appendMultus adds the network Istio's sidecar template passes,
// default/istio-cni, to a Multus networks annotation with the template's
// own function.
func appendMultus(cur string) string {
	return template.AppendMultusNetwork(cur, "default/istio-cni")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
