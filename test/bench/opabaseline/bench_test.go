package opabaseline

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/test/bench"
)

// BenchmarkSideBySide: one in-process decision for bench.LoadRequest, by
// meshguard (policy.Snapshot.Check: decode, input, OPA evaluation of the
// generated module, verdict) and by the OPA "policies as data" baseline
// (OPA-Envoy's input conversion and evaluation), at the same policy counts
// in one binary. hack/bench-compare.sh runs them interleaved and prints the
// ratios; both verdicts are checked equal by TestVerdictsEqualMeshguard.
func BenchmarkSideBySide(b *testing.B) {
	ctx := context.Background()
	req := bench.LoadRequest()
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("impl=meshguard/policies=%d", n), func(b *testing.B) {
			snap, err := policy.Compile(ctx, policy.Mesh{RootNamespace: rootNamespace}, bench.Set(n), 1)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := snap.Check(ctx, req); err != nil || !v.Allowed {
				b.Fatalf("want allowed, got %+v %v", v, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := snap.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("impl=opa-data/policies=%d", n), func(b *testing.B) {
			base, err := New(ctx, bench.Set(n), rootNamespace)
			if err != nil {
				b.Fatal(err)
			}
			if ok, err := base.Allowed(ctx, req); err != nil || !ok {
				b.Fatalf("want allowed, got %v %v", ok, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := base.Allowed(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
