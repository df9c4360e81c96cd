// Package template renders Istio injection templates generically, as Istio's
// injector does (pkg/kube/inject/inject.go RunTemplate): Go text/template with
// sprig and Istio's functions over Istio's data model, each rendered template
// applied to the pod as a strategic merge patch, then Istio's container merge
// rules (webhook.go reapplyOverwrittenContainers, reorderPod,
// getInjectionStatus). It is pure: no I/O, no clock, no process environment.
//
// meshguard uses it for templates that are not Istio's stock ones (a
// customised `sidecar`, a user's own template); the stock templates take the
// typed fast path of package injector (docs/compatibility.md, custom
// templates).
package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"
)

// Container names Istio's merge rules treat specially.
const (
	ProxyContainerName      = "istio-proxy"
	InitContainerName       = "istio-init"
	ValidationContainerName = "istio-validation"
	EnableCoreDumpName      = "enable-core-dump"
)

// MaxRenderedBytes bounds the output of one template execution: a template
// looping without end fails instead of exhausting memory.
const MaxRenderedBytes = 4 << 20

// MaxRenderTime bounds the template executions of one Render together: a
// template looping without output (`range` over a large number) fails
// instead of holding the admission request until the API server gives up.
const MaxRenderTime = 5 * time.Second

// MaxSelectedTemplates bounds how many templates one pod selects: each is
// one more execution and strategic merge (Istio has no bound; 800 entries of
// `sidecar,gateway` took 6 s). Istio's stock configuration has 8 templates.
const MaxSelectedTemplates = 16

// istioTemplateName is the name Istio parses every injection template under
// (pkg/kube/inject/inject.go parseDryTemplate).
const istioTemplateName = "inject"

// Data is what a template sees as `.` (Istio's SidecarTemplateData).
type Data struct {
	TypeMeta                 metav1.TypeMeta
	DeploymentMeta           types.NamespacedName
	ObjectMeta               metav1.ObjectMeta
	Spec                     corev1.PodSpec
	ProxyConfig              *meshv1alpha1.ProxyConfig
	MeshConfig               *meshv1alpha1.MeshConfig
	Values                   map[string]any
	Revision                 string
	NativeSidecars           bool
	ProxyImage               string
	ProxyInitImage           string
	ProxyUID                 int64
	ProxyGID                 int64
	InboundTrafficPolicyMode string
	CompliancePolicy         string
}

// Options configure parsing.
type Options struct {
	// ProxyConfigJSON renders protoToJSON of a ProxyConfig; nil renders
	// plain protojson.
	ProxyConfigJSON func(*meshv1alpha1.ProxyConfig) (string, error)
	// Env is what the `env` function reads (Istio: istiod's environment).
	Env map[string]string
	// MaxRenderTime replaces the package's MaxRenderTime when positive
	// (tests).
	MaxRenderTime time.Duration
}

// Set is a parsed, immutable set of named templates, safe for concurrent use.
type Set struct {
	byName  map[string]*compiled
	maxTime time.Duration
	// imageRefs: the templates that refer to the proxy image (see
	// RefersToProxyImage).
	imageRefs map[string]bool
	// executions counts the template executions not yet ended, abandoned
	// ones included (execute), so tests can await their end.
	executions sync.WaitGroup
}

// compiled is one parsed template and its copies ready to execute, each
// with functions bound to its own budget (funcs).
type compiled struct {
	t    *template.Template // never executed: the copies are
	opts Options
	free chan *execution
}

// execution is a copy of a template whose functions count into b.
type execution struct {
	t *template.Template
	b *budget
}

// get returns an execution of c with a fresh budget: a reused one, or a new
// copy (text/template binds functions per template, not per execution).
func (c *compiled) get() (*execution, error) {
	select {
	case e := <-c.free:
		e.b.used.Store(0)
		return e, nil
	default:
	}
	t, err := c.t.Clone()
	if err != nil {
		return nil, err
	}
	b := &budget{}
	t.Funcs(funcs(c.opts, b))
	return &execution{t: t, b: b}, nil
}

// put keeps e for reuse unless it was abandoned (it may still run).
func (c *compiled) put(e *execution) {
	if e.b.abandoned.Load() {
		return
	}
	select {
	case c.free <- e:
	default:
	}
}

// Parse parses every template of raw (name → text). An error names the
// template.
func Parse(raw map[string]string, o Options) (*Set, error) {
	fm := funcs(o, &budget{})
	s := &Set{byName: make(map[string]*compiled, len(raw)), maxTime: MaxRenderTime, imageRefs: map[string]bool{}}
	if o.MaxRenderTime > 0 {
		s.maxTime = o.MaxRenderTime
	}
	var errs []error
	for _, name := range sortedKeys(raw) {
		// Each template is its own namespace called "inject", as Istio's
		// parseDryTemplate names it: a `define` of the template's own name
		// parses as in Istio, one of "inject" fails as in Istio.
		t, err := template.New(istioTemplateName).Funcs(fm).Parse(raw[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("template %q: %w", name, err))
			continue
		}
		s.byName[name] = &compiled{t: t, opts: o, free: make(chan *execution, runtime.GOMAXPROCS(0))}
		s.imageRefs[name] = refersToProxyImage(t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Has reports whether the set has a template called name.
func (s *Set) Has(name string) bool {
	_, ok := s.byName[name]
	return ok
}

// RefersToProxyImage reports whether any of the named templates refers to
// the proxy image: .ProxyImage, .ProxyInitImage or the
// sidecar.istio.io/proxyImage annotation. Istio computes the image for every
// template (webhook.go injectPod, inject.go ProxyImage), but only such a
// template renders it; e.g. the stock grpc-simple injects no proxy.
func (s *Set) RefersToProxyImage(names []string) bool {
	for _, n := range names {
		if s.imageRefs[n] {
			return true
		}
	}
	return false
}

// refersToProxyImage walks the parse trees of t and the templates it
// defines.
func refersToProxyImage(t *template.Template) bool {
	image := func(idents []string) bool {
		return slices.Contains(idents, "ProxyImage") || slices.Contains(idents, "ProxyInitImage")
	}
	var walk func(n parse.Node) bool
	walk = func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				return slices.ContainsFunc(n.Nodes, walk)
			}
		case *parse.ActionNode:
			return walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				return slices.ContainsFunc(n.Cmds, func(c *parse.CommandNode) bool { return walk(c) })
			}
		case *parse.CommandNode:
			return slices.ContainsFunc(n.Args, walk)
		case *parse.FieldNode:
			return image(n.Ident)
		case *parse.VariableNode:
			return image(n.Ident)
		case *parse.ChainNode:
			return image(n.Field) || walk(n.Node)
		case *parse.StringNode:
			return strings.Contains(n.Text, "sidecar.istio.io/proxyImage") || image([]string{n.Text})
		case *parse.IfNode:
			return walk(n.Pipe) || walk(n.List) || walk(n.ElseList)
		case *parse.RangeNode:
			return walk(n.Pipe) || walk(n.List) || walk(n.ElseList)
		case *parse.WithNode:
			return walk(n.Pipe) || walk(n.List) || walk(n.ElseList)
		case *parse.TemplateNode:
			return walk(n.Pipe)
		}
		return false
	}
	for _, d := range t.Templates() {
		if d.Tree != nil && walk(d.Tree.Root) {
			return true
		}
	}
	return false
}

// Names lists the templates, sorted.
func (s *Set) Names() []string { return sortedKeys(s.byName) }

// ParseTemplateNames is the one parse of the inject.istio.io/templates
// annotation, for every path (the webhook's typed and generic injection,
// `meshguard inject`, analyze): Istio's split (pkg/kube/inject/inject.go
// selectTemplates: comma-separated, each trimmed, empty and repeated names
// kept) and meshguard's bound of MaxSelectedTemplates names, which Istio
// does not have (docs/compatibility.md).
func ParseTemplateNames(annotation string) ([]string, error) {
	if n := strings.Count(annotation, ",") + 1; n > MaxSelectedTemplates {
		return nil, fmt.Errorf("%d template names, more than %d", n, MaxSelectedTemplates)
	}
	names := strings.Split(annotation, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	return names, nil
}

// SelectTemplates is Istio's selectTemplates: the inject.istio.io/templates
// annotation (ParseTemplateNames) if present, else defaults, each name
// expanded once through aliases. An annotation over the bound selects its
// first MaxSelectedTemplates+1 names, which Render refuses: callers check
// the annotation first to report it as the annotation's error.
func SelectTemplates(annotations map[string]string, defaults []string, aliases map[string][]string) []string {
	names := defaults
	if a, ok := annotations["inject.istio.io/templates"]; ok {
		var err error
		if names, err = ParseTemplateNames(a); err != nil {
			names, _ = ParseTemplateNames(strings.Join(strings.SplitN(a, ",", MaxSelectedTemplates+2)[:MaxSelectedTemplates+1], ","))
			names = append(names, "")
		}
	}
	var out []string
	for _, n := range names {
		if al, ok := aliases[n]; ok {
			out = append(out, al...)
		} else {
			out = append(out, n)
		}
	}
	return out
}

// Render runs the named templates in order over data and merges each onto
// pod (Istio RunTemplate). It returns the merged pod, the pod made of the
// templates alone (what was injected) and warnings about what a template
// rendered that was ignored. native is the pod's native sidecar choice: its
// sidecar.istio.io/nativeSidecar annotation as the injector parsed it
// (injector.ParseAnnotations: as Istio's template reads it, anything but
// empty or "false" is native), else the cluster's. The caller decides it
// once; Render does not read the annotation again.
//
// At most MaxSelectedTemplates names are rendered, within MaxRenderTime in
// all.
func (s *Set) Render(names []string, data *Data, pod *corev1.Pod, native bool) (merged, injected *corev1.Pod, warnings []string, err error) {
	if len(names) > MaxSelectedTemplates {
		return nil, nil, nil, fmt.Errorf("%d templates selected, more than %d (inject.istio.io/templates or defaultTemplates, aliases expanded)", len(names), MaxSelectedTemplates)
	}
	deadline := time.Now().Add(s.maxTime)
	merged, injected = pod, &corev1.Pod{}
	for _, name := range names {
		t, ok := s.byName[name]
		if !ok {
			return nil, nil, nil, fmt.Errorf("requested template %q not found; have %s", name, strings.Join(s.Names(), ", "))
		}
		w := &limitedBuffer{max: MaxRenderedBytes}
		if err := s.execute(t, w, data, deadline); err != nil {
			return nil, nil, nil, fmt.Errorf("template %q: %w", name, err)
		}
		if injected, err = applyOverlayYAML(injected, w.Bytes()); err != nil {
			return nil, nil, nil, fmt.Errorf("template %q: rendered output is not a pod overlay: %w", name, err)
		}
		if err := unknownField(w.Bytes()); err != nil {
			warnings = append(warnings, fmt.Sprintf("template %q: %s: not a pod field, ignored (as Istio ignores it)", name, strings.TrimPrefix(err.Error(), "json: ")))
		}
		// A user's istio-proxy customisation sits in containers while a
		// native sidecar is rendered into initContainers: move it so the two
		// merge (Istio RunTemplate). Istio: pkg/kube/inject/inject.go
		// RunTemplate (b0d2c6ad) moves it when the annotation is exactly
		// "true", or is not exactly "false" and the cluster's choice is
		// native, while its template renders the proxy native for any value
		// but "false" (injection-template.yaml $nativeSidecar, `ne ...
		// "false"`): for another value ("yes") on a classic cluster Istio
		// leaves the user's istio-proxy in containers beside the native one,
		// a pod the API server rejects (duplicate name). meshguard reads the
		// value one way, the template's (a deliberate difference).
		if native && FindContainer(ProxyContainerName, injected.Spec.InitContainers) != nil &&
			FindContainer(ProxyContainerName, merged.Spec.Containers) != nil {
			merged = merged.DeepCopy()
			merged.Spec.Containers, merged.Spec.InitContainers = moveContainer(merged.Spec.Containers, merged.Spec.InitContainers, ProxyContainerName)
		}
		if merged, err = applyOverlayYAML(merged, w.Bytes()); err != nil {
			return nil, nil, nil, fmt.Errorf("template %q: merging into the pod: %w", name, err)
		}
	}
	return merged, injected, warnings, nil
}

// execute runs c into w before deadline (Render's, for all its
// templates). A Go template cannot be interrupted: on timeout its execution
// is abandoned and ends at its next write or function call, which fail.
func (s *Set) execute(c *compiled, w *limitedBuffer, data *Data, deadline time.Time) error {
	e, err := c.get()
	if err != nil {
		return err
	}
	w.abandoned = &e.b.abandoned
	done := make(chan error, 1)
	s.executions.Add(1)
	go func() {
		defer s.executions.Done()
		defer func() {
			// Not the request's goroutine: a panic here would end the process.
			if r := recover(); r != nil {
				done <- fmt.Errorf("execution panicked: %v", r)
			}
		}()
		done <- e.t.Execute(w, data)
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-done:
		c.put(e)
		return err
	case <-timer.C:
		e.b.abandoned.Store(true)
		return fmt.Errorf("execution took longer than %v (all selected templates together)", s.maxTime)
	}
}

// limitedBuffer fails writes beyond max bytes, and every write once its
// execution was abandoned.
type limitedBuffer struct {
	bytes.Buffer
	max       int
	abandoned *atomic.Bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.abandoned != nil && b.abandoned.Load() {
		return 0, errAbandoned
	}
	if b.Len()+len(p) > b.max {
		return 0, fmt.Errorf("rendered output exceeds %d bytes", b.max)
	}
	return b.Buffer.Write(p)
}

var podPatchMeta = func() strategicpatch.LookupPatchMeta {
	m, err := strategicpatch.NewPatchMetaFromStruct(corev1.Pod{})
	if err != nil {
		panic(err) // static type; cannot fail
	}
	return m
}()

// applyOverlayYAML strategic-merges a YAML pod overlay onto target (Istio
// webhook.go applyOverlayYAML / StrategicMergePatchYAML).
func applyOverlayYAML(target *corev1.Pod, overlayYAML []byte) (*corev1.Pod, error) {
	patch := map[string]any{}
	if err := yaml.Unmarshal(overlayYAML, &patch); err != nil {
		return nil, err
	}
	if patch == nil {
		patch = map[string]any{}
	}
	return applyPatchMap(target, patch)
}

func applyPatchMap(target *corev1.Pod, patch map[string]any) (*corev1.Pod, error) {
	cur, err := json.Marshal(target)
	if err != nil {
		return nil, err
	}
	orig := map[string]any{}
	if err := json.Unmarshal(cur, &orig); err != nil {
		return nil, err
	}
	res, err := strategicMerge(orig, patch)
	if err != nil {
		return nil, fmt.Errorf("strategic merge: %w", err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	out := &corev1.Pod{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decoding the merged pod: %w", err)
	}
	return out, nil
}

// strategicMerge is strategicpatch's merge of patch onto orig, its panics
// an error: it dereferences the type of a null list item it merges into a
// present, empty list (sliceElementType: a template's `containers:\n- `
// onto a pod's `containers: []`), where Istio's injector, on the same
// library (pkg/kube/inject/webhook.go applyOverlayYAML), fails the request.
// Any other panic is reported as one too (errMergePanicked without
// errNullItemInEmptyList), so that FuzzRender still finds it.
func strategicMerge(orig, patch map[string]any) (res map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			cause := errMergePanicked
			if _, nilDeref := r.(runtime.Error); nilDeref && nullItemInEmptyList(orig, patch) {
				cause = errNullItemInEmptyList
			}
			res, err = nil, fmt.Errorf("the rendered overlay cannot be merged onto the pod: %w: %v", cause, r)
		}
	}()
	return strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta(orig, patch, podPatchMeta)
}

var (
	// errMergePanicked: strategicpatch panicked while merging.
	errMergePanicked = errors.New("strategic merge panicked")
	// errNullItemInEmptyList: the known cause of that panic, checked after it.
	errNullItemInEmptyList = fmt.Errorf("%w on a null item in a list the pod has empty", errMergePanicked)
)

// nullItemInEmptyList reports whether patch puts a list starting with a
// null item where orig has a present, empty list: the input on which
// strategicpatch's sliceElementType calls a method of reflect.TypeOf(nil).
// Lists of objects are followed into the items the merge pairs by name.
func nullItemInEmptyList(orig, patch map[string]any) bool {
	for k, pv := range patch {
		switch pv := pv.(type) {
		case map[string]any:
			if ov, ok := orig[k].(map[string]any); ok && nullItemInEmptyList(ov, pv) {
				return true
			}
		case []any:
			ov, ok := orig[k].([]any)
			if !ok {
				continue
			}
			if len(ov) == 0 && len(pv) > 0 && pv[0] == nil {
				return true
			}
			for _, pi := range pv {
				pm, _ := pi.(map[string]any)
				name, named := pm["name"].(string)
				for _, oi := range ov {
					om, _ := oi.(map[string]any)
					if on, _ := om["name"].(string); named && on == name && nullItemInEmptyList(om, pm) {
						return true
					}
				}
			}
		}
	}
	return false
}

// unknownField reports a field a rendered overlay sets that the pod does not
// have, which decoding the merged pod drops as Istio's applyOverlayYAML
// (json.Unmarshal) drops it: a misspelt `securityContxt`, or the top-level
// `labels:` of the SPIRE template in Istio's SPIRE guide. Pods are injected
// as in Istio; the warning says what was ignored.
func unknownField(overlayYAML []byte) error {
	patch := map[string]any{}
	if err := yaml.Unmarshal(overlayYAML, &patch); err != nil {
		return nil // reported by applyOverlayYAML
	}
	// Applied to an empty pod, so that patch directives are resolved.
	res, err := strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta(map[string]any{}, patch, podPatchMeta)
	if err != nil {
		return nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&corev1.Pod{})
}

// applyContainer merges one container onto the pod's containers or init
// containers by name (Istio applyContainer / applyInitContainer).
func applyContainer(target *corev1.Pod, c corev1.Container, init bool) (*corev1.Pod, error) {
	overlay := corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
	if init {
		overlay.Spec = corev1.PodSpec{Containers: []corev1.Container{}, InitContainers: []corev1.Container{c}}
	}
	b, err := json.Marshal(overlay)
	if err != nil {
		return nil, err
	}
	patch := map[string]any{}
	if err := json.Unmarshal(b, &patch); err != nil {
		return nil, err
	}
	return applyPatchMap(target, patch)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FindContainer returns the container called name in cs, or nil.
func FindContainer(name string, cs []corev1.Container) *corev1.Container {
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return &cs[i]
}

// FindSidecar returns the istio-proxy container, in containers or (native
// sidecar) init containers.
func FindSidecar(pod *corev1.Pod) *corev1.Container {
	if c := FindContainer(ProxyContainerName, pod.Spec.Containers); c != nil {
		return c
	}
	return FindContainer(ProxyContainerName, pod.Spec.InitContainers)
}

func moveContainer(from, to []corev1.Container, name string) ([]corev1.Container, []corev1.Container) {
	i := slices.IndexFunc(from, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		return from, to
	}
	c := from[i]
	from = slices.Delete(slices.Clone(from), i, i+1)
	return from, append(slices.Clone(to), c)
}
