//go:build linux

package background

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
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
	// 19: the lowest priority there is (setpriority(2)), as documented.
	if inNice != 19 || inProcs != procs+1 {
		t.Errorf("inside Run: nice %d, GOMAXPROCS %d; want %d, %d", inNice, inProcs, 19, procs+1)
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

// TestRunUnderQuotaRunsPlainly: under a CPU quota, or when whether one
// applies cannot be told, fn runs on the caller's thread, at its priority,
// with GOMAXPROCS unchanged, and Run says why.
func TestRunUnderQuotaRunsPlainly(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	callerNice, procs := threadNice(t), runtime.GOMAXPROCS(0)
	unreadable := errors.New("/proc/self/mountinfo: unreadable")
	for _, tc := range []struct {
		name    string
		quota   string
		err     error
		wantErr string
	}{
		{"quota", "/sys/fs/cgroup/cpu.max: 200000 100000", nil, "a CPU quota applies (/sys/fs/cgroup/cpu.max: 200000 100000)"},
		{"cannot tell", "", unreadable, "cannot tell whether a CPU quota applies: /proc/self/mountinfo: unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inNice, inProcs := -100, -1
			err := run(func() { inNice, inProcs = threadNice(t), runtime.GOMAXPROCS(0) },
				func() (string, error) { return tc.quota, tc.err })
			if err == nil || err.Error() != tc.wantErr || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Run: error %v, want %q", err, tc.wantErr)
			}
			if inNice != callerNice || inProcs != procs {
				t.Errorf("fn ran at nice %d with GOMAXPROCS %d; want the caller's %d and %d", inNice, inProcs, callerNice, procs)
			}
		})
	}
}

// TestNestedRunsAddOneProcEach: each Run in progress holds one P above
// GOMAXPROCS as it was before the first of them.
func TestNestedRunsAddOneProcEach(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	var outer, inner, after int
	if err := run(func() {
		outer = runtime.GOMAXPROCS(0)
		if err := run(func() { inner = runtime.GOMAXPROCS(0) }, noQuota); err != nil {
			t.Error(err)
		}
		after = runtime.GOMAXPROCS(0)
	}, noQuota); err != nil {
		t.Fatal(err)
	}
	if outer != procs+1 || inner != procs+2 || after != procs+1 {
		t.Errorf("GOMAXPROCS in the outer Run %d, the inner %d, the outer after it %d; want %d, %d, %d",
			outer, inner, after, procs+1, procs+2, procs+1)
	}
}

// TestProcsChangedAtCallerPriority: the extra P is added and taken back by
// the caller, never by the niced thread: a GOMAXPROCS change stops the
// world, and a world stopped by a thread the kernel keeps waiting would
// hold every request (docs/benchmarks.md, swap stalls). Also when fn
// panics, and for the runtime's default restored at the end.
func TestProcsChangedAtCallerPriority(t *testing.T) {
	callerNice := threadNice(t)
	var mu sync.Mutex
	var seen []int // the nice value of the thread of each change
	record := func() {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, threadNice(t))
	}
	t.Cleanup(func() { setProcs, setDefaultProcs = runtime.GOMAXPROCS, runtime.SetDefaultGOMAXPROCS })
	setProcs = func(n int) int { record(); return runtime.GOMAXPROCS(n) }
	setDefaultProcs = func() { record(); runtime.SetDefaultGOMAXPROCS() }
	t.Setenv("GOMAXPROCS", "")
	if err := run(func() {}, noQuota); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = run(func() { panic("boom") }, noQuota)
	}()
	if len(seen) != 4 {
		t.Fatalf("%d GOMAXPROCS changes, want 4 (one P added and taken back per Run)", len(seen))
	}
	for i, n := range seen {
		if n != callerNice {
			t.Errorf("GOMAXPROCS change %d made at nice %d, want the caller's %d", i, n, callerNice)
		}
	}
}

// TestRunRestoresRuntimeChoice: when the last Run ends GOMAXPROCS is the
// runtime's default again, whatever it was set to before (setting it turned
// the default and its cgroup updates off), unless the GOMAXPROCS environment
// variable fixed it: that value is kept.
func TestRunRestoresRuntimeChoice(t *testing.T) {
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)
	for _, tc := range []struct {
		env  string
		want int
	}{
		{"", def},
		{strconv.Itoa(def + 3), def + 3},
	} {
		t.Setenv("GOMAXPROCS", tc.env)
		runtime.GOMAXPROCS(def + 3)
		if err := run(func() {}, noQuota); err != nil {
			t.Fatal(err)
		}
		if got := runtime.GOMAXPROCS(0); got != tc.want {
			t.Errorf("GOMAXPROCS environment variable %q: GOMAXPROCS %d after Run, want %d", tc.env, got, tc.want)
		}
	}
}

// mountinfo lines (proc_pid_mountinfo(5)) for TestFindQuota.
const (
	miRoot   = "22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
	miV2     = "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
	miV1Mem  = "31 22 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	miV1CPU  = "32 22 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct\n"
	miStd    = miRoot + miV2 + miV1Mem + miV1CPU
	cgHybrid = "4:memory:/x\n2:cpu,cpuacct:/v1pod/c\n1:name=systemd:/\n0::/v2pod\n"
)

// TestFindQuota: the cgroup and its mount are found as the Go runtime finds
// them (src/internal/runtime/cgroup/cgroup.go: parseCPUCgroup,
// parseCPUMount), wherever the hierarchy is mounted; before, quota.go read
// fixed paths under /sys/fs/cgroup and found no quota on any other mount.
// Input it cannot read or understand is no quota with an error.
func TestFindQuota(t *testing.T) {
	std := map[string]string{
		"sys/fs/cgroup/cpu.max":                            "max 100000\n",
		"sys/fs/cgroup/kubepods/cpu.max":                   "max 100000\n",
		"sys/fs/cgroup/kubepods/pod1/cpu.max":              "200000 100000\n",
		"sys/fs/cgroup/kubepods/pod1/c1/cpu.max":           "max 100000\n",
		"sys/fs/cgroup/free/cpu.max":                       "max 100000\n",
		"sys/fs/cgroup/bad/cpu.max":                        "max\n",
		"sys/fs/cgroup/badnum/cpu.max":                     "lots 100000\n",
		"sys/fs/cgroup/huge/cpu.max":                       strings.Repeat("9", 100) + " 100000\n",
		"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":       "-1\n",
		"sys/fs/cgroup/cpu,cpuacct/v1pod/cpu.cfs_quota_us": "50000\n",
		"sys/fs/cgroup/cpu,cpuacct/v1bad/cpu.cfs_quota_us": "garbage\n",
		"sys/fs/cgroup/v2pod/cpu.max":                      "300000 100000\n",
		"run/cg/pod/cpu.max":                               "100000 100000\n",
		"run/my cg/pod/cpu.max":                            "100000 100000\n",
		"run/nested/cpu.max":                               "400000 100000\n",
		"run/px/cpu.max":                                   "100000 100000\n",
		"run/v1/pod/cpu.cfs_quota_us":                      "20000\n",
		"sys/fs/cgroup/init/cpu.max":                       "100000 100000\n",
	}
	const missing, dir = "\x00missing", "\x00dir"
	for _, c := range []struct {
		name, cgroup, mountinfo string
		want                    string
		err                     string // in the error; "" for none
	}{
		// The standard mounts: as quota.go read them before.
		{"root cgroup", "0::/\n", miStd, "", ""},
		{"no limit", "0::/free\n", miStd, "", ""},
		{"an ancestor's limit", "0::/kubepods/pod1/c1\n", miStd, "/sys/fs/cgroup/kubepods/pod1/cpu.max: 200000 100000", ""},
		{"only the root's", "0::/docker/abc\n", miStd, "", ""},
		{"v1 without the cpu controller", "4:memory:/x\n1:name=systemd:/\n", miStd, "", ""},
		{"v1 unlimited", "4:memory:/x\n2:cpu,cpuacct:/\n1:name=systemd:/\n", miStd, "", ""},
		{"v1 limit", "2:cpu,cpuacct:/v1pod/c\n", miStd, "/sys/fs/cgroup/cpu,cpuacct/v1pod/cpu.cfs_quota_us: 50000", ""},
		{"hybrid: v1 cpu first", cgHybrid, miStd, "/sys/fs/cgroup/cpu,cpuacct/v1pod/cpu.cfs_quota_us: 50000", ""},
		{"hybrid: v1 cpu after v2", "0::/v2pod\n2:cpu,cpuacct:/v1pod/c\n", miStd, "/sys/fs/cgroup/cpu,cpuacct/v1pod/cpu.cfs_quota_us: 50000", ""},
		{"the first of two mounts", "0::/pod\n", miRoot + "40 22 0:37 / /run/cg rw - cgroup2 none rw\n41 22 0:37 / /run/px rw - cgroup2 none rw\n", "/run/cg/pod/cpu.max: 100000 100000", ""},
		{"v2 after v1 lines without cpu", "4:memory:/x\n0::/v2pod\n", miStd, "/sys/fs/cgroup/v2pod/cpu.max: 300000 100000", ""},
		// Where the runtime would find them and fixed paths did not.
		{"v2 elsewhere", "0::/pod\n", miRoot + "40 22 0:37 / /run/cg rw - cgroup2 none rw\n", "/run/cg/pod/cpu.max: 100000 100000", ""},
		{"escaped mount point", "0::/pod\n", miRoot + "40 22 0:37 / /run/my\\040cg rw - cgroup2 none rw\n", "/run/my cg/pod/cpu.max: 100000 100000", ""},
		{"mount root is the cgroup", "0::/kubepods/pod9\n", miRoot + "40 22 0:37 /kubepods/pod9 /run/nested rw - cgroup2 none rw\n", "/run/nested/cpu.max: 400000 100000", ""},
		{"first mount holding the cgroup", "0::/pod\n", miRoot + "40 22 0:37 /other /sys/fs/cgroup rw - cgroup2 none rw\n41 22 0:37 / /run/cg rw - cgroup2 none rw\n", "/run/cg/pod/cpu.max: 100000 100000", ""},
		{"root is a prefix, not an ancestor", "0::/podx\n", miRoot + "40 22 0:37 /pod /run/px rw - cgroup2 none rw\n", "", ""},
		{"v1 mount without cpu skipped", "3:cpu:/pod\n", miRoot + "31 22 0:28 / /run/mem rw - cgroup cgroup rw,memory\n40 22 0:29 / /run/v1 rw - cgroup cgroup rw,cpu\n", "/run/v1/pod/cpu.cfs_quota_us: 20000", ""},
		{"outside the cgroup namespace", "0::/../../init\n", miStd, "", ""},
		{"outside the namespace, one up", "0::/..\n", miRoot + "40 22 0:37 / /run/px rw - cgroup2 none rw\n", "", ""},
		{"v1 only on a cgroup mount", "3:cpu:/pod\n", miRoot + "40 22 0:37 / /run/px rw - cgroup2 none rw,cpu\n41 22 0:29 / /run/v1 rw - cgroup cgroup rw,cpu\n", "/run/v1/pod/cpu.cfs_quota_us: 20000", ""},
		{"no CPU cgroup", "4:memory:/x\n", miRoot + "40 22 0:37 / /run/px rw - cgroup2 none rw\n", "", ""},
		{"hierarchy not mounted", "0::/pod\n", miRoot, "", ""},
		{"no /proc/self/cgroup", missing, miStd, "", ""},
		{"empty /proc/self/cgroup", "", miStd, "", ""},
		// Input it cannot understand.
		{"no /proc/self/mountinfo", "0::/\n", missing, "", "mountinfo"},
		{"malformed cgroup line", "garbage\n", miStd, "", "/proc/self/cgroup: line \"garbage\""},
		{"relative cgroup path", "0::pod\n", miStd, "", "/proc/self/cgroup"},
		{"mountinfo not a file", "0::/\n", dir, "", "/proc/self/mountinfo"},
		{"malformed mountinfo line", "0::/\n", "1 2 3\n", "", "/proc/self/mountinfo: line"},
		{"bad escape", "0::/pod\n", "40 22 0:37 / /run/x\\09 rw - cgroup2 none rw\n", "", "escape"},
		{"relative mount point", "0::/pod\n", "40 22 0:37 / run rw - cgroup2 none rw\n", "", "absolute"},
		{"malformed cpu.max", "0::/bad\n", miStd, "", "/sys/fs/cgroup/bad/cpu.max"},
		{"malformed quota number", "0::/badnum\n", miStd, "", "/sys/fs/cgroup/badnum/cpu.max"},
		{"malformed cfs_quota_us", "2:cpu:/v1bad\n", miStd, "", "v1bad/cpu.cfs_quota_us"},
		{"huge quota file", "0::/huge\n", miStd, "", "longer than 64 bytes"},
		{"quota file a directory", "0::/dir\n", miStd, "", "/sys/fs/cgroup/dir/cpu.max"},
		{"huge line", "0::/" + strings.Repeat("a", maxProcLine) + "\n", miStd, "", "longer than"},
		{"huge file", "0::/\n", miRoot + strings.Repeat(miV1Mem, maxProcFile/len(miV1Mem)+1), "", "longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := fstest.MapFS{"sys/fs/cgroup/dir/cpu.max/x": {}}
			for p, v := range std {
				root[p] = &fstest.MapFile{Data: []byte(v)}
			}
			if c.cgroup != missing {
				root["proc/self/cgroup"] = &fstest.MapFile{Data: []byte(c.cgroup)}
			}
			if c.mountinfo == dir {
				root["proc/self/mountinfo/x"] = &fstest.MapFile{}
			} else if c.mountinfo != missing {
				root["proc/self/mountinfo"] = &fstest.MapFile{Data: []byte(c.mountinfo)}
			}
			got, err := findQuota(root)
			if got != c.want || (err != nil) != (c.err != "") || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Errorf("findQuota = %q, %v; want %q, error containing %q", got, err, c.want, c.err)
			}
		})
	}
}
