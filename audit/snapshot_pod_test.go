package audit

import (
	"context"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestSnapshotPodCopy: the snapshot's copy of a listed Pod keeps what the
// analyzers over workloads read (analysis.Workload: labels, annotations, the
// containers' and init containers' names and images, hostNetwork) and
// nothing else of its spec (env, ports, status).
func TestSnapshotPodCopy(t *testing.T) {
	ctx := context.Background()
	scGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"}
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{scGVR},
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "cart-1", "namespace": "shop",
			"labels": map[string]any{"app": "cart"}, "annotations": map[string]any{"sidecar.istio.io/inject": "true"}},
			"spec": map[string]any{
				"hostNetwork": true,
				"containers": []any{
					map[string]any{"name": "app", "image": "cart:1", "env": []any{map[string]any{"name": "SECRET", "value": "x"}}},
					map[string]any{"name": "istio-proxy", "image": "proxyv2:1.24", "ports": []any{map[string]any{"containerPort": int64(15090)}}},
				},
				"initContainers": []any{map[string]any{"name": "istio-init", "image": "proxyv2:1.24", "args": []any{"-p", "15001"}}},
			},
			"status": map[string]any{"phase": "Running"}}),
		u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": map[string]any{"name": "cart", "namespace": "shop"},
			"spec": map[string]any{"workloadSelector": map[string]any{"labels": map[string]any{"app": "cart"}},
				"egress": []any{map[string]any{"hosts": []any{"./*"}}}}}))
	snap, err := a.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "cart-1", "namespace": "shop",
			"labels": map[string]any{"app": "cart"}, "annotations": map[string]any{"sidecar.istio.io/inject": "true"}},
		"spec": map[string]any{
			"hostNetwork": true,
			"containers": []any{
				map[string]any{"name": "app", "image": "cart:1"},
				map[string]any{"name": "istio-proxy", "image": "proxyv2:1.24"},
			},
			"initContainers": []any{map[string]any{"name": "istio-init", "image": "proxyv2:1.24"}},
		}}
	var pods []map[string]any
	for _, k := range snap.Kube {
		if k["kind"] == "Pod" {
			pods = append(pods, k)
		}
	}
	if len(pods) != 1 || !reflect.DeepEqual(pods[0], want) {
		t.Errorf("pods in the snapshot\n%v\nwant\n%v", pods, want)
	}
}
