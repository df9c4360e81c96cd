package authz

import "sync"

// hotStacks runs calls on a few long-lived goroutines, the most recently
// idle first. OPA's evaluation recurses deeply: on a fresh goroutine (gRPC's
// path for every call its stream workers cannot take) the stack is grown and
// copied several times per call, and on a worker that sat idle longest (gRPC
// hands calls to its workers in turn) the stack is cold in the cache. The
// most recently idle goroutine's stack is both grown and hot
// (docs/benchmarks.md, "gRPC stream workers").
type hotStacks struct {
	mu   sync.Mutex
	idle []*hotWorker // a stack: the last one pushed is the hottest
	n    int          // workers started
	max  int          // beyond this many busy workers, calls run in place
}

type hotWorker struct {
	work chan func()
	done chan struct{}
}

// maxHotStacks bounds the evaluation goroutines a server keeps (each holds
// its grown stack, some tens of KB); evaluations beyond that many at once run
// on their caller's goroutine.
const maxHotStacks = 64

func newHotStacks(max int) *hotStacks { return &hotStacks{max: max} }

// run calls f on a hot worker and returns when f has returned.
func (h *hotStacks) run(f func()) {
	h.mu.Lock()
	var w *hotWorker
	if n := len(h.idle); n > 0 {
		w = h.idle[n-1]
		h.idle = h.idle[:n-1]
	} else if h.n < h.max {
		h.n++
		w = &hotWorker{work: make(chan func()), done: make(chan struct{})}
		go h.loop(w)
	}
	h.mu.Unlock()
	if w == nil {
		f()
		return
	}
	w.work <- f
	<-w.done
}

func (h *hotStacks) loop(w *hotWorker) {
	for f := range w.work {
		f()
		h.mu.Lock()
		h.idle = append(h.idle, w)
		h.mu.Unlock()
		w.done <- struct{}{}
	}
}
