package analysis

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Codes of Istio's `image: auto` analyzer
// (pkg/config/analysis/analyzers/injection/image-auto.go ImageAutoAnalyzer,
// istio/istio 0a617ca985f9, the same rule as at 9c91a535ff49; levels and
// text from pkg/config/analysis/msg/messages.gen.go
// NewImageAutoWithoutInjectionWarning, NewImageAutoWithoutInjectionError).
const (
	ImageAutoWithoutInjectionWarning = "IST0146"
	ImageAutoWithoutInjectionError   = "IST0147"
)

// manualInjectionImage is the proxy image a gateway or pod template writes
// for the injector to fill in (Istio: image-auto.go manualInjectionImage).
const manualInjectionImage = "auto"

func init() {
	Types[ImageAutoWithoutInjectionWarning] = MessageType{ImageAutoWithoutInjectionWarning, "ImageAutoWithoutInjectionWarning", Warning}
	Types[ImageAutoWithoutInjectionError] = MessageType{ImageAutoWithoutInjectionError, "ImageAutoWithoutInjectionError", Error}
}

// imageAutoWithoutInjection is Istio's ImageAutoAnalyzer.Analyze over
// in.Workloads. A workload has `image: auto` when one of its containers
// (not init containers) is named istio-proxy with the image "auto"
// (hasAutoImage). Then:
//
//   - a Pod is IST0147 (Error), whatever the webhooks: a running pod still
//     holding `image: auto` was not injected (Istio reports every such Pod);
//
//   - a Deployment is IST0146 (Warning) unless an Istio injection webhook
//     (a webhook, of any MutatingWebhookConfiguration, whose name ends in
//     "istio.io") selects its pod template: its namespaceSelector matches
//     the labels of the Namespace of that name in in.Namespaces (none when
//     the input has no such Namespace) and its objectSelector the
//     template's labels; a selector not written matches everything, one
//     that does not parse (metav1.LabelSelectorAsSelector) matches nothing
//     (Istio: matchesWebhooks, selectorMatches).
//
// The text is Istio's, "<Kind> <name> contains `image: auto` but does not
// match any Istio injection webhook selectors." (the Pod's too); the field is
// the image of the first such container. From a cluster, only the pods and
// Deployments `meshguard analyze --kubeconfig` lists are judged.
func imageAutoWithoutInjection(in *Input) []Message {
	type webhook struct{ namespace, object labels.Selector }
	var webhooks []webhook
	for _, c := range in.MutatingWebhookConfigurations {
		for _, w := range c.Webhooks {
			if strings.HasSuffix(w.Name, "istio.io") {
				namespace, object := w.selectors()
				webhooks = append(webhooks, webhook{namespace, object})
			}
		}
	}
	var out []Message
	for _, w := range in.Workloads {
		i := autoImageContainer(w.Containers)
		if i < 0 {
			continue
		}
		o := Object{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
		text := fmt.Sprintf("%s %s contains `image: auto` but does not match any Istio injection webhook selectors.", w.Kind, w.Name)
		switch w.Kind {
		case "Pod":
			out = append(out, newMessage(o, ImageAutoWithoutInjectionError,
				field.NewPath("spec", "containers").Index(i).Child("image").String(), text))
		case "Deployment":
			nsLabels := labels.Set(in.Namespaces[w.Namespace])
			matched := false
			for _, wh := range webhooks {
				if wh.namespace.Matches(nsLabels) && wh.object.Matches(labels.Set(w.Labels)) {
					matched = true
					break
				}
			}
			if !matched {
				out = append(out, newMessage(o, ImageAutoWithoutInjectionWarning,
					field.NewPath("spec", "template", "spec", "containers").Index(i).Child("image").String(), text))
			}
		}
	}
	return out
}

// autoImageContainer is the index of the first container named istio-proxy
// whose image is "auto", or -1 (Istio: image-auto.go hasAutoImage).
func autoImageContainer(cs []Container) int {
	for i, c := range cs {
		if c.Name == istioProxyContainer && c.Image == manualInjectionImage {
			return i
		}
	}
	return -1
}
