package analysis

import (
	"fmt"
	"maps"
	"slices"

	"istio.io/api/label"

	"github.com/meshguard/meshguard/injector"
)

// Codes of the Namespace messages of Istio's injection analyzer
// (pkg/config/analysis/analyzers/injection/injection.go Analyzer.Analyze,
// istio/istio 018148e; texts and levels from
// pkg/config/analysis/msg/messages.gen.go).
const (
	NamespaceNotInjected             = "IST0102"
	NamespaceMultipleInjectionLabels = "IST0123"
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
}

// namespaceInjection is the Namespace part of Istio's injection.Analyzer over
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
// Not done here: IST0148 NamespaceInjectionEnabledByDefault (IST0102's
// variant when the istio-sidecar-injector ConfigMap of the namespace's
// revision sets sidecarInjectorWebhook.enableNamespacesByDefault; Input
// carries no ConfigMaps) and IST0103 PodMissingProxy (Workload carries no
// containers, annotations or hostNetwork).
func namespaceInjection(in *Input) []Message {
	var out []Message
	for _, ns := range slices.Sorted(maps.Keys(in.Namespaces)) {
		if ns == istioSystemNamespace || injector.IgnoredNamespaces[ns] {
			continue
		}
		nsLabels := in.Namespaces[ns] // nil: a Namespace without labels
		_, revision := nsLabels[label.IoIstioRev.Name]
		var code, text string
		switch injection := nsLabels[injectionLabel]; {
		case injection == "" && !revision:
			code = NamespaceNotInjected
			text = fmt.Sprintf("The namespace is not enabled for Istio injection. Run 'kubectl label namespace %s istio-injection=enabled' to enable it, or 'kubectl label namespace %s istio-injection=disabled' to explicitly mark it as not needing injection.", ns, ns)
		case injection != "" && revision:
			code = NamespaceMultipleInjectionLabels
			text = fmt.Sprintf("The namespace has both new and legacy injection labels. Run 'kubectl label namespace %s istio.io/rev-' or 'kubectl label namespace %s istio-injection-'", ns, ns)
		default:
			continue
		}
		out = append(out, newMessage(Object{Kind: "Namespace", Name: ns}, code, "metadata.name", text))
	}
	return out
}
