package analysis

import (
	"slices"
	"testing"

	"github.com/meshguard/meshguard/validation/crossref"
)

// TestNamespaceInjection: the Namespace rules of Istio's injection.Analyzer
// (pkg/config/analysis/analyzers/injection/injection.go Analyzer.Analyze,
// istio/istio 018148e) on labels its test data does not cover.
func TestNamespaceInjection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string // the code, "" for none
	}{
		{"no labels (nil, as the audit lists it)", nil, NamespaceNotInjected},
		{"no labels", map[string]string{}, NamespaceNotInjected},
		{"other labels only", map[string]string{"team": "shop"}, NamespaceNotInjected},
		// Istio reads the label's value: an empty one is no label.
		{"istio-injection empty", map[string]string{"istio-injection": ""}, NamespaceNotInjected},
		{"istio-injection enabled", map[string]string{"istio-injection": "enabled"}, ""},
		// Any other value: deliberately not injected.
		{"istio-injection disabled", map[string]string{"istio-injection": "disabled"}, ""},
		{"istio-injection other value", map[string]string{"istio-injection": "Enabled"}, ""},
		// istio.io/rev counts by its presence, an empty value included.
		{"revision", map[string]string{"istio.io/rev": "canary"}, ""},
		{"revision empty", map[string]string{"istio.io/rev": ""}, ""},
		{"revision empty and istio-injection empty", map[string]string{"istio.io/rev": "", "istio-injection": ""}, ""},
		{"both labels", map[string]string{"istio.io/rev": "default", "istio-injection": "enabled"}, NamespaceMultipleInjectionLabels},
		{"both labels, injection disabled", map[string]string{"istio.io/rev": "canary", "istio-injection": "disabled"}, NamespaceMultipleInjectionLabels},
		{"both labels, revision empty", map[string]string{"istio.io/rev": "", "istio-injection": "enabled"}, NamespaceMultipleInjectionLabels},
		// The analyzer of istio/istio 018148e has no ambient rule.
		{"ambient", map[string]string{"istio.io/dataplane-mode": "ambient"}, NamespaceNotInjected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := Analyze(Input{Namespaces: map[string]map[string]string{"shop": tc.labels}})
			var got []string
			for _, m := range msgs {
				got = append(got, m.Code)
				if m.Kind != "Namespace" || m.Namespace != "" || m.Object != "shop" || m.Field != "metadata.name" ||
					m.Level != Types[m.Code].Level || m.Name != Types[m.Code].Name {
					t.Errorf("message %+v", m)
				}
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("labels %v: got %q, want %q", tc.labels, got, want)
			}
		})
	}
}

// TestNamespaceInjectionSkipped: Istio skips istio-system (by name) and its
// system namespaces (util.IsSystemNamespace: the namespaces the injector
// never injects), whatever their labels; a namespace only objects name (no
// Namespace in the input) gets no message.
func TestNamespaceInjectionSkipped(t *testing.T) {
	both := map[string]string{"istio.io/rev": "default", "istio-injection": "enabled"}
	in := Input{Namespaces: map[string]map[string]string{
		"istio-system": nil, "kube-system": nil, "kube-public": {}, "kube-node-lease": both, "local-path-storage": nil,
	}}
	in.Services = append(in.Services, crossref.Key{Namespace: "shop", Name: "reviews"})
	in.Workloads = append(in.Workloads, Workload{Namespace: "shop", Name: "reviews", Labels: map[string]string{"app": "reviews"}})
	if msgs := Analyze(in); len(msgs) != 0 {
		t.Errorf("got %v, want none", msgs)
	}
	// A control plane namespace of another name is not skipped (Istio compares
	// with the constant istio-system).
	msgs := Analyze(Input{Namespaces: map[string]map[string]string{"istio-control": nil}})
	if len(msgs) != 1 || msgs[0].Code != NamespaceNotInjected {
		t.Errorf("istio-control: got %v, want IST0102", msgs)
	}
}

// TestNamespaceInjectionOrder: the messages are in istioctl's order (Sort):
// the Warning first, then the Info messages by namespace name, each as
// istioctl prints a cluster-scoped object ("Namespace name").
func TestNamespaceInjectionOrder(t *testing.T) {
	msgs := Analyze(Input{Namespaces: map[string]map[string]string{
		"zeta": nil, "alpha": {}, "mixed": {"istio.io/rev": "canary", "istio-injection": "enabled"}, "on": {"istio-injection": "enabled"},
	}})
	var got []string
	for _, m := range msgs {
		got = append(got, m.String())
	}
	want := []string{
		"Warning [IST0123] (Namespace mixed) The namespace has both new and legacy injection labels. Run 'kubectl label namespace mixed istio.io/rev-' or 'kubectl label namespace mixed istio-injection-'",
		"Info [IST0102] (Namespace alpha) The namespace is not enabled for Istio injection. Run 'kubectl label namespace alpha istio-injection=enabled' to enable it, or 'kubectl label namespace alpha istio-injection=disabled' to explicitly mark it as not needing injection.",
		"Info [IST0102] (Namespace zeta) The namespace is not enabled for Istio injection. Run 'kubectl label namespace zeta istio-injection=enabled' to enable it, or 'kubectl label namespace zeta istio-injection=disabled' to explicitly mark it as not needing injection.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
