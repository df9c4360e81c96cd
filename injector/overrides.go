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

// takeOverrides removes user-declared istio-proxy/istio-init/istio-validation
// containers from the (stripped) pod and returns them together with those a
// previous injection recorded, in a stable order. specContainers are the
// containers Istio's templates see as .Spec.Containers when they differ from
// what remains in the pod (nil otherwise): RunTemplate renders the stripped
// pod, a user-declared istio-proxy included, with reinsertOverrides
// appending the recorded containers it lacks; ISTIO_META_POD_PORTS lists
// their ports.
func takeOverrides(pod *corev1.Pod, recorded string) (overrides, specContainers []corev1.Container, err error) {
	var out []corev1.Container
	var po proxyOverrides
	if recorded != "" {
		if err := json.Unmarshal([]byte(recorded), &po); err != nil {
			return nil, nil, fmt.Errorf("annotation %s: %w", AnnotationOverrides, err)
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
	take := func(cs []corev1.Container) []corev1.Container {
		kept := cs[:0]
		for _, c := range cs {
			if isInjectedName(c.Name) {
				out = append(out, c)
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			return nil
		}
		return kept
	}
	pod.Spec.InitContainers = take(pod.Spec.InitContainers)
	pod.Spec.Containers = take(pod.Spec.Containers)
	seen := map[string]bool{}
	for _, c := range out {
		if seen[c.Name] {
			return nil, nil, fmt.Errorf("container %q is declared twice (spec.containers / spec.initContainers / %s)", c.Name, AnnotationOverrides)
		}
		seen[c.Name] = true
	}
	return out, specContainers, nil
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
