package analysis

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"istio.io/api/label"

	"github.com/meshguard/meshguard/injector"
)

// Codes of Istio's injection analyzer
// (pkg/config/analysis/analyzers/injection/injection.go Analyzer.Analyze,
// istio/istio 018148e; texts and levels from
// pkg/config/analysis/msg/messages.gen.go).
const (
	NamespaceNotInjected             = "IST0102"
	NamespaceMultipleInjectionLabels = "IST0123"
	PodMissingProxy                  = "IST0103"
)

// The namespace labels Istio's injection analyzer reads
// (pkg/config/analysis/analyzers/util/constants.go InjectionLabelName,
// InjectionLabelEnableValue, IstioSystemNamespace).
const (
	injectionLabel       = "istio-injection"
	istioSystemNamespace = "istio-system"
)

func init() {
	Types[NamespaceNotInjected] = MessageType{NamespaceNotInjected, "NamespaceNotInjected", Info}
	Types[NamespaceMultipleInjectionLabels] = MessageType{NamespaceMultipleInjectionLabels, "NamespaceMultipleInjectionLabels", Warning}
	Types[PodMissingProxy] = MessageType{PodMissingProxy, "PodMissingProxy", Warning}
}

// namespaceInjection is Istio's injection.Analyzer (Namespaces and Pods) over
// in.Namespaces, which hold the Namespace resources of the input (documents
// of the files, a cluster's Namespaces), as Istio iterates only Namespace
// resources (a namespace that objects name but no Namespace defines gets no
// message). Skipped as Istio skips them: istio-system (by that name, not a
// configured control plane namespace) and the namespaces the injector never
// injects (Istio's util.IsSystemNamespace, inject.IgnoredNamespaces: here
// injector.IgnoredNamespaces). Then, per namespace:
//
//   - IST0102 (Info) without a non-empty istio-injection label and without an
//     istio.io/rev label (of any value, empty included);
//
//   - IST0123 (Warning) with an istio.io/rev label and a non-empty
//     istio-injection label of any value ("disabled" included).
//
// A namespace labelled only istio.io/dataplane-mode=ambient gets IST0102, as
// from the analyzer of istio/istio 018148e. Namespaces are taken in name
// order (Istio's store order; the messages are sorted by Sort anyway).
//
// The namespaces left, labelled istio-injection=enabled without an
// istio.io/rev label, or with an istio.io/rev label and no (or an empty)
// istio-injection label, are injected: each Pod of in.Workloads there (Istio
// iterates Pods only, not Deployments) without a container named istio-proxy
// with an image (its containers, not its init containers) is IST0103
// (Warning) PodMissingProxy, unless its sidecar.istio.io/inject label (else
// annotation) is "false" in any case or it is on the host network. The
// finding is about the pod itself; from a cluster every pod of these
// namespaces is listed (PodNamespaces).
//
// A namespace that would get IST0102 gets IST0148 (Info)
// NamespaceInjectionEnabledByDefault instead when the values of the
// istio-sidecar-injector ConfigMap (Input.InjectorValues; the name of the
// revision "", as the namespace has no istio.io/rev label) set
// sidecarInjectorWebhook.enableNamespacesByDefault; its pods stay unjudged
// by IST0103, as in Istio. Istio keeps the flag in a variable outside its
// namespace loop, set whenever the namespace's ConfigMap exists: without an
// istio-sidecar-injector ConfigMap, an unlabelled namespace iterated after
// one with istio.io/rev=X inherits istio-sidecar-injector-X's flag there;
// here it reads istio-sidecar-injector's only (none: IST0102), not
// depending on the iteration order.
func namespaceInjection(in *Input) []Message {
	var out []Message
	for _, ns := range slices.Sorted(maps.Keys(in.Namespaces)) {
		var code, text string
		switch namespaceLabellingOf(ns, in.Namespaces[ns]) {
		case unlabelled:
			if in.enableNamespacesByDefault() {
				// Istio: injection.go Analyzer.Analyze, the ConfigMap
				// util.GetInjectorConfigMapName(nsRevision) with nsRevision ""
				// here (no istio.io/rev label): istio-sidecar-injector.
				code = NamespaceInjectionEnabledByDefault
				text = "is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true."
				break
			}
			code = NamespaceNotInjected
			text = fmt.Sprintf("The namespace is not enabled for Istio injection. Run 'kubectl label namespace %s istio-injection=enabled' to enable it, or 'kubectl label namespace %s istio-injection=disabled' to explicitly mark it as not needing injection.", ns, ns)
		case bothLabels:
			code = NamespaceMultipleInjectionLabels
			text = fmt.Sprintf("The namespace has both new and legacy injection labels. Run 'kubectl label namespace %s istio.io/rev-' or 'kubectl label namespace %s istio-injection-'", ns, ns)
		default:
			continue
		}
		out = append(out, newMessage(Object{Kind: "Namespace", Name: ns}, code, "metadata.name", text))
	}
	judged := injectedNamespaces(in)
	for _, w := range in.Workloads {
		if w.Kind != "Pod" || !slices.Contains(judged, w.Namespace) || w.HostNetwork {
			continue
		}
		inject := w.Annotations[sidecarInjectKey]
		if v, ok := w.Labels[sidecarInjectKey]; ok {
			inject = v
		}
		if strings.EqualFold(inject, "false") || hasIstioProxy(w.Containers) {
			continue
		}
		out = append(out, newMessage(Object{Kind: "Pod", Namespace: w.Namespace, Name: w.Name}, PodMissingProxy, "metadata.name",
			fmt.Sprintf("The pod %s/%s is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.", w.Namespace, w.Name)))
	}
	return out
}

// PodNamespaces are the namespaces whose every pod an analyzer judges,
// sorted: those of IST0103 (injectedNamespaces) and, with an injector
// ConfigMap, those of IST0158 (imageRevisions). `meshguard analyze
// --kubeconfig` lists every pod there, as istioctl reads every pod.
func PodNamespaces(in *Input) []string {
	out := injectedNamespaces(in)
	if len(in.InjectorValues) > 0 {
		for ns := range imageRevisions(in) {
			if !slices.Contains(out, ns) {
				out = append(out, ns)
			}
		}
		slices.Sort(out)
	}
	return out
}

// injectedNamespaces are the namespaces of in.Namespaces whose pods IST0103
// judges (namespaceInjection), sorted: not istio-system nor one the injector
// ignores, with an istio.io/rev label and no istio-injection label, or
// istio-injection=enabled and no istio.io/rev label (both labels are
// IST0123).
func injectedNamespaces(in *Input) []string {
	var out []string
	for _, ns := range slices.Sorted(maps.Keys(in.Namespaces)) {
		if namespaceLabellingOf(ns, in.Namespaces[ns]) == injected {
			out = append(out, ns)
		}
	}
	return out
}

// namespaceLabelling is what a namespace's injection labels are to Istio's
// injection analyzer (injection.go Analyzer.Analyze at 018148e).
type namespaceLabelling int

const (
	notJudged  namespaceLabelling = iota // istio-system, or a namespace the injector ignores
	unlabelled                           // neither label: IST0102 (IST0148 when enabled by default)
	bothLabels                           // istio-injection and istio.io/rev: IST0123
	injected                             // istio.io/rev, or istio-injection=enabled: IST0103 judges its pods
	optedOut                             // istio-injection of another value
)

// namespaceLabellingOf classifies namespace ns with labels nsLabels (nil: a
// Namespace without labels).
func namespaceLabellingOf(ns string, nsLabels map[string]string) namespaceLabelling {
	if ns == istioSystemNamespace || injector.IgnoredNamespaces[ns] {
		return notJudged
	}
	_, revision := nsLabels[label.IoIstioRev.Name]
	switch injection := nsLabels[injectionLabel]; {
	case injection == "" && !revision:
		return unlabelled
	case injection != "" && revision:
		return bothLabels
	case revision || injection == "enabled":
		return injected
	}
	return optedOut
}

// enableNamespacesByDefault is sidecarInjectorWebhook.enableNamespacesByDefault
// of the istio-sidecar-injector ConfigMap's values (false without it).
func (in *Input) enableNamespacesByDefault() bool {
	v := in.InjectorValues[injectorConfigMapName("")]
	return v != nil && v.SidecarInjectorWebhook.EnableNamespacesByDefault
}
