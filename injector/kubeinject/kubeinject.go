// Package kubeinject is the offline front-end of injection, like
// `istioctl kube-inject`: it injects the pod templates of workloads in a
// multi-document YAML stream with the same code the webhook uses.
package kubeinject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/internal/manifest"
)

// Result of InjectData: the output stream plus per-document notes (skips,
// warnings) for stderr.
type Result struct {
	Output []byte
	Notes  []string
}

// InjectData takes multi-document YAML, already read and bounded by the
// caller (`meshguard inject` reads it with the CLI's one reader, bounded by
// --max-input-size), and returns it with Pods and the pod templates of the
// kinds Istio's kube-inject handles (ReplicationController, Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, OpenShift
// DeploymentConfig; also inside a v1 List) injected; other documents are
// copied unchanged, each with a note. Errors name the document (1-based
// index, kind and name) and the field.
func InjectData(data []byte, cfg *config.Snapshot) (*Result, error) {
	// Cut as every other reader cuts a stream (manifest.SplitRaw: YAMLReader's
	// cut, a UTF-16 stream read as UTF-8 as kubectl reads it); comment-only
	// documents are dropped and not counted, as in validate's FILE#DOC. The
	// API server's limit of one object applies to each document but a v1
	// List, and to each of its items (injectDoc), as kubectl apply sends them.
	docs, splitErr := manifest.SplitRawUnbounded(data)
	res := &Result{}
	var out bytes.Buffer
	for _, d := range docs {
		n := d.Index + 1
		if d.Err != nil {
			return nil, fmt.Errorf("document %d: %w", n, d.Err)
		}
		// A second object in the document (JSON objects back to back, or
		// after a "..." line) is refused as validate refuses it: the decoders
		// below read the first object only, and the rest would be dropped or
		// passed through uninjected.
		if err := manifest.OneDocument(d.Raw); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		injected, notes, err := injectDoc(d.Raw, cfg, false)
		for _, note := range notes {
			res.Notes = append(res.Notes, fmt.Sprintf("document %d: %s", n, note))
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(injected)
		if !bytes.HasSuffix(injected, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	if splitErr != nil {
		return nil, fmt.Errorf("reading YAML: %w", splitErr)
	}
	res.Output = out.Bytes()
	return res, nil
}

// objectName is metadata.name of a document, for notes ("" when unnamed).
func objectName(doc []byte) string {
	var o struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	_ = yaml.Unmarshal(doc, &o)
	return o.Metadata.Name
}

// workload adapts one supported kind: its object and its pod template.
type workload struct {
	obj      any
	meta     *metav1.ObjectMeta
	template *corev1.PodTemplateSpec // nil for a Pod
	pod      *corev1.Pod             // set for a Pod
}

func decode(kind string, doc []byte) (*workload, error) {
	// Strict, as the API server's field validation: a typo, a duplicate key
	// or a value of the wrong type is an error naming its field; a number or
	// boolean where the type has a string is that string, as istioctl reads
	// it (pkg/kube/inject/inject.go FromRawToObject; manifest.DecodeStrict).
	strict := func(o any) error { return manifest.DecodeStrict(doc, o, "") }
	switch kind {
	case "Pod":
		o := &corev1.Pod{}
		return &workload{obj: o, meta: &o.ObjectMeta, pod: o}, strict(o)
	case "Deployment":
		o := &appsv1.Deployment{}
		return &workload{obj: o, meta: &o.ObjectMeta, template: &o.Spec.Template}, strict(o)
	case "StatefulSet":
		o := &appsv1.StatefulSet{}
		return &workload{obj: o, meta: &o.ObjectMeta, template: &o.Spec.Template}, strict(o)
	case "DaemonSet":
		o := &appsv1.DaemonSet{}
		return &workload{obj: o, meta: &o.ObjectMeta, template: &o.Spec.Template}, strict(o)
	case "ReplicaSet":
		o := &appsv1.ReplicaSet{}
		return &workload{obj: o, meta: &o.ObjectMeta, template: &o.Spec.Template}, strict(o)
	case "Job":
		o := &batchv1.Job{}
		return &workload{obj: o, meta: &o.ObjectMeta, template: &o.Spec.Template}, strict(o)
	case "CronJob":
		o := &batchv1.CronJob{}
		return &workload{obj: o, meta: &o.ObjectMeta, template: &o.Spec.JobTemplate.Spec.Template}, strict(o)
	case "ReplicationController":
		o := &corev1.ReplicationController{}
		if err := strict(o); err != nil {
			return nil, err
		}
		if o.Spec.Template == nil {
			return nil, errors.New("field spec.template: missing")
		}
		return &workload{obj: o, meta: &o.ObjectMeta, template: o.Spec.Template}, nil
	case "DeploymentConfig": // OpenShift's Go type, as Istio's injectScheme has it
		o := &deploymentConfig{}
		if err := strict(o); err != nil {
			return nil, err
		}
		if o.Spec.Template == nil {
			return nil, errors.New("field spec.template: missing")
		}
		return &workload{obj: o, meta: &o.ObjectMeta, template: o.Spec.Template}, nil
	}
	return nil, nil
}

// jobMetadataNote: a CronJob's injection is decided on its pod template's
// metadata, which the Job's pods carry and the webhook sees; istioctl
// kube-inject reads spec.jobTemplate.metadata instead (pkg/kube/inject
// inject.go IntoObject), so an opt-in or opt-out written there is named in
// a note rather than ignored without a word (docs/compatibility.md).
func jobMetadataNote(ref string, job *metav1.ObjectMeta) []string {
	const key = "sidecar.istio.io/inject"
	_, inLabels := job.Labels[key]
	_, inAnnotations := job.Annotations[key]
	if !inLabels && !inAnnotations {
		return nil
	}
	return []string{fmt.Sprintf("%s: spec.jobTemplate.metadata sets %s, which the Job's pods do not carry; the pod template's metadata decides, as for the webhook (istioctl kube-inject reads the Job's)", ref, key)}
}

// supportedAPIVersions lists the kinds injected (Istio kube-inject
// IntoObject) and the API versions accepted for each. A DeploymentConfig
// may still use OpenShift's legacy v1 group.
var supportedAPIVersions = map[string][]string{
	"Pod": {"v1"}, "ReplicationController": {"v1"}, "Deployment": {"apps/v1"}, "StatefulSet": {"apps/v1"},
	"DaemonSet": {"apps/v1"}, "ReplicaSet": {"apps/v1"}, "Job": {"batch/v1"}, "CronJob": {"batch/v1"},
	"DeploymentConfig": {"apps.openshift.io/v1", "v1"},
}

// injectDoc injects one document; inList is set for the items of a List.
func injectDoc(doc []byte, cfg *config.Snapshot, inList bool) ([]byte, []string, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if tm.Kind == "" {
		return nil, nil, errors.New("field kind: missing")
	}
	if tm.APIVersion == "" {
		return nil, nil, fmt.Errorf("%s: field apiVersion: missing", tm.Kind)
	}
	isList := tm.Kind == "List" && tm.APIVersion == "v1"
	if !isList && !inList { // injectList bounds each of its items
		if err := manifest.CheckObjectSize("document", len(doc)); err != nil {
			return nil, nil, err
		}
	}
	if isList {
		if inList {
			// Refused as every manifest reader does (manifest.Items): nesting
			// would re-read and re-encode each level, quadratic in the depth.
			return nil, nil, errors.New("a list inside a list is not supported")
		}
		return injectList(doc, cfg)
	}
	if !slices.Contains(supportedAPIVersions[tm.Kind], tm.APIVersion) {
		// Other kinds (and other API versions) pass through unchanged, never silently.
		what := strings.TrimSpace(tm.Kind + " " + objectName(doc))
		return doc, []string{fmt.Sprintf("%s (%s): not a kind meshguard injects; passed through unchanged", what, tm.APIVersion)}, nil
	}
	w, err := decode(tm.Kind, doc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", strings.TrimSpace(tm.Kind+" "+objectName(doc)), err)
	}
	ref := tm.Kind + " " + w.meta.Name
	if w.meta.Name == "" && w.meta.GenerateName == "" {
		return nil, nil, fmt.Errorf("%s: field metadata.name: missing", tm.Kind)
	}
	pod := w.pod
	if pod == nil {
		// The template's own metadata, namespace included (usually none):
		// what Istio's IntoObject gives the templates; ns decides the rest.
		pod = &corev1.Pod{ObjectMeta: *w.template.ObjectMeta.DeepCopy(), Spec: w.template.Spec}
	}
	// The workload's namespace, where its pods run; a workload without one
	// takes its template's, as Istio's IntoObject does. The owner
	// (.DeploymentMeta) keeps the workload's own.
	ns := w.meta.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	// Where the pod (template) is in the document, for the fields errors name.
	at := "spec.template."
	switch tm.Kind {
	case "Pod":
		at = ""
	case "CronJob":
		at = "spec.jobTemplate.spec.template."
	}
	if injector.NoContainers(pod) {
		return nil, nil, fmt.Errorf("%s: field %sspec.containers: must not be empty", ref, at)
	}
	// Refused before anything reads them, as the webhook does
	// (injector.CheckAnnotationsSize), whether injected or not: the API
	// server would refuse the pod.
	if err := injector.CheckAnnotationsSize(pod); err != nil {
		var fe *injector.FieldError
		if errors.As(err, &fe) {
			return nil, nil, fmt.Errorf("%s: field %s%s: %w", ref, at, fe.Field, fe.Err)
		}
		return nil, nil, fmt.Errorf("%s: %w", ref, err)
	}
	// kube-inject honours the same opt-outs as the webhook (hostNetwork,
	// sidecar.istio.io/inject, policy), evaluated on the pod template.
	d := injector.Decide(pod, ns, cfg)
	notes := append([]string(nil), d.Warnings...)
	if cj, ok := w.obj.(*batchv1.CronJob); ok {
		notes = append(notes, jobMetadataNote(ref, &cj.Spec.JobTemplate.ObjectMeta)...)
	}
	if !d.Inject {
		return doc, append(notes, fmt.Sprintf("%s: skipped (%s)", ref, d.Reason)), nil
	}
	opts := injector.Options{PodNamespaceAsIs: true}
	if w.pod == nil { // a bare Pod's owner is inferred as the webhook does (injector.InferOwner)
		opts.Owner = &injector.Owner{Name: w.meta.Name, Namespace: w.meta.Namespace, Kind: tm.Kind, APIVersion: tm.APIVersion}
	}
	res, err := injector.Inject(pod, ns, cfg, opts)
	if err != nil {
		return nil, notes, fmt.Errorf("%s: %w", ref, err)
	}
	notes = append(notes, res.Warnings...)
	if w.pod != nil {
		res.Pod.DeepCopyInto(w.pod)
	} else {
		w.template.ObjectMeta = res.Pod.ObjectMeta
		w.template.Spec = res.Pod.Spec
	}
	out, err := yaml.Marshal(w.obj)
	if err != nil {
		return nil, notes, fmt.Errorf("%s: encoding: %w", ref, err)
	}
	return out, notes, nil
}

// injectList injects every supported item of a v1 List (items are
// numbered from 0 in errors and notes); unsupported items are kept as is.
func injectList(doc []byte, cfg *config.Snapshot) ([]byte, []string, error) {
	var list struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        map[string]any    `json:"metadata,omitempty"`
		Items           []json.RawMessage `json:"items"`
	}
	if err := yaml.Unmarshal(doc, &list); err != nil {
		return nil, nil, fmt.Errorf("invalid List: %w", err)
	}
	var notes []string
	items := make([][]byte, len(list.Items))
	// Each item is one JSON value cut by the JSON decoder, so it holds one
	// object (InjectData checked the document for a second one); its JSON
	// size is what kubectl apply sends for it.
	for i, item := range list.Items {
		if err := manifest.CheckObjectSize("object", len(item)); err != nil {
			return nil, notes, fmt.Errorf("items[%d] of the List: %w", i, err)
		}
		out, itemNotes, err := injectDoc(item, cfg, true)
		for _, n := range itemNotes {
			notes = append(notes, fmt.Sprintf("items[%d]: %s", i, n))
		}
		if err != nil {
			return nil, notes, fmt.Errorf("items[%d] of the List: %w", i, err)
		}
		items[i] = out              // injected: already YAML
		if bytes.Equal(out, item) { // passed through or skipped: the item's JSON
			if items[i], err = yaml.JSONToYAML(item); err != nil {
				return nil, notes, fmt.Errorf("items[%d] of the List: %w", i, err)
			}
		}
	}
	if len(items) == 0 {
		out, err := yaml.Marshal(list)
		return out, notes, err
	}
	// Each item is encoded on its own and indented under "items:": one
	// yaml.Marshal of the whole List kept every event of its emitter (a
	// 3 MB List of 30,000 pods took 14 GB and minutes).
	list.Items = nil
	rest, err := yaml.Marshal(list) // apiVersion, items: null, kind, metadata
	if err != nil {
		return nil, notes, err
	}
	head, tail, ok := bytes.Cut(rest, []byte("items: null\n"))
	if !ok {
		return nil, notes, fmt.Errorf("encoding the List: no items key in %q", rest)
	}
	var out bytes.Buffer
	out.Write(head)
	out.WriteString("items:\n")
	for _, item := range items {
		for j, line := range bytes.SplitAfter(bytes.TrimSuffix(item, []byte("\n")), []byte("\n")) {
			switch {
			case j == 0:
				out.WriteString("- ")
			case len(line) > 1:
				out.WriteString("  ")
			}
			out.Write(line)
		}
		out.WriteByte('\n')
	}
	out.Write(tail)
	return out.Bytes(), notes, nil
}
