package audit

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Pods the Telemetries' selectors select are in the snapshot, so two
// Telemetries selecting one Pod are IST0159 and a selector matching no Pod
// IST0101 (analysis/telemetry.go, Istio's telemetry.SelectorAnalyzer), as
// `meshguard analyze --kubeconfig` reports them; a Pod no selector selects
// is not listed.
func TestSnapshotListsPodsTelemetriesSelect(t *testing.T) {
	ctx := context.Background()
	telGVR := schema.GroupVersionResource{Group: "telemetry.istio.io", Version: "v1", Resource: "telemetries"}
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	pod := func(name string, labels map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": "shop", "labels": labels}})
	}
	tel := func(name, app string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": app}},
				"tracing": []any{map[string]any{"randomSamplingPercentage": 10.0}}}})
	}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{telGVR},
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}),
		pod("ratings-1", map[string]any{"app": "ratings"}),
		pod("cart-1", map[string]any{"app": "cart"}),
		tel("ratings", "ratings"), tel("ratings-too", "ratings"), tel("gone", "gone"))
	snap, err := a.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pods := snapshotPods(snap); !slices.Equal(pods, []string{"shop/ratings-1"}) {
		t.Errorf("pods in the snapshot %v, want ratings-1 only", pods)
	}
	vs, err := Check(ctx, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := violationsOf(vs, "Telemetry")
	slices.Sort(got)
	if want := []string{"shop/gone IST0101", "shop/ratings IST0159", "shop/ratings-too IST0159"}; !slices.Equal(got, want) {
		t.Errorf("Telemetry violations %q, want %q", got, want)
	}
}
