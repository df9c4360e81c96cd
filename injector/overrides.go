package injector

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
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
		if c.Image == "auto" {
			c.Image = ""
		}
		if c.Name == InitContainerName || c.Name == ValidationContainerName || (c.Name == ProxyContainerName && nativeProxy) {
			po.InitContainers = append(po.InitContainers, c)
		} else {
			po.Containers = append(po.Containers, c)
		}
	}
	b, _ := json.Marshal(po)
	return string(b)
}

func isInjectedName(n string) bool {
	return n == ProxyContainerName || n == InitContainerName || n == ValidationContainerName
}

// containerPlace is where a user-declared container stood in the pod: which
// list (init or regular) and its index there.
type containerPlace struct {
	init  bool
	index int
}

// takeOverrides removes user-declared istio-proxy/istio-init/istio-validation
// containers from the (stripped) pod and returns them together with those a
// previous injection recorded, in a stable order; places says where each one
// taken from the pod stood (keepNotInjected). specContainers are the
// containers Istio's templates see as .Spec.Containers when they differ from
// what remains in the pod (nil otherwise): RunTemplate renders the stripped
// pod, a user-declared istio-proxy included, with reinsertOverrides
// appending the recorded containers it lacks; ISTIO_META_POD_PORTS lists
// their ports.
func takeOverrides(pod *corev1.Pod, recorded string) (overrides, specContainers []corev1.Container, places map[string]containerPlace, err error) {
	var out []corev1.Container
	var po proxyOverrides
	if recorded != "" {
		if err := json.Unmarshal([]byte(recorded), &po); err != nil {
			return nil, nil, nil, fmt.Errorf("annotation %s: %w", AnnotationOverrides, err)
		}
		out = append(po.Containers, po.InitContainers...)
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
// p.overrides: Istio's reapplyOverrides (pkg/kube/inject/webhook.go) takes
// as overrides only the pod's containers named like one its templates
// inject, so a user's istio-validation without CNI, or istio-init with CNI,
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
		if place, own := p.overridePlaces[o.Name]; own && !injected(o.Name) {
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

// applyOverride merges the user's container over the injected one with
// strategic-merge semantics (env by name, ports by containerPort, mounts by
// mountPath; scalars and args from the user win). Image "auto" keeps the
// injected image.
func applyOverride(injected *corev1.Container, user corev1.Container) (*corev1.Container, error) {
	if user.Image == "auto" {
		user.Image = ""
	}
	base, err := json.Marshal(injected)
	if err != nil {
		return nil, err
	}
	patch, err := json.Marshal(user)
	if err != nil {
		return nil, err
	}
	merged, err := strategicpatch.StrategicMergePatch(base, patch, corev1.Container{})
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
