package opabaseline

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/test/bench"
)

const rootNamespace = "istio-system"

// TestVerdictsEqualMeshguard: on every benchmark request, at every benchmark
// policy count, the baseline allows exactly what meshguard allows, so the
// two benchmarks compare the same decisions. It also requires both verdicts
// to occur, so an always-allow or always-deny baseline cannot pass.
func TestVerdictsEqualMeshguard(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{10, 1000, 10000} {
		t.Run(fmt.Sprintf("policies=%d", n), func(t *testing.T) {
			if n == 10000 && testing.Short() {
				t.Skip("10,000 policies compile for seconds; -short")
			}
			set := bench.Set(n)
			snap, err := policy.Compile(ctx, policy.Mesh{RootNamespace: rootNamespace}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			base, err := New(ctx, set, rootNamespace)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[bool]int{}
			for _, r := range bench.Requests() {
				v, err := snap.Check(ctx, r.Req)
				if err != nil {
					t.Fatalf("%s: meshguard: %v", r.Name, err)
				}
				got, err := base.Allowed(ctx, r.Req)
				if err != nil {
					t.Fatalf("%s: baseline: %v", r.Name, err)
				}
				if got != v.Allowed {
					t.Errorf("%s: baseline allowed=%v, meshguard allowed=%v (%s %s: %s)", r.Name, got, v.Allowed, v.Action, v.Policy, v.Reason)
				}
				seen[v.Allowed]++
			}
			if seen[true] == 0 || seen[false] == 0 {
				t.Errorf("requests exercise only one verdict: %v", seen)
			}
			if v, _ := snap.Check(ctx, bench.LoadRequest()); !v.Allowed || v.Policy != "ns-0/p-0" {
				t.Errorf("load request: want allowed by ns-0/p-0, got %+v", v)
			}
		})
	}
}
