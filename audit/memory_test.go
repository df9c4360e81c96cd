package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// managedFieldsOf returns metadata.managedFields as three writers of an
// object leave them (kubectl apply, kubectl edit, a controller).
func managedFieldsOf() []any {
	var mf []any
	for j := range 3 {
		mf = append(mf, map[string]any{"manager": fmt.Sprintf("kubectl-%d", j), "operation": "Update", "apiVersion": "networking.istio.io/v1",
			"time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
			"fieldsV1": map[string]any{"f:spec": map[string]any{".": map[string]any{}, "f:hosts": map[string]any{}, "f:http": map[string]any{}},
				"f:metadata": map[string]any{"f:annotations": map[string]any{".": map[string]any{}, "f:kubectl.kubernetes.io/last-applied-configuration": map[string]any{}}}}})
	}
	return mf
}

// snapshotBytesPerObject lists n small VirtualServices (with managedFields
// and, when applied, kubectl's last-applied-configuration) through the
// snapshot and returns the heap it retains per object, and the snapshot.
func snapshotBytesPerObject(t *testing.T, n int, applied bool) (uint64, Object) {
	t.Helper()
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}}
	for i := range n {
		md := map[string]any{"name": fmt.Sprintf("vs-%d", i), "namespace": "shop", "managedFields": managedFieldsOf()}
		spec := map[string]any{"hosts": []any{"reviews"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}}}}}}
		if applied {
			b, err := json.Marshal(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
				"metadata": map[string]any{"name": md["name"], "namespace": "shop"}, "spec": spec})
			if err != nil {
				t.Fatal(err)
			}
			md["annotations"] = map[string]any{lastApplied: string(b)}
		}
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": md, "spec": spec}})
	}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{vsResource}, objs...)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var first Object
	var held uint64
	func() {
		snap, err := a.snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Objects) != n {
			t.Fatalf("%d objects in the snapshot, want %d", len(snap.Objects), n)
		}
		first = snap.Objects[0]
		held = heap()
		runtime.KeepAlive(snap)
	}()
	released := heap()
	runtime.KeepAlive(a)
	if held < released {
		t.Fatalf("heap %d B with the snapshot, %d B without", held, released)
	}
	return (held - released) / uint64(n), first
}

// TestSnapshotMemoryPerObject: the audit's snapshot keeps no managedFields
// (nothing in the audit reads them; the manager's caches drop them too),
// and what it retains per stored object bounds MaxObjects against the
// chart's memory limit (docs/governance.md, audit bounds): a small
// VirtualService written by three managers took 8,200 B with its
// managedFields (5,925 B of them), about 2,250 B without; applied with
// kubectl, its last-applied-configuration (a JSON copy of the object, which
// the organisation rules see in input.object, so it is kept) adds about
// 350 B here, about its JSON size for a larger one.
func TestSnapshotMemoryPerObject(t *testing.T) {
	const n = 2000
	for _, applied := range []bool{false, true} {
		perObject, first := snapshotBytesPerObject(t, n, applied)
		t.Logf("kubectl-applied %v: %d B retained per object", applied, perObject)
		md := first.Raw["metadata"].(map[string]any)
		if _, ok := md["managedFields"]; ok {
			t.Errorf("kubectl-applied %v: the snapshot holds managedFields", applied)
		}
		annotations, _ := md["annotations"].(map[string]any)
		if _, ok := annotations[lastApplied]; applied && !ok {
			t.Errorf("the snapshot dropped %s, which the organisation rules read (input.object)", lastApplied)
		}
		if limit := uint64(maxBytesPerObject(applied)); perObject > limit {
			t.Errorf("kubectl-applied %v: %d B retained per object, over %d", applied, perObject, limit)
		}
	}
}

// maxBytesPerObject is TestSnapshotMemoryPerObject's bound, with room over
// what it measured (about 2,250 and 2,600 B; managedFields kept, 8,200).
func maxBytesPerObject(applied bool) int {
	if applied {
		return 3500
	}
	return 3000
}

// TestSnapshotServicesTrimmed: a listed Service keeps what the analyzers
// read (name, namespace, labels, annotations, spec selector, type and
// ports' name, port, targetPort, protocol, appProtocol) and nothing else:
// not its managedFields, kubectl's last-applied-configuration, status or
// the rest of its spec.
func TestSnapshotServicesTrimmed(t *testing.T) {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}
	svc := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "reviews", "namespace": "shop", "uid": "u1", "resourceVersion": "7", "managedFields": managedFieldsOf(),
			"labels":      map[string]any{"app": "reviews"},
			"annotations": map[string]any{"networking.istio.io/exportTo": ".", lastApplied: `{"kind":"Service"}`}},
		"spec": map[string]any{"selector": map[string]any{"app": "reviews"}, "type": "ClusterIP", "clusterIP": "10.0.0.7", "clusterIPs": []any{"10.0.0.7"},
			"sessionAffinity": "None",
			"ports":           []any{map[string]any{"name": "http", "port": int64(9080), "targetPort": int64(9080), "protocol": "TCP", "appProtocol": "http", "nodePort": int64(30080)}}},
		"status": map[string]any{"loadBalancer": map[string]any{}}}}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{vsResource}, ns, svc)
	snap, err := a.snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Kube) != 1 {
		t.Fatalf("kube objects %v, want the Service", snap.Kube)
	}
	got, err := json.Marshal(snap.Kube[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{"networking.istio.io/exportTo":"."},"labels":{"app":"reviews"},"name":"reviews","namespace":"shop"},` +
		`"spec":{"ports":[{"appProtocol":"http","name":"http","port":9080,"protocol":"TCP","targetPort":9080}],"selector":{"app":"reviews"},"type":"ClusterIP"}}`
	if string(got) != want {
		t.Errorf("Service in the snapshot:\n got %s\nwant %s", got, want)
	}
}
