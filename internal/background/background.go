// Package background runs CPU-heavy work beside latency-sensitive work in
// the same process: a policy snapshot rebuilt while ext_authz serves the
// previous one (the swap stall of docs/benchmarks.md "What remains, and
// why (profile)").
//
// Go cannot prioritise goroutines, and a goroutine always runs on one of
// GOMAXPROCS Ps: a rebuild takes one of the two Ps of a 2-core pod for its
// whole duration, and requests queue for the other. Run gives the work a P
// of its own (GOMAXPROCS + 1 while it runs) on an OS thread of the lowest
// priority (nice 19), so the requests keep every P they had and the kernel
// gives the work the CPU they leave. Lowering the priority without the
// extra P is worse than nothing: the niced thread holds a P while the
// kernel keeps it waiting.
package background

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// Nice is the priority Run's work runs at (the lowest; setpriority(2)).
const Nice = 19

var procs struct {
	sync.Mutex
	active int // Runs in progress, each holding one extra P
	base   int // GOMAXPROCS before the first of them
}

// Run runs fn at low priority with one extra P (see the package comment)
// and returns when it has. A panic in fn is raised again in the caller as a
// *PanicError, which keeps the stack of fn's goroutine; runtime.Goexit in fn
// ends the caller's goroutine too.
//
// Where that cannot help, fn runs on the calling goroutine as it would
// without Run, and Run returns why, for the caller to log: the thread's
// priority cannot be lowered (not Linux, or refused), or a CPU quota applies
// to the process (cgroup cpu.max or cpu.cfs_quota_us, e.g. a container CPU
// limit) or cannot be read: under a quota the extra P could spend it faster
// and get the whole process, requests included, throttled until the next
// period, which nice does not prevent.
func Run(fn func()) error { return run(fn, cpuQuota) }

func run(fn func(), quota func() (string, error)) error {
	if q, err := quota(); err != nil || q != "" {
		fn()
		if err != nil {
			return fmt.Errorf("cannot tell whether a CPU quota applies: %w", err)
		}
		return fmt.Errorf("a CPU quota applies (%s)", q)
	}
	// How fn ended: a panic, runtime.Goexit (neither panicked nor
	// returned), or returned.
	type ending struct {
		panic  *PanicError
		goexit bool
	}
	done := make(chan ending, 1)
	errc := make(chan error, 1)
	// GOMAXPROCS changes stop the world, and the thread that asks waits
	// for every P and then restarts them: asked from the niced thread, the
	// requests would wait while the kernel keeps that thread off the CPU.
	// So the caller, at its own priority, adds the P and takes it back.
	addProc(1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, and its
		// priority with it.
		runtime.LockOSThread()
		if err := lowerThreadPriority(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		returned := false
		defer func() {
			if p := recover(); p != nil {
				// The stack is fn's only here: the caller's re-panic
				// would show Run's frames instead of where fn failed.
				done <- ending{panic: &PanicError{Value: p, Stack: debug.Stack()}}
				return
			}
			done <- ending{goexit: !returned}
		}()
		fn()
		returned = true
	}()
	if err := <-errc; err != nil {
		addProc(-1)
		fn()
		return err
	}
	e := <-done
	addProc(-1)
	switch {
	case e.panic != nil:
		panic(e.panic)
	case e.goexit:
		// As if fn had run here: the caller must not go on as though it
		// had returned (its results unset).
		runtime.Goexit()
	}
	return nil
}

// PanicError is a panic of Run's fn raised again in the caller: the value
// fn panicked with and the stack of the goroutine it ran on, which the
// caller's crash report would otherwise lack (as golang.org/x/sync
// singleflight's panicError does for the same reason).
type PanicError struct {
	Value any
	Stack []byte
}

// Error is what the runtime prints for the re-panic: the value, then fn's
// stack.
func (p *PanicError) Error() string {
	return fmt.Sprintf("%v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns the value when it is an error (e.g. a runtime.Error).
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// setProcs and setDefaultProcs change GOMAXPROCS (variables for the tests,
// which check on which thread they run).
var (
	setProcs        = runtime.GOMAXPROCS
	setDefaultProcs = runtime.SetDefaultGOMAXPROCS
)

// addProc moves GOMAXPROCS by delta for the Runs in progress. When the last
// ends, the runtime's own choice is restored (its cgroup-aware default and
// updates, which setting GOMAXPROCS turns off), unless the GOMAXPROCS
// environment variable fixed it, whose value is then kept.
func addProc(delta int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.active == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.active += delta
	switch {
	case procs.active > 0:
		setProcs(procs.base + procs.active)
	case os.Getenv("GOMAXPROCS") == "":
		setDefaultProcs()
	default:
		setProcs(procs.base)
	}
}
