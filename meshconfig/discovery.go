package meshconfig

import (
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	fieldpath "k8s.io/apimachinery/pkg/util/validation/field"
)

// DiscoverySelectors is meshConfig.discoverySelectors parsed: the namespaces
// whose configuration istiod reads. The zero value selects every namespace
// (no selectors given). Istio: pkg/kube/namespace/filter.go
// (discoveryNamespacesFilter, LabelSelectorAsSelector), installed on every
// namespaced kind by pilot/pkg/bootstrap/server.go NewServer.
type DiscoverySelectors struct {
	selectors []labels.Selector
}

// parseDiscoverySelectors parses m's discoverySelectors as Istio's
// LabelSelectorAsSelector does: each selector ANDs its matchLabels and
// matchExpressions, an empty selector ({}) matches every namespace, a null
// entry none, and a namespace is selected when any selector matches it.
// Where Istio logs an invalid selector and keeps its previous namespace set
// (every namespace at start-up), each invalid one is an error naming its
// field (docs/compatibility.md). Validate parses them, the one parse:
// Validated returns its result.
func parseDiscoverySelectors(m *meshv1alpha1.MeshConfig) (DiscoverySelectors, fieldpath.ErrorList) {
	var out DiscoverySelectors
	var errs fieldpath.ErrorList
	for i, ps := range m.GetDiscoverySelectors() {
		s, err := selectorOf(ps, fieldpath.NewPath("mesh", "discoverySelectors").Index(i))
		errs = append(errs, err...)
		out.selectors = append(out.selectors, s)
	}
	if len(errs) > 0 {
		return DiscoverySelectors{}, errs
	}
	return out, nil
}

func selectorOf(ps *meshv1alpha1.LabelSelector, path *fieldpath.Path) (labels.Selector, fieldpath.ErrorList) {
	if ps == nil {
		return labels.Nothing(), nil
	}
	if len(ps.GetMatchLabels())+len(ps.GetMatchExpressions()) == 0 {
		return labels.Everything(), nil
	}
	var errs fieldpath.ErrorList
	var reqs []labels.Requirement
	keys := make([]string, 0, len(ps.GetMatchLabels()))
	for k := range ps.GetMatchLabels() {
		keys = append(keys, k)
	}
	slices.Sort(keys) // errors in a stable order
	for _, k := range keys {
		r, err := labels.NewRequirement(k, selection.Equals, []string{ps.GetMatchLabels()[k]})
		if err != nil {
			errs = append(errs, fieldpath.Invalid(path.Child("matchLabels").Key(k), ps.GetMatchLabels()[k], err.Error()))
			continue
		}
		reqs = append(reqs, *r)
	}
	ops := map[metav1.LabelSelectorOperator]selection.Operator{
		metav1.LabelSelectorOpIn: selection.In, metav1.LabelSelectorOpNotIn: selection.NotIn,
		metav1.LabelSelectorOpExists: selection.Exists, metav1.LabelSelectorOpDoesNotExist: selection.DoesNotExist,
	}
	for j, e := range ps.GetMatchExpressions() {
		p := path.Child("matchExpressions").Index(j)
		op, ok := ops[metav1.LabelSelectorOperator(e.GetOperator())]
		if !ok {
			// Istio compares the operator exactly: "in" is not In.
			errs = append(errs, fieldpath.NotSupported(p.Child("operator"), e.GetOperator(), []string{"In", "NotIn", "Exists", "DoesNotExist"}))
			continue
		}
		r, err := labels.NewRequirement(e.GetKey(), op, slices.Clone(e.GetValues()))
		if err != nil {
			errs = append(errs, fieldpath.Invalid(p, fmt.Sprintf("%s %s %s", e.GetKey(), e.GetOperator(), strings.Join(e.GetValues(), ",")), err.Error()))
			continue
		}
		reqs = append(reqs, *r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return labels.NewSelector().Add(reqs...), nil
}

// All reports whether every namespace is selected: no selectors were given.
func (d DiscoverySelectors) All() bool { return len(d.selectors) == 0 }

// Selects reports whether a namespace with these labels is selected.
func (d DiscoverySelectors) Selects(nsLabels map[string]string) bool {
	if d.All() {
		return true
	}
	set := labels.Set(nsLabels)
	for _, s := range d.selectors {
		if s.Matches(set) {
			return true
		}
	}
	return false
}

// String lists the selectors (logs; equal selectors print equal).
func (d DiscoverySelectors) String() string {
	if d.All() {
		return "<all namespaces>"
	}
	parts := make([]string, len(d.selectors))
	for i, s := range d.selectors {
		parts[i] = "{" + s.String() + "}"
	}
	return strings.Join(parts, " OR ")
}
