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
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// sharedLease is one Lease seen by several replicas. Its raw record carries
// a revision, as a Lease's resourceVersion changes on every write: followers
// see each renewal (client-go compares the raw records).
type sharedLease struct {
	mu  sync.Mutex
	rec *resourcelock.LeaderElectionRecord
	rev int
}

func (s *sharedLease) holder() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return ""
	}
	return s.rec.HolderIdentity
}

// replicaLock is the sharedLease under one identity. renewFails makes its
// own renewals fail (the API server timing out the writes) while other
// writes (a release: holder "") go through; a release is recorded.
type replicaLock struct {
	s          *sharedLease
	id         string
	renewFails atomic.Bool
	released   atomic.Bool
	events     chan string // nil, or each event the elector records ("stopped leading" once its Run gave up the Lease)
}

func (l *replicaLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.rec == nil {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "leases"}, "test")
	}
	r := *l.s.rec
	b, _ := json.Marshal(struct {
		R   resourcelock.LeaderElectionRecord
		Rev int
	}{r, l.s.rev})
	return &r, b, nil
}

func (l *replicaLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.rec != nil {
		return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "leases"}, "test")
	}
	l.s.rec = &r
	l.s.rev++
	return nil
}

func (l *replicaLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	if r.HolderIdentity == l.id && l.renewFails.Load() {
		return errors.New("timeout")
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	l.s.rec = &r
	l.s.rev++
	if r.HolderIdentity == "" {
		l.released.Store(true)
	}
	return nil
}

func (l *replicaLock) RecordEvent(e string) {
	if l.events != nil {
		select {
		case l.events <- e:
		default:
		}
	}
}
func (l *replicaLock) Identity() string { return l.id }
func (*replicaLock) Describe() string   { return "test/lease" }

// leaderWork tracks which replicas run leader-only work. Each replica's
// work, told to stop, reports who held the Lease at that moment; if that
// is not the replica itself, the Lease was given up (or taken) while its
// work still ran.
type leaderWork struct {
	mu      sync.Mutex
	active  map[string]bool
	overlap []string
	exited  chan string    // a group's exit calls (work outliving a lost Lease)
	started chan string    // replica ids, each time one starts its work
	stopped chan string    // replica ids, once their work returned
	holders chan [2]string // replica id, Lease holder when its work was told to stop
}

func newLeaderWork() *leaderWork {
	return &leaderWork{active: map[string]bool{}, exited: make(chan string, 16), started: make(chan string, 16), stopped: make(chan string, 16),
		holders: make(chan [2]string, 16)}
}

func (w *leaderWork) group(lock *replicaLock, lease, renew, retry time.Duration) *leaderGroup {
	g := &leaderGroup{log: logr.Discard(), lease: "test", lock: lock,
		leaseDuration: lease, renewDeadline: renew, retryPeriod: retry, leaseSlack: 200 * time.Millisecond,
		exit: func(err error) {
			select {
			case w.exited <- lock.id + ": " + err.Error():
			default:
			}
		}}
	g.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
		w.mu.Lock()
		for o, on := range w.active {
			if on && o != lock.id {
				w.overlap = append(w.overlap, lock.id+" started while "+o+" still ran its leader-only work")
			}
		}
		w.active[lock.id] = true
		w.mu.Unlock()
		w.started <- lock.id
		<-ctx.Done()
		w.holders <- [2]string{lock.id, lock.s.holder()}
		w.mu.Lock()
		w.active[lock.id] = false
		w.mu.Unlock()
		w.stopped <- lock.id
		return nil
	})}
	return g
}

func (w *leaderWork) checkOverlap(t *testing.T) {
	t.Helper()
	select {
	case e := <-w.exited:
		t.Errorf("exited: %s", e)
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.overlap {
		t.Errorf("two leaders at once: %s", o)
	}
}

// await returns the next value of ch, failing the test after d.
func await[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		var zero T
		return zero
	}
}

// TestLostLeaseNotReleasedWhileWorkRuns: when a
// renewal fails, client-go's renew releases the Lease (ReleaseOnCancel)
// before Run cancels the leader's context (k8s.io/client-go v0.36.3
// tools/leaderelection/leaderelection.go LeaderElector.renew, release; Run's
// deferred cancel). If the API server answered that release, a follower took
// the Lease within a retry period while the old leader's work still ran. Now
// a Lease that could not be renewed is not released: it is still the old
// leader's when its work is told to stop, the follower takes it only once it
// expired, after that work stopped, and the old leader keeps serving.
func TestLostLeaseNotReleasedWhileWorkRuns(t *testing.T) {
	s := &sharedLease{}
	w := newLeaderWork()
	// Time for the work to stop once told to (stopWorkAt): lease - leaseSlack - renew - retry = 2.4 s.
	const lease, renew, retry = 5 * time.Second, 2 * time.Second, 400 * time.Millisecond
	la, lb := &replicaLock{s: s, id: "replica-a"}, &replicaLock{s: s, id: "replica-b"}
	a, b := w.group(la, lease, renew, retry), w.group(lb, lease, renew, retry)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- a.Start(ctx) }()
	if id := await(t, w.started, 10*time.Second, "replica-a to lead"); id != "replica-a" {
		t.Fatalf("%s leads first, want replica-a", id)
	}
	go func() { done <- b.Start(ctx) }()
	la.renewFails.Store(true) // a's renewals time out; the API server still answers other writes
	h := await(t, w.holders, 30*time.Second, "replica-a's work to be told to stop")
	if h != [2]string{"replica-a", "replica-a"} {
		t.Fatalf("%s's work was told to stop when the Lease was held by %q; want it still %q's (not given up while the work runs)",
			h[0], h[1], h[0])
	}
	await(t, w.stopped, 10*time.Second, "replica-a's work to stop")
	if id := await(t, w.started, 30*time.Second, "replica-b to lead once the Lease expired"); id != "replica-b" {
		t.Fatalf("%s leads, want replica-b", id)
	}
	if la.released.Load() {
		t.Error("replica-a released a Lease it could not renew")
	}
	w.checkOverlap(t)
	cancel()
	for range 2 {
		if err := await(t, done, 30*time.Second, "the groups to end"); err != nil {
			t.Errorf("Start: %v", err)
		}
	}
}

// TestLeaderShutdownReleasesLeaseAfterWork: on a graceful shutdown the leader's
// work stops first, then the Lease is given up, so the follower leads within
// a retry period, not a lease duration (30 s here), and never beside it.
func TestLeaderShutdownReleasesLeaseAfterWork(t *testing.T) {
	s := &sharedLease{}
	w := newLeaderWork()
	const lease, renew, retry = 30 * time.Second, 20 * time.Second, 200 * time.Millisecond
	la, lb := &replicaLock{s: s, id: "replica-a"}, &replicaLock{s: s, id: "replica-b"}
	a, b := w.group(la, lease, renew, retry), w.group(lb, lease, renew, retry)
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Start(ctxA) }()
	if id := await(t, w.started, 10*time.Second, "replica-a to lead"); id != "replica-a" {
		t.Fatalf("%s leads first, want replica-a", id)
	}
	go func() { doneB <- b.Start(ctxB) }()
	cancelA() // SIGTERM
	h := await(t, w.holders, 10*time.Second, "replica-a's work to be told to stop")
	if h[1] != "replica-a" {
		t.Fatalf("replica-a's work was told to stop when the Lease was held by %q; want it still replica-a's", h[1])
	}
	if err := await(t, doneA, 15*time.Second, "replica-a to end"); err != nil {
		t.Errorf("replica-a: %v", err)
	}
	if !la.released.Load() {
		t.Error("replica-a did not give the Lease up on shutdown")
	}
	if id := await(t, w.started, 15*time.Second, "replica-b to lead within a retry period of the release"); id != "replica-b" {
		t.Fatalf("%s leads, want replica-b", id)
	}
	w.checkOverlap(t)
	cancelB()
	if err := await(t, doneB, 30*time.Second, "replica-b to end"); err != nil {
		t.Errorf("replica-b: %v", err)
	}
	if got := s.holder(); got != "" {
		t.Errorf("Lease held by %q after both replicas ended, want it given up", got)
	}
}

// TestLeaderFailedRunnableReleasesLease: a Runnable's error ends the group
// (and the process); the other work has stopped by then, so the Lease is
// given up rather than left to expire.
func TestLeaderFailedRunnableReleasesLease(t *testing.T) {
	s := &sharedLease{}
	la := &replicaLock{s: s, id: "replica-a"}
	boom := errors.New("boom")
	g := &leaderGroup{log: logr.Discard(), lease: "test", lock: la,
		leaseDuration: 30 * time.Second, renewDeadline: 20 * time.Second, retryPeriod: 200 * time.Millisecond,
		exit: func(error) {}}
	g.runnables = []manager.Runnable{manager.RunnableFunc(func(context.Context) error { return boom })}
	done := make(chan error, 1)
	go func() { done <- g.Start(context.Background()) }()
	if err := await(t, done, 15*time.Second, "the group to end"); !errors.Is(err, boom) {
		t.Errorf("Start: %v, want %v", err, boom)
	}
	if !la.released.Load() || s.holder() != "" {
		t.Errorf("Lease held by %q after the group ended on an error, want it given up", s.holder())
	}
}

// TestShutdownRenewFailWorkOutlivesLeaseExits: on a
// graceful shutdown the leader's work is told to stop while the elector keeps
// renewing. If a renewal fails during a slow drain, Run returns by itself and
// the Lease expires leaseDuration after the last renewal: work still running
// then would act beside the next leader, so the process exits just before
// (leaseDeadline), as on a Lease lost without a shutdown. Before, campaign
// skipped that bound once ctx had ended and waited for the work without one.
//
// replica-b begins campaigning once replica-a's elector gave up (a new pod of
// a rolling update, say): it sees replica-a's last renewal no earlier than
// that, so it cannot take the Lease before retryPeriod+renewDeadline (2.4 s)
// after replica-a must exit. A follower running all along may observe the
// renewal at once, leaving only leaseSlack between the exit and the earliest
// it may take the Lease, which a loaded machine could lose; this margin
// keeps the test free of that race.
func TestShutdownRenewFailWorkOutlivesLeaseExits(t *testing.T) {
	s := &sharedLease{}
	const lease, renew, retry = 5 * time.Second, 2 * time.Second, 400 * time.Millisecond // exit 5 s after the last renewal
	la := &replicaLock{s: s, id: "replica-a", events: make(chan string, 16)}
	lb := &replicaLock{s: s, id: "replica-b"}
	var mu sync.Mutex
	var aActive, aExited bool
	var overlap []string
	exitA := make(chan error, 1)
	a := &leaderGroup{log: logr.Discard(), lease: "test", lock: la, leaseDuration: lease, renewDeadline: renew, retryPeriod: retry,
		exit: func(err error) { // os.Exit: replica-a's work ends with its process
			mu.Lock()
			aExited = true
			mu.Unlock()
			select {
			case exitA <- err:
			default:
			}
		}}
	aStarted := make(chan struct{})
	drain := make(chan struct{}) // replica-a's work drains until the test ends it
	a.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
		mu.Lock()
		aActive = true
		mu.Unlock()
		close(aStarted)
		<-ctx.Done()
		<-drain // a slow drain, inside the manager's graceful-shutdown timeout
		mu.Lock()
		aActive = false
		mu.Unlock()
		return nil
	})}
	bStarted := make(chan struct{}, 1)
	b := &leaderGroup{log: logr.Discard(), lease: "test", lock: lb, leaseDuration: lease, renewDeadline: renew, retryPeriod: retry,
		exit: func(err error) { t.Errorf("replica-b exited: %v", err) }}
	b.runnables = []manager.Runnable{manager.RunnableFunc(func(ctx context.Context) error {
		mu.Lock()
		if aActive && !aExited {
			overlap = append(overlap, "replica-b started its leader-only work while replica-a's still ran and replica-a had not exited")
		}
		mu.Unlock()
		select {
		case bStarted <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil
	})}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	drained := false
	defer func() {
		if !drained {
			close(drain)
		}
	}()
	go func() { doneA <- a.Start(ctxA) }()
	await(t, aStarted, 10*time.Second, "replica-a to lead")
	cancelA()                 // SIGTERM
	la.renewFails.Store(true) // the API server times out replica-a's renewals during the drain
	for e := ""; e != "stopped leading"; {
		e = await(t, la.events, 30*time.Second, "replica-a's elector to give up the Lease it cannot renew")
	}
	go func() { doneB <- b.Start(ctxB) }()
	await(t, bStarted, 30*time.Second, "replica-b to lead once the Lease expired")
	mu.Lock()
	for _, o := range overlap {
		t.Error(o)
	}
	exited := aExited
	mu.Unlock()
	if !exited {
		t.Fatal("replica-a neither stopped its work nor exited before the Lease it could not renew expired (graceful shutdown, renewal failed)")
	}
	if err := <-exitA; !strings.Contains(err.Error(), "did not stop") {
		t.Errorf("replica-a exited with %v, want an error saying the work did not stop", err)
	}
	close(drain)
	drained = true
	if err := await(t, doneA, 30*time.Second, "replica-a to end"); err != nil {
		t.Errorf("replica-a: %v", err)
	}
	if la.released.Load() {
		t.Error("replica-a released the Lease replica-b holds")
	}
	cancelB()
	if err := await(t, doneB, 30*time.Second, "replica-b to end"); err != nil {
		t.Errorf("replica-b: %v", err)
	}
}

type nopRecorderProvider struct{}

func (nopRecorderProvider) GetEventRecorderFor(string) record.EventRecorder {
	return &record.FakeRecorder{}
}
func (nopRecorderProvider) GetEventRecorder(string) events.EventRecorder {
	return &events.FakeRecorder{}
}

// TestLeaseLockRequestTimeout: the lock's client
// gives up a request after max(renewDeadline/2, 1s) (controller-runtime
// pkg/leaderelection/leader_election.go NewResourceLock, given RenewDeadline
// as pkg/manager/manager.go New does), so one hung Lease update does not use
// the whole renew deadline. Before, it had no timeout. The manager's own
// config is left as it was.
func TestLeaseLockRequestTimeout(t *testing.T) {
	cfg := &rest.Config{Host: "http://127.0.0.1:1"}
	lock, err := newLeaseLock(cfg, nopRecorderProvider{}, "meshguard", "meshguard-leader")
	if err != nil {
		t.Fatal(err)
	}
	ll, ok := lock.(*resourcelock.LeaseLock)
	if !ok {
		t.Fatalf("lock is a %T, want a Lease lock", lock)
	}
	cc, ok := ll.Client.(*coordinationv1client.CoordinationV1Client)
	if !ok {
		t.Fatalf("Lease client is a %T", ll.Client)
	}
	rc, ok := cc.RESTClient().(*rest.RESTClient)
	if !ok || rc.Client == nil {
		t.Fatalf("REST client is a %T", cc.RESTClient())
	}
	if want := renewDeadline / 2; rc.Client.Timeout != want {
		t.Errorf("Lease requests time out after %v, want %v (renew deadline %v / 2)", rc.Client.Timeout, want, renewDeadline)
	}
	if cfg.Timeout != 0 || cfg.UserAgent != "" {
		t.Errorf("the manager's rest.Config was changed (Timeout %v, UserAgent %q); its other clients would time out watches",
			cfg.Timeout, cfg.UserAgent)
	}
}
