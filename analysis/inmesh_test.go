package analysis

import (
	"slices"
	"testing"
)

// TestWorkloadInMesh: Istio's util.PodInMesh / DeploymentInMesh and
// PodInAmbientMode (pkg/config/analysis/analyzers/util/in_mesh.go at
// 2a83968b0e99) on the cases its analyzer test data does not separate.
func TestWorkloadInMesh(t *testing.T) {
	proxy := []Container{{Name: "app", Image: "app:1"}, {Name: "istio-proxy", Image: "proxyv2:1.24"}}
	app := []Container{{Name: "app", Image: "app:1"}}
	namespaces := map[string]map[string]string{
		"on": {"istio-injection": "enabled"}, "off": {"istio-injection": "disabled"},
		"rev": {"istio.io/rev": "canary"}, "bare": nil,
	}
	inject := func(v string) map[string]string { return map[string]string{"sidecar.istio.io/inject": v} }
	for _, tc := range []struct {
		name string
		w    Workload
		want bool
	}{
		{"istio-proxy container", Workload{Kind: "Pod", Namespace: "off", Containers: proxy}, true},
		{"istio-proxy without image", Workload{Kind: "Pod", Namespace: "bare", Containers: []Container{{Name: "istio-proxy"}}}, false},
		{"istio-proxy container beats inject=false", Workload{Kind: "Pod", Namespace: "off", Containers: proxy, Labels: inject("false")}, true},
		// A native sidecar: a Pod's init containers count, a Deployment
		// template's do not (DeploymentInMesh passes Containers only).
		{"pod init istio-proxy", Workload{Kind: "Pod", Namespace: "bare", Containers: app, InitContainers: proxy[1:]}, true},
		{"deployment init istio-proxy", Workload{Kind: "Deployment", Namespace: "bare", Containers: app, InitContainers: proxy[1:]}, false},
		{"deployment istio-proxy", Workload{Kind: "Deployment", Namespace: "bare", Containers: proxy}, true},
		// The label is read before the annotation, and when present decides.
		{"label true", Workload{Kind: "Pod", Namespace: "off", Containers: app, Labels: inject("true")}, true},
		{"label false, annotation true", Workload{Kind: "Pod", Namespace: "on", Containers: app, Labels: inject("false"), Annotations: inject("true")}, false},
		{"label True (not \"true\")", Workload{Kind: "Pod", Namespace: "on", Containers: app, Labels: inject("True")}, false},
		{"annotation true", Workload{Kind: "Pod", Namespace: "off", Containers: app, Annotations: inject("true")}, true},
		{"annotation false in enabled namespace", Workload{Kind: "Pod", Namespace: "on", Containers: app, Annotations: inject("false")}, false},
		{"enabled namespace", Workload{Kind: "Pod", Namespace: "on", Containers: app}, true},
		{"disabled namespace", Workload{Kind: "Pod", Namespace: "off", Containers: app}, false},
		{"istio.io/rev namespace (not read)", Workload{Kind: "Pod", Namespace: "rev", Containers: app}, false},
		{"unknown namespace", Workload{Kind: "Pod", Namespace: "elsewhere", Containers: app}, false},
	} {
		if got := workloadInMesh(tc.w, namespaces); got != tc.want {
			t.Errorf("%s: workloadInMesh = %v, want %v", tc.name, got, tc.want)
		}
	}
	ambient := map[string]string{"ambient.istio.io/redirection": "enabled"}
	if !workloadInAmbientMode(Workload{Annotations: ambient}) {
		t.Error("ambient.istio.io/redirection=enabled: not in ambient mode")
	}
	if workloadInAmbientMode(Workload{Labels: ambient}) || workloadInAmbientMode(Workload{Annotations: map[string]string{"ambient.istio.io/redirection": "disabled"}}) {
		t.Error("a label, or another value: in ambient mode")
	}
}

// TestAuthzInMeshWorkloads: Istio's initPodLabelsMap
// (authz/authorizationpolicies.go, the version adding util.PodInAmbientMode
// pods) counts only pods with a sidecar or in ambient mode: a policy whose
// selector matches only pods outside the mesh, or a namespace-wide policy of
// a namespace whose pods are all outside it, is IST0127.
func TestAuthzInMeshWorkloads(t *testing.T) {
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	plain := func(ns, name, a string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: name, Labels: app(a), Containers: []Container{{Name: "app", Image: "app:1"}}}
	}
	nss := map[string]map[string]string{"shop": nil, "mesh": {"istio-injection": "enabled"}}
	ambientPod := plain("shop", "amb-1", "amb")
	ambientPod.Annotations = map[string]string{"ambient.istio.io/redirection": "enabled"}
	for _, tc := range []struct {
		name string
		in   Input
		want []string
	}{
		{
			name: "selector matching a pod outside the mesh",
			in: Input{AllWorkloads: true, Namespaces: nss, Workloads: []Workload{plain("shop", "cart-1", "cart")},
				Objects: []Object{authzObject("shop", "cart", app("cart"), nil, nil)}},
			want: []string{"Warning [IST0127] (AuthorizationPolicy shop/cart cart.yaml#0) No matching workloads for this resource with the following labels: app=cart @spec.selector"},
		},
		{
			name: "namespace-wide policy, no pod in the mesh",
			in: Input{AllWorkloads: true, Namespaces: nss, Workloads: []Workload{plain("shop", "cart-1", "cart")},
				Objects: []Object{authzObject("shop", "all", nil, nil, nil)}},
			want: []string{"Warning [IST0127] (AuthorizationPolicy shop/all all.yaml#0) No matching workloads for this resource with the following labels:  @spec.selector"},
		},
		{
			name: "root namespace policy, the matching pod outside the mesh",
			in: Input{AllWorkloads: true, Namespaces: nss, Workloads: []Workload{plain("shop", "cart-1", "cart")},
				Objects: []Object{authzObject("istio-system", "cart", app("cart"), nil, nil)}},
			want: []string{"Warning [IST0127] (AuthorizationPolicy istio-system/cart cart.yaml#0) No matching workloads for this resource with the following labels: app=cart @spec.selector"},
		},
		{
			name: "pods in the mesh by namespace label and by ambient annotation",
			in: Input{AllWorkloads: true, Namespaces: nss, Workloads: []Workload{plain("mesh", "cart-1", "cart"), ambientPod},
				Objects: []Object{authzObject("mesh", "cart", app("cart"), nil, nil), authzObject("shop", "amb", app("amb"), nil, nil),
					authzObject("shop", "all", nil, nil, nil)}},
		},
	} {
		if got := authzLines(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestSidecarAmbientPods: Istio's newest stored sidecar/selector.go
// (SelectorAnalyzer.Analyze with util.PodInAmbientMode) reports no
// IST0110 for a pod in ambient mode that several Sidecars select (it has no
// sidecar; IST0167 IneffectivePolicy instead, ineffective.go), and
// the pod still counts as found (no IST0101).
func TestSidecarAmbientPods(t *testing.T) {
	sel := map[string]string{"app": "r"}
	amb := Workload{Kind: "Pod", Namespace: "default", Name: "r-amb", Labels: sel,
		Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}}
	side := Workload{Kind: "Pod", Namespace: "default", Name: "r-side", Labels: sel}
	objs := []Object{sidecarObject("default", "a", sel), sidecarObject("default", "b", sel)}
	if got := sidecarLines(Input{AllWorkloads: true, Objects: objs, Workloads: []Workload{amb}}); len(got) != 0 {
		t.Errorf("ambient pod: got %q, want none", got)
	}
	for _, m := range Analyze(Input{AllWorkloads: true, Objects: objs, Workloads: []Workload{amb}}) {
		if m.Code == "IST0101" {
			t.Errorf("ambient pod: got %v, want no IST0101 (the pod is found)", m)
		}
	}
	want := []string{
		`Error [IST0110] (Sidecar default/a a.yaml#0) The Sidecars [a b] in namespace "default" select the same workload pod "r-side", which can lead to undefined behavior. @metadata.name`,
		`Error [IST0110] (Sidecar default/b b.yaml#0) The Sidecars [a b] in namespace "default" select the same workload pod "r-side", which can lead to undefined behavior. @metadata.name`,
	}
	if got := sidecarLines(Input{AllWorkloads: true, Objects: objs, Workloads: []Workload{amb, side}}); !slices.Equal(got, want) {
		t.Errorf("ambient and sidecar pods:\ngot  %q\nwant %q", got, want)
	}
}
