package template

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotations the merge rules read and write.
const (
	AnnotationStatus    = "sidecar.istio.io/status"
	AnnotationOverrides = "proxy.istio.io/overrides"
)

// Status is the sidecar.istio.io/status annotation.
type Status struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

// StatusOf is the status annotation value for the injected (template-only)
// pod spec (Istio webhook.go getInjectionStatus).
func StatusOf(injected corev1.PodSpec, revision string) string {
	var st Status
	for _, c := range injected.InitContainers {
		st.InitContainers = append(st.InitContainers, c.Name)
	}
	for _, c := range injected.Containers {
		st.Containers = append(st.Containers, c.Name)
	}
	for _, v := range injected.Volumes {
		st.Volumes = append(st.Volumes, v.Name)
	}
	for _, s := range injected.ImagePullSecrets {
		st.ImagePullSecrets = append(st.ImagePullSecrets, s.Name)
	}
	if revision == "" {
		revision = "default"
	}
	st.Revision = revision
	b, _ := json.Marshal(st) // strings only; cannot fail
	return string(b)
}

// Strip removes what a previous injection recorded in the status annotation
// (its containers and the status itself) from a copy of pod, which the
// templates then see (Istio inject.go stripPod; the caller also drops the
// Prometheus annotations a previous merge pointed at the status port). The
// second result says whether a previous injection was found.
func Strip(pod *corev1.Pod) (*corev1.Pod, bool) {
	raw, ok := pod.Annotations[AnnotationStatus]
	if !ok {
		return pod, false
	}
	var st Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return pod, false
	}
	out := pod.DeepCopy()
	drop := func(cs []corev1.Container, names []string) []corev1.Container {
		return slices.DeleteFunc(cs, func(c corev1.Container) bool { return slices.Contains(names, c.Name) })
	}
	out.Spec.Containers = drop(out.Spec.Containers, st.Containers)
	out.Spec.InitContainers = drop(out.Spec.InitContainers, st.InitContainers)
	delete(out.Annotations, AnnotationStatus)
	return out, true
}

// Overrides is the JSON of proxy.istio.io/overrides (Istio webhook.go
// ParsedContainers): the pod's own declarations of injected containers, as
// the first injection recorded them.
type Overrides struct {
	Containers     []corev1.Container `json:"containers,omitempty"`
	InitContainers []corev1.Container `json:"initContainers,omitempty"`
}

// MaxOverrides bounds the containers and init containers
// proxy.istio.io/overrides may list together. Istio records there only the
// pod's own containers named like one its templates inject (webhook.go
// reapplyOverwrittenContainers): istio-proxy and istio-init or
// istio-validation for the stock sidecar templates, each app container for
// grpc-simple; Istio parses the annotation without a bound
// (reinsertOverrides), and each listed container costs a merge and a
// search of the pod's containers. A deliberate difference: more is denied
// naming the annotation (fail closed), before the containers are decoded.
const MaxOverrides = 256

// ParseOverrides parses a proxy.istio.io/overrides value: the one parser of
// the annotation, on the typed and the template path. It refuses a value
// listing more than MaxOverrides containers, counted before they are
// decoded; errors name the annotation.
func ParseOverrides(value string) (Overrides, error) {
	var ov Overrides
	// Counted first as raw entries: a hostile value of many small entries
	// is refused without building a corev1.Container for each. A value the
	// count cannot read, the decode below refuses too, with its message.
	// Listing more than MaxOverrides entries takes more than 3*MaxOverrides
	// bytes (`{}` and a comma each): a shorter value is not counted.
	var count struct {
		Containers     []json.RawMessage `json:"containers"`
		InitContainers []json.RawMessage `json:"initContainers"`
	}
	if len(value) > 3*MaxOverrides && json.Unmarshal([]byte(value), &count) == nil &&
		len(count.Containers)+len(count.InitContainers) > MaxOverrides {
		n := len(count.Containers) + len(count.InitContainers)
		return ov, fmt.Errorf("annotation %s: lists %d containers and initContainers, more than the %d meshguard accepts "+
			"(a previous injection records only the pod's own declarations of injected containers)", AnnotationOverrides, n, MaxOverrides)
	}
	if err := json.Unmarshal([]byte(value), &ov); err != nil {
		return Overrides{}, fmt.Errorf("annotation %s: %w", AnnotationOverrides, err)
	}
	return ov, nil
}

// ReinsertOverrides puts back the containers recorded in
// proxy.istio.io/overrides that the pod no longer has, so re-injection
// renders the same (Istio webhook.go reinsertOverrides).
func ReinsertOverrides(pod *corev1.Pod) (*corev1.Pod, error) {
	var ov Overrides
	if a, ok := pod.Annotations[AnnotationOverrides]; ok {
		var err error
		if ov, err = ParseOverrides(a); err != nil {
			return nil, err
		}
	}
	pod = pod.DeepCopy()
	for _, c := range ov.Containers {
		if FindContainer(c.Name, pod.Spec.Containers) == nil {
			pod.Spec.Containers = append(pod.Spec.Containers, c)
		}
	}
	for _, c := range ov.InitContainers {
		if FindContainer(c.Name, pod.Spec.InitContainers) == nil {
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
		}
	}
	return pod, nil
}

// CheckOverride vets a user's customisation of an injected container:
// before is the injected container, after the result of merging the user's
// onto it. A non-nil error denies the pod.
type CheckOverride func(name string, before, after *corev1.Container) error

// ReapplyOverrides merges the pod's own declarations of injected containers
// (e.g. a user's istio-proxy with extra settings) back over the injected
// ones, records them in proxy.istio.io/overrides on first injection and
// aligns the init container's user with the proxy's (Istio webhook.go
// reapplyOverwrittenContainers, adjustInitContainerUser). tproxy says the
// mesh's interception mode is TPROXY.
func ReapplyOverrides(final, original, injected *corev1.Pod, tproxy bool, check CheckOverride) (*corev1.Pod, error) {
	var existing, applied Overrides
	if a, ok := original.Annotations[AnnotationOverrides]; ok {
		var err error
		if existing, err = ParseOverrides(a); err != nil {
			return nil, err
		}
	}
	var prev Status
	raw, alreadyInjected := original.Annotations[AnnotationStatus]
	if alreadyInjected {
		_ = json.Unmarshal([]byte(raw), &prev) // unparsable: nothing was injected by us
	}
	apply := func(tmpl []corev1.Container, prevNames []string, recorded []corev1.Container, userOf func(string) *corev1.Container, init bool) ([]corev1.Container, error) {
		var out []corev1.Container
		for _, c := range tmpl {
			// A re-injection renders the injected containers afresh.
			if slices.Contains(prevNames, c.Name) {
				continue
			}
			match := FindContainer(c.Name, recorded)
			if match == nil {
				match = userOf(c.Name)
			}
			if match == nil {
				continue
			}
			overlay := *match.DeepCopy()
			if overlay.Image == "auto" {
				overlay.Image = ""
			}
			out = append(out, overlay)
			before := findIn(final, c.Name, init)
			next, err := applyContainer(final, overlay, init)
			if err != nil {
				return nil, fmt.Errorf("applying the pod's container %q: %w", c.Name, err)
			}
			if check != nil && before != nil {
				if after := findIn(next, c.Name, init); after != nil {
					if err := check(c.Name, before, after); err != nil {
						return nil, err
					}
				}
			}
			final = next
		}
		return out, nil
	}
	var err error
	if applied.Containers, err = apply(injected.Spec.Containers, prev.Containers, existing.Containers,
		func(n string) *corev1.Container { return FindContainer(n, original.Spec.Containers) }, false); err != nil {
		return nil, err
	}
	if applied.InitContainers, err = apply(injected.Spec.InitContainers, prev.InitContainers, existing.InitContainers,
		func(n string) *corev1.Container { return findInPod(original, n) }, true); err != nil {
		return nil, err
	}
	if !alreadyInjected && (len(applied.Containers) > 0 || len(applied.InitContainers) > 0) {
		b, err := json.Marshal(applied)
		if err != nil {
			return nil, err
		}
		if final.Annotations == nil {
			final.Annotations = map[string]string{}
		}
		final.Annotations[AnnotationOverrides] = string(b)
	}
	adjustInitContainerUser(final, original, tproxy)
	return final, nil
}

func findIn(pod *corev1.Pod, name string, init bool) *corev1.Container {
	if init {
		return FindContainer(name, pod.Spec.InitContainers)
	}
	return FindContainer(name, pod.Spec.Containers)
}

func findInPod(pod *corev1.Pod, name string) *corev1.Container {
	if c := FindContainer(name, pod.Spec.Containers); c != nil {
		return c
	}
	return FindContainer(name, pod.Spec.InitContainers)
}

// adjustInitContainerUser makes istio-init/istio-validation use the user
// id a user-declared istio-proxy runs as (Istio webhook.go
// adjustInitContainerUser).
func adjustInitContainerUser(final, original *corev1.Pod, tproxyMesh bool) {
	user := FindSidecar(original)
	if user == nil || user.SecurityContext == nil || (user.SecurityContext.RunAsUser == nil && user.SecurityContext.RunAsGroup == nil) {
		return
	}
	var init *corev1.Container
	for _, n := range []string{InitContainerName, ValidationContainerName} {
		if init = FindContainer(n, final.Spec.InitContainers); init != nil {
			break
		}
	}
	if init == nil {
		return
	}
	tproxy := tproxyMesh || final.Annotations["sidecar.istio.io/interceptionMode"] == "TPROXY"
	if tproxy && user.SecurityContext.RunAsUser != nil {
		if sc := FindSidecar(final); sc != nil && sc.SecurityContext != nil {
			sc.SecurityContext.RunAsUser = new(int64)
		}
	}
	if !tproxy && init.Name == ValidationContainerName {
		if init.SecurityContext == nil {
			init.SecurityContext = &corev1.SecurityContext{}
		}
		if user.SecurityContext.RunAsUser != nil {
			init.SecurityContext.RunAsUser = user.SecurityContext.RunAsUser
		}
		if user.SecurityContext.RunAsGroup != nil {
			init.SecurityContext.RunAsGroup = user.SecurityContext.RunAsGroup
		}
	}
	if user.SecurityContext.RunAsUser == nil || *user.SecurityContext.RunAsUser == 0 {
		return
	}
	for i := 0; i+1 < len(init.Args); i++ {
		if init.Args[i] == "-u" {
			init.Args[i+1] = strconv.FormatInt(*user.SecurityContext.RunAsUser, 10)
			return
		}
	}
}

// AnnotationInitContainersBeforeProxy lists, comma-separated, the pod's own
// init containers that run before a native istio-proxy (Istio webhook.go
// InitContainersBeforeProxy).
const AnnotationInitContainersBeforeProxy = "sidecar.istio.io/init-containers-before-proxy"

// Reorder puts the injected containers where Istio does (webhook.go
// reorderPod): istio-proxy last among containers, or first when the app
// waits for the proxy (hold); with a native sidecar, init containers run
// as NativeInitOrder says; otherwise istio-validation first, then the
// rest, istio-init and enable-core-dump. It moves containers within the
// pod's slices, without allocating.
func Reorder(pod *corev1.Pod, hold bool) {
	if hold {
		pod.Spec.Containers = moveFirst(pod.Spec.Containers, ProxyContainerName)
	} else {
		pod.Spec.Containers = moveLast(pod.Spec.Containers, ProxyContainerName)
	}
	ic := pod.Spec.InitContainers
	if FindContainer(ProxyContainerName, ic) != nil {
		ic = NativeInitOrder(ic, pod.Annotations)
	} else {
		ic = moveFirst(ic, ValidationContainerName)
		ic = moveLast(ic, InitContainerName)
		ic = moveLast(ic, EnableCoreDumpName)
	}
	pod.Spec.InitContainers = ic
}

// NativeInitOrder orders the init containers of a pod whose istio-proxy is
// a native sidecar as Istio's reorderPod does: istio-init/istio-validation,
// the containers named in AnnotationInitContainersBeforeProxy (in its
// order, first occurrence wins, unknown names ignored), istio-proxy,
// enable-core-dump, then the rest in their order. (Istio puts first the
// names of istiod's feature flag features.InitContainerBeforeProxy, read
// from istiod's environment; meshguard has no input for it,
// docs/compatibility.md.)
func NativeInitOrder(ic []corev1.Container, annotations map[string]string) []corev1.Container {
	ic = moveFirst(ic, EnableCoreDumpName)
	ic = moveFirst(ic, ProxyContainerName)
	if v := annotations[AnnotationInitContainersBeforeProxy]; v != "" {
		// Moving each to the front from the last name back keeps the
		// list's order; a repeated name ends at its first occurrence,
		// as with Istio's de-duplicated list.
		names := strings.Split(v, ",")
		for i := len(names) - 1; i >= 0; i-- {
			ic = moveFirst(ic, names[i])
		}
	}
	ic = moveFirst(ic, ValidationContainerName)
	return moveFirst(ic, InitContainerName)
}

func moveFirst(cs []corev1.Container, name string) []corev1.Container {
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i <= 0 {
		return cs
	}
	c := cs[i]
	copy(cs[1:i+1], cs[:i])
	cs[0] = c
	return cs
}

func moveLast(cs []corev1.Container, name string) []corev1.Container {
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 || i == len(cs)-1 {
		return cs
	}
	c := cs[i]
	copy(cs[i:], cs[i+1:])
	cs[len(cs)-1] = c
	return cs
}

// SetEnvs replaces c's env vars named in kvs and appends them in sorted
// order (Istio inject.go updateClusterEnvs, for the values the webhook URL
// path carries).
func SetEnvs(c *corev1.Container, kvs map[string]string) {
	if len(kvs) == 0 {
		return
	}
	env := slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { _, ok := kvs[e.Name]; return ok })
	for _, k := range sortedKeys(kvs) {
		env = append(env, corev1.EnvVar{Name: k, Value: kvs[k]})
	}
	c.Env = env
}
