package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

type fnRunnable struct {
	fn     func(context.Context) error
	leader bool
}

func (r fnRunnable) Start(ctx context.Context) error { return r.fn(ctx) }
func (r fnRunnable) NeedLeaderElection() bool        { return r.leader }

// recordingManager records what reaches the manager's own Add.
type recordingManager struct {
	manager.Manager
	added []manager.Runnable
}

func (m *recordingManager) Add(r manager.Runnable) error { m.added = append(m.added, r); return nil }

// TestLeaderManagerRoutes: Runnables that run on every replica go to the
// manager; leader-only ones (and those that do not say) to the group, which
// the manager runs on every replica; a failing leader Runnable stops the
// others and its error ends the group.
func TestLeaderManagerRoutes(t *testing.T) {
	rec := &recordingManager{}
	g := &leaderGroup{log: logr.Discard()}
	lm := leaderManager{Manager: rec, group: g}
	every := fnRunnable{fn: func(ctx context.Context) error { <-ctx.Done(); return nil }}
	stopped := make(chan struct{})
	boom := errors.New("boom")
	_ = lm.Add(every)
	_ = lm.Add(fnRunnable{leader: true, fn: func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil }})
	_ = lm.Add(manager.RunnableFunc(func(context.Context) error { time.Sleep(10 * time.Millisecond); return boom }))
	if len(rec.added) != 1 || len(g.runnables) != 2 {
		t.Fatalf("manager got %d, group %d Runnables; want 1 and 2", len(rec.added), len(g.runnables))
	}
	done := make(chan error, 1)
	go func() { done <- g.Start(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("group ended with %v, want %v", err, boom)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("group did not end after a Runnable failed")
	}
	select {
	case <-stopped:
	default:
		t.Error("the other leader Runnable was not stopped before the group returned")
	}
}
