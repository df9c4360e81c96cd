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

// maxWebhookRevisions bounds the distinct revisions the Istio webhook
// configurations may name together for the overlap check: Istio matches
// every webhook against each of (3(R+1))^2 namespace and pod labellings, and
// an istio.io/rev matchExpressions of R values is a few bytes per value, so
// 1,000 values in 13 KB of YAML cost seconds. A real mesh runs a few
// revisions and tags; past the bound the check is refused (one IST0139 Error
// at the field naming the revision past it, the missing Service check still
// done) rather than run unbounded or skipped silently.
const maxWebhookRevisions = 100

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
// for a missing Service. When the configurations name more than
// maxWebhookRevisions revisions together, the overlaps are not checked: one
// IST0139 (meshguard's text: "Webhook overlaps not checked: ...") at the
// field naming the first revision past the bound, configurations in input
// order (meshguard's deliberate difference; Istio checks them all). From a
// cluster every namespace's Services are listed (cmd/meshguard listCluster,
// also under -n), as istioctl reads every namespace.
func invalidWebhooks(in *Input) []Message {
	type ref struct {
		config MutatingWebhookConfiguration
		index  int
	}
	var configs []MutatingWebhookConfiguration
	revisions := map[string]bool{}
	var tooMany *Message // the refusal of the overlap check, at the revision past maxWebhookRevisions
	for _, c := range in.MutatingWebhookConfigurations {
		revs := webhookRevisions(c)
		if len(revs) == 0 && !slices.ContainsFunc(c.Webhooks, func(w MutatingWebhook) bool { return strings.HasSuffix(w.Name, "istio.io") }) {
			continue
		}
		configs = append(configs, c)
		for _, r := range revs {
			if !revisions[r.value] && len(revisions) == maxWebhookRevisions && tooMany == nil {
				m := newMessage(Object{Kind: "MutatingWebhookConfiguration", Name: c.Name}, InvalidWebhook, r.path.String(),
					fmt.Sprintf("Webhook overlaps not checked: the Istio webhook configurations name more than %d revisions, meshguard's bound (each webhook is matched against every namespace and pod labelling of each revision).",
						maxWebhookRevisions))
				tooMany = &m
			}
			revisions[r.value] = true
		}
	}
	if len(configs) == 0 {
		return nil
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
	if tooMany != nil {
		out = append(out, *tooMany)
	} else {
		// Each labelling without istio.io/rev, then with each revision (an
		// empty revision too: the key with an empty value).
		permutations := func(key string, values ...string) []labels.Set {
			base := func() []labels.Set {
				sets := []labels.Set{{}}
				for _, v := range values {
					sets = append(sets, labels.Set{key: v})
				}
				return sets
			}
			all := base()
			for _, rev := range slices.Sorted(maps.Keys(revisions)) {
				for _, s := range base() {
					s[label.IoIstioRev.Name] = rev
					all = append(all, s)
				}
			}
			return all
		}
		namespaceLabels := permutations(injectionLabel, "enabled", "disabled")
		objectLabels := permutations(sidecarInjectLabel, "true", "false")
		// Each webhook under its name "config/webhook", sorted by name; two
		// webhooks of one name (which the API server refuses, files may
		// hold) are one match, reported at the first, as Istio's set of
		// names and map of resources. Each selector is matched once against
		// each labelling (namespaces[l], objects[l]).
		type entry struct {
			name                string
			namespaces, objects []bool
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
				e := entry{name, make([]bool, len(namespaceLabels)), make([]bool, len(objectLabels))}
				for l, set := range namespaceLabels {
					e.namespaces[l] = namespace.Matches(set)
				}
				for l, set := range objectLabels {
					e.objects[l] = object.Matches(set)
				}
				entries = append(entries, e)
			}
		}
		slices.SortStableFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
		reported := map[string]bool{} // the sets of matches already reported
		for n := range namespaceLabels {
			for o := range objectLabels {
				var matches []string // sorted, each name once
				for _, e := range entries {
					if e.namespaces[n] && e.objects[o] && (len(matches) == 0 || matches[len(matches)-1] != e.name) {
						matches = append(matches, e.name)
					}
				}
				if len(matches) < 2 {
					continue
				}
				if key := strings.Join(matches, "\x00"); reported[key] {
					continue
				} else {
					reported[key] = true
				}
				for _, match := range matches {
					others := slices.DeleteFunc(slices.Clone(matches), func(n string) bool { return n == match })
					r := refs[match]
					report(r, field.NewPath("webhooks").Index(r.index),
						fmt.Sprintf("Webhook overlaps with others: %v. This may cause injection to occur twice.", others))
				}
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

// revisionAt is one revision a MutatingWebhookConfiguration names and the
// field naming it.
type revisionAt struct {
	value string
	path  *field.Path
}

// webhookRevisions are the revisions c names (Istio: webhook.go
// extractRevisions), each once where first named: its istio.io/rev label
// (of any value, empty included), and the istio.io/rev matchLabels value
// and matchExpressions values of each webhook's namespaceSelector and
// objectSelector.
func webhookRevisions(c MutatingWebhookConfiguration) []revisionAt {
	var out []revisionAt
	seen := map[string]bool{}
	add := func(r string, path *field.Path) {
		if !seen[r] {
			seen[r] = true
			out = append(out, revisionAt{r, path})
		}
	}
	if r, ok := c.Labels[label.IoIstioRev.Name]; ok {
		add(r, field.NewPath("metadata", "labels").Key(label.IoIstioRev.Name))
	}
	for i, w := range c.Webhooks {
		for _, s := range []struct {
			name string
			sel  *metav1.LabelSelector
		}{{"namespaceSelector", w.NamespaceSelector}, {"objectSelector", w.ObjectSelector}} {
			if s.sel == nil {
				continue
			}
			path := field.NewPath("webhooks").Index(i).Child(s.name)
			if r, ok := s.sel.MatchLabels[label.IoIstioRev.Name]; ok {
				add(r, path.Child("matchLabels").Key(label.IoIstioRev.Name))
			}
			for j, e := range s.sel.MatchExpressions {
				if e.Key == label.IoIstioRev.Name {
					for k, v := range e.Values {
						add(v, path.Child("matchExpressions").Index(j).Child("values").Index(k))
					}
				}
			}
		}
	}
	return out
}
