package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// --kubeconfig: the pods each Telemetry selector selects are listed in the
// Telemetry's namespace (listSelectedWorkloads), so two Telemetries
// selecting one pod are IST0159 and a selector matching no pod IST0101, as
// Istio's telemetry.SelectorAnalyzer reports them (analysis/telemetry.go);
// without the listing the pods would be missing and both selectors IST0101.
func TestAnalyzeClusterTelemetrySelectors(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	tel := func(name string, sel map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"matchLabels": sel},
				"tracing": []any{map[string]any{"randomSamplingPercentage": 10.0}}}})
	}
	client, mapper := fakeCluster(t, existingNamespace("shop"),
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "ratings-1", "namespace": "shop",
			"labels": map[string]any{"app": "ratings"}}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "gone-1", "namespace": "other",
			"labels": map[string]any{"app": "gone"}}}),
		tel("ratings", map[string]any{"app": "ratings"}),
		tel("ratings-too", map[string]any{"app": "ratings"}),
		tel("gone", map[string]any{"app": "gone"}),
	)
	var out, errOut bytes.Buffer
	runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Error", cluster: client, mapper: mapper}, nil, &out, &errOut)
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "(Telemetry ") {
			got = append(got, l)
		}
	}
	const ratings = `The Telemetries [ratings ratings-too] in namespace "shop" select the same workload pod "ratings-1", which can lead to undefined behavior.`
	want := []string{
		`Error [IST0101] (Telemetry shop/gone cluster telemetries.telemetry.istio.io) Referenced selector not found: "app=gone"`,
		`Error [IST0159] (Telemetry shop/ratings cluster telemetries.telemetry.istio.io) ` + ratings,
		`Error [IST0159] (Telemetry shop/ratings-too cluster telemetries.telemetry.istio.io) ` + ratings,
	}
	slices.Sort(got) // the order is analysis.Sort's, tested there
	if !slices.Equal(got, want) {
		t.Errorf("Telemetry lines:\n%s\nwant\n%s\n(all output:\n%s%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String(), errOut.String())
	}
}
