package analysis

import (
	"cmp"
	"maps"
	"slices"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	telemetry "istio.io/api/telemetry/v1alpha1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/validation/crossref"
)

// PodQuery is one list of pods the analyzers need from a cluster before
// Input.AllWorkloads may be set: the pods of Namespace ("" every namespace)
// matching Selector (a label selector's string form, "" any), or with One
// the first of them PodCounts counts: whether there is one.
type PodQuery struct {
	Namespace string
	Selector  string
	One       bool
}

// PodQueries are the pod lists that make Workloads complete for the
// analyzers of in's objects, each query once, sorted by namespace, selector and One
// (so a cluster is read in a stable order):
//
//   - a Gateway's selector in every namespace (gatewayWorkloadPorts, IST0162;
//     an empty selector selects every pod, as Istio's gateway analyzer);
//   - a Sidecar's workloadSelector labels and a Telemetry's selector
//     matchLabels in its own namespace (sidecarSelectors, telemetries;
//     without labels they select no pod by labels);
//   - an AuthorizationPolicy's selector matchLabels in its own namespace, in
//     every namespace for one of the root namespace; without labels (no
//     selector, or an empty one) one pod of the namespace (of any, in the
//     root namespace, where a policy without selector needs none):
//     authorizationPolicies, IST0127.
//
// `meshguard analyze --kubeconfig` and the audit list these (analyze also
// lists every pod of PodNamespaces and every Deployment for the analyzers
// that judge all of them), so a new selector analyzer adds its selectors
// here.
func PodQueries(in *Input) []PodQuery {
	type key struct {
		namespace, selector string
		one                 bool
	}
	queries := map[key]bool{}
	add := func(ns string, sel map[string]string) {
		queries[key{namespace: ns, selector: labels.SelectorFromSet(sel).String()}] = true
	}
	root := in.RootNamespace()
	for _, o := range in.Objects {
		switch spec := o.Spec.(type) {
		case *networking.Gateway:
			add("", spec.GetSelector())
		case *networking.Sidecar:
			if sel := spec.GetWorkloadSelector().GetLabels(); len(sel) > 0 {
				add(o.Namespace, sel)
			}
		case *telemetry.Telemetry:
			if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
				add(o.Namespace, sel)
			}
		case *security.AuthorizationPolicy:
			ns := o.Namespace
			if ns == root {
				if spec.GetSelector() == nil {
					continue
				}
				ns = ""
			}
			if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
				add(ns, sel)
			} else {
				queries[key{namespace: ns, one: true}] = true
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(queries), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.selector, b.selector), boolCompare(a.one, b.one))
	})
	out := make([]PodQuery, len(keys))
	for i, k := range keys {
		out[i] = PodQuery{Namespace: k.namespace, Selector: k.selector, One: k.one}
	}
	return out
}

// selectable are the workloads the selector analyzers (Gateway, Sidecar,
// Telemetry, AuthorizationPolicy, JWT claim routes, ineffective policies)
// match, as Istio's match Pods: every Pod, and a Deployment of the files
// (its pod template stands for pods the files do not hold), not a
// Deployment read from a cluster (Workload.Stored: its pods are the
// cluster's Pods, listed or not; with no replica it has none).
func (in *Input) selectable() []Workload {
	out := make([]Workload, 0, len(in.Workloads))
	for _, w := range in.Workloads {
		if !w.Stored {
			out = append(out, w)
		}
	}
	return out
}

// selectedBy is the workloads (selectable) the label selector sel matches,
// an empty one matching every workload as Istio's labels.SelectorFromSet,
// in input order. The gateway analyzers (ports, Secrets, JWT claim routes)
// each ask it for the same Gateways' selectors: it is matched once per
// distinct selector (crossref.SelectorKey) and Analyze run.
func (in *Input) selectedBy(sel map[string]string) []Workload {
	key := crossref.SelectorKey(sel)
	if ws, ok := in.selections[key]; ok {
		return ws
	}
	selector := labels.SelectorFromSet(sel)
	var ws []Workload
	for _, w := range in.selectable() {
		if selector.Matches(labels.Set(w.Labels)) {
			ws = append(ws, w)
		}
	}
	if in.selections == nil {
		in.selections = map[string][]Workload{}
	}
	in.selections[key] = ws
	return ws
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
