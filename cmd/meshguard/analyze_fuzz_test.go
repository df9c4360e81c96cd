package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzAnalyzeCLIInput runs arbitrary stdin through `meshguard analyze -f -
// -o json` with a fuzzed failure threshold: no panic; exit 0, 65 (input not
// parsed) or 79 (a message at the threshold) only; the output is a JSON list
// of messages each naming its code and its object (kind and name) or, for a
// document without them, its origin; a message at or above
// the threshold exactly when the exit code is 79. Seeds: Istio's analyzer
// test inputs (analysis/testdata/istio-analyzers) and odd documents: the
// Kubernetes kinds analyze reads (Pods, Deployments, ConfigMaps, Secrets,
// webhook configurations) with wrong types, nulls and Lists.
func FuzzAnalyzeCLIInput(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "analysis", "testdata", "istio-analyzers", "*.yaml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data), uint8(0))
	}
	for _, s := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {galley.istio.io/analyze-suppress: '*'}}\nspec: {containers: [{name: istio-proxy, image: auto, securityContext: {runAsUser: 1337}}]}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {metadata: {labels: null}, spec: {containers: null}}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-sidecar-injector, namespace: istio-system}\ndata: {values: '{\"global\": 7}'}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: [x]}\n",
		"apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: w}\nwebhooks: [{name: a.istio.io, namespaceSelector: {matchExpressions: [{key: k, operator: Bogus}]}}]\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {istio-injection: enabled, istio.io/rev: ''}}\n",
		"apiVersion: v1\nkind: List\nitems: [null, 7, {kind: Pod}]\n",
	} {
		f.Add(s, uint8(1))
	}
	thresholds := []string{"Info", "Warning", "Error"}
	f.Fuzz(func(t *testing.T, in string, level uint8) {
		threshold := thresholds[int(level)%len(thresholds)]
		var out, errOut bytes.Buffer
		code := runAnalyze(t.Context(), analyzeOptions{files: []string{"-"}, output: "json", namespace: "default", failureThreshold: threshold,
			maxInputBytes: 1 << 20, istioNamespace: "istio-system"}, strings.NewReader(in), &out, &errOut)
		if code != 0 && code != exitAnalyzeDataError && code != exitAnalyzeFoundIssues {
			t.Fatalf("exit code %d: %s", code, errOut.String())
		}
		var msgs []struct{ Code, Level, Kind, Object, Origin string }
		if err := json.Unmarshal(out.Bytes(), &msgs); err != nil {
			t.Fatalf("output is not a JSON list: %v\n%s", err, out.String())
		}
		atThreshold := false
		for _, m := range msgs {
			if m.Code == "" || (m.Kind == "" || m.Object == "") && m.Origin == "" {
				t.Fatalf("message without code, or naming neither its object nor its document: %+v", m)
			}
			switch {
			case threshold == "Info", threshold == "Warning" && m.Level != "Info", m.Level == "Error":
				atThreshold = true
			}
		}
		if atThreshold != (code == exitAnalyzeFoundIssues) {
			t.Fatalf("exit %d with a message at %s: %v", code, threshold, atThreshold)
		}
	})
}
