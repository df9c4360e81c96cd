package analysis

import (
	"fmt"
	"slices"
	"strings"

	security "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/validation/crossref"
)

// NoMatchingWorkloadsFound is the code of Istio's AuthorizationPolicy
// analyzer for a policy selecting no workload
// (pkg/config/analysis/analyzers/authz/authorizationpolicies.go
// AuthorizationPoliciesAnalyzer; text and level from
// pkg/config/analysis/msg/messages.gen.go NoMatchingWorkloadsFound).
const NoMatchingWorkloadsFound = "IST0127"

func init() {
	Types[NoMatchingWorkloadsFound] = MessageType{NoMatchingWorkloadsFound, "NoMatchingWorkloadsFound", Warning}
}

// authorizationPolicies is Istio's AuthorizationPoliciesAnalyzer.Analyze
// over the AuthorizationPolicies of in, each in input order:
//
//   - IST0127 (analyzeNoMatchingWorkloads): a policy of the root namespace
//     with a selector (even an empty one) matching no workload of any
//     namespace; elsewhere a policy without a selector in a namespace without
//     workloads, or whose selector matches no workload of its namespace. The
//     text names the selector as labels.Selector.String ("" for none). A
//     selector-less policy of the root namespace selects nothing to check.
//
//   - IST0101 (analyzeNamespaceNotFound): each rules[].from[].source
//     namespaces and notNamespaces value no namespace of in.Namespaces
//     matches (namespaceMatch: "*", a "*suffix", a "prefix*", or the name
//     case-insensitively; with no namespace at all nothing matches, not even
//     "*"), one message per value, its field the value's own path (Istio's
//     line points a notNamespaces value at source.namespaces).
//
// Both only when in.AllWorkloads: then the workloads and the namespaces are a
// cluster's (`meshguard analyze --kubeconfig` lists every namespace and the
// pods each policy may select, listSelectedWorkloads; the audit's snapshot
// likewise). From files the pods and namespaces are usually not part of the
// input, and Istio's report of every policy and namespace reference would
// be noise, so nothing is reported (as sidecar.go's IST0101).
//
// A workload counts only when in the mesh (workloadInMesh: Istio's
// util.PodInMesh, an istio-proxy container, the sidecar.istio.io/inject label
// or annotation, or an istio-injection=enabled namespace) or in ambient mode
// (workloadInAmbientMode, util.PodInAmbientMode), as Istio's initPodLabelsMap
// (the version that adds ambient pods) counts them, so a policy selecting
// only pods outside the mesh is IST0127.
//
// Differences from Istio: from files a Deployment's pod template is a
// workload too (DeploymentInMesh's rule). The root namespace is the mesh
// config's (Input.RootNamespace).
func authorizationPolicies(in *Input) []Message {
	if !in.AllWorkloads {
		return nil
	}
	byNamespace := map[string][]labels.Set{}
	for _, w := range in.selectable() {
		if authzCounts(w, in.Namespaces) {
			byNamespace[w.Namespace] = append(byNamespace[w.Namespace], labels.Set(w.Labels))
		}
	}
	namespaces := make([]string, 0, len(in.Namespaces))
	for ns := range in.Namespaces {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	var out []Message
	for _, o := range in.Objects {
		ap, ok := o.Spec.(*security.AuthorizationPolicy)
		if !ok {
			continue
		}
		msg := func(code, fieldPath, text string) Message { return newMessage(o, code, fieldPath, text) }
		if selected, selector := authzSelectsWorkload(o.Namespace, in.RootNamespace(), ap, byNamespace); !selected {
			out = append(out, msg(NoMatchingWorkloadsFound, "spec.selector",
				"No matching workloads for this resource with the following labels: "+selector))
		}
		for i, rule := range ap.GetRules() {
			for j, from := range rule.GetFrom() {
				for _, field := range []struct {
					name   string
					values []string
				}{{"namespaces", from.GetSource().GetNamespaces()}, {"notNamespaces", from.GetSource().GetNotNamespaces()}} {
					for k, exp := range field.values {
						if !slices.ContainsFunc(namespaces, func(ns string) bool { return authzNamespaceMatch(ns, exp) }) {
							out = append(out, msg(crossref.CodeReferencedResourceNotFound,
								fmt.Sprintf("spec.rules[%d].from[%d].source.%s[%d]", i, j, field.name, k),
								fmt.Sprintf("Referenced namespace not found: %q", exp)))
						}
					}
				}
			}
		}
	}
	return out
}

// authzSelectsWorkload says whether the policy ap of namespace ns selects a
// workload as Istio's analyzeNoMatchingWorkloads decides it (a policy of the
// root namespace, meshWidePolicy, in every namespace), and names its
// selector (labels.Selector.String).
func authzSelectsWorkload(ns, root string, ap *security.AuthorizationPolicy, byNamespace map[string][]labels.Set) (bool, string) {
	matches := func(selector labels.Selector, sets []labels.Set) bool {
		return slices.ContainsFunc(sets, func(s labels.Set) bool { return selector.Matches(s) })
	}
	if ns == root {
		if ap.GetSelector() == nil {
			return true, "" // mesh-wide: nothing to select
		}
		selector := labels.SelectorFromSet(ap.GetSelector().GetMatchLabels())
		for _, sets := range byNamespace {
			if matches(selector, sets) {
				return true, ""
			}
		}
		return false, selector.String()
	}
	if ap.GetSelector() == nil {
		return len(byNamespace[ns]) > 0, ""
	}
	selector := labels.SelectorFromSet(ap.GetSelector().GetMatchLabels())
	return matches(selector, byNamespace[ns]), selector.String()
}

// authzNamespaceMatch is Istio's namespaceMatch (authorizationpolicies.go):
// whether the namespace ns matches a source namespaces value exp.
func authzNamespaceMatch(ns, exp string) bool {
	switch {
	case exp == "*":
		return true
	case strings.HasPrefix(exp, "*"):
		return strings.HasSuffix(ns, exp[1:])
	case strings.HasSuffix(exp, "*"):
		return strings.HasPrefix(ns, exp[:len(exp)-1])
	}
	return strings.EqualFold(ns, exp)
}

// authzCounts says whether the AuthorizationPolicy analyzer counts w: as
// Istio's initPodLabelsMap, only pods with a sidecar or in ambient mode.
func authzCounts(w Workload, namespaces map[string]map[string]string) bool {
	return workloadInMesh(w, namespaces) || workloadInAmbientMode(w)
}

// PodCounts says whether the Pod object pod is one the analyzers count for
// a One PodQuery (the AuthorizationPolicy analyzer's pods: in the mesh, given
// the namespaces' labels, or in ambient mode): the first such pod answers
// the query. A pod that cannot be decoded counts, so that it is added and
// its error reported where the input is read.
func PodCounts(pod map[string]any, namespaces map[string]map[string]string) bool {
	var one Input
	if _, err := one.AddKubernetesObject(pod, ""); err != nil || len(one.Workloads) != 1 {
		return true
	}
	return authzCounts(one.Workloads[0], namespaces)
}
