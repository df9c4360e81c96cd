// Package reload is the one file-watching reload loop meshguard uses for its
// hot-reloaded inputs (injector config, mesh config, policy directories):
// watch files and directories with fsnotify (a mounted ConfigMap is updated
// by swapping its ..data symlink, seen as an event on the directory),
// coalesce bursts of events, then run the caller's load-and-swap, which
// keeps the last good value on error.
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
		if err := addTree(d); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			log.V(2).Info("watched file event", "file", ev.Name, "op", ev.Op.String())
			if recursive && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(ev.Name)
				}
			}
			select {
			case trigger <- struct{}{}:
			default:
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Error(err, "watch error")
		}
	}
}

// Debounce calls fn after every burst of triggers, once no further trigger
// arrived for debounce. It returns when ctx is done.
func Debounce(ctx context.Context, trigger <-chan struct{}, debounce time.Duration, fn func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		}
		timer := time.NewTimer(debounce)
	drain:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-trigger:
				if !timer.Stop() {
					<-timer.C
				}
				timer.Reset(debounce)
			case <-timer.C:
				break drain
			}
		}
		fn()
	}
}
