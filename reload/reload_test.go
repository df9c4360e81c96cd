package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

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
