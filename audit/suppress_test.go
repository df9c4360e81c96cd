package audit

import (
	"fmt"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/validation/crossref"
)

// TestCheckSuppressAnnotation: a stored object's
// galley.istio.io/analyze-suppress annotation suppresses the codes it names
// in the audit as in `meshguard analyze` (analysis/suppress.go, Istio's
// filterMessages): "IST0101" hides the IST0101 of one VirtualService and not
// its neighbour's, "*" hides every analyzer code of another but not its
// organisation-rule findings (none here), and an object validation rejects
// keeps its IST0106 whatever it says. The Pods of Snapshot.Kube are read for
// workloads; the annotation analyzer's messages about them (a misplaced
// annotation) are `meshguard analyze`'s and not an audit failure.
func TestCheckSuppressAnnotation(t *testing.T) {
	vs := func(uid, name, suppress, weight string) Object {
		annotations := ""
		if suppress != "" {
			annotations = fmt.Sprintf(", annotations: {galley.istio.io/analyze-suppress: %q}", suppress)
		}
		return object(t, uid, fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s, namespace: shop%s}
spec:
  hosts: [%s]
  http:
  - route: [{destination: {host: reviews, subset: v9}, weight: %s}]
`, name, annotations, name, weight))
	}
	var pod map[string]any
	if err := yaml.Unmarshal([]byte(`apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, annotations: {kubernetes.io/ingress.class: istio}}
`), &pod); err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{
		Objects: []Object{
			vs("u-plain", "plain", "", "100"),
			vs("u-code", "code", "IST0102,IST0101", "100"),
			vs("u-space", "space", "IST0102, IST0101", "100"), // " IST0101" names no code, as in Istio
			vs("u-star", "star", "*", "100"),
			vs("u-rejected", "rejected", "*", "-1"),
		},
		Services: []crossref.Key{{Namespace: "shop", Name: "reviews"}},
		Kube:     []map[string]any{pod},
	}
	got, err := Check(t.Context(), snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, v := range got {
		lines = append(lines, v.Object.UID+" "+v.Code)
	}
	want := []string{"u-plain IST0101", "u-space IST0101", "u-rejected IST0106"} // istioctl's order: code first
	if !slices.Equal(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
}
