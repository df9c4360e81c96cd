package analysis

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/validation/crossref"
)

// istioInjectorWebhooks is the MutatingWebhookConfiguration of a default
// Istio install (the four webhooks of Istio's
// manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml
// for revision "default": by namespace or object revision label, by
// istio-injection namespace label, by sidecar.istio.io/inject object label),
// under name, served by Service service.
func istioInjectorWebhooks(name, service string, labels string) string {
	return `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: ` + name + `
  labels: {` + labels + `}
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  clientConfig: {service: {name: ` + service + `, namespace: istio-system, path: /inject}}
  namespaceSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: In, values: [default]}
    - {key: istio-injection, operator: DoesNotExist}
  objectSelector:
    matchExpressions:
    - {key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}
- name: rev.object.sidecar-injector.istio.io
  clientConfig: {service: {name: ` + service + `, namespace: istio-system, path: /inject}}
  namespaceSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: DoesNotExist}
    - {key: istio-injection, operator: DoesNotExist}
  objectSelector:
    matchExpressions:
    - {key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}
    - {key: istio.io/rev, operator: In, values: [default]}
- name: namespace.sidecar-injector.istio.io
  clientConfig: {service: {name: ` + service + `, namespace: istio-system, path: /inject}}
  namespaceSelector:
    matchExpressions:
    - {key: istio-injection, operator: In, values: [enabled]}
  objectSelector:
    matchExpressions:
    - {key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}
- name: object.sidecar-injector.istio.io
  clientConfig: {service: {name: ` + service + `, namespace: istio-system, path: /inject}}
  namespaceSelector:
    matchExpressions:
    - {key: istio-injection, operator: DoesNotExist}
    - {key: istio.io/rev, operator: DoesNotExist}
  objectSelector:
    matchExpressions:
    - {key: sidecar.istio.io/inject, operator: In, values: ["true"]}
    - {key: istio.io/rev, operator: DoesNotExist}
`
}

const istiodService = "apiVersion: v1\nkind: Service\nmetadata: {name: istiod, namespace: istio-system}\n"

// TestInvalidWebhooks: Istio's webhook.Analyzer
// (pkg/config/analysis/analyzers/webhook/webhook.go at 00af2c5549d5) on
// inputs of our own: Istio's analyzers_test.go case "webook" reads
// testdata/webhook.yaml, which is not among the stored Istio files.
func TestInvalidWebhooks(t *testing.T) {
	const overlapText = "Webhook overlaps with others: %s. This may cause injection to occur twice."
	for _, tc := range []struct {
		name string
		yaml []string
		want []string // "config field text"
	}{
		{"default install", []string{istioInjectorWebhooks("istio-sidecar-injector", "istiod", ""), istiodService}, nil},
		{"missing service", []string{istioInjectorWebhooks("istio-sidecar-injector", "istiod-gone", "")}, []string{
			"istio-sidecar-injector webhooks[0].clientConfig.service Injector refers to a control plane service that does not exist: istio-system/istiod-gone.",
			"istio-sidecar-injector webhooks[1].clientConfig.service Injector refers to a control plane service that does not exist: istio-system/istiod-gone.",
			"istio-sidecar-injector webhooks[2].clientConfig.service Injector refers to a control plane service that does not exist: istio-system/istiod-gone.",
			"istio-sidecar-injector webhooks[3].clientConfig.service Injector refers to a control plane service that does not exist: istio-system/istiod-gone.",
		}},
		// galley.istio.io/analyze-suppress on the configuration suppresses
		// its messages, as on any object (Istio's filterMessages).
		{"suppressed", []string{strings.Replace(istioInjectorWebhooks("istio-sidecar-injector", "istiod-gone", ""),
			"  labels: {}", "  labels: {}\n  annotations: {galley.istio.io/analyze-suppress: IST0139}", 1)}, nil},
		// The same webhooks twice (a revision tag installed beside the
		// default revision's webhooks): each overlaps its copy.
		{"duplicate", []string{istioInjectorWebhooks("a", "istiod", ""), istioInjectorWebhooks("b", "istiod", "istio.io/rev: default"), istiodService}, []string{
			"a webhooks[0] " + strings.ReplaceAll(overlapText, "%s", "[b/rev.namespace.sidecar-injector.istio.io]"),
			"a webhooks[1] " + strings.ReplaceAll(overlapText, "%s", "[b/rev.object.sidecar-injector.istio.io]"),
			"a webhooks[2] " + strings.ReplaceAll(overlapText, "%s", "[b/namespace.sidecar-injector.istio.io]"),
			"a webhooks[3] " + strings.ReplaceAll(overlapText, "%s", "[b/object.sidecar-injector.istio.io]"),
			"b webhooks[0] " + strings.ReplaceAll(overlapText, "%s", "[a/rev.namespace.sidecar-injector.istio.io]"),
			"b webhooks[1] " + strings.ReplaceAll(overlapText, "%s", "[a/rev.object.sidecar-injector.istio.io]"),
			"b webhooks[2] " + strings.ReplaceAll(overlapText, "%s", "[a/namespace.sidecar-injector.istio.io]"),
			"b webhooks[3] " + strings.ReplaceAll(overlapText, "%s", "[a/object.sidecar-injector.istio.io]"),
		}},
		// No selectors: both match every permutation; the configuration is
		// Istio's by its webhook names.
		{"no selectors", []string{`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: wide}
webhooks:
- {name: one.istio.io, clientConfig: {url: "https://injector.example.com/inject"}}
- {name: two.istio.io, clientConfig: {url: "https://injector.example.com/inject"}}
`}, []string{
			"wide webhooks[0] " + strings.ReplaceAll(overlapText, "%s", "[wide/two.istio.io]"),
			"wide webhooks[1] " + strings.ReplaceAll(overlapText, "%s", "[wide/one.istio.io]"),
		}},
		// Not Istio's (no revision, no webhook name ending in istio.io):
		// not read, neither its overlaps nor its Service.
		{"not istio", []string{`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: other}
webhooks:
- {name: one.example.com, clientConfig: {service: {name: gone, namespace: x}}}
- {name: two.example.com, clientConfig: {service: {name: gone, namespace: x}}}
`}, nil},
		// A revision only in an objectSelector's matchLabels makes the
		// configuration Istio's; a selector that does not parse (operator
		// Bogus) matches nothing, so only the first webhook is matched.
		{"revision and bad selector", []string{`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: canary}
webhooks:
- name: a.example.com
  clientConfig: {url: "https://a"}
  objectSelector: {matchLabels: {istio.io/rev: canary}}
- name: b.example.com
  clientConfig: {url: "https://b"}
  objectSelector: {matchExpressions: [{key: x, operator: Bogus}]}
`}, nil},
		// Two webhooks selecting pods labelled with the canary revision
		// overlap there only; the revision comes from a matchExpressions.
		{"revision overlap", []string{`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: canary}
webhooks:
- name: a.example.com
  clientConfig: {url: "https://a"}
  objectSelector: {matchExpressions: [{key: istio.io/rev, operator: In, values: [canary]}]}
- name: b.example.com
  clientConfig: {url: "https://b"}
  objectSelector: {matchExpressions: [{key: istio.io/rev, operator: Exists}]}
`}, []string{
			"canary webhooks[0] " + strings.ReplaceAll(overlapText, "%s", "[canary/b.example.com]"),
			"canary webhooks[1] " + strings.ReplaceAll(overlapText, "%s", "[canary/a.example.com]"),
		}},
	} {
		var in Input
		for _, y := range tc.yaml {
			docs, err := manifest.Split([]byte(y))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range docs {
				if known, err := in.AddKubernetesObject(d.Object, "default"); !known || err != nil {
					t.Fatalf("%s: known %v, %v", tc.name, known, err)
				}
			}
		}
		checkWebhookMessages(t, tc.name, in, tc.want)
	}
}

// TestInvalidWebhooksDuplicateName: two webhooks of one name in one
// configuration (the API server refuses it; a file may hold it) are one
// match, as Istio keys its matches by "config/webhook": they do not overlap
// each other, and either one selecting a labelling counts.
func TestInvalidWebhooksDuplicateName(t *testing.T) {
	sel := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	in := Input{MutatingWebhookConfigurations: []MutatingWebhookConfiguration{
		{Name: "a", Webhooks: []MutatingWebhook{{Name: "x.istio.io", NamespaceSelector: sel("istio-injection", "enabled")}, {Name: "x.istio.io", ObjectSelector: sel("sidecar.istio.io/inject", "true")}}},
	}}
	if got := invalidWebhooks(&in); len(got) != 0 {
		t.Fatalf("one name: got %v", got)
	}
	in.MutatingWebhookConfigurations = append(in.MutatingWebhookConfigurations, MutatingWebhookConfiguration{Name: "b",
		Webhooks: []MutatingWebhook{{Name: "y.istio.io", ObjectSelector: sel("sidecar.istio.io/inject", "true")}}})
	var got []string
	for _, m := range invalidWebhooks(&in) {
		got = append(got, m.Object+" "+m.Field+" "+m.Message)
	}
	want := []string{
		"a webhooks[0] Webhook overlaps with others: [b/y.istio.io]. This may cause injection to occur twice.",
		"b webhooks[0] Webhook overlaps with others: [a/x.istio.io]. This may cause injection to occur twice.",
	}
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestInvalidWebhooksRevisionBound: past maxWebhookRevisions distinct
// revisions the overlap check (Istio's (3(R+1))^2 labellings per webhook) is
// refused with one IST0139 at the field naming the first revision past the
// bound; the missing Service check is still done. At the bound the check
// runs (the two webhooks below overlap on every labelling with a revision).
func TestInvalidWebhooksRevisionBound(t *testing.T) {
	revs := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("rev-%d", i))
		}
		return out
	}
	config := func(name string, labels map[string]string, values []string) MutatingWebhookConfiguration {
		return MutatingWebhookConfiguration{Name: name, Labels: labels, Webhooks: []MutatingWebhook{
			{Name: "rev.namespace.sidecar-injector.istio.io", Service: &crossref.Key{Namespace: "istio-system", Name: "istiod"},
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpIn, Values: values}}}},
			{Name: "rev.object.sidecar-injector.istio.io", Service: &crossref.Key{Namespace: "istio-system", Name: "istiod-gone"},
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpExists}}}},
		}}
	}
	const refused = "Webhook overlaps not checked: the Istio webhook configurations name more than 100 revisions, meshguard's bound (each webhook is matched against every namespace and pod labelling of each revision)."
	const missing = "webhooks[1].clientConfig.service Injector refers to a control plane service that does not exist: istio-system/istiod-gone."
	overlap := func(config, field, other string) string {
		return config + " " + field + " Webhook overlaps with others: [" + other + "]. This may cause injection to occur twice."
	}
	for _, tc := range []struct {
		name    string
		configs []MutatingWebhookConfiguration
		want    []string // "config field text"
	}{
		{"at the bound", []MutatingWebhookConfiguration{config("a", nil, revs(0, maxWebhookRevisions))}, []string{
			overlap("a", "webhooks[0]", "a/rev.object.sidecar-injector.istio.io"),
			overlap("a", "webhooks[1]", "a/rev.namespace.sidecar-injector.istio.io"),
			"a " + missing,
		}},
		{"one past", []MutatingWebhookConfiguration{config("a", nil, revs(0, maxWebhookRevisions+1))}, []string{
			"a " + missing,
			"a webhooks[0].namespaceSelector.matchExpressions[0].values[100] " + refused,
		}},
		// 1,000 values (Istio: seconds of matching) are refused as quickly.
		{"a thousand", []MutatingWebhookConfiguration{config("a", nil, revs(0, 1000))}, []string{
			"a " + missing,
			"a webhooks[0].namespaceSelector.matchExpressions[0].values[100] " + refused,
		}},
		// The label counts as a revision, first; the 101st is values[99].
		{"label", []MutatingWebhookConfiguration{config("a", map[string]string{"istio.io/rev": "canary"}, revs(0, maxWebhookRevisions))}, []string{
			"a " + missing,
			"a webhooks[0].namespaceSelector.matchExpressions[0].values[99] " + refused,
		}},
		// Revisions are counted across configurations, each once: b's
		// rev-0..rev-59 are a's; its 101st distinct is rev-100.
		{"across configurations", []MutatingWebhookConfiguration{config("a", nil, revs(0, 60)), config("b", nil, revs(0, 101))}, []string{
			"a " + missing,
			"b " + missing,
			"b webhooks[0].namespaceSelector.matchExpressions[0].values[100] " + refused,
		}},
	} {
		in := Input{MutatingWebhookConfigurations: tc.configs, Services: []crossref.Key{{Namespace: "istio-system", Name: "istiod"}}}
		checkWebhookMessages(t, tc.name, in, tc.want)
	}
}

// checkWebhookMessages: Analyze(in) gives exactly the IST0139 Errors want
// ("object field message", any order) about MutatingWebhookConfigurations.
func checkWebhookMessages(t *testing.T, name string, in Input, want []string) {
	t.Helper()
	var got []string
	for _, m := range Analyze(in) {
		if m.Code != InvalidWebhook || m.Kind != "MutatingWebhookConfiguration" || m.Namespace != "" || m.Level != Error {
			t.Errorf("%s: unexpected message %+v", name, m)
			continue
		}
		got = append(got, m.Object+" "+m.Field+" "+m.Message)
	}
	slices.Sort(got)
	if want := sorted(want...); !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %q\nwant %q", name, got, want)
	}
}
