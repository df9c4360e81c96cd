package analysis

import (
	"slices"
	"testing"
)

// Edge cases of ineffectivePolicies beyond Istio's sidecarDefaultSelector row,
// each as Istio's sidecar.SelectorAnalyzer decides it (selector.go).
func TestIneffectivePolicies(t *testing.T) {
	ambientNS := map[string]string{"istio.io/dataplane-mode": "ambient"}
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	ambientPod := func(ns, name string, l map[string]string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: name, Labels: l,
			Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}}
	}
	tests := []struct {
		name       string
		objs       []Object
		workloads  []Workload
		namespaces map[string]map[string]string
		want       []string // "ns/name field"
	}{
		{name: "one message for a Sidecar selecting two ambient pods",
			objs:      []Object{sidecarObject("a", "s", app("x"))},
			workloads: []Workload{ambientPod("a", "p1", app("x")), ambientPod("a", "p2", app("x"))},
			want:      []string{"a/s spec.workloadSelector.labels"}},
		{name: "an ambient pod of another namespace, or a pod not in ambient mode, is no reason",
			objs: []Object{sidecarObject("a", "s", app("x"))},
			workloads: []Workload{ambientPod("b", "p1", app("x")), {Kind: "Pod", Namespace: "a", Name: "p2", Labels: app("x"),
				Annotations: map[string]string{"ambient.istio.io/redirection": "disabled"}}}},
		{name: "a selector not matching the ambient pod",
			objs: []Object{sidecarObject("a", "s", app("y"))}, workloads: []Workload{ambientPod("a", "p1", app("x"))}},
		{name: "selector-less and empty-labels Sidecars of an ambient namespace, alone or not",
			objs:       []Object{sidecarObject("a", "none", nil), sidecarObject("a", "empty", map[string]string{})},
			namespaces: map[string]map[string]string{"a": ambientNS},
			want:       []string{"a/empty metadata.namespace", "a/none metadata.namespace"}},
		{name: "sidecar injection labels win over the ambient one; an unknown namespace is not ambient",
			objs: []Object{sidecarObject("inj", "s", nil), sidecarObject("rev", "s", nil), sidecarObject("unknown", "s", nil)},
			namespaces: map[string]map[string]string{
				"inj": {"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"},
				"rev": {"istio.io/dataplane-mode": "ambient", "istio.io/rev": "canary"},
			}},
		{name: "a Sidecar with a selector in an ambient namespace needs an ambient pod",
			objs: []Object{sidecarObject("a", "s", app("x"))}, namespaces: map[string]map[string]string{"a": ambientNS},
			workloads: []Workload{{Kind: "Pod", Namespace: "a", Name: "p", Labels: app("x")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Objects: tt.objs, Workloads: tt.workloads, Namespaces: tt.namespaces}
			var got []string
			for _, m := range ineffectivePolicies(&in) {
				if m.Code != IneffectivePolicy || m.Level != Warning || m.Kind != "Sidecar" {
					t.Fatalf("message %v", m)
				}
				got = append(got, m.Namespace+"/"+m.Object+" "+m.Field)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
