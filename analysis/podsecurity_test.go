package analysis

import (
	"slices"
	"testing"
)

// TestApplicationUIDEdges: the cases of Istio's ApplicationUIDAnalyzer
// (pkg/config/analysis/analyzers/deployment/pod.go at e9503ddd5df0) its test
// files miss: the istio-proxy and istio-operator containers and init
// containers are not judged, another UID is not reported, the control plane
// (the object's own labels: "istio" of any value, or release=istio; for a
// Deployment its labels, not its template's) is skipped.
func TestApplicationUIDEdges(t *testing.T) {
	uid := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name string
		w    Workload
		want []string
	}{
		{"proxy container", Workload{Kind: "Pod", Containers: []Container{{Name: "istio-proxy", RunAsUser: uid(1337)}}}, nil},
		{"operator container", Workload{Kind: "Pod", Containers: []Container{{Name: "istio-operator", RunAsUser: uid(1337)}}}, nil},
		{"init container", Workload{Kind: "Pod", InitContainers: []Container{{Name: "init", RunAsUser: uid(1337)}}}, nil},
		{"other uid", Workload{Kind: "Pod", RunAsUser: uid(1338), Containers: []Container{{Name: "app", RunAsUser: uid(0)}}}, nil},
		{"second container", Workload{Kind: "Pod", Containers: []Container{{Name: "istio-proxy", RunAsUser: uid(1337)}, {Name: "app", RunAsUser: uid(1337)}}},
			[]string{"Pod ns/w spec.containers[1].securityContext.runAsUser"}},
		{"control plane pod", Workload{Kind: "Pod", Labels: map[string]string{"istio": ""}, RunAsUser: uid(1337)}, nil},
		{"release istio pod", Workload{Kind: "Pod", Labels: map[string]string{"release": "istio"}, RunAsUser: uid(1337)}, nil},
		{"release other pod", Workload{Kind: "Pod", Labels: map[string]string{"release": "other"}, RunAsUser: uid(1337)},
			[]string{"Pod ns/w spec.securityContext.runAsUser"}},
		{"control plane deployment", Workload{Kind: "Deployment", DeploymentLabels: map[string]string{"istio": "pilot"}, RunAsUser: uid(1337)}, nil},
		// A Deployment's template labels are not its own (Istio reads
		// resource.Metadata.Labels, the Deployment's).
		{"template labelled istio", Workload{Kind: "Deployment", Labels: map[string]string{"istio": "pilot"}, RunAsUser: uid(1337)},
			[]string{"Deployment ns/w spec.template.spec.securityContext.runAsUser"}},
	} {
		tc.w.Namespace, tc.w.Name = "ns", "w"
		var got []string
		for _, m := range applicationUIDs(&Input{Workloads: []Workload{tc.w}}) {
			got = append(got, m.Kind+" "+m.Namespace+"/"+m.Object+" "+m.Field)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
