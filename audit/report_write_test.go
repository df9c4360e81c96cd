package audit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/meshguard/meshguard/analysis"
)

// reportAuditor is an Auditor over a fake cluster holding only PolicyReports
// (reports), logging into the returned lines.
func reportAuditor(t *testing.T, reports ...*unstructured.Unstructured) (*Auditor, *dynamicfake.FakeDynamicClient, func() []string) {
	t.Helper()
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{PolicyReports: "PolicyReportList"})
	for _, r := range reports {
		if _, err := client.Resource(PolicyReports).Namespace(r.GetNamespace()).Create(t.Context(), r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) { mu.Lock(); lines = append(lines, args); mu.Unlock() }, funcr.Options{})
	a := &Auditor{Client: client, Log: log, limiter: flowcontrol.NewFakeAlwaysRateLimiter()}
	return a, client, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), lines...) }
}

// report is a PolicyReport named name in ns with labels and one result.
func report(ns, name, uid string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"results": []any{map[string]any{"policy": "theirs", "result": "fail"}}}}
	u.SetGroupVersionKind(PolicyReport)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetUID(typesUID(uid))
	u.SetLabels(labels)
	return u
}

func vsViolation(ns string) Violation {
	return Violation{Object: ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: ns, Name: "vs"},
		Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Message: "m"}
}

// A PolicyReport of meshguard's name that meshguard does not manage (made by
// hand, or its label edited away, or another tool's) is left alone: the
// run does not fail on it (it failed every period, counted in
// meshguard_audit_errors_total, and logged "audit run failed" forever), the
// other namespaces get their reports, it is logged once naming it, not
// every period, and once it is gone the namespace gets meshguard's report.
func TestForeignReportOfSameNameIsLeftAlone(t *testing.T) {
	for name, labels := range map[string]map[string]string{
		"unlabelled":        nil,
		"another's manager": {ManagedByLabel: "kyverno"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			foreign := report("shop", ReportName, "uid-foreign", labels)
			a, client, logs := reportAuditor(t, foreign)
			vs := []Violation{vsViolation("shop"), vsViolation("prod")}
			for run := range 3 {
				if err := a.writeReports(ctx, vs, time.Unix(int64(1000+run), 0)); err != nil {
					t.Fatalf("run %d: %v (the foreign report must not fail the run)", run, err)
				}
			}
			got, err := client.Resource(PolicyReports).Namespace("shop").Get(ctx, ReportName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !SameResults(got, foreign) || got.GetLabels()[ManagedByLabel] != labels[ManagedByLabel] {
				t.Errorf("the foreign report was changed: %v", got.Object)
			}
			prod, err := client.Resource(PolicyReports).Namespace("prod").Get(ctx, ReportName, metav1.GetOptions{})
			if err != nil || len(prod.Object["results"].([]any)) != 1 {
				t.Errorf("prod's report: %v, %v: want meshguard's, with one result", prod, err)
			}
			var named int
			for _, l := range logs() {
				if strings.Contains(l, `"shop"`) && strings.Contains(l, `"`+ReportName+`"`) {
					named++
				}
			}
			if named != 1 {
				t.Errorf("%d log lines name shop/%s over 3 runs, want 1: %q", named, ReportName, logs())
			}

			// The foreign report is deleted: the next run writes meshguard's.
			if err := client.Resource(PolicyReports).Namespace("shop").Delete(ctx, ReportName, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := a.writeReports(ctx, vs, time.Unix(2000, 0)); err != nil {
				t.Fatal(err)
			}
			mine, err := client.Resource(PolicyReports).Namespace("shop").Get(ctx, ReportName, metav1.GetOptions{})
			if err != nil || mine.GetLabels()[ManagedByLabel] != managedBy {
				t.Errorf("after the foreign report went: %v, %v; want meshguard's report", mine, err)
			}
		})
	}
}

// meshguard's own report created between the run's list and its create (a
// previous leader's last write) is brought up to date, not reported as an
// error nor mistaken for a foreign one.
func TestOwnReportCreatedSinceListIsUpdated(t *testing.T) {
	ctx := t.Context()
	a, client, logs := reportAuditor(t)
	var once sync.Once
	client.PrependReactor("create", "policyreports", func(action clienttesting.Action) (bool, runtime.Object, error) {
		handled := false
		once.Do(func() {
			stale := report("shop", ReportName, "uid-mine", map[string]string{ManagedByLabel: managedBy})
			if err := client.Tracker().Create(PolicyReports, stale, "shop"); err != nil {
				t.Error(err)
			}
			handled = true
		})
		if handled {
			return true, nil, apierrors.NewAlreadyExists(PolicyReports.GroupResource(), ReportName)
		}
		return false, nil, nil
	})
	if err := a.writeReports(ctx, []Violation{vsViolation("shop")}, time.Unix(1000, 0)); err != nil {
		t.Fatalf("writeReports: %v", err)
	}
	got, err := client.Resource(PolicyReports).Namespace("shop").Get(ctx, ReportName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !SameResults(got, Reports([]Violation{vsViolation("shop")}, time.Unix(1000, 0))["shop"]) {
		t.Errorf("report not brought up to date: %v", got.Object)
	}
	if l := logs(); len(l) != 0 {
		t.Errorf("logged %q: meshguard's own report is not foreign", l)
	}
}

// A report deleted between the refused create and the look-up is retried by
// the next run: this run reports the error (it wrote nothing there).
func TestReportGoneAfterAlreadyExistsIsAnError(t *testing.T) {
	a, client, _ := reportAuditor(t)
	client.PrependReactor("create", "policyreports", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewAlreadyExists(PolicyReports.GroupResource(), ReportName)
	})
	err := a.writeReports(context.Background(), []Violation{vsViolation("shop")}, time.Unix(1000, 0))
	if err == nil || !strings.Contains(err.Error(), "shop") {
		t.Errorf("got %v, want an error naming the namespace", err)
	}
}

// wg-policy v1alpha2 (PolicyResult, PolicyReportSummary.Warn): "warn" is a
// requirement not met by a policy that is not scored; Kyverno turns a fail
// into warn exactly when its policy is not scored (policies.kyverno.io/scored:
// "false"). A Warning is reported warn and unscored; fail and error scored.
func TestReportResultScored(t *testing.T) {
	for _, tc := range []struct {
		name             string
		level            analysis.Level
		ruleError        bool
		result, severity string
		scored           bool
	}{
		{"error", analysis.Error, false, "fail", "high", true},
		{"warning", analysis.Warning, false, "warn", "medium", false},
		{"rule not evaluated", analysis.Error, true, "error", "high", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vsViolation("shop")
			v.Level, v.RuleError = tc.level, tc.ruleError
			r := Reports([]Violation{v}, time.Unix(1000, 0))["shop"].Object["results"].([]any)[0].(map[string]any)
			if r["result"] != tc.result || r["severity"] != tc.severity || r["scored"] != tc.scored {
				t.Errorf("result %v severity %v scored %v, want %s %s %v", r["result"], r["severity"], r["scored"], tc.result, tc.severity, tc.scored)
			}
		})
	}
}
