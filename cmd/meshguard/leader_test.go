package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
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

// TestLeaderGroupStartsRunnableAddedWhileLeading: a leader-only Runnable
// added while this replica leads starts at once, as controller-runtime's
// manager starts one added after it started (pkg/manager/runnable_group.go
// runnableGroup.Add); before, it waited for the next term, which without a
// lost Lease never came. It stops with the term.
func TestLeaderGroupStartsRunnableAddedWhileLeading(t *testing.T) {
	g := &leaderGroup{log: logr.Discard()}
	lm := leaderManager{Manager: &recordingManager{}, group: g}
	leading := make(chan struct{})
	_ = lm.Add(manager.RunnableFunc(func(ctx context.Context) error { close(leading); <-ctx.Done(); return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	<-leading
	lateStarted, lateStopped := make(chan struct{}), make(chan struct{})
	_ = lm.Add(manager.RunnableFunc(func(ctx context.Context) error {
		close(lateStarted)
		<-ctx.Done()
		close(lateStopped)
		return nil
	}))
	select {
	case <-lateStarted:
	case <-time.After(5 * time.Second):
		t.Fatal("a Runnable added while leading did not start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
	select {
	case <-lateStopped:
	default:
		t.Error("the group returned before the late Runnable stopped")
	}
}

// memLock is a resourcelock.Interface held in memory; failing makes every
// Update fail, as when the API server is away.
type memLock struct {
	mu      sync.Mutex
	rec     *resourcelock.LeaderElectionRecord
	failing atomic.Bool
}

func (l *memLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rec == nil {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "leases"}, "test")
	}
	r := *l.rec
	b, _ := json.Marshal(r)
	return &r, b, nil
}

func (l *memLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = &r
	return nil
}

func (l *memLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	if l.failing.Load() {
		return errors.New("API server away")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = &r
	return nil
}

func (*memLock) RecordEvent(string) {}
func (*memLock) Identity() string   { return "replica-a" }
func (*memLock) Describe() string   { return "test/lease" }

// TestLostLeaseStuckWorkExits: once the Lease cannot be renewed, another
// replica may take it leaseDuration after the last renewal. Leader-only work
// that has not stopped by then would run on two leaders at once, so the
// process exits instead (controller-runtime's manager ends on a lost Lease,
// pkg/manager/internal.go OnStoppedLeading). Before, the group waited for
// the work without bound.
func TestLostLeaseStuckWorkExits(t *testing.T) {
	lock := &memLock{}
	exited := make(chan error, 1)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	g := &leaderGroup{log: logr.Discard(), lease: "test", lock: lock,
		leaseDuration: 600 * time.Millisecond, renewDeadline: 400 * time.Millisecond, retryPeriod: 100 * time.Millisecond,
		exit: func(err error) { exited <- err }}
	g.runnables = []manager.Runnable{manager.RunnableFunc(func(context.Context) error {
		close(started)
		<-release // ignores its context
		return nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = g.Start(ctx) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the group did not lead")
	}
	lock.failing.Store(true)
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "did not stop") {
			t.Errorf("exit with %v, want an error saying the work did not stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("leader-only work kept running after the Lease was lost, and the process did not exit")
	}
}

// TestLostLeaseWorkStopsAndLeadsAgain: work that stops when told does not
// end the process; the group campaigns again and leads once renewals work.
func TestLostLeaseWorkStopsAndLeadsAgain(t *testing.T) {
	lock := &memLock{}
	exited := make(chan error, 1)
	starts := make(chan struct{}, 4)
	stops := make(chan struct{}, 4)
	g := &leaderGroup{log: logr.Discard(), lease: "test", lock: lock,
		leaseDuration: 600 * time.Millisecond, renewDeadline: 400 * time.Millisecond, retryPeriod: 100 * time.Millisecond,
		exit: func(err error) { exited <- err }}
	g.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
		starts <- struct{}{}
		<-ctx.Done()
		stops <- struct{}{}
		return nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	select {
	case <-starts:
	case <-time.After(30 * time.Second):
		t.Fatal("the group did not lead")
	}
	lock.failing.Store(true)
	// The Lease is lost once the work is told to stop (not after a fixed
	// time, which a loaded machine may need more than to lose it).
	select {
	case <-stops:
	case err := <-exited:
		t.Fatalf("exited (%v) though the work stops when told", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the work was not stopped though renewals fail: the Lease was not lost")
	}
	lock.failing.Store(false)
	select {
	case <-starts:
	case err := <-exited:
		t.Fatalf("exited (%v) though the work stopped", err)
	case <-time.After(5 * time.Second):
		t.Fatal("did not lead again")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
}
