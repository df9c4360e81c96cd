package authz

import (
	"sync"
	"testing"
)

// TestHotStacksReuseMostRecent: sequential calls run on one worker (the
// most recently idle), and run returns only after f has.
func TestHotStacksReuseMostRecent(t *testing.T) {
	h := newHotStacks(4)
	for i := 0; i < 10; i++ {
		ran := false
		h.run(func() { ran = true })
		if !ran {
			t.Fatalf("call %d: run returned before f ran", i)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n != 1 || len(h.idle) != 1 {
		t.Fatalf("10 sequential calls: %d workers started, %d idle; want 1 and 1", h.n, len(h.idle))
	}
}

// TestHotStacksBounded: concurrent calls get a worker each up to the bound;
// beyond it they run in place, and every call completes.
func TestHotStacksBounded(t *testing.T) {
	const max, calls = 3, 8
	h := newHotStacks(max)
	release := make(chan struct{})
	started := make(chan struct{}, calls)
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.run(func() { started <- struct{}{}; <-release })
		}()
	}
	for i := 0; i < calls; i++ {
		<-started // all eight are inside f at once: none waits for a worker
	}
	close(release)
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n != max || len(h.idle) != max {
		t.Fatalf("%d concurrent calls with bound %d: %d workers started, %d idle", calls, max, h.n, len(h.idle))
	}
}

// BenchmarkHotStacksRun: the cost of handing a call to a hot worker and
// waiting for it, against calling in place.
func BenchmarkHotStacksRun(b *testing.B) {
	h := newHotStacks(maxHotStacks)
	n := 0
	f := func() { n++ }
	b.Run("hop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.run(f)
		}
	})
	b.Run("inplace", func(b *testing.B) {
		for b.Loop() {
			f()
		}
	})
}
