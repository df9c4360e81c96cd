package analysis

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/injector"
)

// The codes of Istio's annotation analyzer (pkg/config/analysis/analyzers/
// annotations/annotations.go K8sAnalyzer, istio/istio 0a617ca985f9; levels
// and templates from pkg/config/analysis/msg/messages.yaml at 02262c5b808d).
const (
	MisplacedAnnotation  = "IST0107"
	UnknownAnnotation    = "IST0108"
	InvalidAnnotation    = "IST0125"
	DeprecatedAnnotation = "IST0135"
)

func init() {
	Types[MisplacedAnnotation] = MessageType{MisplacedAnnotation, "MisplacedAnnotation", Warning}
	Types[UnknownAnnotation] = MessageType{UnknownAnnotation, "UnknownAnnotation", Warning}
	Types[InvalidAnnotation] = MessageType{InvalidAnnotation, "InvalidAnnotation", Warning}
	Types[DeprecatedAnnotation] = MessageType{DeprecatedAnnotation, "DeprecatedAnnotation", Info}
}

// ObjectAnnotations is obj's metadata.annotations (nil when it has none or
// they are not a map of strings: validation reports such metadata, and an
// object whose annotations cannot be read has none to honour).
func ObjectAnnotations(obj map[string]any) map[string]string {
	a, _, err := unstructured.NestedStringMap(obj, "metadata", "annotations")
	if err != nil {
		return nil
	}
	return a
}

// kubeMetadata is the Input.Kube entry of a Kubernetes object
// AddKubernetesObject decoded: its kind, namespace (defaultNamespace when
// it has none; none for a Namespace), name, annotations and labels.
func kubeMetadata(kind string, obj map[string]any, defaultNamespace string) Object {
	name, _, _ := unstructured.NestedString(obj, "metadata", "name")
	ns, _, _ := unstructured.NestedString(obj, "metadata", "namespace")
	switch {
	case kind == "Namespace":
		ns = ""
	case ns == "":
		ns = defaultNamespace
	}
	labels, _, err := unstructured.NestedStringMap(obj, "metadata", "labels")
	if err != nil {
		labels = nil
	}
	return Object{Kind: kind, Namespace: ns, Name: name, Annotations: ObjectAnnotations(obj), Labels: labels}
}

// istioAnnotations are the annotations Istio documents, by name (Istio's
// annotations.go istioAnnotations: istio.io/api's AllResourceAnnotations).
var istioAnnotations = func() map[string]*annotation.Instance {
	m := map[string]*annotation.Instance{}
	for _, a := range annotation.AllResourceAnnotations() {
		m[a.Name] = a
	}
	return m
}()

// deprecationExtra is the text DeprecatedAnnotation adds for an annotation
// (Istio: annotations.go deprecationExtraMessages).
var deprecationExtra = map[string]string{
	annotation.SidecarInject.Name: ` in favor of the "sidecar.istio.io/inject" label`,
}

// annotationChecks is Istio's K8sAnalyzer.Analyze (allowAnnotations) over
// in.Kube: the Namespaces, Services, Pods and Deployments, not the mesh
// objects (Istio's analyzer reads only those four kinds). Objects in the
// namespaces Istio's analysis never reads (injector.IgnoredNamespaces, as
// servicePortNames) are skipped. Each annotation in Istio's namespace
// (istioAnnotationName) is, in name order:
//   - unknown to istio.io/api: IST0108;
//   - deprecated: IST0135 (not for the sidecar.istio.io/inject annotation
//     of an object that also has the label), and then checked further;
//   - applicable to any resource: accepted;
//   - not applicable to the object's kind: IST0107 naming the kinds it is;
//   - rejected by meshguard's injector (injector.ParseAnnotations over the
//     object's annotations, the rule the webhook denies pods by): IST0125.
//
// The field is metadata.annotations[name], where Istio gives the line.
func annotationChecks(in *Input) []Message {
	var out []Message
	for _, o := range in.Kube {
		if len(o.Annotations) == 0 || (o.Kind != "Namespace" && injector.IgnoredNamespaces[o.Namespace]) {
			continue
		}
		names := make([]string, 0, len(o.Annotations))
		for name := range o.Annotations {
			if istioAnnotationName(name) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		var invalid map[string]error // parsed once, when an annotation's value is to be checked
		for _, name := range names {
			field := "metadata.annotations[" + name + "]"
			def := istioAnnotations[name]
			if def == nil {
				out = append(out, newMessage(o, UnknownAnnotation, field, "Unknown annotation: "+name))
				continue
			}
			if def.Deprecated {
				if _, labelled := o.Labels[label.SidecarInject.Name]; !labelled || name != annotation.SidecarInject.Name {
					out = append(out, newMessage(o, DeprecatedAnnotation, field, fmt.Sprintf(
						"Annotation %q has been deprecated%s and may not work in future Istio versions.", name, deprecationExtra[name])))
				}
			}
			if slices.Contains(def.Resources, annotation.Any) {
				continue
			}
			var kinds []string
			for _, r := range def.Resources {
				if s := r.String(); s != "Unknown" {
					kinds = append(kinds, s)
				}
			}
			if !slices.Contains(kinds, o.Kind) {
				out = append(out, newMessage(o, MisplacedAnnotation, field, fmt.Sprintf(
					"Misplaced annotation: %s can only be applied to %s", name, strings.Join(kinds, ", "))))
				continue
			}
			if invalid == nil {
				_, err := injector.ParseAnnotations(o.Annotations)
				invalid = injector.AnnotationErrors(err)
			}
			if err := invalid[name]; err != nil {
				out = append(out, newMessage(o, InvalidAnnotation, field, fmt.Sprintf("Invalid annotation %s: %v", name, annotationErrorText(err))))
			}
		}
	}
	return out
}

// istioAnnotationName says whether Istio's analyzer judges the annotation:
// kubernetes.io/ingress.class, which Istio documents, or a name whose part
// before the first "/" ends in "istio.io" (Istio: annotations.go istioAnnotation).
func istioAnnotationName(name string) bool {
	if name == annotation.IoKubernetesIngressClass.Name {
		return true
	}
	prefix, _, _ := strings.Cut(name, "/")
	return strings.HasSuffix(prefix, "istio.io")
}

// annotationErrorText is the text of IST0125 for an annotation the
// injector rejects (err, from injector.AnnotationErrors): Istio's
// validator's words when Istio rejects the value too (Istio's analyzer
// prints them), else the webhook's, where meshguard's injector is stricter
// than Istio (a readiness integer above 2^31-1, which would make the
// injected pod undecodable; a number not written canonically, such as
// "010"; the annotations Istio does not validate) and
// analyze warns of what admission denies.
func annotationErrorText(err error) error {
	var ae *injector.AnnotationError
	if errors.As(err, &ae) && ae.Istio != nil {
		return ae.Istio
	}
	return err
}
