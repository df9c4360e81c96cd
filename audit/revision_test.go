package audit

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
