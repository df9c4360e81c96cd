package injector

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/meshguard/meshguard/injector/template"
)

// AnnotationOverrides remembers user-declared versions of injected containers
// so a re-injection can re-apply them (Istio's reinsertOverrides).
const AnnotationOverrides = "proxy.istio.io/overrides"

// proxyOverrides is the JSON of AnnotationOverrides (Istio ParsedContainers):
// each user container is listed where the injected one lives, so a native
// sidecar's override is under initContainers.
type proxyOverrides struct {
	Containers     []corev1.Container `json:"containers,omitempty"`
	InitContainers []corev1.Container `json:"initContainers,omitempty"`
}

// recordOverrides renders AnnotationOverrides; image "auto" (keep the
// injected image) is not recorded, as in Istio's goldens.
func recordOverrides(overrides []corev1.Container, nativeProxy bool) string {
	var po proxyOverrides
	for _, c := range overrides {
		if c.Name == InitContainerName || c.Name == ValidationContainerName || (c.Name == ProxyContainerName && nativeProxy) {
			po.InitContainers = append(po.InitContainers, c)
		} else {
			po.Containers = append(po.Containers, c)
		}
	}
	return po.JSON()
}

// JSON is the annotation's value; an image "auto" is written empty, as
// Istio's reapplyOverwrittenContainers records its overlays.
func (po proxyOverrides) JSON() string {
	for _, l := range []*[]corev1.Container{&po.Containers, &po.InitContainers} {
		*l = slices.Clone(*l)
		for i := range *l {
			if (*l)[i].Image == "auto" {
				(*l)[i].Image = ""
			}
		}
	}
	b, _ := json.Marshal(po)
	return string(b)
}

// CheckAnnotationsSize refuses a pod whose annotations, keys and values
// together, exceed the API server's limit (k8s.io/apimachinery
// pkg/api/validation ValidateAnnotationsSize, TotalAnnotationSizeLimitB,
// 256 KiB). The API server checks it only after the mutating webhooks, so
// without it a pod's annotations (proxy.istio.io/overrides,
// sidecar.istio.io/userVolume, ...) of up to the request's size are parsed
// first. Istio's injector has no such check; the pod it refuses, the API
// server would reject anyway (injection does not shrink them). The webhook
// (before Decide) and meshguard inject both call it first.
func CheckAnnotationsSize(pod *corev1.Pod) error {
	if err := apivalidation.ValidateAnnotationsSize(pod.Annotations); err != nil {
		return fieldErr("metadata.annotations", fmt.Errorf("%w: the API server refuses such a pod", err))
	}
	return nil
}

func isInjectedName(n string) bool {
	return n == ProxyContainerName || n == InitContainerName || n == ValidationContainerName
}

// containerPlace is where a user-declared container stood in the pod: which
// list (init or regular) and its index there; or, recorded, that it came
// from proxy.istio.io/overrides (init: from its initContainers).
type containerPlace struct {
	init     bool
	index    int
	recorded bool
}

// takeOverrides removes user-declared istio-proxy/istio-init/istio-validation
// containers from the (stripped) pod and returns them together with those a
// previous injection recorded, in a stable order; places says where each one
// taken from the pod stood (keepNotInjected), or that it was recorded and in
// which list. specContainers are the
// containers Istio's templates see as .Spec.Containers when they differ from
// what remains in the pod (nil otherwise): RunTemplate renders the stripped
// pod, a user-declared istio-proxy included, with reinsertOverrides
// appending the recorded containers it lacks; ISTIO_META_POD_PORTS lists
// their ports.
func takeOverrides(pod *corev1.Pod, recorded string) (overrides, specContainers []corev1.Container, places map[string]containerPlace, err error) {
	var out []corev1.Container
	var po proxyOverrides
	if recorded != "" {
		// The template path's parser, bounded (template.MaxOverrides).
		ov, err := template.ParseOverrides(recorded)
		if err != nil {
			return nil, nil, nil, err
		}
		po = proxyOverrides(ov)
		out = append(po.Containers, po.InitContainers...)
		places = make(map[string]containerPlace, len(out))
		for i, c := range out {
			places[c.Name] = containerPlace{init: i >= len(po.Containers), recorded: true}
		}
	}
	if len(po.Containers) > 0 || slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return isInjectedName(c.Name) }) {
		specContainers = slices.Clone(pod.Spec.Containers) // take reuses the pod's array
		for _, c := range po.Containers {
			if !containsName(specContainers, c.Name) {
				specContainers = append(specContainers, c)
			}
		}
	}
	take := func(cs []corev1.Container, init bool) []corev1.Container {
		kept := cs[:0]
		for i, c := range cs {
			if isInjectedName(c.Name) {
				out = append(out, c)
				if places == nil {
					places = map[string]containerPlace{}
				}
				places[c.Name] = containerPlace{init: init, index: i}
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			return nil
		}
		return kept
	}
	pod.Spec.InitContainers = take(pod.Spec.InitContainers, true)
	pod.Spec.Containers = take(pod.Spec.Containers, false)
	seen := map[string]bool{}
	for _, c := range out {
		if seen[c.Name] {
			return nil, nil, nil, fmt.Errorf("container %q is declared twice (spec.containers / spec.initContainers / %s)", c.Name, AnnotationOverrides)
		}
		seen[c.Name] = true
	}
	return out, specContainers, places, nil
}

// keepNotInjected puts the containers the pod itself declares with the name
// of an injected container that these settings do not inject (injected says
// which names are) back where the pod had them, and removes them from
// p.overrides: Istio's reapplyOverwrittenContainers
// (pkg/kube/inject/webhook.go) takes as overrides only the pod's containers
// named like one its templates inject, so a user's istio-validation without CNI, or istio-init with CNI,
// in mode NONE or in a gateway, stays the pod's own container (and is not
// recorded in proxy.istio.io/overrides). Recorded overrides not injected now
// stay in p.overrides (apply warns and drops them).
func (p *params) keepNotInjected(pod *corev1.Pod, injected func(name string) bool) {
	type back struct {
		c     corev1.Container
		place containerPlace
	}
	var backs []back
	kept := p.overrides[:0:0]
	for _, o := range p.overrides {
		if place, ok := p.overridePlaces[o.Name]; ok && !place.recorded && !injected(o.Name) {
			backs = append(backs, back{o, place})
			continue
		}
		kept = append(kept, o)
	}
	if len(backs) == 0 {
		return
	}
	p.overrides = kept
	// In the order they stood, so each index is where it was.
	slices.SortFunc(backs, func(a, b back) int { return a.place.index - b.place.index })
	for _, b := range backs {
		list := &pod.Spec.Containers
		if b.place.init {
			list = &pod.Spec.InitContainers
		}
		*list = slices.Insert(*list, min(b.place.index, len(*list)), b.c)
	}
}

// reinsertRecorded puts back into the pod's containers those recorded in
// proxy.istio.io/overrides under containers whose names these settings do
// not inject (injected says which are), and removes them from p.overrides:
// the app containers of a grpc-simple injection, whose status listed them,
// so the strip removed them. Istio's reinsertOverrides
// (pkg/kube/inject/webhook.go) puts them back for the templates, and its
// pod never lost them (RunTemplate merges onto the pod as it is). A recorded
// image "auto" (recorded empty) is the image the pod had.
func (p *params) reinsertRecorded(pod *corev1.Pod, prev previous, injected func(name string) bool) {
	kept := p.overrides[:0:0]
	for _, o := range p.overrides {
		if place := p.overridePlaces[o.Name]; !place.recorded || place.init || injected(o.Name) {
			kept = append(kept, o)
			continue
		}
		if !containsName(pod.Spec.Containers, o.Name) {
			if o.Image == "" {
				o.Image = prev.images[o.Name]
			}
			pod.Spec.Containers = append(pod.Spec.Containers, o)
		}
	}
	p.overrides = kept
}

// checkOverridePlaces refuses a container the pod declares in the other
// list than the one its injected namesake goes to: istio-proxy among the
// init containers when the proxy is a classic sidecar (or the gateway), or
// the injected init container's name among the containers. Istio's
// reapplyOverwrittenContainers (pkg/kube/inject/webhook.go) merges it over
// the injected one all the same (FindContainerFromPod looks in both lists)
// but leaves the pod's own in place, so its pod has the name twice and the
// API server rejects it; the generic path denies that pod
// (uniqueContainerNames), and so does this one, naming the field. A native
// istio-proxy declared among the containers is fine: Istio's RunTemplate
// moves it to the init containers first.
func (p *params) checkOverridePlaces(init *corev1.Container) error {
	if len(p.overridePlaces) == 0 {
		return nil // most pods: no iterator closures to allocate
	}
	for _, name := range slices.Sorted(maps.Keys(p.overridePlaces)) {
		place := p.overridePlaces[name]
		if place.recorded {
			continue
		}
		var injectedInit bool
		switch {
		case name == ProxyContainerName:
			injectedInit = p.native
			if !place.init && p.native {
				continue
			}
		case init != nil && name == init.Name:
			injectedInit = true
		default:
			continue // not injected: the pod's own (keepNotInjected)
		}
		if place.init != injectedInit {
			field, other := "spec.containers", "spec.initContainers"
			if place.init {
				field, other = other, field
			}
			return fmt.Errorf("%s[%d]: container %q: these settings inject %q into %s; Istio's injector would leave both in the pod, "+
				"which the API server rejects: declare it in %s", field, place.index, name, name, other, other)
		}
	}
	return nil
}

// applyOverride merges the user's container over the injected one with
// strategic-merge semantics (env by name, ports by containerPort, mounts by
// mountPath; scalars and args from the user win). Image "auto" keeps the
// injected image.
func applyOverride(injected *corev1.Container, user corev1.Container) (*corev1.Container, error) {
	tmpl, err := json.Marshal(injected)
	if err != nil {
		return nil, err
	}
	own, err := json.Marshal(user)
	if err != nil {
		return nil, err
	}
	overlay := own
	if user.Image == "auto" {
		user.Image = ""
		if overlay, err = json.Marshal(user); err != nil {
			return nil, err
		}
	}
	// Two merges, as in Istio: RunTemplate merges the rendered template onto
	// the pod, whose container of that name is the user's
	// (pkg/kube/inject/inject.go), then reapplyOverwrittenContainers merges
	// the user's container, image "auto" left out, over the result
	// (webhook.go). The user's values win; the order of merged lists (env,
	// ports, mounts) is what the two merges give.
	merged, err := strategicpatch.StrategicMergePatch(own, tmpl, corev1.Container{})
	if err == nil {
		merged, err = strategicpatch.StrategicMergePatch(merged, overlay, corev1.Container{})
	}
	if err != nil {
		return nil, fmt.Errorf("merging the user-declared %s container: %w", user.Name, err)
	}
	out := &corev1.Container{}
	if err := json.Unmarshal(merged, out); err != nil {
		return nil, err
	}
	return out, nil
}

// overrideUser applies the runAsUser/runAsGroup of a user-declared
// istio-proxy to the injected init container, after every override is
// merged, as Istio's webhook.go adjustInitContainerUser does: outside TPROXY,
// istio-validation (CNI) runs as the proxy's user and group; and a non-zero
// runAsUser replaces the "-u" of istio-init or istio-validation (iptables'
// --uid-owner must not be 0).
func overrideUser(init *corev1.Container, user corev1.Container, tproxy bool) {
	sc := user.SecurityContext
	if init == nil || sc == nil || (sc.RunAsUser == nil && sc.RunAsGroup == nil) {
		return
	}
	if !tproxy && init.Name == ValidationContainerName {
		if init.SecurityContext == nil {
			init.SecurityContext = &corev1.SecurityContext{}
		}
		if sc.RunAsUser != nil {
			init.SecurityContext.RunAsUser = ptr(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			init.SecurityContext.RunAsGroup = ptr(*sc.RunAsGroup)
		}
	}
	if sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		return
	}
	uid := strconv.FormatInt(*sc.RunAsUser, 10)
	for i := 0; i+1 < len(init.Args); i++ {
		if init.Args[i] == "-u" {
			init.Args[i+1] = uid
			return
		}
	}
}
