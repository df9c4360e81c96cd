package main

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// `meshguard analyze --kubeconfig` lists the MutatingWebhookConfigurations
// (cluster scoped) for istioctl's webhook analyzer (IST0139; Istio:
// pkg/config/analysis/analyzers/webhook/webhook.go Analyzer) and, with -n,
// the Services of the namespaces their webhooks name: the injector's istiod
// Service in istio-system is found although -n reads default. Its messages
// are kept under -n, as istioctl's filterMessages keeps those of an object
// without a namespace.
func TestAnalyzeClusterMutatingWebhooks(t *testing.T) {
	webhook := func(name, service string) map[string]any {
		return map[string]any{"name": name, "clientConfig": map[string]any{"service": map[string]any{"name": service, "namespace": "istio-system"}},
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"istio-injection": "enabled"}}}
	}
	mwc := func(name string, webhooks ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
			"metadata": map[string]any{"name": name}, "webhooks": webhooks}}
	}
	istiod := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "istiod", "namespace": "istio-system"}}}

	client, mapper := fakeCluster(t, existingNamespace("default"), istiod, mwc("istio-sidecar-injector", webhook("namespace.sidecar-injector.istio.io", "istiod")))
	for _, all := range []bool{false, true} {
		got, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: all}, "IST0139")
		if exit != 0 || len(got) != 0 {
			t.Fatalf("all namespaces %v: exit %d, IST0139 %q, want none (istiod exists)\n%s", all, exit, got, errOut)
		}
	}

	client, mapper = fakeCluster(t, existingNamespace("default"), istiod,
		mwc("istio-sidecar-injector", webhook("namespace.sidecar-injector.istio.io", "istiod")),
		mwc("stale-injector", webhook("namespace.sidecar-injector.istio.io", "istiod-old")))
	want := []string{
		`Error [IST0139] (MutatingWebhookConfiguration istio-sidecar-injector) Webhook overlaps with others: [stale-injector/namespace.sidecar-injector.istio.io]. This may cause injection to occur twice.`,
		`Error [IST0139] (MutatingWebhookConfiguration stale-injector) Injector refers to a control plane service that does not exist: istio-system/istiod-old.`,
		`Error [IST0139] (MutatingWebhookConfiguration stale-injector) Webhook overlaps with others: [istio-sidecar-injector/namespace.sidecar-injector.istio.io]. This may cause injection to occur twice.`,
	}
	for _, all := range []bool{false, true} {
		got, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: all}, "IST0139")
		slices.Sort(got)
		if exit != exitAnalyzeFoundIssues || !slices.Equal(got, want) {
			t.Errorf("all namespaces %v: exit %d\ngot  %q\nwant %q\n%s", all, exit, got, want, errOut)
		}
	}
}
