package analysis

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"istio.io/api/label"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/validation/crossref"
)

// InvalidWebhook is the code of Istio's webhook analyzer
// (pkg/config/analysis/analyzers/webhook/webhook.go Analyzer, istio/istio
// 00af2c5549d5 and a5f72884cab3, which agree for istioctl analyze: it runs
// the analyzer with SkipServiceCheck and SkipDefaultRevisionedWebhook
// false; level and text from pkg/config/analysis/msg/messages.gen.go
// NewInvalidWebhook, "%v").
const InvalidWebhook = "IST0139"

func init() {
	Types[InvalidWebhook] = MessageType{InvalidWebhook, "InvalidWebhook", Error}
}

// MutatingWebhookConfiguration is what the webhook analyzer reads of an
// admissionregistration.k8s.io/v1 MutatingWebhookConfiguration (cluster
// scoped): its name, labels and webhooks.
type MutatingWebhookConfiguration struct {
	Name   string
	Labels map[string]string
	// Annotations are read for galley.istio.io/analyze-suppress only
	// (suppress.go).
	Annotations map[string]string
	Webhooks    []MutatingWebhook
}

// MutatingWebhook is one webhook of a MutatingWebhookConfiguration: its
// name, selectors (nil when not written: the API server's default, the
// empty selector, matches everything) and the Service its clientConfig
// names (nil for a URL).
type MutatingWebhook struct {
	Name                              string
	NamespaceSelector, ObjectSelector *metav1.LabelSelector
	Service                           *crossref.Key
}

// selectors are w's selectors as the API server applies them: one not
// written matches everything, one that does not parse
// (metav1.LabelSelectorAsSelector) nothing (Istio: webhook.go and
// image-auto.go selectorMatches).
func (w MutatingWebhook) selectors() (namespace, object labels.Selector) {
	parse := func(s *metav1.LabelSelector) labels.Selector {
		if s == nil {
			return labels.Everything()
		}
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil {
			return labels.Nothing()
		}
		return sel
	}
	return parse(w.NamespaceSelector), parse(w.ObjectSelector)
}

// newMutatingWebhookConfiguration keeps what the analyzer reads of c.
func newMutatingWebhookConfiguration(c *admissionregistrationv1.MutatingWebhookConfiguration) MutatingWebhookConfiguration {
	out := MutatingWebhookConfiguration{Name: c.Name, Labels: c.Labels, Annotations: c.Annotations}
	for _, wh := range c.Webhooks {
		w := MutatingWebhook{Name: wh.Name, NamespaceSelector: wh.NamespaceSelector, ObjectSelector: wh.ObjectSelector}
		if s := wh.ClientConfig.Service; s != nil {
			w.Service = &crossref.Key{Namespace: s.Namespace, Name: s.Name}
		}
		out.Webhooks = append(out.Webhooks, w)
	}
	return out
}

// sidecarInjectLabel is the object label the permutations set (Istio:
// webhook.go getObjectLabels).
const sidecarInjectLabel = "sidecar.istio.io/inject"

// invalidWebhooks is Istio's webhook Analyzer.Analyze over
// in.MutatingWebhookConfigurations. The Istio configurations are those with
// a revision (their istio.io/rev label, or an istio.io/rev key of a
// webhook's namespaceSelector or objectSelector matchLabels, or the values
// of its matchExpressions on that key: extractRevisions) or a webhook whose
// name ends in "istio.io" (isIstioWebhook); the others are not read. Then:
//
//   - every namespace labelling ({}, istio-injection=enabled,
//     istio-injection=disabled, and each of those with istio.io/rev set to
//     each revision) is paired with every pod labelling ({},
//     sidecar.istio.io/inject=true, =false, and each of those with each
//     revision); where more than one webhook of those configurations selects
//     a pair (both selectors match; a selector that does not parse matches
//     nothing, selectorMatches), each of them is IST0139 "Webhook overlaps
//     with others: [config/webhook ...]. This may cause injection to occur
//     twice." naming the others (sorted; Istio's are in set order), once per
//     webhook and text (Istio reports each pair and istioctl keeps one of
//     the messages that print alike);
//
//   - each webhook whose clientConfig names a Service that is not in
//     in.Services is IST0139 "Injector refers to a control plane service
//     that does not exist: namespace/name." (a URL is not checked).
//
// The field is webhooks[i] for an overlap, webhooks[i].clientConfig.service
// for a missing Service. From a cluster the Services of every namespace a
// webhook names are listed (cmd/meshguard listMutatingWebhooks), as istioctl
// reads every namespace.
func invalidWebhooks(in *Input) []Message {
	type ref struct {
		config MutatingWebhookConfiguration
		index  int
	}
	var configs []MutatingWebhookConfiguration
	revisions := map[string]bool{}
	for _, c := range in.MutatingWebhookConfigurations {
		revs := webhookRevisions(c)
		if len(revs) == 0 && !slices.ContainsFunc(c.Webhooks, func(w MutatingWebhook) bool { return strings.HasSuffix(w.Name, "istio.io") }) {
			continue
		}
		configs = append(configs, c)
		for _, r := range revs {
			revisions[r] = true
		}
	}
	if len(configs) == 0 {
		return nil
	}
	// Each labelling without istio.io/rev, then with each revision (an empty
	// revision too: the key with an empty value).
	permutations := func(key string, values ...string) []labels.Set {
		var out []labels.Set
		base := func() []labels.Set {
			sets := []labels.Set{{}}
			for _, v := range values {
				sets = append(sets, labels.Set{key: v})
			}
			return sets
		}
		out = append(out, base()...)
		for _, rev := range slices.Sorted(maps.Keys(revisions)) {
			for _, s := range base() {
				s[label.IoIstioRev.Name] = rev
				out = append(out, s)
			}
		}
		return out
	}
	namespaceLabels := permutations(injectionLabel, "enabled", "disabled")
	objectLabels := permutations(sidecarInjectLabel, "true", "false")
	// Each webhook under its name "config/webhook"; two webhooks of one
	// name (which the API server refuses, files may hold) are one match,
	// reported at the first, as Istio's set of names and map of resources.
	type entry struct {
		name              string
		namespace, object labels.Selector
	}
	var entries []entry
	refs := map[string]ref{}
	for _, c := range configs {
		for i, w := range c.Webhooks {
			name := c.Name + "/" + w.Name
			if _, ok := refs[name]; !ok {
				refs[name] = ref{c, i}
			}
			namespace, object := w.selectors()
			entries = append(entries, entry{name, namespace, object})
		}
	}
	var out []Message
	seen := map[string]bool{}
	report := func(r ref, path *field.Path, text string) {
		key := r.config.Name + "\x00" + path.String() + "\x00" + text
		if seen[key] {
			return
		}
		seen[key] = true
		out = append(out, newMessage(Object{Kind: "MutatingWebhookConfiguration", Name: r.config.Name}, InvalidWebhook, path.String(), text))
	}
	for _, nl := range namespaceLabels {
		for _, ol := range objectLabels {
			set := map[string]bool{}
			for _, e := range entries {
				if e.namespace.Matches(nl) && e.object.Matches(ol) {
					set[e.name] = true
				}
			}
			matches := slices.Sorted(maps.Keys(set))
			if len(matches) < 2 {
				continue
			}
			for _, match := range matches {
				others := slices.DeleteFunc(slices.Clone(matches), func(n string) bool { return n == match })
				r := refs[match]
				report(r, field.NewPath("webhooks").Index(r.index),
					fmt.Sprintf("Webhook overlaps with others: %v. This may cause injection to occur twice.", others))
			}
		}
	}
	services := map[crossref.Key]bool{}
	for _, s := range in.Services {
		services[s] = true
	}
	for _, c := range configs {
		for i, w := range c.Webhooks {
			if w.Service == nil || services[*w.Service] {
				continue
			}
			name := w.Service.Name
			if w.Service.Namespace != "" {
				name = w.Service.Namespace + "/" + name
			}
			report(ref{c, i}, field.NewPath("webhooks").Index(i).Child("clientConfig", "service"),
				fmt.Sprintf("Injector refers to a control plane service that does not exist: %s.", name))
		}
	}
	return out
}

// webhookRevisions are the revisions c names (Istio: webhook.go
// extractRevisions): its istio.io/rev label (of any value, empty included),
// and the istio.io/rev matchLabels value and matchExpressions values of each
// webhook's namespaceSelector and objectSelector.
func webhookRevisions(c MutatingWebhookConfiguration) []string {
	revs := map[string]bool{}
	if r, ok := c.Labels[label.IoIstioRev.Name]; ok {
		revs[r] = true
	}
	for _, w := range c.Webhooks {
		for _, s := range []*metav1.LabelSelector{w.NamespaceSelector, w.ObjectSelector} {
			if s == nil {
				continue
			}
			if r, ok := s.MatchLabels[label.IoIstioRev.Name]; ok {
				revs[r] = true
			}
			for _, e := range s.MatchExpressions {
				if e.Key == label.IoIstioRev.Name {
					for _, v := range e.Values {
						revs[v] = true
					}
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(revs))
}
