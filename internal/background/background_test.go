//go:build linux

package background

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// threadNice reads the calling thread's nice value from the kernel
// (proc(5): field 19 of /proc/thread-self/stat).
func threadNice(t *testing.T) int {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])) // from field 3, state
	n, err := strconv.Atoi(fields[19-3])
	if err != nil {
		t.Fatalf("nice field of %q: %v", b, err)
	}
	return n
}

func TestRunLowersOnlyItsThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	callerNice, procs := threadNice(t), runtime.GOMAXPROCS(0)
	var inNice, inProcs int
	if err := Run(func() {
		runtime.Gosched() // still on the same, locked thread
		inNice, inProcs = threadNice(t), runtime.GOMAXPROCS(0)
	}); err != nil {
		t.Fatal(err)
	}
	if inNice != Nice || inProcs != procs+1 {
		t.Errorf("inside Run: nice %d, GOMAXPROCS %d; want %d, %d", inNice, inProcs, Nice, procs+1)
	}
	if got := threadNice(t); got != callerNice {
		t.Errorf("caller's thread nice %d after Run, was %d", got, callerNice)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after Run, was %d", got, procs)
	}
}

func TestConcurrentRunsRestoreGOMAXPROCS(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	lowest := 1 << 30
	for range n {
		wg.Go(func() {
			if err := Run(func() {
				p := runtime.GOMAXPROCS(0)
				mu.Lock()
				lowest = min(lowest, p)
				mu.Unlock()
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if lowest < procs+1 {
		t.Errorf("a Run saw GOMAXPROCS %d, want at least %d", lowest, procs+1)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after %d concurrent Runs, was %d", got, n, procs)
	}
}

func TestRunRaisesPanicInCaller(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the panic of fn", r)
		}
		if got := runtime.GOMAXPROCS(0); got != procs {
			t.Errorf("GOMAXPROCS %d after a panicking Run, was %d", got, procs)
		}
	}()
	_ = Run(func() { panic("boom") })
	t.Error("Run returned after fn panicked")
}
