package main

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metadatafake "k8s.io/client-go/metadata/fake"
)

// --kubeconfig: the Secrets of the namespace of the pods a Gateway selects
// are listed through the metadata API only (listGatewaySecrets), so a
// credentialName naming none of them is IST0101 (Istio:
// pkg/config/analysis/analyzers/gateway/secret.go SecretAnalyzer), while no
// Secret data is ever read: the metadata fake holds names only, the dynamic
// client is never asked for Secrets, and the one metadata request is a list
// of the pods' namespace. A Secret of the Gateway's own namespace does not
// count (Istio reads the pods'). Without a metadata client nothing is
// listed and no credentialName is reported.
func TestAnalyzeClusterGatewaySecrets(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	gw := func(name, credential string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"istio": "ingressgateway"}, "servers": []any{map[string]any{
				"port":  map[string]any{"number": int64(443), "name": "https", "protocol": "HTTPS"},
				"tls":   map[string]any{"mode": "SIMPLE", "credentialName": credential},
				"hosts": []any{name + ".example.com"}}}}}) // distinct hosts: no IST0145
	}
	client, mapper := fakeCluster(t,
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "ingress-1", "namespace": "istio-system",
			"labels": map[string]any{"istio": "ingressgateway"}}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "istio-ingressgateway", "namespace": "istio-system"},
			"spec": map[string]any{"selector": map[string]any{"istio": "ingressgateway"},
				"ports": []any{map[string]any{"name": "https", "port": int64(443), "protocol": "TCP"}}}}),
		gw("found", "shop-cert"), gw("missing", "in-shop-only"))
	secret := func(ns, name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		secret("istio-system", "shop-cert"), secret("shop", "in-shop-only"))

	var out, errOut bytes.Buffer
	o := analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Error", cluster: client, mapper: mapper,
		clusterAllNamespaces: true, clusterMetadata: meta}
	code := runAnalyze(t.Context(), o, nil, &out, &errOut)
	want := `Error [IST0101] (Gateway shop/missing cluster gateways.networking.istio.io) Referenced credentialName not found: "in-shop-only"` + "\n"
	if code != exitAnalyzeFoundIssues || out.String() != want {
		t.Errorf("exit %d, got\n%s%swant\n%s", code, out.String(), errOut.String(), want)
	}
	var metaActions []string
	for _, a := range meta.Actions() {
		metaActions = append(metaActions, a.GetVerb()+" "+a.GetResource().Resource+" "+a.GetNamespace())
	}
	if strings.Join(metaActions, ",") != "list secrets istio-system" {
		t.Errorf("metadata requests %q, want one list of secrets in istio-system", metaActions)
	}
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "secrets" {
			t.Errorf("the dynamic client read Secrets: %v", a)
		}
	}

	// No metadata client: the Secrets are unknown, nothing reported.
	out.Reset()
	errOut.Reset()
	o.clusterMetadata = nil
	if code := runAnalyze(t.Context(), o, nil, &out, &errOut); code != 0 || strings.Contains(out.String(), "credentialName") {
		t.Errorf("without metadata client: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
