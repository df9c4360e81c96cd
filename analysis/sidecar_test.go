package analysis

import (
	"slices"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

func sidecarObject(ns, name string, selector map[string]string) Object {
	spec := &networking.Sidecar{}
	if selector != nil {
		spec.WorkloadSelector = &networking.WorkloadSelector{Labels: selector}
	}
	return Object{Kind: "Sidecar", Namespace: ns, Name: name, Origin: name + ".yaml#0", Spec: spec}
}

// sidecarLines renders the IST0110/IST0111 messages of in as istioctl
// analyze prints them, in Analyze's order.
func sidecarLines(in Input) []string {
	var out []string
	for _, m := range Analyze(in) {
		if m.Code == ConflictingSidecarWorkloadSelectors || m.Code == MultipleSidecarsWithoutWorkloadSelectors {
			out = append(out, m.String()+" @"+m.Field)
		}
	}
	return out
}

// TestSidecarSelectors: the cases Istio's test data does not cover, with
// Istio's rule from pkg/config/analysis/analyzers/sidecar/selector.go
// SelectorAnalyzer.Analyze and util.NamespaceInAmbientMode.
func TestSidecarSelectors(t *testing.T) {
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	for _, tc := range []struct {
		name string
		in   Input
		want []string
	}{
		{
			// One message per Sidecar and pod: two pods selected by both
			// Sidecars give each Sidecar two messages; the output is
			// istioctl's (level, code, object).
			name: "two pods, two Sidecars",
			in: Input{
				Objects: []Object{sidecarObject("default", "b", app("r")), sidecarObject("default", "a", app("r"))},
				Workloads: []Workload{
					{Namespace: "default", Name: "r-1", Labels: map[string]string{"app": "r", "v": "1"}},
					{Namespace: "default", Name: "r-2", Labels: app("r")},
				},
			},
			want: []string{
				`Error [IST0110] (Sidecar default/a a.yaml#0) The Sidecars [a b] in namespace "default" select the same workload pod "r-1", which can lead to undefined behavior. @metadata.name`,
				`Error [IST0110] (Sidecar default/a a.yaml#0) The Sidecars [a b] in namespace "default" select the same workload pod "r-2", which can lead to undefined behavior. @metadata.name`,
				`Error [IST0110] (Sidecar default/b b.yaml#0) The Sidecars [a b] in namespace "default" select the same workload pod "r-1", which can lead to undefined behavior. @metadata.name`,
				`Error [IST0110] (Sidecar default/b b.yaml#0) The Sidecars [a b] in namespace "default" select the same workload pod "r-2", which can lead to undefined behavior. @metadata.name`,
			},
		},
		{
			// A workload given twice (a Pod and a Deployment of one name) is
			// one workload: one Sidecar selecting it is no conflict.
			name: "one Sidecar, workload twice",
			in: Input{
				Objects: []Object{sidecarObject("default", "a", app("r"))},
				Workloads: []Workload{
					{Namespace: "default", Name: "r", Labels: app("r")},
					{Namespace: "default", Name: "r", Labels: app("r")},
				},
			},
		},
		{
			// Only pods of the Sidecar's namespace count, and only
			// Sidecars of one namespace conflict.
			name: "other namespaces",
			in: Input{
				Objects: []Object{sidecarObject("a", "s", app("r")), sidecarObject("b", "s", app("r"))},
				Workloads: []Workload{
					{Namespace: "a", Name: "r", Labels: app("r")},
					{Namespace: "c", Name: "r", Labels: app("r")},
				},
			},
		},
		{
			// An empty selector (no labels) is no selector: not matched
			// against pods, counted for IST0111.
			name: "empty selectors",
			in: Input{
				Objects: []Object{
					sidecarObject("ns", "empty", map[string]string{}), sidecarObject("ns", "none", nil),
					sidecarObject("other", "only", nil),
				},
				Workloads: []Workload{{Namespace: "ns", Name: "p", Labels: app("r")}},
			},
			want: []string{
				`Error [IST0111] (Sidecar ns/empty empty.yaml#0) The Sidecars [empty none] in namespace "ns" have no workload selector, which can lead to undefined behavior. @spec.workloadSelector`,
				`Error [IST0111] (Sidecar ns/none none.yaml#0) The Sidecars [empty none] in namespace "ns" have no workload selector, which can lead to undefined behavior. @spec.workloadSelector`,
			},
		},
		{
			// A namespace in ambient mode has no sidecars: Istio reports
			// IneffectivePolicy (IST0167, ineffective.go), not IST0111. Sidecar
			// injection (istio-injection=enabled, istio.io/rev) wins over
			// the ambient label. Istio's order: "Kind/name/namespace".
			name: "ambient namespaces",
			in: Input{
				Objects: []Object{
					sidecarObject("amb", "s1", nil), sidecarObject("amb", "s2", nil),
					sidecarObject("inj", "s1", nil), sidecarObject("inj", "s2", nil),
					sidecarObject("rev", "s1", nil), sidecarObject("rev", "s2", nil),
				},
				Namespaces: map[string]map[string]string{
					"amb": {"istio.io/dataplane-mode": "ambient"},
					"inj": {"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"},
					"rev": {"istio.io/dataplane-mode": "ambient", "istio.io/rev": "canary"},
				},
			},
			want: []string{
				`Error [IST0111] (Sidecar inj/s1 s1.yaml#0) The Sidecars [s1 s2] in namespace "inj" have no workload selector, which can lead to undefined behavior. @spec.workloadSelector`,
				`Error [IST0111] (Sidecar rev/s1 s1.yaml#0) The Sidecars [s1 s2] in namespace "rev" have no workload selector, which can lead to undefined behavior. @spec.workloadSelector`,
				`Error [IST0111] (Sidecar inj/s2 s2.yaml#0) The Sidecars [s1 s2] in namespace "inj" have no workload selector, which can lead to undefined behavior. @spec.workloadSelector`,
				`Error [IST0111] (Sidecar rev/s2 s2.yaml#0) The Sidecars [s1 s2] in namespace "rev" have no workload selector, which can lead to undefined behavior. @spec.workloadSelector`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sidecarLines(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestSidecarSelectorsDeployment: from files, a Deployment's pod template is
// a workload as for IST0162 (AddKubernetesObject): two Sidecars selecting it
// are IST0110 naming the Deployment, where istioctl analyze on the same files
// (Pods only) says nothing and reports the conflict per pod once deployed.
func TestSidecarSelectorsDeployment(t *testing.T) {
	var in Input
	deploy := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "reviews"},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "reviews"}},
		}},
	}
	if known, err := in.AddKubernetesObject(deploy, "default"); !known || err != nil {
		t.Fatalf("Deployment not added: %v %v", known, err)
	}
	in.Objects = []Object{sidecarObject("default", "s1", map[string]string{"app": "reviews"}),
		sidecarObject("default", "s2", map[string]string{"app": "reviews"})}
	want := []string{
		`Error [IST0110] (Sidecar default/s1 s1.yaml#0) The Sidecars [s1 s2] in namespace "default" select the same workload pod "reviews", which can lead to undefined behavior. @metadata.name`,
		`Error [IST0110] (Sidecar default/s2 s2.yaml#0) The Sidecars [s1 s2] in namespace "default" select the same workload pod "reviews", which can lead to undefined behavior. @metadata.name`,
	}
	if got := sidecarLines(in); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSidecarSelectorMatchingNothing: IST0101 for a Sidecar selector that
// matches no workload only when the workload list is complete (a cluster's
// pods, in.AllWorkloads); from files the pods are usually not given.
func TestSidecarSelectorMatchingNothing(t *testing.T) {
	in := Input{
		Objects:   []Object{sidecarObject("default", "none", map[string]string{"app": "gone"}), sidecarObject("default", "one", map[string]string{"app": "r"})},
		Workloads: []Workload{{Namespace: "default", Name: "r-1", Labels: map[string]string{"app": "r"}}, {Namespace: "other", Name: "g-1", Labels: map[string]string{"app": "gone"}}},
	}
	notFound := func(in Input) []string {
		var out []string
		for _, m := range Analyze(in) {
			if m.Code == "IST0101" {
				out = append(out, m.String()+" @"+m.Field)
			}
		}
		return out
	}
	if got := notFound(in); len(got) != 0 {
		t.Errorf("from files: %q, want none", got)
	}
	in.AllWorkloads = true
	want := []string{`Error [IST0101] (Sidecar default/none none.yaml#0) Referenced selector not found: "app=gone" @spec.workloadSelector.labels`}
	if got := notFound(in); !slices.Equal(got, want) {
		t.Errorf("complete workload list:\ngot  %q\nwant %q", got, want)
	}
}
