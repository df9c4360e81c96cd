package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// A ConfigMap update renames a new ..data symlink over the old one; the
// watched file itself never sees a write. Watch must report it.
func TestWatchSeesConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "mesh"), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gen("..gen1")
	if err := os.Symlink("..gen1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "mesh")
	if err := os.Symlink("..data/mesh", file); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	trigger := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, logr.Discard(), trigger, []string{file}, nil) }()
	defer func() { cancel(); <-done }()
	<-trigger // the watch is set up
	deadline := time.After(10 * time.Second)
	for i := 2; ; i++ {
		// The watch registers asynchronously: swap with fresh generations
		// until one is seen.
		name := fmt.Sprintf("..gen%d", i)
		gen(name)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-trigger:
			return
		case <-deadline:
			t.Fatal("symlink swap not reported")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A burst of triggers inside the debounce window runs fn once.
func TestDebounceCoalescesBursts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{})
	var calls atomic.Int32
	ran := make(chan struct{}, 10)
	first := make(chan struct{})
	go func() { Debounce(ctx, trigger, time.Hour, func() { calls.Add(1); ran <- struct{}{} }); close(first) }()
	for range 5 {
		trigger <- struct{}{} // unbuffered: each is received inside the window
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("fn ran %d times inside the debounce window", n)
	}
	cancel()
	<-first // stopped: it cannot take the next trigger
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go Debounce(ctx2, trigger, time.Millisecond, func() { calls.Add(1); ran <- struct{}{} })
	trigger <- struct{}{}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("fn did not run after the window")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("fn ran %d times, want 1", n)
	}
}

// TestDebounceBoundedUnderStream: triggers that never pause for the
// debounce (Pod churn) still run fn within maxWait of the burst's start,
// while they keep coming.
func TestDebounceBoundedUnderStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{}, 1)
	ran := make(chan struct{}, 1)
	const debounce = 100 * time.Millisecond
	go Debounce(ctx, trigger, debounce, func() {
		select {
		case ran <- struct{}{}:
		default:
		}
	})
	start := time.Now()
	tick := time.NewTicker(debounce / 5)
	defer tick.Stop()
	for {
		select {
		case <-ran:
			if waited := time.Since(start); waited > maxWait(debounce)+2*time.Second {
				t.Fatalf("fn ran only after %s of triggers, want about %s", waited, maxWait(debounce))
			}
			return
		case <-tick.C:
			select {
			case trigger <- struct{}{}:
			default:
			}
			if time.Since(start) > 10*maxWait(debounce) {
				t.Fatalf("fn never ran during %s of triggers %s apart", time.Since(start), debounce/5)
			}
		}
	}
}

// Run calls fn once the file is watched, without any change (so a change
// made before the watch existed is picked up), then again after a change.
func TestRunReadsOnceWatchedThenOnChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh")
	if err := os.WriteFile(file, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, logr.Discard(), []string{file}, nil, time.Millisecond, func() { ran <- struct{}{} })
	}()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("fn did not run once the watch was set up")
	}
	if err := os.WriteFile(file, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("fn did not run after a change")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A watch that cannot be set up is an error, not a silent no-op.
func TestRunFailsOnMissingDirectory(t *testing.T) {
	err := Run(context.Background(), logr.Discard(), []string{filepath.Join(t.TempDir(), "absent", "mesh")}, nil, time.Millisecond, func() {})
	if err == nil {
		t.Fatal("Run on a missing directory returned nil")
	}
}

// A watch error (a kernel queue overflow drops events) triggers a reload, so
// a change lost with the overflow is still picked up.
func TestWatchErrorTriggersReload(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan fsnotify.Event)
	errs := make(chan error)
	trigger := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- forward(ctx, logr.Discard(), events, errs, trigger, nil) }()
	errs <- fsnotify.ErrEventOverflow
	select {
	case <-trigger:
	case <-time.After(10 * time.Second):
		t.Fatal("watch error did not trigger a reload")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// watchDirs runs Watch on dirs until the test ends, once it is set up.
func watchDirs(t *testing.T, dirs ...string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	trigger := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, logr.Discard(), trigger, nil, dirs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	select {
	case <-trigger:
	case <-time.After(10 * time.Second):
		t.Fatal("no trigger once the watch was set up")
	}
	return trigger
}

// expectTrigger makes change(1), change(2), ... until a trigger arrives: the
// watch registers asynchronously.
func expectTrigger(t *testing.T, trigger <-chan struct{}, what string, change func(i int)) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 1; ; i++ {
		change(i)
		select {
		case <-trigger:
			return
		case <-deadline:
			t.Fatalf("%s not reported", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func writeFile(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(p), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A watched directory given as a symlink (--policy-dir /etc/policies ->
// /data/policies) is watched where it leads: filepath.WalkDir did not enter
// the link, so nothing was watched and no change was ever reloaded.
func TestWatchSymlinkedDir(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	trigger := watchDirs(t, link)
	expectTrigger(t, trigger, "a change under the linked directory", func(i int) {
		writeFile(t, filepath.Join(real, fmt.Sprintf("p%d.yaml", i)))
	})
}

// A watched directory deleted and created again (a deploy that replaces the
// policy directory) is watched again: its watch went with the old
// directory, and nothing in it was reloaded until a restart. A new directory
// beside it is not watched. The directory may be given as a relative path.
func TestWatchDirCreatedAgain(t *testing.T) {
	t.Run("absolute", func(t *testing.T) { testWatchDirCreatedAgain(t, false) })
	t.Run("relative", func(t *testing.T) { testWatchDirCreatedAgain(t, true) })
}

func testWatchDirCreatedAgain(t *testing.T, relative bool) {
	dir := t.TempDir()
	root := filepath.Join(dir, "policies")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	given := root
	if relative {
		t.Chdir(dir)
		given = "./policies"
	}
	trigger := watchDirs(t, given)
	expectTrigger(t, trigger, "a change in the directory", func(i int) {
		writeFile(t, filepath.Join(root, fmt.Sprintf("p%d.yaml", i)))
	})
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	sibling := filepath.Join(dir, "other")
	if err := os.Mkdir(sibling, 0o755); err != nil {
		t.Fatal(err)
	}
	// The deletion and creation trigger too: wait until they are all
	// forwarded (the new watch is added before the creation's trigger).
	for quiet := false; !quiet; {
		select {
		case <-trigger:
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	writeFile(t, filepath.Join(sibling, "x.yaml"))
	select {
	case <-trigger:
		t.Fatal("a change in a directory beside the watched one was reported")
	case <-time.After(300 * time.Millisecond):
	}
	writeFile(t, filepath.Join(root, "new.yaml"))
	select {
	case <-trigger:
	case <-time.After(10 * time.Second):
		t.Fatal("a change in the directory created again not reported")
	}
}

// After a watch error (a kernel queue overflow), a directory whose creation
// event was lost is watched too: only the reload was triggered, and changes
// in that directory went unseen for good.
func TestWatchErrorWatchesLostDirectories(t *testing.T) {
	dir := t.TempDir()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tr := &trees{w: w, roots: []string{dir}, resolved: []string{""}}
	if err := tr.addRoot(0); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub") // its Create event lost in the overflow
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error)
	trigger := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- forward(ctx, logr.Discard(), nil, errs, trigger, tr) }()
	errs <- fsnotify.ErrEventOverflow
	<-trigger
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resolved, _ := filepath.EvalSymlinks(sub)
	if !slices.Contains(w.WatchList(), resolved) {
		t.Errorf("after the overflow, watched %q; want %s among them", w.WatchList(), resolved)
	}
}

// A directory given as a relative path (--policy-dir .) has its new
// subdirectories watched too.
func TestWatchRelativeDirNewSubdirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	trigger := watchDirs(t, ".")
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for quiet := false; !quiet; { // the creation's trigger
		select {
		case <-trigger:
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	writeFile(t, filepath.Join(sub, "p.yaml"))
	select {
	case <-trigger:
	case <-time.After(10 * time.Second):
		t.Fatal("a change in a new subdirectory of a relative root not reported")
	}
}

// The parent of a watched directory is watched for that directory alone: a
// change beside it (a busy /tmp around --policy-dir /tmp/policies) triggers
// no reload.
func TestWatchIgnoresSiblings(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "policies")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	trigger := watchDirs(t, root)
	writeFile(t, filepath.Join(dir, "scratch"))
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	select {
	case <-trigger:
		t.Fatal("a change beside the watched directory triggered a reload")
	case <-time.After(300 * time.Millisecond):
	}
	writeFile(t, filepath.Join(root, "p.yaml"))
	select {
	case <-trigger:
	case <-time.After(10 * time.Second):
		t.Fatal("a change in the watched directory not reported")
	}
}

// TestMaxWait: a stream of changes postpones a reload by at most ten quiet
// periods and never less than a second; at the default 100 ms debounce that
// is the second docs/operations.md promises.
func TestMaxWait(t *testing.T) {
	for _, c := range []struct{ debounce, want time.Duration }{
		{100 * time.Millisecond, time.Second},
		{10 * time.Millisecond, time.Second},
		{time.Second, 10 * time.Second},
	} {
		if got := maxWait(c.debounce); got != c.want {
			t.Errorf("maxWait(%s) = %s, want %s", c.debounce, got, c.want)
		}
	}
}
