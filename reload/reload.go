// Package reload is the one reload machinery meshguard uses for its
// hot-reloaded inputs (injector config, ext_authz policy state, the mesh
// config ext_authz reads): Watch files and directories with fsnotify (a
// mounted ConfigMap is updated by swapping its ..data symlink, seen as an
// event on the directory), Debounce bursts of events, then Store.Update:
// build and validate the whole new value, swap it in atomically, keep the
// last good one on error, and report both outcomes the same way for every
// input (metrics labelled by Source, a log line, one on-reject hook).
package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Watch sends on trigger (without blocking) whenever something changes in
// the directory of one of files, or anywhere under one of dirs (new
// subdirectories are watched too). Empty paths are ignored. It returns when
// ctx is done.
func Watch(ctx context.Context, log logr.Logger, trigger chan<- struct{}, files, dirs []string) error {
	return watch(ctx, log, trigger, files, dirs, nil)
}

// Run calls fn once the files and dirs are watched (so a change made before
// is not missed) and then after every burst of changes, once none came for
// debounce (Watch + Debounce). It returns when ctx is done, or with the
// error if the watch cannot be set up.
func Run(ctx context.Context, log logr.Logger, files, dirs []string, debounce time.Duration, fn func()) error {
	trigger := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Debounce(ctx, trigger, debounce, fn)
	}()
	err := watch(ctx, log, trigger, files, dirs, func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	})
	cancel()
	<-done
	return err
}

func watch(ctx context.Context, log logr.Logger, trigger chan<- struct{}, files, dirs []string, watching func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	addTree := func(root string) error {
		return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if err := w.Add(p); err != nil {
					return fmt.Errorf("watch %s: %w", p, err)
				}
			}
			return nil
		})
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := w.Add(filepath.Dir(f)); err != nil {
			return fmt.Errorf("watch directory of %s: %w", f, err)
		}
	}
	recursive := false
	for _, d := range dirs {
		if d == "" {
			continue
		}
		recursive = true
		// The tree dirwalk.Files reads: filepath.WalkDir does not enter a
		// root that is a symlink, which would watch nothing under it.
		root, err := filepath.EvalSymlinks(d)
		if err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
		if err := addTree(root); err != nil {
			return err
		}
	}
	if watching != nil {
		watching()
	}
	var addDir func(string) error
	if recursive {
		addDir = addTree
	}
	return forward(ctx, log, w.Events, w.Errors, trigger, addDir)
}

// forward turns watch events and errors into triggers until ctx is done or
// the watcher closes. addDir, if set, watches a directory created under a
// watched tree. An error (a kernel queue overflow, a directory that could not
// be watched) means changes may have gone unseen, so it triggers a reload as
// well: every reload reads its whole input again, so one extra reload is the
// way back to the current state, where a logged error alone would keep a
// stale one until the next change.
func forward(ctx context.Context, log logr.Logger, events <-chan fsnotify.Event, errs <-chan error, trigger chan<- struct{}, addDir func(string) error) error {
	notify := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			log.V(2).Info("watched file event", "file", ev.Name, "op", ev.Op.String())
			if addDir != nil && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					if err := addDir(ev.Name); err != nil {
						log.Error(err, "cannot watch new directory; its later changes are seen only with other changes", "dir", ev.Name)
					}
				}
			}
			notify()
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			log.Error(err, "watch error; reloading in case a change was missed")
			notify()
		}
	}
}

// Debounce calls fn after every burst of triggers, once no further trigger
// arrived for debounce, and at the latest maxWait(debounce) after the
// burst's first trigger: a stream of triggers less than debounce apart (Pod
// churn in a busy cluster) must not hold back a reload, and so new
// policies, indefinitely. It returns when ctx is done.
func Debounce(ctx context.Context, trigger <-chan struct{}, debounce time.Duration, fn func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		}
		deadline := time.Now().Add(maxWait(debounce))
		timer := time.NewTimer(debounce)
	drain:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-trigger:
				// Go 1.23 timers: Reset drops an expiry not received yet (a
				// receive after Stop would block for good).
				timer.Reset(min(debounce, time.Until(deadline)))
			case <-timer.C:
				break drain
			}
		}
		fn()
	}
}

// maxWait is how long Debounce lets a burst postpone fn: ten quiet periods,
// at least a second.
func maxWait(debounce time.Duration) time.Duration { return max(10*debounce, time.Second) }
