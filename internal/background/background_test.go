//go:build linux

package background

import (
	"errors"
	"io/fs"
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
	if err := run(func() {
		runtime.Gosched() // still on the same, locked thread
		inNice, inProcs = threadNice(t), runtime.GOMAXPROCS(0)
	}, noQuota); err != nil {
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
			if err := run(func() {
				p := runtime.GOMAXPROCS(0)
				mu.Lock()
				lowest = min(lowest, p)
				mu.Unlock()
			}, noQuota); err != nil {
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

// TestRunRaisesPanicInCaller: fn's panic is raised again in the caller with
// its value and the stack of fn's goroutine, so the crash report shows where
// fn panicked, not only where Run re-panicked.
func TestRunRaisesPanicInCaller(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	boom := errors.New("boom")
	defer func() {
		r := recover()
		p, ok := r.(*PanicError)
		if !ok {
			t.Fatalf("recovered %T %v, want a *PanicError", r, r)
		}
		if p.Value != boom || !errors.Is(p, boom) {
			t.Errorf("recovered value %v, want the panic of fn", p.Value)
		}
		if !strings.Contains(p.Error(), "boom") || !strings.Contains(p.Error(), "background.panickingWork(") {
			t.Errorf("re-panic reads %q; want fn's value and its stack, with the frame that panicked", p.Error())
		}
		if got := runtime.GOMAXPROCS(0); got != procs {
			t.Errorf("GOMAXPROCS %d after a panicking Run, was %d", got, procs)
		}
	}()
	_ = run(func() { panickingWork(boom) }, noQuota)
	t.Error("Run returned after fn panicked")
}

//go:noinline
func panickingWork(err error) { panic(err) }

// TestRunGoexitEndsCaller: fn calling runtime.Goexit (t.FailNow, say) ends
// the caller's goroutine as it would without Run; before, Run returned nil
// as if fn had returned, and the caller went on with fn's results unset.
func TestRunGoexitEndsCaller(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	returned, ended := false, make(chan struct{})
	go func() {
		defer close(ended)
		_ = run(runtime.Goexit, noQuota)
		returned = true
	}()
	<-ended
	if returned {
		t.Error("Run returned after fn called runtime.Goexit")
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after Run, was %d", got, procs)
	}
}

func noQuota() (string, error) { return "", nil }

// TestRunUnderQuotaRunsPlainly: under a CPU quota fn runs on the caller's
// thread, at its priority, with GOMAXPROCS unchanged, and Run says why.
func TestRunUnderQuotaRunsPlainly(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	callerNice, procs := threadNice(t), runtime.GOMAXPROCS(0)
	var inNice, inProcs int
	err := run(func() { inNice, inProcs = threadNice(t), runtime.GOMAXPROCS(0) },
		func() (string, error) { return "/sys/fs/cgroup/cpu.max: 200000 100000", nil })
	if err == nil || !strings.Contains(err.Error(), "cpu.max: 200000 100000") {
		t.Errorf("Run under a quota: error %v, want one naming the quota", err)
	}
	if inNice != callerNice || inProcs != procs {
		t.Errorf("under a quota fn ran at nice %d with GOMAXPROCS %d; want the caller's %d and %d", inNice, inProcs, callerNice, procs)
	}
}

func TestFindQuota(t *testing.T) {
	files := map[string]string{
		"/sys/fs/cgroup/cpu.max":                            "max 100000\n",
		"/sys/fs/cgroup/kubepods/cpu.max":                   "max 100000\n",
		"/sys/fs/cgroup/kubepods/pod1/cpu.max":              "200000 100000\n",
		"/sys/fs/cgroup/kubepods/pod1/c1/cpu.max":           "max 100000\n",
		"/sys/fs/cgroup/free/cpu.max":                       "max 100000\n",
		"/sys/fs/cgroup/bad/cpu.max":                        "max\n",
		"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":       "-1\n",
		"/sys/fs/cgroup/cpu,cpuacct/v1pod/cpu.cfs_quota_us": "50000\n",
	}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
	for _, c := range []struct {
		cgroup, want string
		err          bool
	}{
		{"0::/\n", "", false},
		{"0::/free\n", "", false},
		{"0::/kubepods/pod1/c1\n", "/sys/fs/cgroup/kubepods/pod1/cpu.max: 200000 100000", false}, // an ancestor's limit
		{"0::/docker/abc\n", "", false}, // not under this mount: the root's
		{"0::/bad\n", "", true},
		{"4:memory:/x\n2:cpu,cpuacct:/\n1:name=systemd:/\n", "", false},
		{"2:cpu,cpuacct:/v1pod/c\n", "/sys/fs/cgroup/cpu,cpuacct/v1pod/cpu.cfs_quota_us: 50000", false},
		{"garbage\n", "", true},
	} {
		got, err := findQuota(c.cgroup, read)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("findQuota(%q) = %q, %v; want %q, error %v", c.cgroup, got, err, c.want, c.err)
		}
	}
}
