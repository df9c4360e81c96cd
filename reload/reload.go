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
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Watch sends on trigger (without blocking) once its watches are set up, so
// that a change made after the caller's first load but before them is not
// missed, and then whenever something changes in the directory of one of
// files, or anywhere under one of dirs (new subdirectories are watched too,
// and a dir deleted and created again; after a watch error, every directory
// under dirs is watched again). Empty paths are ignored. It returns when ctx
// is done.
func Watch(ctx context.Context, log logr.Logger, trigger chan<- struct{}, files, dirs []string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	fileDirs := map[string]bool{}
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := w.Add(filepath.Dir(f)); err != nil {
			return fmt.Errorf("watch directory of %s: %w", f, err)
		}
		if abs, err := filepath.Abs(filepath.Dir(f)); err == nil {
			fileDirs[abs] = true
		}
	}
	var t *trees
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if t == nil {
			t = &trees{w: w, parents: map[string]bool{}}
		}
		// Absolute, as are then the watched paths and so the events' names
		// ("./policies" from a watch of "." would not be "policies").
		root, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
		// The parent too, as for a file: a root deleted and created again
		// (or a linked root pointed elsewhere) is a new directory that only
		// an event there shows; its old watch went with the old one.
		// Not fatal: the root itself is still watched (a parent this
		// process may not read, e.g. a mount point's, cost nothing before).
		if err := w.Add(filepath.Dir(root)); err != nil {
			log.Error(err, "cannot watch the directory's parent; the directory deleted and created again is seen only after a restart", "dir", root)
		} else if !fileDirs[filepath.Dir(root)] {
			t.parents[filepath.Dir(root)] = true
		}
		t.roots = append(t.roots, root)
		t.resolved = append(t.resolved, "")
		if err := t.addRoot(len(t.roots) - 1); err != nil {
			return err
		}
	}
	notify(trigger)
	return forward(ctx, log, w.Events, w.Errors, trigger, t)
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
	err := Watch(ctx, log, trigger, files, dirs)
	cancel()
	<-done
	return err
}

// trees are the directories watched whole, with every directory under them.
type trees struct {
	w        *fsnotify.Watcher
	roots    []string        // as given, made absolute
	resolved []string        // roots[i] with its symlinks resolved when last added
	parents  map[string]bool // the roots' parents, watched for the roots alone
}

// addRoot watches roots[i] and every directory under it. The root is
// resolved as dirwalk.Files resolves it: filepath.WalkDir does not enter a
// root that is a symlink, so a linked directory would be watched not at all.
func (t *trees) addRoot(i int) error {
	r, err := filepath.EvalSymlinks(t.roots[i])
	if err != nil {
		return fmt.Errorf("watch %s: %w", t.roots[i], err)
	}
	t.resolved[i] = r
	return t.addTree(r)
}

// addTree watches dir and every directory under it, not entering symlinks:
// a directory link dirwalk.Files reads points inside a root (Confine), whose
// real directories are watched here already.
func (t *trees) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := t.w.Add(p); err != nil {
				return fmt.Errorf("watch %s: %w", p, err)
			}
		}
		return nil
	})
}

// created watches dir, a directory just created, if it is a root (created
// again) or under one; a new directory beside a root is not watched.
func (t *trees) created(dir string) error {
	dir = filepath.Clean(dir)
	for i, r := range t.roots {
		if dir == r {
			return t.addRoot(i)
		}
	}
	for _, r := range t.resolved {
		if strings.HasPrefix(dir, r+string(filepath.Separator)) {
			return t.addTree(dir)
		}
	}
	return nil
}

// beside: name is in a root's parent but neither a root nor in a tree (a
// busy /tmp around --policy-dir /tmp/policies): no change of the input.
func (t *trees) beside(name string) bool {
	name = filepath.Clean(name)
	dir := filepath.Dir(name)
	if !t.parents[dir] || slices.Contains(t.roots, name) {
		return false
	}
	for _, r := range t.resolved {
		if dir == r || strings.HasPrefix(dir, r+string(filepath.Separator)) {
			return false
		}
	}
	return true
}

// forward turns watch events and errors into triggers until ctx is done or
// the watcher closes. t, if set, watches a directory created under a
// watched tree or as one of its roots. An error (a kernel queue overflow, a
// directory that could not be watched) means changes may have gone unseen,
// so it triggers a reload as well: every reload reads its whole input again,
// so one extra reload is the way back to the current state, where a logged
// error alone would keep a stale one until the next change. The trees are
// walked again first: a directory whose creation was lost would otherwise
// stay unwatched, and its later changes unseen.
func forward(ctx context.Context, log logr.Logger, events <-chan fsnotify.Event, errs <-chan error, trigger chan<- struct{}, t *trees) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			log.V(2).Info("watched file event", "file", ev.Name, "op", ev.Op.String())
			if t != nil && t.beside(ev.Name) {
				continue
			}
			if t != nil && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					if err := t.created(ev.Name); err != nil {
						log.Error(err, "cannot watch new directory; its later changes are seen only with other changes", "dir", ev.Name)
					}
				}
			}
			notify(trigger)
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			log.Error(err, "watch error; reloading in case a change was missed")
			if t != nil {
				for i := range t.roots {
					if err := t.addRoot(i); err != nil {
						log.Error(err, "cannot watch the directory again; its later changes are seen only with other changes", "dir", t.roots[i])
					}
				}
			}
			notify(trigger)
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

// notify sends on trigger without blocking: one pending trigger is enough.
func notify(trigger chan<- struct{}) {
	select {
	case trigger <- struct{}{}:
	default:
	}
}
