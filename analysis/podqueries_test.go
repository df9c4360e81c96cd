package analysis

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	telemetry "istio.io/api/telemetry/v1alpha1"
	apitype "istio.io/api/type/v1beta1"
)

func TestPodQueries(t *testing.T) {
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	gateway := func(ns, name string, sel map[string]string) Object {
		return Object{Kind: "Gateway", Namespace: ns, Name: name, Spec: &networking.Gateway{Selector: sel}}
	}
	tel := func(ns, name string, sel map[string]string) Object {
		spec := &telemetry.Telemetry{}
		if sel != nil {
			spec.Selector = &apitype.WorkloadSelector{MatchLabels: sel}
		}
		return Object{Kind: "Telemetry", Namespace: ns, Name: name, Spec: spec}
	}
	tests := []struct {
		name string
		objs []Object
		mesh *meshv1alpha1.MeshConfig
		want []PodQuery
	}{
		{name: "none", objs: []Object{{Kind: "VirtualService", Namespace: "a", Name: "v", Spec: &networking.VirtualService{}}}, want: []PodQuery{}},
		{name: "gateway selects in every namespace; empty selects every pod",
			objs: []Object{gateway("a", "g", map[string]string{"istio": "ingressgateway"}), gateway("b", "all", nil)},
			want: []PodQuery{{Selector: ""}, {Selector: "istio=ingressgateway"}}},
		{name: "sidecar and telemetry in their namespace; without labels none",
			objs: []Object{sidecarObject("a", "s", app("x")), sidecarObject("a", "none", nil), sidecarObject("b", "empty", map[string]string{}),
				tel("b", "t", app("x")), tel("b", "none", nil), tel("c", "empty", map[string]string{})},
			want: []PodQuery{{Namespace: "a", Selector: "app=x"}, {Namespace: "b", Selector: "app=x"}}},
		{name: "one query for equal selectors of one namespace",
			objs: []Object{sidecarObject("a", "s", app("x")), tel("a", "t", app("x")), authzObject("a", "p", app("x"), nil, nil)},
			want: []PodQuery{{Namespace: "a", Selector: "app=x"}}},
		{name: "a gateway's query stays a gateway's whichever comes first",
			objs: []Object{authzObject(DefaultRootNamespace, "p", map[string]string{"istio": "ingressgateway"}, nil, nil),
				gateway("a", "g", map[string]string{"istio": "ingressgateway"})},
			want: []PodQuery{{Selector: "istio=ingressgateway"}}},
		{name: "authorization policies: own namespace, root in all, without labels one pod",
			objs: []Object{authzObject("a", "sel", app("x"), nil, nil), authzObject("a", "none", nil, nil, nil),
				authzObject("b", "empty", map[string]string{}, nil, nil),
				authzObject(DefaultRootNamespace, "sel", app("y"), nil, nil),
				authzObject(DefaultRootNamespace, "empty", map[string]string{}, nil, nil),
				authzObject(DefaultRootNamespace, "none", nil, nil, nil)},
			want: []PodQuery{{One: true}, {Selector: "app=y"}, {Namespace: "a", One: true}, {Namespace: "a", Selector: "app=x"}, {Namespace: "b", One: true}}},
		{name: "the mesh config's root namespace",
			objs: []Object{authzObject("mesh-root", "all", app("y"), nil, nil), authzObject(DefaultRootNamespace, "own", app("x"), nil, nil),
				authzObject("mesh-root", "none", nil, nil, nil)},
			mesh: &meshv1alpha1.MeshConfig{RootNamespace: "mesh-root"},
			want: []PodQuery{{Selector: "app=y"}, {Namespace: DefaultRootNamespace, Selector: "app=x"}}},
		{name: "several labels in selector order",
			objs: []Object{sidecarObject("a", "s", map[string]string{"version": "v1", "app": "x"})},
			want: []PodQuery{{Namespace: "a", Selector: "app=x,version=v1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, PodQueries(&Input{Objects: tt.objs, Mesh: tt.mesh})); diff != "" {
				t.Errorf("PodQueries (-want +got):\n%s", diff)
			}
		})
	}
}

// selectedBy matches as labels.SelectorFromSet (an empty selector matches
// every workload), skips Deployments read from a cluster, keeps input order,
// and answers a selector written as another map of equal content the same.
func TestSelectedBy(t *testing.T) {
	w := func(name string, stored bool, l map[string]string) Workload {
		return Workload{Kind: "Pod", Namespace: "ns", Name: name, Labels: l, Stored: stored}
	}
	in := &Input{Workloads: []Workload{
		w("b", false, map[string]string{"app": "gw", "v": "1"}),
		w("stored", true, map[string]string{"app": "gw"}),
		w("a", false, map[string]string{"app": "gw"}),
		w("other", false, map[string]string{"app": "web"}),
	}}
	names := func(ws []Workload) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.Name)
		}
		return out
	}
	for _, tc := range []struct {
		sel  map[string]string
		want []string
	}{
		{map[string]string{"app": "gw"}, []string{"b", "a"}},
		{map[string]string{"app": "gw", "v": "1"}, []string{"b"}},
		{map[string]string{"app": "none"}, nil},
		{nil, []string{"b", "a", "other"}},
		{map[string]string{}, []string{"b", "a", "other"}},
		{map[string]string{"app": "gw"}, []string{"b", "a"}}, // memoized
	} {
		if got := names(in.selectedBy(tc.sel)); !slices.Equal(got, tc.want) {
			t.Errorf("selectedBy(%v) = %v, want %v", tc.sel, got, tc.want)
		}
	}
}
