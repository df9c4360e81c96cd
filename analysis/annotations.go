package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
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
//   - rejected by its value check (annotationValueError): IST0125.
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
			if err := annotationValueError(name, o.Annotations[name]); err != nil {
				out = append(out, newMessage(o, InvalidAnnotation, field, fmt.Sprintf("Invalid annotation %s: %v", name, err)))
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

// annotationValueError is the error of an annotation value meshguard's
// injector refuses (injector.ParseAnnotations: one rule for the webhook and
// analyze), in the words of Istio's check (istioAnnotationError) when Istio
// refuses it too, else the injector's: where the injector is stricter than
// Istio (a readiness integer above 2^31-1 would make the injected pod
// undecodable; the interface lists) analyze warns of what admission denies.
func annotationValueError(name, value string) error {
	_, err := injector.ParseAnnotations(map[string]string{name: value})
	if err == nil {
		return nil
	}
	if istio := istioAnnotationError(name, value); istio != nil {
		return istio
	}
	return err
}

// istioAnnotationError checks the value of the annotations whose values
// Istio's injector validates (pkg/kube/inject/validate.go
// AnnotationValidation, the table the analyzer reads), with Istio's error
// text: the interception mode, the status port, the readiness probe's
// integers, the CIDR and port lists of traffic capture,
// prometheus.istio.io/merge-metrics and proxy.istio.io/config. Any other
// annotation's value is not checked.
func istioAnnotationError(name, value string) error {
	switch name {
	case annotation.SidecarInterceptionMode.Name:
		switch value {
		case meshv1alpha1.ProxyConfig_REDIRECT.String(), meshv1alpha1.ProxyConfig_TPROXY.String(), "NONE":
			return nil
		}
		return fmt.Errorf("interceptionMode invalid, use REDIRECT,TPROXY,NONE: %v", value)
	case annotation.SidecarStatusPort.Name:
		if _, err := annotationPort(value); err != nil {
			return fmt.Errorf("excludeInboundPorts invalid: %v", err) // sic: Istio's validateStatusPort text
		}
	case annotation.SidecarStatusReadinessInitialDelaySeconds.Name,
		annotation.SidecarStatusReadinessPeriodSeconds.Name,
		annotation.SidecarStatusReadinessFailureThreshold.Name:
		_, err := strconv.ParseUint(value, 10, 32)
		return err
	case annotation.SidecarTrafficIncludeOutboundIPRanges.Name:
		if value == "*" {
			return nil
		}
		if err := annotationCIDRs(value); err != nil {
			return fmt.Errorf("includeIPRanges invalid: %v", err)
		}
	case annotation.SidecarTrafficExcludeOutboundIPRanges.Name:
		if err := annotationCIDRs(value); err != nil {
			return fmt.Errorf("excludeIPRanges invalid: %v", err)
		}
	case annotation.SidecarTrafficIncludeInboundPorts.Name:
		if value == "*" {
			return nil
		}
		return annotationPorts("includeInboundPorts", value)
	case annotation.SidecarTrafficExcludeInboundPorts.Name:
		return annotationPorts("excludeInboundPorts", value)
	case annotation.SidecarTrafficExcludeOutboundPorts.Name:
		return annotationPorts("excludeOutboundPorts", value)
	case annotation.PrometheusMergeMetrics.Name:
		_, err := strconv.ParseBool(value)
		return err
	case annotation.ProxyConfig.Name:
		// The injector parses it as Istio's validateProxyConfig does (onto
		// the default ProxyConfig, then ValidateMeshConfigProxyConfig).
		_, err := injector.ParseAnnotations(map[string]string{name: value})
		return err
	}
	return nil
}

// annotationPort is one port of a port annotation: a 16-bit unsigned
// integer, surrounding spaces allowed.
func annotationPort(s string) (uint64, error) {
	p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("failed parsing port '%s': %v", s, err)
	}
	return p, nil
}

// annotationPorts checks a comma-separated port list (empty is none).
func annotationPorts(param, s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		if _, err := annotationPort(p); err != nil {
			return fmt.Errorf("%s invalid: failed parsing port '%s': %v", param, p, err)
		}
	}
	return nil
}

// annotationCIDRs checks a comma-separated CIDR list (empty is none).
func annotationCIDRs(s string) error {
	if s == "" {
		return nil
	}
	for _, c := range strings.Split(s, ",") {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("failed parsing cidr '%s': %v", c, err)
		}
	}
	return nil
}
