package main

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// With --kubeconfig, the istio-sidecar-injector* ConfigMaps of the Istio
// namespace (-i) are read (listInjectorConfigMaps), as istioctl's injection
// analyzers read them: IST0158 for an injected namespace whose pod runs
// another proxy image than the injector's, IST0148 for an unlabelled
// namespace when the values enable namespaces by default; ConfigMaps of
// other namespaces or names are not read, and values the injector refuses
// fail the run naming the ConfigMap.
func TestAnalyzeClusterInjectorConfigMaps(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	ns := func(name string, labels map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": labels}})
	}
	pod := u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "old", "namespace": "shop"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "app"},
			map[string]any{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.20.0"}}}})
	cm := func(namespace, name, values string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "namespace": namespace},
			"data": map[string]any{"values": values, "config": "policy: enabled\n"}})
	}
	const v121 = `{"global":{"hub":"docker.io/istio","tag":"1.21.0"},"sidecarInjectorWebhook":{"enableNamespacesByDefault":true}}`
	base := []*unstructured.Unstructured{ns("istio-system", nil), ns("mesh-system", nil), ns("shop", map[string]any{"istio-injection": "enabled"}), ns("plain", nil), pod}
	tests := []struct {
		name    string
		objs    []*unstructured.Unstructured
		istioNS string
		want    []string // IST0158 and IST0148 lines, sorted
		exit    int
		stderr  string
	}{
		{name: "no injector ConfigMap"},
		{name: "the injector ConfigMap", objs: []*unstructured.Unstructured{cm("istio-system", "istio-sidecar-injector", v121)}, want: []string{
			// mesh-system is an unlabelled namespace like plain, here.
			"Info [IST0148] (Namespace mesh-system) is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true.",
			"Info [IST0148] (Namespace plain) is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true.",
			"Warning [IST0158] (Namespace shop) The Istio proxy images of the pods running in the namespace do not match the image defined in the injection configuration (pod names: [old]). This often happens after upgrading the Istio control-plane and can be fixed by redeploying the pods.",
		}},
		{name: "in another namespace than -i", objs: []*unstructured.Unstructured{cm("mesh-system", "istio-sidecar-injector", v121)}},
		{name: "-i mesh-system", objs: []*unstructured.Unstructured{cm("mesh-system", "istio-sidecar-injector", `{"global":{"hub":"docker.io/istio","tag":"1.20.0"}}`)}, istioNS: "mesh-system"},
		{name: "another ConfigMap name", objs: []*unstructured.Unstructured{cm("istio-system", "injector", v121)}},
		{name: "values the injector refuses", objs: []*unstructured.Unstructured{cm("istio-system", "istio-sidecar-injector", `{"global":{"proxy":{"statusPort":"x"}}}`)},
			exit: 65, stderr: "ConfigMap istio-system/istio-sidecar-injector: data.values:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mapper := fakeCluster(t, append(slices.Clone(base), tt.objs...)...)
			o := analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true, istioNamespace: tt.istioNS, failureThreshold: "Error"}
			img, exit, errOut := analyzeLines(t, o, "IST0158")
			def, _, _ := analyzeLines(t, o, "IST0148")
			got := append(def, img...)
			if !slices.Equal(got, tt.want) || exit != tt.exit || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("lines\n%s\nexit %d, stderr %q; want\n%s\nexit %d, stderr with %q", strings.Join(got, "\n"), exit, errOut, strings.Join(tt.want, "\n"), tt.exit, tt.stderr)
			}
		})
	}
}

// IST0158 judges every pod of the namespaces Istio's ImageAnalyzer reads,
// which include a namespace with both injection labels (IST0123, not
// IST0103's): every pod there is listed (analysis.PodNamespaces), so the
// message names both mismatched pods, not only one a selector happened to
// list.
func TestAnalyzeClusterImageNamespacesListed(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	pod := func(name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": "shop", "labels": map[string]any{"app": name}},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.20.0"}}}})
	}
	client, mapper := fakeCluster(t,
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "istio-system"}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop",
			"labels": map[string]any{"istio-injection": "enabled", "istio.io/rev": "default"}}}),
		pod("a"), pod("b"),
		u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": map[string]any{"name": "a", "namespace": "shop"},
			"spec": map[string]any{"workloadSelector": map[string]any{"labels": map[string]any{"app": "a"}}, "egress": []any{map[string]any{"hosts": []any{"./*"}}}}}),
		u(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "istio-sidecar-injector", "namespace": "istio-system"},
			"data": map[string]any{"values": `{"global":{"hub":"docker.io/istio","tag":"1.21.0"}}`, "config": "policy: enabled\n"}}))
	got, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0158")
	if len(got) != 1 || !strings.Contains(got[0], "(pod names: [a b])") || exit != 0 {
		t.Errorf("IST0158 lines %q, exit %d (%s); want one naming pods a and b", got, exit, errOut)
	}
}
