package audit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/meshguard/meshguard/analysis"
)

// TestListerSelectedPods: a Pod two queries select is handed over once;
// ErrStopList ends a listing without error; a list error names the
// resource, namespace and selector (the audit and analyze --kubeconfig
// share the lister).
func TestListerSelectedPods(t *testing.T) {
	pod := func(name string, lbls map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": "shop", "labels": lbls}}}
	}
	a, client := fakeAuditor(t, nil, pod("reviews-1", map[string]any{"app": "reviews", "version": "v1"}), pod("ratings-1", map[string]any{"app": "ratings"}))
	queries := []analysis.PodQuery{{Namespace: "shop", Selector: "app=reviews"}, {Namespace: "shop", Selector: "version=v1"}, {Namespace: "shop", Selector: "app=ratings"}}
	var got []string
	if err := a.lister().SelectedPods(context.Background(), queries, nil, func(u *unstructured.Unstructured) error {
		got = append(got, u.GetName())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "reviews-1,ratings-1" {
		t.Errorf("pods %v, want reviews-1 once, then ratings-1", got)
	}
	n := 0
	if err := a.lister().Each(context.Background(), podsResource, "shop", "", func(*unstructured.Unstructured) error { n++; return ErrStopList }); err != nil || n != 1 {
		t.Errorf("ErrStopList: err %v after %d pods, want nil after 1", err, n)
	}
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, errors.New("boom") })
	err := a.lister().Each(context.Background(), podsResource, "shop", "app=reviews", func(*unstructured.Unstructured) error { return nil })
	if err == nil || err.Error() != `listing pods in "shop" (selector "app=reviews"): boom` {
		t.Errorf("list error %v, want it to name resource, namespace and selector", err)
	}
}
