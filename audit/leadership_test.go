package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
)

var vsResource = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// violationSeries counts the meshguard_audit_violations series of namespace ns.
func violationSeries(t *testing.T, ns string) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	go func() { violations.Collect(ch); close(ch) }()
	n := 0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "namespace" && l.GetValue() == ns {
				n++
			}
		}
	}
	return n
}

// TestLeadershipLossDropsMetricsAndReReports: a replica that loses the
// Lease (the leader group cancels the term's context) stops exporting its
// last run's violations and objects (the new leader exports its own: kept,
// sums would count each violation twice and a violation fixed since would
// stay reported), and when it leads again it reports the standing
// violations once more, as a new leader does (docs/governance.md, Events).
func TestLeadershipLossDropsMetricsAndReReports(t *testing.T) {
	const ns = "lease-shop"
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	vs := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "reviews", "namespace": ns},
		"spec":     map[string]any{"hosts": []any{"reviews"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "nothere"}}}}}}}}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{vsResource}, nsObj, vs)
	a.Interval = time.Hour
	rec := events.NewFakeRecorder(10)
	a.Recorder = rec
	for term := 1; term <= 2; term++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- a.Start(ctx) }()
		select {
		case e := <-rec.Events: // emitted after the metrics are published
			t.Logf("term %d: %s", term, e)
		case <-time.After(30 * time.Second):
			cancel()
			<-done
			t.Fatalf("term %d: no Event for the standing violation within 30s", term)
		}
		if n := violationSeries(t, ns); n == 0 {
			t.Errorf("term %d: no meshguard_audit_violations series for %s while leading", term, ns)
		}
		cancel() // the Lease is lost
		if err := <-done; err != nil {
			t.Fatalf("term %d: Start: %v", term, err)
		}
		if n := violationSeries(t, ns); n != 0 {
			t.Errorf("term %d: after losing the Lease, %d meshguard_audit_violations series of %s still exported", term, n, ns)
		}
		if got := testutil.ToFloat64(audited); got != 0 {
			t.Errorf("term %d: after losing the Lease, meshguard_audit_objects = %v, want 0", term, got)
		}
	}
}

// selectingPolicies returns n AuthorizationPolicies with a selector (a
// selecting kind: the snapshot validates them for analysis.PodQueries).
func selectingPolicies(n int) []Object {
	var objs []Object
	for i := range n {
		name := fmt.Sprintf("ap-%d", i)
		raw := map[string]any{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"rules": []any{map[string]any{"to": []any{map[string]any{"operation": map[string]any{"methods": []any{"GET"}}}}}}}}
		objs = append(objs, Object{Ref: ObjectRef{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy", Namespace: "shop", Name: name}, Raw: raw})
	}
	return objs
}

// TestJudgeSelectingStopsWithContext: the snapshot's validation of the
// selecting kinds stops when the context ends (a lost Lease; the leader
// exits the process when the audit outlives its stop margin), validating
// nothing more, and rests every restEvery objects as Check does.
func TestJudgeSelectingStopsWithContext(t *testing.T) {
	objs := selectingPolicies(3 * restEvery)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := judgeSelecting(ctx, objs, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err %v, want context.Canceled", err)
	}
	for _, o := range objs {
		if o.judged != nil {
			t.Fatalf("cancelled context: %s validated", o.Ref)
		}
	}
	rests := 0
	selecting, err := judgeSelecting(context.Background(), objs, func(context.Context) { rests++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(selecting) != len(objs) || rests != 3 {
		t.Errorf("%d of %d selecting, %d rests: want all and 3 (one per %d objects)", len(selecting), len(objs), rests, restEvery)
	}
}

// TestSnapshotStopsWithContext: a snapshot taken with an ended context
// (over a fake client, whose lists ignore it) fails with the context's
// error rather than validating every selecting object first.
func TestSnapshotStopsWithContext(t *testing.T) {
	apResource := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}}
	for _, o := range selectingPolicies(10) {
		objs = append(objs, &unstructured.Unstructured{Object: o.Raw})
	}
	a, _ := fakeAuditor(t, []schema.GroupVersionResource{apResource}, objs...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.snapshot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("snapshot with a cancelled context: err %v, want context.Canceled", err)
	}
}
