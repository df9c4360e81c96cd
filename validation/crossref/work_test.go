package crossref

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// countWork returns the work (index lookups and the entries they visit, see
// work) of the CheckLimit and References calls fn makes. Tests that use it
// must not run in parallel: workHook is one variable.
func countWork(t *testing.T, fn func()) int {
	t.Helper()
	n := 0
	workHook = func(w int) { n += w }
	defer func() { workHook = nil }()
	fn()
	return n
}

// assertLinearWork runs check at size n and 4n and requires the work of the
// larger to be at most 5 times the smaller's: linear work is 4 times (plus
// a fixed part), work quadratic in the size (the regressions these tests
// guard against, each a scan of the index per destination, host or server)
// 16 times. Work, not time: a timed bound depends on the machine and its
// load, and let a regression of up to the bound's margin pass.
func assertLinearWork(t *testing.T, n int, check func(size int)) {
	t.Helper()
	small := countWork(t, func() { check(n) })
	large := countWork(t, func() { check(4 * n) })
	if small <= 0 {
		t.Fatalf("no work counted at size %d", n)
	}
	if large > 5*small {
		t.Errorf("work %d at size %d, %d at size %d: %.1f times for 4 times the size, want at most 5 (linear)",
			small, n, large, 4*n, float64(large)/float64(small))
	} else {
		t.Logf("work %d at size %d, %d at size %d (%.2fx)", small, n, large, 4*n, float64(large)/float64(small))
	}
}

// TestCountWorkSeesChecks: a check counts work, more for a larger input,
// and none when no hook is set (the production path).
func TestCountWorkSeesChecks(t *testing.T) {
	ix := NewIndex("")
	ix.SetService("shop", "reviews", true)
	ix.SetReady()
	vs := func(n int) *networking.VirtualService {
		r := &networking.HTTPRoute{}
		for range n {
			r.Route = append(r.Route, &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "reviews"}})
		}
		return &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{r}}
	}
	one := countWork(t, func() { ix.Check("VirtualService", Key{"shop", "vs"}, vs(1)) })
	ten := countWork(t, func() { ix.Check("VirtualService", Key{"shop", "vs"}, vs(10)) })
	refs := countWork(t, func() { ix.References("VirtualService", Key{"shop", "vs"}, vs(10)) })
	if one <= 0 || ten <= one || refs <= 0 {
		t.Errorf("work: Check of 1 destination %d, of 10 %d; References %d", one, ten, refs)
	}
	if workHook != nil {
		t.Error("countWork left workHook set")
	}
}
