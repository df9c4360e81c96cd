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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// typedTemplates are the templates the typed injector builds itself, from
// Istio's stock text.
var typedTemplates = map[string]bool{TemplateSidecar: true, TemplateGateway: true, TemplateGrpcSimple: true}

// useGenericTemplates is the one place that chooses between the typed fast
// path and the generic template renderer. The typed injector reads
// inject.istio.io/templates itself and knows neither defaultTemplates nor
// aliases, so it builds a pod only when the configured selection (Istio's
// selectTemplates: annotation or defaultTemplates, aliases expanded) is
// exactly the one template it would pick on its own, that template is one
// it implements, and its configured text is Istio's stock one. Anything
// else, e.g. a customised `sidecar` in the ConfigMap, a user's own template,
// an alias or several templates combined, is rendered as Istio renders it
// (docs/compatibility.md, custom templates).
func useGenericTemplates(pod *corev1.Pod, cfg *config.Snapshot) bool {
	t := cfg.Templates
	if t == nil {
		return false
	}
	if t.AlwaysGeneric {
		return true
	}
	typedChoice := TemplateSidecar
	if a, ok := pod.Annotations[AnnotationInjectTemplates]; ok {
		names, err := template.ParseTemplateNames(a)
		if err != nil {
			return false // the typed path's ParseAnnotations denies it, before any work
		}
		typedChoice = ""
		for _, n := range names {
			switch {
			case typedChoice == "":
				typedChoice = n
			case n != typedChoice:
				return true // several templates combined
			}
		}
	}
	for _, name := range t.Select(pod.Annotations) {
		if name != typedChoice || !typedTemplates[name] {
			return true
		}
		if _, stock := t.Stock[name]; !stock {
			return true
		}
	}
	// Stock text is not enough: the values may set something the typed
	// injector does not model (e.g. global.sts.servicePort, which Istio's
	// sidecar template turns into --stsPort). Checked once per configuration.
	return !t.TypedAgrees(typedChoice, func() bool { return typedAgreesWithTemplates(typedChoice, cfg) })
}

// typedAgreesWithTemplates builds a probe pod for the typed template name
// with the typed injector and with the generic renderer (the configured
// text and values, as Istio renders them), in both native-sidecar modes,
// and reports whether they give the same pod (JSON-valued strings compared
// parsed: the typed path writes them compact).
func typedAgreesWithTemplates(name string, cfg *config.Snapshot) bool {
	if tracer, _, _ := unstructured.NestedString(cfg.Templates.Values, "global", "proxy", "tracer"); tracer == "lightstep" {
		// The stock sidecar mounts lightstep-certs when the pod's own
		// ProxyConfig (proxy.istio.io/config) has tracing TLS settings,
		// which the probe cannot stand for; the typed injector does not
		// model it.
		return false
	}
	probe := &corev1.Pod{
		// apm.datadoghq.com/env: read by the stock sidecar under
		// global.proxy.tracer=datadog (DD_* env), which the typed injector
		// does not model; the annotation makes the probe show it.
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "probe", Labels: map[string]string{"app": "probe"},
			Annotations: map[string]string{"apm.datadoghq.com/env": `{"DD_ENV":"probe"}`}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "example.com/app:1",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}},
		}}},
	}
	if name != TemplateSidecar {
		probe.Annotations[AnnotationInjectTemplates] = name
	}
	if name == TemplateGateway {
		probe.Spec.Containers = []corev1.Container{{Name: ProxyContainerName, Image: "auto"}}
	}
	for _, native := range []bool{true, false} {
		c := *cfg
		c.Values.Global.NativeSidecars = &native
		generic := *cfg.Templates
		generic.AlwaysGeneric = true
		c.Templates = &generic
		typed, terr := inject(probe, "probe", &c, Options{})
		rendered, gerr := InjectGeneric(probe, "probe", &c, Options{})
		if terr != nil || gerr != nil {
			if (terr == nil) != (gerr == nil) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(podJSON(typed.Pod), podJSON(rendered.Pod)) {
			return false
		}
	}
	return true
}

// podJSON is pod as generic JSON with JSON-valued strings parsed.
func podJSON(pod *corev1.Pod) any {
	b, err := json.Marshal(pod)
	if err != nil {
		return err.Error()
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err.Error()
	}
	return parseJSONStrings(v)
}

func parseJSONStrings(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = parseJSONStrings(e)
		}
	case []any:
		for i, e := range x {
			x[i] = parseJSONStrings(e)
		}
	case string:
		if t := strings.TrimSpace(x); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			var j any
			if json.Unmarshal([]byte(t), &j) == nil {
				return parseJSONStrings(j)
			}
		}
	}
	return v
}

// InjectGeneric injects pod by rendering the configured templates (Istio
// pkg/kube/inject/webhook.go injectPod): render and strategic-merge each
// selected template, re-apply the pod's own declarations of injected
// containers, then Istio's post-processing (cluster envs, Prometheus merge,
// probe rewrite, status, order). Annotation checks, the ProxyConfig in
// effect, the workload identity, the image and privilege allow-lists and the
// Prometheus and probe rules are the typed injector's, so both paths accept
// and reject the same pods. Exported for the differential tests and
// benchmarks; Inject chooses the path.
func InjectGeneric(pod *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options) (*Result, error) {
	t := cfg.Templates
	if t == nil {
		return nil, fmt.Errorf("pod %s: no injection templates configured", podName(pod, namespace))
	}
	if namespace == "" {
		namespace = pod.Namespace
	}
	if NoContainers(pod) {
		return nil, fmt.Errorf("pod %s: spec.containers: must not be empty", podName(pod, namespace))
	}
	out, warnings, err := injectGeneric(pod, namespace, cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podName(pod, namespace), err)
	}
	keepAPITokenMounts(pod, out)
	keepDefaultedProbes(pod, out)
	patch, err := jsonPatch(pod, out)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podName(pod, namespace), err)
	}
	return &Result{Pod: out, Patch: patch, Warnings: warnings}, nil
}

func injectGeneric(in *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options) (*corev1.Pod, []string, error) {
	t := cfg.Templates
	v := cfg.Values.Global
	// managedFields are irrelevant and can be large: don't copy them.
	mf := in.ManagedFields
	in.ManagedFields = nil
	pod := in.DeepCopy()
	in.ManagedFields = mf

	stripped, previouslyInjected := template.Strip(pod)
	if previouslyInjected {
		// What the previous post-processing changed goes back, on the pod
		// the templates merge onto (Istio's RunTemplate merges onto the
		// injected pod itself) and on the one they see (Istio's stripPod):
		// the rule strip follows on the typed path. The old proxy's
		// ISTIO_PROMETHEUS_ANNOTATIONS stays where it is in the merge;
		// postProcess sets it there again when the merge records one.
		var prev previous
		var st Status
		// template.Strip reported a previous injection: the status parses.
		if json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &st) == nil {
			prev.fromInjected(pod, append(append([]string{}, st.InitContainers...), st.Containers...))
		}
		for _, q := range []*corev1.Pod{pod, stripped} {
			undoPostProcess(q, prev.probers, prev.prometheus, prev.statusPorts, cfg.ProxyConfig.GetStatusPort())
		}
	}
	// The settings are read after, as on the typed path: the annotations
	// restored (prometheus.istio.io/scrape-targets) count.
	p, err := genericParams(pod, namespace, cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	stripped, err = template.ReinsertOverrides(stripped)
	if err != nil {
		return nil, nil, err
	}
	// The pod's image choice passes the same allow-list as on the typed path;
	// its warning is kept only if a selected template renders the image.
	selected := t.Select(pod.Annotations)
	rendersImage := t.Set.RefersToProxyImage(selected)
	before := len(p.warnings)
	proxyImage, initImage := p.image(v.Proxy.Image), p.image(v.ProxyInit.Image)
	if !rendersImage {
		p.warnings = p.warnings[:before]
	}
	meta := *stripped.ObjectMeta.DeepCopy()
	if meta.Namespace == "" && !opts.PodNamespaceAsIs {
		// The admission object may have no namespace: Istio's webhook.go
		// inject fills it from the request before the templates see it.
		meta.Namespace = namespace
	}
	if img, ok := meta.Annotations[AnnotationProxyImage]; ok && strings.Contains(img, "/") && img != proxyImage {
		delete(meta.Annotations, AnnotationProxyImage)
	}
	clusterNative := false
	switch {
	case v.NativeSidecars != nil:
		clusterNative = *v.NativeSidecars
	case opts.NativeSidecars != nil:
		clusterNative = *opts.NativeSidecars
	}
	data := &template.Data{
		TypeMeta:       metav1.TypeMeta{Kind: p.owner.Kind, APIVersion: p.owner.APIVersion},
		DeploymentMeta: types.NamespacedName{Name: p.owner.Name, Namespace: p.owner.Namespace},
		ObjectMeta:     meta,
		Spec:           stripped.Spec,
		ProxyConfig:    p.proxyCfg,
		MeshConfig:     cfg.Mesh,
		// A copy: sprig's set/unset could otherwise change the shared values
		// for later and concurrent requests.
		Values:                   runtime.DeepCopyJSON(t.Values),
		Revision:                 cfg.Values.Revision,
		NativeSidecars:           clusterNative,
		ProxyImage:               proxyImage,
		ProxyInitImage:           initImage,
		ProxyUID:                 p.proxyUID,
		ProxyGID:                 p.proxyGID,
		InboundTrafficPolicyMode: strings.ToLower(cfg.Mesh.GetInboundTrafficPolicy().GetMode().String()),
	}
	// The pod's choice as ParseAnnotations read it, which the stock
	// template's $nativeSidecar reads the same way; Render moves a user's
	// istio-proxy by it (template.Set.Render).
	podNative := clusterNative
	if a := p.annos.NativeSidecar; a.Set {
		podNative = a.Value
	}
	merged, injected, ignored, err := t.Set.Render(selected, data, pod, podNative)
	if err != nil {
		return nil, nil, err
	}
	p.warnings = append(p.warnings, ignored...)
	merged, err = template.ReapplyOverrides(merged, pod, injected,
		p.proxyCfg.GetInterceptionMode() == meshv1alpha1.ProxyConfig_TPROXY,
		func(name string, before, after *corev1.Container) error {
			if after.Image != before.Image {
				after.Image = p.allowImage(after.Image, before.Image, fmt.Sprintf("user-declared container %q image", name))
			}
			return p.checkOverrideSecurity(name, before, after)
		})
	if err != nil {
		return nil, nil, err
	}
	// Istio's RunTemplate can merge two templates into a pod with the same
	// container twice (e.g. `sidecar,custom` where custom adds to
	// istio-proxy in containers while the native sidecar is an init
	// container); the API server would reject that pod. Say which instead.
	if err := uniqueContainerNames(merged); err != nil {
		return nil, nil, fmt.Errorf("templates %q: %w", strings.Join(selected, ","), err)
	}
	// As on the typed path (mergeVolumes): the pod's volume merged with an
	// injected one of another kind has two sources.
	for _, vol := range merged.Spec.Volumes {
		if err := checkVolumeSources(vol); err != nil {
			return nil, nil, err
		}
	}
	if err := p.postProcess(merged, injected, stripped); err != nil {
		return nil, nil, err
	}
	merged.ManagedFields = mf
	return merged, p.warnings, nil
}

// genericParams resolves and validates the pod's settings with the typed
// injector's rules. Those know only the typed templates' names, so the
// template selection is left out of them (the generic renderer resolves it)
// and they check the pod as for the sidecar template, which honours the
// privileged annotations; a selection of one of Istio's stock gateway or
// grpc-simple templates, which read none of them, is checked as the typed
// path checks it.
func genericParams(pod *corev1.Pod, namespace string, cfg *config.Snapshot, opts Options) (*params, error) {
	if err := checkTemplateNames(pod.Annotations); err != nil {
		return nil, err
	}
	view := *pod
	view.Annotations = make(map[string]string, len(pod.Annotations))
	for k, a := range pod.Annotations {
		if k != AnnotationInjectTemplates {
			view.Annotations[k] = a
		}
	}
	if sel := cfg.Templates.Select(pod.Annotations); len(sel) == 1 && typedTemplates[sel[0]] {
		if _, stock := cfg.Templates.Stock[sel[0]]; stock {
			view.Annotations[AnnotationInjectTemplates] = sel[0]
		}
	}
	return resolveParams(&view, namespace, cfg, opts, nil)
}

// postProcess is Istio's postProcessPod on the merged pod: cluster and
// network envs, Prometheus merge, probe rewrite, metadata, order.
func (p *params) postProcess(pod, injected, stripped *corev1.Pod) error {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	v := p.cfg.Values.Global
	envs := map[string]string{}
	for k, val := range p.proxyEnv {
		envs[k] = val
	}
	if envs["ISTIO_META_CLUSTER_ID"] == "" && v.MultiCluster.ClusterName != "" {
		envs["ISTIO_META_CLUSTER_ID"] = v.MultiCluster.ClusterName
	}
	if envs["ISTIO_META_NETWORK"] == "" && v.Network != "" {
		envs["ISTIO_META_NETWORK"] = v.Network
	}
	if n, ok := stripped.Labels[LabelNetwork]; ok {
		envs["ISTIO_META_NETWORK"] = n
	}
	sidecar := template.FindSidecar(pod)
	if sidecar != nil {
		template.SetEnvs(sidecar, envs)
	}
	p.readTemplateAnnotations(pod.Annotations)
	promEnv, err := p.mergePrometheus(pod, nil)
	if err != nil {
		return err
	}
	// Istio records the app's scrape config only when there is one
	// (webhook.go applyPrometheusMerge, emptyScrape).
	// On re-injection the old proxy's value is replaced where it stands
	// (the merge is onto the injected pod, as Istio's; undoPostProcess gave
	// the pod back the app's annotations the value was made from).
	if promEnv != nil && sidecar != nil && promEnv.Value != emptyScrape {
		i := slices.IndexFunc(sidecar.Env, func(e corev1.EnvVar) bool { return e.Name == envPromAnnotations })
		if i >= 0 {
			sidecar.Env[i] = *promEnv
		} else {
			sidecar.Env = append(sidecar.Env, *promEnv)
		}
	}
	if sidecar != nil && p.rewriteProbes() {
		probers := map[string]*prober{}
		for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for i := range cs {
				if cs[i].Name != ProxyContainerName {
					p.rewriteContainer(&cs[i], probers)
				}
			}
		}
		if len(probers) > 0 {
			sidecar = template.FindSidecar(pod)
			// Merge whenever the merged pod has a status annotation, parsable
			// or not (Istio webhook.go applyRewrite).
			_, previouslyInjected := pod.Annotations[AnnotationStatus]
			sidecar.Env = mergeOrAppendProbers(previouslyInjected, sidecar.Env, marshalSorted(probers))
		}
	}
	// The pod's userVolume passes the same hostPath check as on the typed
	// path (p.template: sidecar, or the stock template genericParams chose).
	if _, err := p.volumes(stripped); err != nil {
		return err
	}
	var injectedContainers []*corev1.Container
	for _, c := range append(append([]corev1.Container{}, injected.Spec.InitContainers...), injected.Spec.Containers...) {
		if got := template.FindContainer(c.Name, pod.Spec.InitContainers); got != nil {
			injectedContainers = append(injectedContainers, got)
		} else if got := template.FindContainer(c.Name, pod.Spec.Containers); got != nil {
			injectedContainers = append(injectedContainers, got)
		}
	}
	if err := p.checkHostPath(p.userVols, pod.Spec.Volumes, injectedContainers...); err != nil {
		return err
	}
	if nw, ok := envs["ISTIO_META_NETWORK"]; ok {
		pod.Labels[LabelNetwork] = nw
	}
	pod.Annotations[AnnotationStatus] = template.StatusOf(injected.Spec, p.cfg.Values.Revision)
	for k, val := range p.cfg.Values.SidecarInjectorWebhook.InjectedAnnotations {
		pod.Annotations[k] = val
	}
	template.Reorder(pod, p.hold)
	return nil
}

// readTemplateAnnotations takes the two switches a template may write into
// the merged pod's annotations over the pod's own: Istio's
// applyPrometheusMerge and applyRewrite (pkg/kube/inject/webhook.go) read
// the pod after the templates ran, so a template can turn the Prometheus
// merge off (prometheus.istio.io/merge-metrics: "false") or probe rewriting
// (grpc-agent writes sidecar.istio.io/rewriteAppHTTPProbers: "false").
// Values that are not booleans are ignored here, as ParseAnnotations ignores
// an invalid rewriteAppHTTPProbers (the pod's own were checked there).
func (p *params) readTemplateAnnotations(merged map[string]string) {
	annos := *p.annos
	for key, field := range map[string]*Optional[bool]{
		AnnotationMergeMetrics:  &annos.MergeMetrics,
		AnnotationRewriteProbes: &annos.RewriteAppHTTPProbers,
	} {
		if s, ok := merged[key]; ok {
			if b, err := strconv.ParseBool(s); err == nil {
				*field = some(b)
			}
		}
	}
	p.annos = &annos
}

// emptyScrape is ISTIO_PROMETHEUS_ANNOTATIONS for a pod without scrape
// annotations.
var emptyScrape = func() string {
	b, _ := json.Marshal(promConfig{})
	return string(b)
}()

// mergeOrAppendProbers adds ISTIO_KUBE_APP_PROBERS; on re-injection (the pod
// has a status annotation) the probers already recorded win over the new
// ones (Istio webhook.go mergeOrAppendProbers).
func mergeOrAppendProbers(previouslyInjected bool, env []corev1.EnvVar, probers string) []corev1.EnvVar {
	if previouslyInjected {
		for i, e := range env {
			if e.Name != envAppProbers {
				continue
			}
			var old, cur map[string]json.RawMessage
			if json.Unmarshal([]byte(e.Value), &old) != nil || json.Unmarshal([]byte(probers), &cur) != nil {
				return env
			}
			for k, val := range old {
				cur[k] = val
			}
			b, err := json.Marshal(cur)
			if err != nil {
				return env
			}
			env[i] = corev1.EnvVar{Name: envAppProbers, Value: string(b)}
			return env
		}
	}
	return append(env, corev1.EnvVar{Name: envAppProbers, Value: probers})
}

// promPortIs says whether a spelling of prometheus.io/port (as Prometheus
// normalises it) is port; any of them, so that several spellings give one
// answer whatever the map's order.
func promPortIs(a map[string]string, port string) bool {
	for k, val := range a {
		if promNorm(k) == promLabelPort && val == port {
			return true
		}
	}
	return false
}

// keepDefaultedProbes gives each probe and lifecycle of out that differs
// from the one of the same container in in only by what the API server
// defaults (defaultProbe, defaultLifecycle) in's value: re-injection
// restores the app's probe and rewrites it again without the defaults the
// stored pod has, and the whole-pod patch would remove them (the typed
// path's CreatePatch compares the same way: defaultedFieldOp).
func keepDefaultedProbes(in, out *corev1.Pod) {
	for _, pair := range [][2][]corev1.Container{{in.Spec.InitContainers, out.Spec.InitContainers}, {in.Spec.Containers, out.Spec.Containers}} {
		for i := range pair[1] {
			o := &pair[1][i]
			j := slices.IndexFunc(pair[0], func(c corev1.Container) bool { return c.Name == o.Name })
			if j < 0 {
				continue
			}
			old := &pair[0][j]
			for _, p := range [][2]**corev1.Probe{{&old.ReadinessProbe, &o.ReadinessProbe}, {&old.LivenessProbe, &o.LivenessProbe}, {&old.StartupProbe, &o.StartupProbe}} {
				if onlyDefaultsDiffer(*p[0], *p[1], defaultProbe) {
					*p[1] = (*p[0]).DeepCopy()
				}
			}
			if onlyDefaultsDiffer(old.Lifecycle, o.Lifecycle, defaultLifecycle) {
				o.Lifecycle = old.Lifecycle.DeepCopy()
			}
		}
	}
}

// jsonPatch is the JSON Patch from orig to injected over the whole pod: a
// custom template may change any field, unlike the typed injector, whose
// CreatePatch compares only the parts it changes.
func jsonPatch(orig, injected *corev1.Pod) ([]jsonpatch.JsonPatchOperation, error) {
	a, err := json.Marshal(orig)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(injected)
	if err != nil {
		return nil, err
	}
	return jsonpatch.CreatePatch(a, b)
}

// uniqueContainerNames refuses a pod that has a container name twice among
// its init containers and containers.
func uniqueContainerNames(pod *corev1.Pod) error {
	seen := make(map[string]string, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for _, l := range []struct {
		field string
		cs    []corev1.Container
	}{{"spec.initContainers", pod.Spec.InitContainers}, {"spec.containers", pod.Spec.Containers}} {
		for _, c := range l.cs {
			if first, dup := seen[c.Name]; dup {
				return fmt.Errorf("container %q is in %s and %s: a template adding to it must use the list the sidecar is in (.NativeSidecars: initContainers)", c.Name, first, l.field)
			}
			seen[c.Name] = l.field
		}
	}
	return nil
}
