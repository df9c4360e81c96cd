package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// `meshguard analyze -f` honours galley.istio.io/analyze-suppress as
// istioctl analyze does (Istio: pkg/config/analysis/local/istiod_analyze.go
// filterMessages; analysis/suppress.go): the annotated VirtualService's
// IST0101 and the annotated Service's IST0118 are not printed, the
// unannotated VirtualService's IST0101 and the Pod's misplaced annotation
// (IST0107, analysis/annotations.go) are.
func TestAnalyzeSuppressAnnotation(t *testing.T) {
	const manifest = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: quiet
  namespace: shop
  annotations:
    galley.istio.io/analyze-suppress: IST0107,IST0101
spec:
  hosts: [quiet]
  http:
  - route: [{destination: {host: missing}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: loud, namespace: shop}
spec:
  hosts: [loud]
  http:
  - route: [{destination: {host: missing}}]
---
apiVersion: v1
kind: Service
metadata:
  name: unnamed
  namespace: shop
  annotations: {galley.istio.io/analyze-suppress: IST0118}
spec:
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: shop
  annotations: {kubernetes.io/ingress.class: istio}
`
	file := filepath.Join(t.TempDir(), "suppress.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{file}, output: "log", namespace: "default", failureThreshold: "Info"}, nil, &out, &errOut)
	want := "Error [IST0101] (VirtualService shop/loud " + file + "#1) Referenced host not found: \"missing\"\n" +
		"Warning [IST0107] (Pod shop/p) Misplaced annotation: kubernetes.io/ingress.class can only be applied to Ingress\n"
	if code != exitAnalyzeFoundIssues || out.String() != want {
		t.Errorf("exit %d, got\n%s%swant\n%s", code, out.String(), errOut.String(), want)
	}
}
