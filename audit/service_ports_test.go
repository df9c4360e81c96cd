package audit

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// The Service port name analyzer (analysis/service.go, Istio's
// service.PortNameAnalyzer) reports on Services, which the audit reads
// for reference only (Snapshot.Kube) and does not report on: an
// ExternalName Service with an unnamed port (IST0150, a Warning) neither
// fails the run nor becomes a violation.
func TestCheckLeavesServiceMessagesOut(t *testing.T) {
	var svc map[string]any
	if err := yaml.Unmarshal([]byte(`apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec:
  type: ExternalName
  externalName: ext.example.com
  ports: [{port: 443}]
`), &svc); err != nil {
		t.Fatal(err)
	}
	got, err := Check(t.Context(), Snapshot{Kube: []map[string]any{svc}}, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("got %v, %v; want no violation and no error", got, err)
	}
}
