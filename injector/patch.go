package injector

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CreatePatch returns JSON Patch (RFC 6902) operations turning orig into
// injected. It compares only the parts injection can change (labels,
// annotations, containers, init containers, volumes, pull secrets, and the
// pod securityContext the gateway template sets), list by list, so it is
// linear in the pod's size; unchanged items produce no ops.
// Op values alias injected's fields: don't mutate injected afterwards.
func CreatePatch(orig, injected *corev1.Pod) []jsonpatch.JsonPatchOperation {
	ops := make([]jsonpatch.JsonPatchOperation, 0, 16) // a first injection has about ten
	if reflect.DeepEqual(&orig.ObjectMeta, &emptyMeta) {
		// The pod's JSON may lack "metadata"; an empty one loses nothing.
		ops = append(ops, op("add", "/metadata", map[string]any{}))
	}
	if reflect.DeepEqual(&orig.Spec, &emptySpec) {
		// Only a pod injected before may come without containers
		// (NoContainers), and its JSON may then lack "spec" too.
		ops = append(ops, op("add", "/spec", map[string]any{}))
	}
	ops = mapOps(ops, "/metadata/labels", orig.Labels, injected.Labels)
	ops = mapOps(ops, "/metadata/annotations", orig.Annotations, injected.Annotations)
	ops = containerOps(ops, "/spec/initContainers", orig.Spec.InitContainers, injected.Spec.InitContainers)
	ops = containerOps(ops, "/spec/containers", orig.Spec.Containers, injected.Spec.Containers)
	ops = namedListOps(ops, "/spec/volumes", orig.Spec.Volumes, injected.Spec.Volumes,
		func(v *corev1.Volume) string { return v.Name },
		func(ops []jsonpatch.JsonPatchOperation, p string, x, y *corev1.Volume) []jsonpatch.JsonPatchOperation {
			if !equal(x, y) && !equal(x, defaultedVolume(y)) {
				ops = append(ops, op("replace", p, y))
			}
			return ops
		})
	ops = listOps(ops, "/spec/imagePullSecrets", orig.Spec.ImagePullSecrets, injected.Spec.ImagePullSecrets,
		func(v *corev1.LocalObjectReference) string { return v.Name })
	return fieldOp(ops, "/spec", "/securityContext", orig.Spec.SecurityContext, injected.Spec.SecurityContext)
}

var (
	emptyMeta metav1.ObjectMeta
	emptySpec corev1.PodSpec
)

// equal tries reflect.DeepEqual first (allocation-free for unchanged app
// containers, however many env vars they have) and falls back to semantic
// equality, which treats equal quantities ("2000m" vs "2") as equal.
func equal(a, b any) bool {
	return reflect.DeepEqual(a, b) || equality.Semantic.DeepEqual(a, b)
}

func op(kind, path string, v any) jsonpatch.JsonPatchOperation {
	return jsonpatch.JsonPatchOperation{Operation: kind, Path: path, Value: v}
}

// escape encodes a JSON Pointer reference token (RFC 6901).
func escape(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// memberPath is the path of key under the map at path. The keys injection
// writes are looked up (a first injection adds half a dozen; building each
// path costs two allocations).
func memberPath(path, key string) string {
	if p, ok := knownPaths[pathKey{path, key}]; ok {
		return p
	}
	return path + "/" + escape(key)
}

// indexPath is the path of item i of the list at path; small indexes of
// the lists injection changes are looked up.
func indexPath(path string, i int) string {
	if i < knownIndexes {
		if p, ok := knownPaths[pathKey{path, strconv.Itoa(i)}]; ok {
			return p
		}
	}
	return path + "/" + strconv.Itoa(i)
}

type pathKey struct{ parent, member string }

const knownIndexes = 8

// knownPaths holds the paths of the labels and annotations injection
// writes and of the first items of the lists it changes.
var knownPaths = func() map[pathKey]string {
	m := map[pathKey]string{}
	add := func(parent string, members ...string) {
		for _, k := range members {
			m[pathKey{parent, k}] = parent + "/" + escape(k)
		}
	}
	add("/metadata/labels", LabelTLSMode, LabelCanonicalName, LabelCanonicalRevision, LabelNetwork, "networking.istio.io/tunnel")
	add("/metadata/annotations", AnnotationRev, AnnotationDefaultContainer, AnnotationDefaultLogsContainer, AnnotationStatus,
		AnnotationOverrides, AnnotationInterceptionMode, AnnotationIncludeOutboundIPs, AnnotationExcludeOutboundIPs,
		AnnotationIncludeInboundPorts, AnnotationExcludeInboundPorts, AnnotationIncludeOutboundPorts,
		AnnotationExcludeOutboundPorts, AnnotationPromScrape, AnnotationPromPort, AnnotationPromPath)
	for _, list := range []string{"/spec/initContainers", "/spec/containers", "/spec/volumes", "/spec/imagePullSecrets"} {
		for i := range knownIndexes {
			add(list, strconv.Itoa(i))
		}
	}
	return m
}()

func mapOps(ops []jsonpatch.JsonPatchOperation, path string, a, b map[string]string) []jsonpatch.JsonPatchOperation {
	if len(b) == 0 {
		if len(a) > 0 {
			ops = append(ops, op("remove", path, nil))
		}
		return ops
	}
	if a == nil {
		return append(ops, op("add", path, b))
	}
	var small [16]string // most injections change a few keys: no allocation
	keys := small[:0]
	for k := range b {
		if av, ok := a[k]; !ok || av != b[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // deterministic patches
	// The values as *string from one array: a string stored in an op's
	// interface value is an allocation each.
	vals := make([]string, len(keys))
	for i, k := range keys {
		kind := "add"
		if _, ok := a[k]; ok {
			kind = "replace"
		}
		vals[i] = b[k]
		ops = append(ops, op(kind, memberPath(path, k), &vals[i]))
	}
	var removed []string
	for k := range a {
		if _, ok := b[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(removed)
	for _, k := range removed {
		ops = append(ops, op("remove", memberPath(path, k), nil))
	}
	return ops
}

// insertion describes b as a (by name, in order) plus inserted items, or
// reports that it is not.
func insertion[T any](a, b []T, name func(*T) string) (kept []int, ok bool) {
	if len(b) < len(a) {
		return nil, false
	}
	kept = make([]int, 0, len(a)) // kept[i] = index in b of a[i]
	j := 0
	for i := range b {
		if j < len(a) && name(&a[j]) == name(&b[i]) {
			kept = append(kept, i)
			j++
		}
	}
	return kept, j == len(a)
}

// listOps emits ops for a named list: replace changed items, add inserted
// ones; anything else (removal, reordering) replaces the whole list.
func listOps[T any](ops []jsonpatch.JsonPatchOperation, path string, a, b []T, name func(*T) string) []jsonpatch.JsonPatchOperation {
	return namedListOps(ops, path, a, b, name, func(ops []jsonpatch.JsonPatchOperation, p string, x, y *T) []jsonpatch.JsonPatchOperation {
		if !equal(x, y) {
			ops = append(ops, op("replace", p, y))
		}
		return ops
	})
}

func namedListOps[T any](ops []jsonpatch.JsonPatchOperation, path string, a, b []T, name func(*T) string,
	item func([]jsonpatch.JsonPatchOperation, string, *T, *T) []jsonpatch.JsonPatchOperation) []jsonpatch.JsonPatchOperation {
	if len(b) == 0 {
		if len(a) > 0 {
			ops = append(ops, op("remove", path, nil))
		}
		return ops
	}
	if len(a) == 0 {
		return append(ops, op("add", path, b))
	}
	kept, ok := insertion(a, b, name)
	if !ok {
		return append(ops, op("replace", path, b))
	}
	// Replacements use the original indices, before any insertion.
	for i, bi := range kept {
		ops = item(ops, indexPath(path, i), &a[i], &b[bi])
	}
	// Inserts in ascending final index leave every earlier index in place.
	k := 0
	for i := range b {
		if k < len(kept) && kept[k] == i {
			k++
			continue
		}
		p := indexPath(path, i)
		if i == len(b)-1 && k == len(kept) && i >= len(a) {
			p = path + "/-"
		}
		ops = append(ops, op("add", p, &b[i]))
	}
	return ops
}

// containerOps is listOps with field-level replacement of the probes and
// lifecycle hooks probe rewriting changes, so a large container (e.g. with
// thousands of env vars) is not copied into the patch.
func containerOps(ops []jsonpatch.JsonPatchOperation, path string, a, b []corev1.Container) []jsonpatch.JsonPatchOperation {
	return namedListOps(ops, path, a, b, func(c *corev1.Container) string { return c.Name },
		func(ops []jsonpatch.JsonPatchOperation, p string, x, y *corev1.Container) []jsonpatch.JsonPatchOperation {
			// Compare with the rewritable fields masked out first (both
			// copies in one allocation; none when neither has them).
			var same bool
			if !hasRewritable(x) && !hasRewritable(y) {
				same = equal(x, y)
			} else {
				masked := &[2]corev1.Container{*x, *y}
				for i := range masked {
					m := &masked[i]
					m.ReadinessProbe, m.LivenessProbe, m.StartupProbe, m.Lifecycle = nil, nil, nil, nil
				}
				same = equal(&masked[0], &masked[1])
			}
			if !same {
				if equal(x, defaultedContainer(y)) {
					return ops // only API-server defaults differ (reinvocation)
				}
				return append(ops, op("replace", p, y))
			}
			ops = defaultedFieldOp(ops, p, "/readinessProbe", x.ReadinessProbe, y.ReadinessProbe, defaultProbe)
			ops = defaultedFieldOp(ops, p, "/livenessProbe", x.LivenessProbe, y.LivenessProbe, defaultProbe)
			ops = defaultedFieldOp(ops, p, "/startupProbe", x.StartupProbe, y.StartupProbe, defaultProbe)
			return defaultedFieldOp(ops, p, "/lifecycle", x.Lifecycle, y.Lifecycle, defaultLifecycle)
		})
}

// defaultedFieldOp is fieldOp where a b that differs from a only by what the
// API server defaults (setDefaults, in place on a copy) is no change: a
// re-injection restores the app's probe and rewrites it again, without the
// scheme the API server added to the stored one (reinvocation stays a no-op).
func defaultedFieldOp[T any, PT interface {
	*T
	DeepCopy() *T
}](ops []jsonpatch.JsonPatchOperation, path, field string, a, b PT, setDefaults func(PT)) []jsonpatch.JsonPatchOperation {
	if onlyDefaultsDiffer(a, b, setDefaults) {
		return ops
	}
	return fieldOp(ops, path, field, (*T)(a), (*T)(b))
}

// onlyDefaultsDiffer: a and b differ, and b with what the API server
// defaults set (setDefaults, on a copy) equals a.
func onlyDefaultsDiffer[T any, PT interface {
	*T
	DeepCopy() *T
}](a, b PT, setDefaults func(PT)) bool {
	if a == nil || b == nil || equal(a, b) {
		return false
	}
	d := PT(b.DeepCopy())
	setDefaults(d)
	return equal(a, d)
}

// hasRewritable reports whether c has a field probe rewriting changes.
func hasRewritable(c *corev1.Container) bool {
	return c.ReadinessProbe != nil || c.LivenessProbe != nil || c.StartupProbe != nil || c.Lifecycle != nil
}

// fieldOp emits the op for field (under the item at path) from a to b; the
// op's path is built only when there is one.
func fieldOp[T any](ops []jsonpatch.JsonPatchOperation, path, field string, a, b *T) []jsonpatch.JsonPatchOperation {
	switch {
	case a == nil && b == nil:
	case a == nil:
		ops = append(ops, op("add", path+field, b))
	case b == nil:
		ops = append(ops, op("remove", path+field, nil))
	case !equal(a, b):
		ops = append(ops, op("replace", path+field, b))
	}
	return ops
}
