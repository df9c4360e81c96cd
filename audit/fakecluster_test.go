package audit

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/util/flowcontrol"
)

// fakeAuditor is an Auditor over a fake cluster serving what the snapshot
// lists: Namespaces, Services, Pods, PolicyReports and the mesh resources
// given (the mapper's preferred version of each kind), holding objs. Each
// object is created under its resource (an initial object of the fake
// client is filed under a guessed plural, "gatewaies").
func fakeAuditor(t *testing.T, mesh []schema.GroupVersionResource, objs ...*unstructured.Unstructured) (*Auditor, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	lists := map[schema.GroupVersionResource]string{PolicyReports: "PolicyReportList"}
	byKind := map[schema.GroupVersionKind]schema.GroupVersionResource{}
	for _, k := range []string{"Namespace", "Service", "Pod"} {
		gvr := schema.GroupVersionResource{Version: "v1", Resource: strings.ToLower(k) + "s"}
		lists[gvr] = k + "List"
		byKind[schema.GroupVersionKind{Version: "v1", Kind: k}] = gvr
	}
	var gvs []schema.GroupVersion
	for _, gvr := range mesh {
		if gv := gvr.GroupVersion(); !slices.Contains(gvs, gv) {
			gvs = append(gvs, gv)
		}
	}
	mapper := meta.NewDefaultRESTMapper(gvs)
	for _, gvr := range mesh {
		kind := meshKinds[gvr.Resource]
		if kind == "" {
			t.Fatalf("fakeAuditor: no kind for resource %s", gvr.Resource)
		}
		gvk := gvr.GroupVersion().WithKind(kind)
		lists[gvr] = kind + "List"
		byKind[gvk] = gvr
		mapper.AddSpecific(gvk, gvr, gvr.GroupVersion().WithResource(strings.ToLower(kind)), meta.RESTScopeNamespace)
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists)
	for _, o := range objs {
		gvr, ok := byKind[o.GroupVersionKind()]
		if !ok {
			t.Fatalf("fakeAuditor: %s is not served", o.GroupVersionKind())
		}
		if _, err := client.Resource(gvr).Namespace(o.GetNamespace()).Create(t.Context(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return &Auditor{Client: client, Mapper: mapper, Log: logr.Discard(), limiter: flowcontrol.NewFakeAlwaysRateLimiter()}, client
}

// meshKinds names the kind of each mesh resource the tests serve.
var meshKinds = map[string]string{
	"virtualservices": "VirtualService", "gateways": "Gateway", "sidecars": "Sidecar",
	"authorizationpolicies": "AuthorizationPolicy", "telemetries": "Telemetry",
}

// snapshotPods names the Pods of snap.Kube, "namespace/name", in snapshot
// order.
func snapshotPods(snap Snapshot) []string {
	var pods []string
	for _, k := range snap.Kube {
		if k["kind"] == "Pod" {
			md := k["metadata"].(map[string]any)
			pods = append(pods, md["namespace"].(string)+"/"+md["name"].(string))
		}
	}
	return pods
}

// violationsOf renders the violations about objects of kind as
// "namespace/name CODE", in Check's order.
func violationsOf(vs []Violation, kind string) []string {
	var got []string
	for _, v := range vs {
		if v.Object.Kind == kind {
			got = append(got, v.Object.Namespace+"/"+v.Object.Name+" "+v.Code)
		}
	}
	return got
}
