package audit

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshguard/meshguard/validation/crossref"

	"github.com/meshguard/meshguard/analysis"
)

// gatewayVS is a VirtualService routing to a host that does not exist
// (IST0101, an Error).
func gatewayVS(ns, name string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s, namespace: %s}
spec:
  hosts: [%s.example.com]
  http:
  - route: [{destination: {host: missing}}]
`, name, ns, name)
}

// The audit lists its violations, and each namespace's PolicyReport its
// results, in the order `meshguard analyze` prints its messages, istioctl
// analyze's (Istio: pkg/config/analysis/diag/messages.go Messages.Sort):
// level (Error first), code, then the object as "Kind/name/namespace", one
// comparison (analysis.Compare) for both. The audit sorted by object first,
// namespace before name.
func TestCheckOrdersAsAnalyze(t *testing.T) {
	dup := object(t, "u-dup", duplicateMatchVS) // shop/dup: IST0130, a Warning
	snap := Snapshot{
		Objects: []Object{object(t, "u-az", gatewayVS("a", "vz")), object(t, "u-by", gatewayVS("b", "vy")),
			object(t, "u-ax", gatewayVS("shop", "vx")), dup},
		Services:   []crossref.Key{{Namespace: "shop", Name: "reviews"}}, // dup's destination
		Namespaces: map[string]map[string]string{"a": {}, "b": {}, "shop": {}},
	}
	got, err := Check(t.Context(), snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, v := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s/%s", v.Level, v.Code, v.Object.Namespace, v.Object.Name))
	}
	want := []string{
		"Error IST0101 shop/vx", // name vx before vy before vz, whatever the namespace
		"Error IST0101 b/vy",
		"Error IST0101 a/vz",
		"Warning IST0130 shop/dup", // a Warning after every Error
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("Check order\ngot  %q\nwant %q", lines, want)
	}
	// One rule: the violations are sorted by analysis.Compare.
	if !slices.IsSortedFunc(got, func(a, b Violation) int { return analysis.Compare(a.message(), b.message()) }) {
		t.Errorf("not in analysis.Compare's order: %q", lines)
	}
	// A PolicyReport lists its results in the same order, whatever the order
	// it is given.
	slices.Reverse(got)
	report := Reports(got, time.Unix(0, 0))["shop"]
	results, _ := report.Object["results"].([]any)
	var names []string
	for _, r := range results {
		res := r.(map[string]any)["resources"].([]any)[0].(map[string]any)
		names = append(names, r.(map[string]any)["policy"].(string)+" "+res["name"].(string))
	}
	if want := []string{"IST0101 vx", "IST0130 dup"}; !slices.Equal(names, want) {
		t.Errorf("report results %q, want %q", names, want)
	}
}
