package audit

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/test/fakelist"
)

// A namespace created while the audit lists the mesh objects, with an object
// in it: the rules judge that object with the namespace's labels, as the
// webhook does (it answers 503 until it sees the namespace), not without
// them; an object whose namespace is gone by the end of the listing (deleted
// with it) is left out.
func TestSnapshotSeesNamespacesOfListedObjects(t *testing.T) {
	ctx := context.Background()
	nsGVR := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	vs := func(ns string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": "vs", "namespace": ns}, "spec": map[string]any{"hosts": []any{"a.example.com"}}}}
	}
	a, client := fakeAuditor(t, []schema.GroupVersionResource{vsGVR}, vs("gone"))
	// The namespace "late" and its VirtualService appear just before the
	// VirtualServices are listed.
	fakelist.CreateWhenListed(t, client, "virtualservices",
		fakelist.Object{GVR: nsGVR, Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": "late", "labels": map[string]any{"environment": "production"}}}},
		fakelist.Object{GVR: vsGVR, Object: vs("late").Object})
	snap, err := a.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Namespaces["late"]["environment"] != "production" {
		t.Errorf("namespaces %v: late's labels missing", snap.Namespaces)
	}
	if len(snap.Objects) != 1 || snap.Objects[0].Ref.Namespace != "late" {
		t.Fatalf("objects %+v, want only the VirtualService of late (gone's namespace does not exist)", snap.Objects)
	}
	rules, err := orgrules.Compile(ctx, []orgrules.Module{{Name: "r.rego", Source: `package meshguard.validation
deny contains "production" if input.namespaceLabels.environment == "production"
`}})
	if err != nil {
		t.Fatal(err)
	}
	vs2, err := Check(ctx, snap, rules)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(vs2, func(v Violation) bool { return v.Code == analysis.OrgRule && v.Message == "production" }) {
		t.Errorf("violations %+v, want the rule on late's labels", vs2)
	}
}

// A Service created with its VirtualService while the audit lists the mesh
// objects (kubectl apply creates the Service first) is in the snapshot: the
// Services are listed after the objects that refer to them. Listed first, it
// was missed and the VirtualService reported as routing to a missing host
// (IST0101) until the next run.
func TestSnapshotSeesServicesOfListedObjects(t *testing.T) {
	ctx := context.Background()
	svcGVR := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	a, client := fakeAuditor(t, []schema.GroupVersionResource{vsGVR},
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}})
	fakelist.CreateWhenListed(t, client, "virtualservices",
		fakelist.Object{GVR: svcGVR, Object: map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "reviews", "namespace": "shop"}, "spec": map[string]any{"ports": []any{map[string]any{"port": int64(80)}}}}},
		fakelist.Object{GVR: vsGVR, Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": "reviews", "namespace": "shop"},
			"spec":     map[string]any{"hosts": []any{"reviews"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}}}}}}}})
	snap, err := a.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Objects) != 1 {
		t.Fatalf("objects %+v, want the VirtualService", snap.Objects)
	}
	vs, err := Check(ctx, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 0 {
		t.Errorf("violations %+v, want none (the Service exists)", vs)
	}
}

// The Pods the Sidecars' workloadSelectors select are in the snapshot, each
// once (ratings-1 no Gateway selects; cart-1 a Gateway selects too), so two
// Sidecars selecting one Pod are IST0110 and a selector matching no Pod
// IST0101, as `meshguard analyze --kubeconfig` reports them.
func TestSnapshotListsPodsSidecarsSelect(t *testing.T) {
	ctx := context.Background()
	scGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"}
	gwGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	pod := func(name string, labels map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": "shop", "labels": labels}})
	}
	sidecar := func(name, app string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"workloadSelector": map[string]any{"labels": map[string]any{"app": app}},
				"egress": []any{map[string]any{"hosts": []any{"./*"}}}}})
	}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{scGVR, gwGVR},
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}),
		pod("ratings-1", map[string]any{"app": "ratings"}),
		pod("cart-1", map[string]any{"app": "cart"}),
		sidecar("ratings", "ratings"), sidecar("ratings-too", "ratings"), sidecar("cart", "cart"), sidecar("gone", "gone"),
		u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": "gw", "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"app": "cart"}, "servers": []any{map[string]any{
				"port": map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"}, "hosts": []any{"*"}}}}}))
	snap, err := a.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(snap.Objects, func(o Object) bool { return o.Ref.Kind == "Gateway" }) {
		t.Fatalf("objects %+v: the Gateway is missing", snap.Objects)
	}
	if pods := snapshotPods(snap); !slices.Equal(slices.Sorted(slices.Values(pods)), []string{"shop/cart-1", "shop/ratings-1"}) {
		t.Errorf("pods in the snapshot %v, want cart-1 and ratings-1 once each", pods)
	}
	vs, err := Check(ctx, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := violationsOf(vs, "Sidecar")
	slices.Sort(got)
	if want := []string{"shop/gone IST0101", "shop/ratings IST0110", "shop/ratings-too IST0110"}; !slices.Equal(got, want) {
		t.Errorf("Sidecar violations %q, want %q", got, want)
	}
}

// The audit lists the Pods the AuthorizationPolicies may select (Istio's
// AuthorizationPoliciesAnalyzer, analysis/authz.go): a selector's (in every
// namespace, as a root-namespace selector selects), and one Pod of the
// namespace of a policy without selector; not the Pods nothing selects. A
// policy selecting none is IST0127.
func TestSnapshotListsPodsAuthorizationPoliciesSelect(t *testing.T) {
	ctx := context.Background()
	apGVR := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	namespace := func(name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}})
	}
	// Pods with a sidecar: Istio's analyzer counts only pods in the mesh
	// (util.PodInMesh; the snapshot keeps the containers it reads).
	pod := func(ns, name, app string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app": app}},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "istio-proxy", "image": "proxyv2"}}}})
	}
	plainPod := func(ns, name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "app"}}}})
	}
	policy := func(ns, name, app string) *unstructured.Unstructured {
		spec := map[string]any{}
		if app != "" {
			spec["selector"] = map[string]any{"matchLabels": map[string]any{"app": app}}
		}
		return u(map[string]any{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
			"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec})
	}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{apGVR},
		namespace("shop"), namespace("other"), namespace("lone"), namespace("idle"), namespace(analysis.DefaultRootNamespace),
		pod("shop", "cart-1", "cart"), pod("shop", "web-1", "web"), pod("other", "db-1", "db"), pod("lone", "job-1", "job"),
		policy("shop", "cart", "cart"),
		policy(analysis.DefaultRootNamespace, "db", "db"),
		policy(analysis.DefaultRootNamespace, "mesh-wide", ""),
		policy("lone", "namespace-wide", ""),
		policy("idle", "namespace-wide", ""),
		// A policy without selector needs one Pod the analyzer counts: a
		// Pod outside the mesh listed first does not answer it; in an
		// injected namespace it does.
		namespace("mixed"), plainPod("mixed", "a-plain"), pod("mixed", "b-mesh", "b"),
		policy("mixed", "namespace-wide", ""),
		namespace("outside"), plainPod("outside", "a-plain"),
		policy("outside", "namespace-wide", ""),
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "injected", "labels": map[string]any{"istio-injection": "enabled"}}}),
		plainPod("injected", "a-plain"),
		policy("injected", "namespace-wide", ""),
	)
	snap, err := a.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pods := snapshotPods(snap)
	if want := []string{"injected/a-plain", "lone/job-1", "mixed/b-mesh", "other/db-1", "shop/cart-1"}; !slices.Equal(slices.Sorted(slices.Values(pods)), want) {
		t.Errorf("pods in the snapshot %v, want %v once each", pods, want)
	}
	vs, err := Check(ctx, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := violationsOf(vs, "AuthorizationPolicy"), []string{"idle/namespace-wide IST0127", "outside/namespace-wide IST0127"}; !slices.Equal(got, want) {
		t.Errorf("AuthorizationPolicy violations %q, want %q", got, want)
	}
}
