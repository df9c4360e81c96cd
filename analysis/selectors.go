package analysis

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/validation/crossref"
)

// selectingObject is an object of a kind that selects its namespace's
// workloads by labels (a Sidecar, a Telemetry).
type selectingObject struct {
	o Object
	// labels is the selector; empty selects nothing by labels.
	labels map[string]string
	// unselected: the object counts as having no selector (each kind says
	// when: a Sidecar without labels, a Telemetry without the field).
	unselected bool
	// notFoundField is the field of an IST0101 for labels matching nothing.
	notFoundField string
}

// namespaceSelections is what Istio's Sidecar and Telemetry selector
// analyzers (sidecar/selector.go, telemetry/selector.go and
// default_selector.go) compute for the objects of one namespace: the
// objects selecting each workload of the namespace (workloads by name: a
// Pod and a Deployment of one name, or one given twice, are one; each
// object once), workloads in the order first selected; the objects without
// a selector; and, when allWorkloads says the workload list is complete, an
// IST0101 for each selector matching no workload.
type namespaceSelections struct {
	order      []string
	selecting  map[string][]Object
	unselected []Object
	notFound   []Message
}

func selectionsOf(objs []selectingObject, workloads []Workload, ns string, allWorkloads bool) namespaceSelections {
	s := namespaceSelections{selecting: map[string][]Object{}}
	for _, so := range objs {
		if so.unselected {
			s.unselected = append(s.unselected, so.o)
		}
		if len(so.labels) == 0 {
			continue
		}
		selector := labels.SelectorFromSet(so.labels)
		found := false
		for _, w := range workloads {
			if w.Namespace != ns || !selector.Matches(labels.Set(w.Labels)) {
				continue
			}
			found = true
			if _, ok := s.selecting[w.Name]; !ok {
				s.order = append(s.order, w.Name)
			}
			if !slices.ContainsFunc(s.selecting[w.Name], func(o Object) bool { return o.Name == so.o.Name }) {
				s.selecting[w.Name] = append(s.selecting[w.Name], so.o)
			}
		}
		if !found && allWorkloads {
			s.notFound = append(s.notFound, newMessage(so.o, crossref.CodeReferencedResourceNotFound, so.notFoundField,
				fmt.Sprintf("Referenced selector not found: %q", selector.String())))
		}
	}
	return s
}

// conflicts is one message of code per object and workload it selects
// with others (Istio's Conflicting{Sidecar,Telemetry}WorkloadSelectors;
// plural names the kind in the text: "Sidecars", "Telemetries").
func (s namespaceSelections) conflicts(code, plural, ns string) []Message {
	var out []Message
	for _, pod := range s.order {
		objs := s.selecting[pod]
		if len(objs) < 2 {
			continue
		}
		names := sortedNames(objs)
		for _, o := range objs {
			out = append(out, newMessage(o, code, "metadata.name",
				fmt.Sprintf("The %s %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.",
					plural, names, ns, pod)))
		}
	}
	return out
}

// withoutSelector is one message of code per object without a selector
// when the namespace has several (Istio's Multiple{Sidecars,Telemetries}
// WithoutWorkloadSelectors), at field.
func (s namespaceSelections) withoutSelector(code, field, plural, ns string) []Message {
	if len(s.unselected) < 2 {
		return nil
	}
	names := sortedNames(s.unselected)
	out := make([]Message, 0, len(s.unselected))
	for _, o := range s.unselected {
		out = append(out, newMessage(o, code, field,
			fmt.Sprintf("The %s %v in namespace %q have no workload selector, which can lead to undefined behavior.", plural, names, ns)))
	}
	return out
}

// sortedNames are the objects' names, sorted (Istio's getNames).
func sortedNames(objs []Object) []string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	slices.Sort(names)
	return names
}
