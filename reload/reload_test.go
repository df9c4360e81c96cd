package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// A watched directory given as a symlink (--rego-dir or --policy-dir linked
// elsewhere, read through the link by dirwalk.Files) reports changes under
// its target: filepath.WalkDir does not enter a symlinked root, so nothing
// was watched and hot reload stopped without a word.
func TestWatchFollowsSymlinkedRoot(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "rules")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, logr.Discard(), nil, []string{link}, 10*time.Millisecond, func() {
			select {
			case ran <- struct{}{}:
			default:
			}
		})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-ran: // once watched
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start")
	}
	if err := os.WriteFile(filepath.Join(target, "r.rego"), []byte("package x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a change under the symlinked directory was not reported")
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
