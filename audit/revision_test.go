package audit

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/meshguard/meshguard/analysis"
)

// A canary install's audit beside the default's: each writes and deletes only
// its own PolicyReports (the two wrote the same name and overwrote or deleted
// each other's reports on every run), and the canary reports only the
// objects its webhook validates (labelled istio.io/rev=canary).
func TestRevisionsKeepTheirOwnReports(t *testing.T) {
	ctx := context.Background()
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{PolicyReports: "PolicyReportList"})
	def := &Auditor{Client: client, Log: logr.Discard()}
	canary := &Auditor{Client: client, Revision: "canary", Log: logr.Discard()}
	for _, a := range []*Auditor{def, canary} {
		a.limiter = flowcontrol.NewFakeAlwaysRateLimiter()
	}
	labelled := Object{Ref: ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: "canary-vs"},
		Raw: map[string]any{"metadata": map[string]any{"labels": map[string]any{"istio.io/rev": "canary"}}}}
	plain := Object{Ref: ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: "vs"},
		Raw: map[string]any{"metadata": map[string]any{}}}
	snap := Snapshot{Objects: []Object{labelled, plain}}
	violation := func(o Object) Violation {
		return Violation{Object: o.Ref, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Message: "m"}
	}
	all := []Violation{violation(labelled), violation(plain)}

	if got := canary.inScope(slices.Clone(all), snap); len(got) != 1 || got[0].Object != labelled.Ref {
		t.Fatalf("canary scope: %+v, want only the object labelled istio.io/rev=canary", got)
	}
	if got := def.inScope(slices.Clone(all), snap); len(got) != 2 {
		t.Fatalf("default scope: %+v, want every object (its webhook validates all)", got)
	}

	now := time.Unix(1000, 0)
	if err := def.writeReports(ctx, def.inScope(slices.Clone(all), snap), now); err != nil {
		t.Fatal(err)
	}
	if err := canary.writeReports(ctx, canary.inScope(slices.Clone(all), snap), now); err != nil {
		t.Fatal(err)
	}
	results := func(name string) int {
		t.Helper()
		u, err := client.Resource(PolicyReports).Namespace("shop").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("report %s: %v", name, err)
		}
		return len(u.Object["results"].([]any))
	}
	if n := results(ReportName); n != 2 {
		t.Errorf("default report: %d results, want 2", n)
	}
	if n := results("meshguard-audit-canary"); n != 1 {
		t.Errorf("canary report: %d results, want 1", n)
	}
	// The canary's violations go away: it deletes its report, not the default's.
	if err := canary.writeReports(ctx, nil, now); err != nil {
		t.Fatal(err)
	}
	if n := results(ReportName); n != 2 {
		t.Errorf("default report after the canary's cleared: %d results, want 2", n)
	}
	if _, err := client.Resource(PolicyReports).Namespace("shop").Get(ctx, "meshguard-audit-canary", metav1.GetOptions{}); err == nil {
		t.Error("the canary's report was not deleted")
	}
	// The default's violations change: its report is rewritten, not left stale.
	if err := def.writeReports(ctx, []Violation{violation(plain)}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := results(ReportName); n != 1 {
		t.Errorf("default report after its violations changed: %d results, want 1", n)
	}
}

// A revision's audit sees the objects its control plane reads: those
// labelled istio.io/rev for it and the unlabelled ones (policy.InRevision,
// as istiod's crdclient and `istioctl analyze --revision` read them). A
// canary VirtualService bound to a Gateway labelled for another revision
// refers to a Gateway the canary does not have (IST0101), and a canary mesh
// VirtualService shares no host with another revision's (no IST0109); the default
// revision's audit does not read the canary's objects.
func TestAuditRevisionSeesItsOwnObjects(t *testing.T) {
	ctx := context.Background()
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	gwGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}
	labelled := func(o *unstructured.Unstructured, rev string) *unstructured.Unstructured {
		o.SetLabels(map[string]string{"istio.io/rev": rev})
		return o
	}
	vs := func(name string, gateways ...any) *unstructured.Unstructured {
		spec := map[string]any{"hosts": []any{"shop.example.com"},
			"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "nosuch.shop.svc.cluster.local"}}}}}}
		if gateways != nil {
			spec["gateways"] = gateways
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": name, "namespace": "shop"}, "spec": spec}}
	}
	gw := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "gw", "namespace": "shop"},
		"spec": map[string]any{"selector": map[string]any{"istio": "ingressgateway"},
			"servers": []any{map[string]any{"hosts": []any{"*"}, "port": map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"}}}}}}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}
	audit := func(rev string) []string {
		t.Helper()
		a, _ := fakeAuditor(t, []schema.GroupVersionResource{vsGVR, gwGVR}, ns, labelled(gw.DeepCopy(), "stable"),
			labelled(vs("vs", "gw"), "canary"), labelled(vs("canary-mesh"), "canary"), labelled(vs("stable-vs"), "stable"))
		a.Revision = rev
		snap, err := a.snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := Check(ctx, snap, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range a.inScope(vs, snap) {
			if v.Object.Kind == "VirtualService" {
				got = append(got, v.Object.Name+" "+v.Code+" "+v.Message)
			}
		}
		return got
	}
	got := audit("canary")
	slices.Sort(got)
	want := []string{`canary-mesh IST0101 Referenced host not found: "nosuch.shop.svc.cluster.local"`,
		`vs IST0101 Referenced gateway not found: "gw"`, `vs IST0101 Referenced host not found: "nosuch.shop.svc.cluster.local"`,
		// Istio's vsHostInGateway reports a missing Gateway too.
		`vs IST0132 one or more host [shop.example.com] defined in VirtualService shop/vs not found in Gateway shop/gw.`}
	if !slices.Equal(got, want) {
		t.Errorf("canary: %q, want %q (the gateway is stable's; canary-mesh shares its host with stable's VirtualService only)", got, want)
	}
	if got := audit("stable"); len(got) != 1 || !strings.HasPrefix(got[0], "stable-vs IST0101") {
		t.Errorf("stable: %q, want only stable-vs's host IST0101", got)
	}
	if got := audit(""); len(got) != 0 {
		t.Errorf("default: %q, want none (every VirtualService is another revision's)", got)
	}
}
