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
	_ = lm.Add(manager.RunnableFunc(func(context.Context) error { return boom }))
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
// Update fail, as when the API server is away. With hold set, the first
// failing Update signals hanging and returns only once hold is closed,
// ignoring its context (a request answered late, a process descheduled):
// client-go's renew poll waits for it, so Run gives the Lease up late.
type memLock struct {
	mu      sync.Mutex
	rec     *resourcelock.LeaderElectionRecord
	written time.Time // when the last successful write began
	failing atomic.Bool
	hold    chan struct{}
	hanging chan struct{}
	hung    atomic.Bool
}

// lastWrite is when the last successful write began: the earliest a
// follower can have seen it.
func (l *memLock) lastWrite() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written
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
	began := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = &r
	l.written = began
	return nil
}

func (l *memLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	began := time.Now()
	if l.failing.Load() {
		if l.hold != nil && l.hung.CompareAndSwap(false, true) {
			close(l.hanging)
			<-l.hold
		}
		return errors.New("API server away")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = &r
	l.written = began
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
	g := newTestGroup(lock, fastTiming, exited)
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
	g := newTestGroup(lock, fastTiming, exited)
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

// TestLostLeaseLateRunExits: a follower may take the Lease leaseDuration
// after it saw the last renewal, which is no earlier than that renewal's
// write began. client-go's Run can give the Lease up later than that (its
// renew poll waits for a request that returns late; here it never gives up
// while the test runs), so the group does not wait for Run: it stops the
// work itself (stopWorkAt), and exits only if the work is still running at
// the Lease's deadline. Work that stops when told stops before expiry
// without an exit; work that ignores its context ends the process before
// expiry. Before, the bound started when Run returned, which here is only
// once the hanging renewal is let go; with the bound counted from the
// renewal but no stop of its own, even work that stops when told exited.
func TestLostLeaseLateRunExits(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ignoresCancel bool
	}{
		{"work stops when told", false},
		{"work ignores its context", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lock := &memLock{hold: make(chan struct{}), hanging: make(chan struct{})}
			defer close(lock.hold)
			exited := make(chan error, 1)
			started, stopped, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
			defer close(release)
			g := newTestGroup(lock, fastTiming, exited)
			g.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
				close(started)
				if tc.ignoresCancel {
					<-release
				} else {
					<-ctx.Done()
				}
				close(stopped)
				return nil
			})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = g.Start(ctx) }()
			await(t, started, 10*time.Second, "the group to lead")
			lock.failing.Store(true)
			await(t, lock.hanging, 10*time.Second, "a renewal to hang")
			// No write succeeds from here on: the Lease may be taken at expiry.
			expiry := lock.lastWrite().Add(g.leaseDuration)
			select {
			case err := <-exited:
				if !tc.ignoresCancel {
					t.Fatalf("exited (%v) though the work stops as soon as told", err)
				}
				if late := time.Since(expiry); late > 0 {
					t.Errorf("exited %v after the Lease could be taken", late)
				}
				if !strings.Contains(err.Error(), "did not stop") {
					t.Errorf("exit with %v, want an error saying the work did not stop", err)
				}
			case <-stopped:
				if tc.ignoresCancel {
					t.Fatal("work that ignores its context stopped")
				}
				if late := time.Since(expiry); late > 0 {
					t.Errorf("the work stopped %v after the Lease could be taken", late)
				}
			case <-time.After(time.Until(expiry)):
				t.Fatal("leader-only work still ran, and the process had not exited, when another replica could take the Lease")
			}
		})
	}
}

// slowThenAwayLock is a memLock whose next renewal, once armed, is applied
// at once but answered only after delay (a loaded API server, within the
// request timeout), and every renewal after it fails (the API server away).
// A write giving the Lease up (holder "") while working reports work still
// running is counted in releasedWhileWorking.
type slowThenAwayLock struct {
	*memLock
	delay                time.Duration
	armed                chan struct{}
	slowed               atomic.Bool
	working              *atomic.Int32
	releasedWhileWorking atomic.Int32
}

func (l *slowThenAwayLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if r.HolderIdentity == "" && l.working.Load() > 0 {
		l.releasedWhileWorking.Add(1)
	}
	select {
	case <-l.armed:
		if l.slowed.CompareAndSwap(false, true) {
			err := l.memLock.Update(ctx, r)
			l.failing.Store(true)
			time.Sleep(l.delay) // the response's latency
			return err
		}
	default:
	}
	return l.memLock.Update(ctx, r)
}

// TestSlowRenewalThenOutageStopsWorkAndCampaignsAgain: in
// client-go v0.36.3 the renew poll after a successful renewal starts
// retryPeriod after that request returned and gives up renewDeadline later
// (tools/leaderelection/leaderelection.go LeaderElector.renew), so a slow
// last renewal delays Run's give-up by its latency, past the Lease's
// deadline when it is slower than the work's stop budget. The group stops
// the work itself in time instead of exiting: the replica keeps serving,
// never gives the Lease up while its work runs, campaigns again and leads
// once the API server is back, with never two terms' work at once. Timing
// is the production timing scaled by 1/5 (15 s, 10 s, 2 s, 1 s slack, a 5 s
// request timeout); before, the process exited here.
func TestSlowRenewalThenOutageStopsWorkAndCampaignsAgain(t *testing.T) {
	var working atomic.Int32
	lock := &slowThenAwayLock{memLock: &memLock{}, delay: time.Second, armed: make(chan struct{}), working: &working}
	exited := make(chan error, 1)
	starts, stops := make(chan struct{}, 4), make(chan time.Time, 4)
	g := newTestGroup(lock, scaledTiming, exited)
	g.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
		if n := working.Add(1); n > 1 {
			t.Errorf("%d terms' work at once", n)
		}
		starts <- struct{}{}
		<-ctx.Done() // stops at once when told
		working.Add(-1)
		stops <- time.Now()
		return nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	await(t, starts, 10*time.Second, "the group to lead")
	close(lock.armed)
	var stoppedAt time.Time
	select {
	case err := <-exited:
		t.Fatalf("exited (%v) though the work stops as soon as told", err)
	case stoppedAt = <-stops:
	case <-time.After(10 * time.Second):
		t.Fatal("the work was not stopped though renewals fail")
	}
	// No write succeeds after the slow renewal: the Lease may be taken at
	// expiry, and the process would exit at its deadline.
	expiry := lock.lastWrite().Add(g.heldFor())
	if late := stoppedAt.Sub(g.leaseDeadline(lock.lastWrite())); late > 0 {
		t.Errorf("the work stopped %v after the Lease's deadline", late)
	}
	select {
	case err := <-exited:
		t.Fatalf("exited (%v) after the work stopped", err)
	case <-time.After(time.Until(expiry)):
	}
	lock.failing.Store(false)
	select {
	case <-starts:
	case err := <-exited:
		t.Fatalf("exited (%v) though the work stopped", err)
	case <-time.After(5 * time.Second):
		t.Fatal("did not campaign and lead again once renewals work")
	}
	cancel()
	if err := await(t, done, 10*time.Second, "the group to end"); err != nil {
		t.Errorf("Start: %v", err)
	}
	if n := lock.releasedWhileWorking.Load(); n > 0 {
		t.Errorf("the Lease was given up %d times while leader-only work ran", n)
	}
}

// TestHealthyLeaseNeverSelfStops: watchLease's self-stop is
// counted from the last renewal, so while renewals succeed it keeps moving
// and the work, held well past stopWorkAt of the first acquire, is started
// once and never stopped, and the process does not exit. Timing is the
// production timing scaled by 1/5 (15 s, 10 s, 2 s, 1 s slack).
func TestHealthyLeaseNeverSelfStops(t *testing.T) {
	lock := &memLock{}
	exited := make(chan error, 1)
	starts, stops := make(chan struct{}, 4), make(chan struct{}, 4)
	g := newTestGroup(lock, scaledTiming, exited)
	g.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
		starts <- struct{}{}
		<-ctx.Done()
		stops <- struct{}{}
		return nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	await(t, starts, 10*time.Second, "the group to lead")
	acquired := lock.lastWrite()
	// Three self-stop periods: a self-stop not pushed back by renewals
	// happens within the first.
	period := g.stopWorkAt(acquired).Sub(acquired)
	hold := time.After(time.Until(acquired.Add(3 * period)))
	select {
	case <-stops:
		t.Fatal("the work was stopped though every renewal succeeded")
	case <-starts:
		t.Fatal("the work was started twice though every renewal succeeded")
	case err := <-exited:
		t.Fatalf("exited (%v) though every renewal succeeded", err)
	case <-hold:
	}
	if renewed := lock.lastWrite(); !renewed.After(g.stopWorkAt(acquired)) {
		t.Fatalf("last renewal at %v, not after the first self-stop time %v: the Lease was not renewed", renewed, g.stopWorkAt(acquired))
	}
	cancel()
	if err := await(t, done, 10*time.Second, "the group to end"); err != nil {
		t.Errorf("Start: %v", err)
	}
	if n := len(stops); n != 1 {
		t.Errorf("%d stops after shutdown, want 1", n)
	}
}

// TestLeaseDeadline: the work must stop leaseSlack before a follower may
// take the Lease, which it counts in the whole seconds written to it.
func TestLeaseDeadline(t *testing.T) {
	renewed := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lease, slack time.Duration
		want         time.Duration // after renewed
	}{
		{15 * time.Second, time.Second, 14 * time.Second},
		{15*time.Second + 900*time.Millisecond, time.Second, 14 * time.Second}, // the Lease says 15 s
		{2 * time.Second, 300 * time.Millisecond, 1700 * time.Millisecond},
		{1500 * time.Millisecond, 0, time.Second},
		{600 * time.Millisecond, 0, 0}, // the Lease says 0 s
	} {
		g := &leaderGroup{leaseDuration: tc.lease, leaseSlack: tc.slack}
		if got := g.leaseDeadline(renewed).Sub(renewed); got != tc.want {
			t.Errorf("lease %v, slack %v: deadline %v after the renewal, want %v", tc.lease, tc.slack, got, tc.want)
		}
	}
}

// TestLeaseStopWorkAt: the work is told to stop retryPeriod+renewDeadline after
// the last renewal began (when client-go gives up if that renewal returned
// at once), leaving it until leaseDeadline to stop: 2 s with the defaults.
func TestLeaseStopWorkAt(t *testing.T) {
	renewed := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lease, renew, retry, slack time.Duration
		stop, budget               time.Duration
	}{
		{leaseDuration, renewDeadline, retryPeriod, leaseSlack, 12 * time.Second, 2 * time.Second},
		{3 * time.Second, 2 * time.Second, 400 * time.Millisecond, 200 * time.Millisecond, 2400 * time.Millisecond, 400 * time.Millisecond},
		{2 * time.Second, time.Second, 200 * time.Millisecond, 300 * time.Millisecond, 1200 * time.Millisecond, 500 * time.Millisecond},
	} {
		g := &leaderGroup{leaseDuration: tc.lease, renewDeadline: tc.renew, retryPeriod: tc.retry, leaseSlack: tc.slack}
		stop := g.stopWorkAt(renewed)
		if got := stop.Sub(renewed); got != tc.stop {
			t.Errorf("lease %v, renew %v, retry %v: work told to stop %v after the renewal, want %v", tc.lease, tc.renew, tc.retry, got, tc.stop)
		}
		if got := g.leaseDeadline(renewed).Sub(stop); got != tc.budget {
			t.Errorf("lease %v, renew %v, retry %v, slack %v: %v to stop, want %v", tc.lease, tc.renew, tc.retry, tc.slack, got, tc.budget)
		}
	}
}

// TestLeaseTimingChecked: timing that leaves the work no time to stop once
// client-go gives a Lease up is refused, naming the Lease, rather than
// ending the process on every lost Lease (or every term).
func TestLeaseTimingChecked(t *testing.T) {
	for _, tc := range []struct {
		lease, renew, retry, slack time.Duration
		ok                         bool
	}{
		{leaseDuration, renewDeadline, retryPeriod, leaseSlack, true},
		{2 * time.Second, time.Second, 200 * time.Millisecond, 300 * time.Millisecond, true},
		{600 * time.Millisecond, 400 * time.Millisecond, 100 * time.Millisecond, 0, false}, // written as 0 s
		{15 * time.Second, 10 * time.Second, 2 * time.Second, 3 * time.Second, false},
	} {
		g := &leaderGroup{lease: "test", lock: &memLock{}, log: logr.Discard(),
			leaseDuration: tc.lease, renewDeadline: tc.renew, retryPeriod: tc.retry, leaseSlack: tc.slack}
		err := g.checkTiming()
		if tc.ok != (err == nil) {
			t.Errorf("lease %v, renew %v, retry %v, slack %v: %v, want ok=%v", tc.lease, tc.renew, tc.retry, tc.slack, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `"test"`) {
			t.Errorf("error %q does not name the Lease", err)
		}
	}
}

// idLock is a lock whose writes fail when fail is set; it names replica-a.
type idLock struct {
	resourcelock.Interface
	fail bool
}

func (l idLock) Create(context.Context, resourcelock.LeaderElectionRecord) error { return l.err() }
func (l idLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return l.err() }
func (idLock) Identity() string                                                  { return "replica-a" }
func (l idLock) err() error {
	if l.fail {
		return errors.New("API server away")
	}
	return nil
}

// TestLeaseRenewalClockNotes: only a successful write naming this replica (an
// acquire or a renewal, client-go tryAcquireOrRenew) moves the last
// renewal, to when that write began; failed writes and a release do not.
func TestLeaseRenewalClockNotes(t *testing.T) {
	rec := func(holder string) resourcelock.LeaderElectionRecord {
		return resourcelock.LeaderElectionRecord{HolderIdentity: holder}
	}
	for _, tc := range []struct {
		name  string
		write func(*renewalClock) error
		noted bool
	}{
		{"create", func(l *renewalClock) error { return l.Create(context.Background(), rec("replica-a")) }, true},
		{"update", func(l *renewalClock) error { return l.Update(context.Background(), rec("replica-a")) }, true},
		{"release", func(l *renewalClock) error { return l.Update(context.Background(), rec("")) }, false},
		{"failed update", func(l *renewalClock) error {
			l.Interface = idLock{fail: true}
			return l.Update(context.Background(), rec("replica-a"))
		}, false},
		{"failed create", func(l *renewalClock) error {
			l.Interface = idLock{fail: true}
			return l.Create(context.Background(), rec("replica-a"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &renewalClock{Interface: idLock{}}
			before := time.Now()
			_ = tc.write(l)
			after := time.Now()
			got := l.lastRenewal()
			if !tc.noted {
				if !got.IsZero() {
					t.Errorf("last renewal %v, want none", got)
				}
				return
			}
			if got.Before(before) || got.After(after) {
				t.Errorf("last renewal %v, want when the write began, within [%v, %v]", got, before, after)
			}
		})
	}
}

// testTiming is a leader group's Lease timing in a test.
type testTiming struct{ lease, renew, retry, slack time.Duration }

var (
	// fastTiming: short, for tests that only need the order of events.
	fastTiming = testTiming{2 * time.Second, time.Second, 200 * time.Millisecond, 300 * time.Millisecond}
	// scaledTiming: the production timing (15 s, 10 s, 2 s, 1 s slack)
	// scaled by 1/5, for tests of where the bounds fall.
	scaledTiming = testTiming{3 * time.Second, 2 * time.Second, 400 * time.Millisecond, 200 * time.Millisecond}
)

// newTestGroup is a leader group named "test" on lock with timing tm, whose
// exit is sent on exited instead of ending the process.
func newTestGroup(lock resourcelock.Interface, tm testTiming, exited chan<- error) *leaderGroup {
	return &leaderGroup{log: logr.Discard(), lease: "test", lock: lock,
		leaseDuration: tm.lease, renewDeadline: tm.renew, retryPeriod: tm.retry, leaseSlack: tm.slack,
		exit: func(err error) { exited <- err }}
}
