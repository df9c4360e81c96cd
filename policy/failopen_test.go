package policy

import (
	"context"
	"runtime"
	"testing"
)

// TestFailOpenFallback: with EnableFailOpenFallback, a snapshot with user
// modules carries the same policies compiled without them, and the next
// update reuses that fallback's shards as CompileNext reuses a snapshot's;
// there is none without user modules or without the call.
func TestFailOpenFallback(t *testing.T) {
	ctx := context.Background()
	set := func(modules map[string]string) *Set {
		s := &Set{UserModules: modules}
		if _, err := s.AddYAML("p.yaml", []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
`)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	user := map[string]string{"u.rego": "package meshguard.user\nresponse_headers[\"x\"] := \"a\" if true\nresponse_headers[\"x\"] := \"b\" if true\n"}

	plain := NewEngine(Mesh{})
	snap, err := plain.Update(ctx, set(user))
	if err != nil {
		t.Fatal(err)
	}
	if snap.WithoutUserModules() != nil {
		t.Errorf("a fallback without EnableFailOpenFallback")
	}

	e := NewEngine(Mesh{})
	e.EnableFailOpenFallback()
	first, err := e.Update(ctx, set(user))
	if err != nil {
		t.Fatal(err)
	}
	fb := first.WithoutUserModules()
	if fb == nil || fb.Compiled == 0 || fb.Version != first.Version {
		t.Fatalf("fallback %+v, want one compiled at version %d", fb, first.Version)
	}
	r := &Request{Namespace: "foo", Path: "/admin/x", Method: "GET"}
	if _, err := first.CheckRequest(ctx, r); err == nil {
		t.Fatalf("the user module's conflict must be an evaluation error")
	}
	v, err := fb.CheckRequest(ctx, r)
	if err != nil || v.Allowed || v.Policy != "foo/deny-admin" {
		t.Errorf("fallback: %+v %v, want denied by foo/deny-admin", v, err)
	}
	second, err := e.Update(ctx, set(user))
	if err != nil {
		t.Fatal(err)
	}
	if fb2 := second.WithoutUserModules(); fb2 == nil || fb2.Compiled != 0 || fb2.Shards != fb.Shards {
		t.Errorf("unchanged update: fallback %+v, want %d shards reused, none compiled", fb2, fb.Shards)
	}
	third, err := e.Update(ctx, set(nil))
	if err != nil {
		t.Fatal(err)
	}
	if third.WithoutUserModules() != nil {
		t.Errorf("a fallback for a snapshot without user modules")
	}
}

// BenchmarkFailOpenHeap10k: the live heap a 10,000-policy snapshot with a
// user module holds, without and with --fail-open's fallback (the same
// policies compiled again without the module), as `live-MB` after a full
// collection. A figure for docs/operations.md, not a timed test.
func BenchmarkFailOpenHeap10k(b *testing.B) {
	user := map[string]string{"u.rego": "package meshguard.user\ndeny contains \"blocked\" if input.path == \"/blocked\"\n"}
	for _, fallback := range []bool{false, true} {
		name := "without-fallback"
		if fallback {
			name = "with-fallback"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				set := GenerateSet(10000, 100)
				set.UserModules = user
				e := NewEngine(Mesh{})
				if fallback {
					e.EnableFailOpenFallback()
				}
				before := liveHeap()
				snap, err := e.Update(context.Background(), set)
				if err != nil {
					b.Fatal(err)
				}
				if fallback != (snap.WithoutUserModules() != nil) {
					b.Fatalf("fallback compiled: %v, want %v", snap.WithoutUserModules() != nil, fallback)
				}
				b.ReportMetric(float64(liveHeap()-before)/(1<<20), "live-MB")
				runtime.KeepAlive(snap)
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
