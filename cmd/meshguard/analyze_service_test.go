package main

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// --kubeconfig -n NS reads the Services of every namespace (Gateways and
// VirtualServices refer across namespaces) but reports on NS only: the port
// name messages (IST0118, analysis/service.go) of a Service elsewhere are
// left out, as istioctl analyze -n keeps only the messages of resources in
// the namespace analysed (Istio: pkg/config/analysis/local/istiod_analyze.go
// filterMessages).
func TestAnalyzeClusterServicePortsInNamespace(t *testing.T) {
	svc := func(ns string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "s", "namespace": ns}, "spec": map[string]any{"ports": []any{map[string]any{"port": int64(8080)}}}}}
	}
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	gwSvc := svc("istio-system") // the Service of the pod the Gateway selects, read for IST0162
	gwSvc.Object["spec"].(map[string]any)["selector"] = map[string]any{"istio": "ingressgateway"}
	client, mapper := fakeCluster(t, existingNamespace("shop"), svc("shop"), gwSvc,
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "ingress-1", "namespace": "istio-system",
			"labels": map[string]any{"istio": "ingressgateway"}}}),
		u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": map[string]any{"name": "gw", "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"istio": "ingressgateway"}, "servers": []any{map[string]any{
				"port": map[string]any{"number": int64(8080), "name": "http", "protocol": "HTTP"}, "hosts": []any{"*"}}}}}))
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Info", cluster: client, mapper: mapper}, nil, &out, &errOut)
	want := "Info [IST0118] (Service shop/s) Port name  (port: 8080, targetPort: 0) doesn't follow the naming convention of Istio port.\n"
	if code != exitAnalyzeFoundIssues || out.String() != want {
		t.Errorf("exit %d, got\n%s%swant\n%s", code, out.String(), errOut.String(), want)
	}
	// All namespaces: both.
	out.Reset()
	errOut.Reset()
	runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Info", cluster: client, mapper: mapper, clusterAllNamespaces: true}, nil, &out, &errOut)
	if strings.Count(out.String(), "[IST0118]") != 2 {
		t.Errorf("all namespaces: got\n%s%s", out.String(), errOut.String())
	}
}
