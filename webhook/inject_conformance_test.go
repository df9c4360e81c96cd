package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/test/conformance"
)

// TestInjectWebhookMatchesKubeInject runs the Pods of Istio's injection
// goldens through the webhook (AdmissionReview, JSON patch, patch applied) and
// requires the pod `meshguard inject -f` gives for them. Istio's own
// TestInjection (pkg/kube/inject/inject_test.go) runs every golden through
// both kube-inject and the webhook; here kube-inject's output is the
// reference, as injector/kubeinject's conformance test holds it to Istio's
// goldens, so the webhook path is held to them too.
func TestInjectWebhookMatchesKubeInject(t *testing.T) {
	dir := conformance.Dir(t, "injection")
	// Istio's defaults and the default install's ConfigMap contents, as
	// kube-inject's conformance test runs them, and the install rendered
	// through meshguard's generic template path (a patch diffed from the
	// rendered pod); native sidecars set as each golden needs.
	defaults := func(native bool) *config.Snapshot {
		s, err := config.Load(nil, []byte(fmt.Sprintf(`{"global":{"nativeSidecars":%t}}`, native)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cfg, values, mesh := conformance.IstioInstall(t)
	install := func(native bool) *config.Snapshot {
		vb := conformance.EditGlobalValues(t, values, func(g map[string]any) { g["nativeSidecars"] = native })
		s, err := config.Inputs{Config: cfg, Values: vb, Mesh: mesh}.Load()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pods := 0
	for _, c := range conformance.InjectionCases(t) {
		data, err := os.ReadFile(filepath.Join(dir, "cases", c.Input))
		if err != nil {
			t.Fatal(err)
		}
		docs, err := manifest.SplitRaw(data)
		if err != nil {
			t.Fatalf("%s: %v", c.Input, err)
		}
		generic := install(c.Native)
		generic.Templates.AlwaysGeneric = true
		for mode, snap := range map[string]*config.Snapshot{"defaults": defaults(c.Native), "install": install(c.Native), "generic": generic} {
			h := newHandler(t, snap)
			for _, d := range docs {
				in := podsOf(t, d.Raw)
				if len(in) == 0 {
					continue
				}
				res, err := kubeinject.InjectData(d.Raw, snap)
				if err != nil {
					t.Fatalf("%s#%d: kube-inject: %v", c.Input, d.Index, err)
				}
				want := podsOf(t, res.Output)
				if len(want) != len(in) {
					t.Fatalf("%s#%d: %d pods in, %d out of kube-inject", c.Input, d.Index, len(in), len(want))
				}
				for i, pod := range in {
					pods++
					t.Run(fmt.Sprintf("%s/%s#%d.%d/native=%v", mode, c.Input, d.Index, i, c.Native), func(t *testing.T) {
						w, resp := serve(t, h, reviewBody(t, pod, nil))
						if w.Code != http.StatusOK || !resp.Allowed {
							t.Fatalf("webhook: HTTP %d, %+v", w.Code, resp.Result)
						}
						got := pod
						if resp.Patch != nil {
							got = applyPatch(t, pod, resp.Patch)
						}
						if !equality.Semantic.DeepEqual(got, want[i]) {
							t.Errorf("the webhook's pod differs from kube-inject's (-kube-inject +webhook):\n%s", cmp.Diff(want[i], got))
						}
					})
				}
			}
		}
	}
	if pods == 0 {
		t.Fatal("no Pod in the injection corpus: the test compared nothing")
	}
}

// podsOf returns the pods of a manifest document as the API server would
// send them to the webhook: a Pod as it is, a workload's pod template as a
// pod of the workload's namespace that the workload controls (as Istio's
// TestInjection converts them, objectToPod), a v1 List's items in order.
// Other kinds give none.
func podsOf(t *testing.T, doc []byte) []*corev1.Pod {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		t.Fatal(err)
	}
	var out []*corev1.Pod
	var walk func(obj map[string]any)
	walk = func(obj map[string]any) {
		kind, _ := obj["kind"].(string)
		switch kind {
		case "List":
			items, _ := obj["items"].([]any)
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					walk(m)
				}
			}
			return
		case "Pod":
		case "Deployment", "DaemonSet", "DeploymentConfig", "Job", "ReplicaSet", "ReplicationController", "StatefulSet":
			spec, _ := obj["spec"].(map[string]any)
			tmpl, _ := spec["template"].(map[string]any)
			meta, _ := tmpl["metadata"].(map[string]any)
			if meta == nil {
				meta = map[string]any{}
			}
			// The pod's controller is the workload (Istio's simulateOwnerRef).
			wm, _ := obj["metadata"].(map[string]any)
			if wm["namespace"] != nil {
				meta["namespace"] = wm["namespace"]
			}
			meta["generateName"] = wm["name"]
			meta["ownerReferences"] = []any{map[string]any{"apiVersion": obj["apiVersion"], "kind": kind, "name": wm["name"], "controller": true}}
			obj = map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": tmpl["spec"]}
		default:
			return
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{}
		if err := json.Unmarshal(b, pod); err != nil {
			t.Fatal(err)
		}
		out = append(out, pod)
	}
	walk(obj)
	return out
}
