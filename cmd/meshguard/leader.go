package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrlleader "sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// Lease timing: controller-runtime's defaults (pkg/manager/internal.go:
// defaultLeaseDuration, defaultRenewDeadline, defaultRetryPeriod).
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
	// leaseSlack: leader-only work must stop this long before a follower may
	// take the Lease (leaseDeadline). Measuring from the start of the last
	// renewal's write already covers the request's latency (a follower sees
	// the write no earlier); the slack covers this process noticing the
	// deadline late (a CPU-throttled container, a GC pause) and the nodes'
	// clocks running at slightly different rates (NTP slews up to 500 ppm,
	// under 10 ms over a lease). It leaves the work 2 s to stop once it is
	// told to (stopWorkAt: 15 s - 1 s - 10 s - 2 s).
	leaseSlack = time.Second
)

// leaderManager is mgr with the leader-only Runnables (certificate rotation,
// the audit: every Runnable that does not say NeedLeaderElection() == false)
// run by a leaderGroup instead of the manager's own election. The manager's
// election exits the process, without a graceful shutdown, once its Lease
// cannot be renewed within the renew deadline (an API server away for 10 s):
// that replica stops serving admission and ext_authz and crash-loops until
// the API server is back. The group stops the leader-only work and
// campaigns again instead, as istiod does (pilot/pkg/leaderelection
// LeaderElection.Run), and serving goes on.
type leaderManager struct {
	manager.Manager
	group *leaderGroup
}

// newLeaderManager adds a leaderGroup to mgr, electing through the Lease
// lease in namespace when elect is set (else it leads at once).
func newLeaderManager(mgr manager.Manager, elect bool, namespace, lease string, log logr.Logger) (leaderManager, error) {
	g := &leaderGroup{log: log, lease: lease, leaseDuration: leaseDuration, renewDeadline: renewDeadline, retryPeriod: retryPeriod,
		leaseSlack: leaseSlack, exit: func(error) { os.Exit(1) }}
	if elect {
		lock, err := newLeaseLock(mgr.GetConfig(), mgr, namespace, lease)
		if err != nil {
			return leaderManager{}, err
		}
		g.lock = lock
	}
	if err := mgr.Add(g); err != nil {
		return leaderManager{}, fmt.Errorf("add leader election: %w", err)
	}
	return leaderManager{Manager: mgr, group: g}, nil
}

// newLeaseLock is the election's lock on the Lease lease in namespace. With
// RenewDeadline set, controller-runtime gives the lock's client a timeout of
// max(RenewDeadline/2, 1s) per request (pkg/leaderelection/leader_election.go
// NewResourceLock), as its own manager does (pkg/manager/manager.go New: "to
// keep a single hung request from forcing a leader loss"); without it one
// hung Lease update used the whole renew deadline and the Lease was lost.
// NewResourceLock sets the timeout and its user agent on the config it is
// given, so it gets a copy, as the manager gives it (pkg/manager/manager.go
// New: leaderConfig = rest.CopyConfig(config)): cfg is the manager's, whose
// other clients (watches among them) must not get a 5 s timeout.
func newLeaseLock(cfg *rest.Config, rp recorder.Provider, namespace, lease string) (resourcelock.Interface, error) {
	lock, err := ctrlleader.NewResourceLock(rest.CopyConfig(cfg), rp, ctrlleader.Options{
		LeaderElection: true, LeaderElectionID: lease, LeaderElectionNamespace: namespace,
		RenewDeadline: renewDeadline,
	})
	if err != nil {
		return nil, fmt.Errorf("leader election lock (Lease %s/%s): %w", namespace, lease, err)
	}
	return lock, nil
}

// Add gives leader-only Runnables to the group, the others to the manager.
func (m leaderManager) Add(r manager.Runnable) error {
	if lr, ok := r.(manager.LeaderElectionRunnable); ok && !lr.NeedLeaderElection() {
		return m.Manager.Add(r)
	}
	m.group.add(r)
	return nil
}

// leaderGroup runs its Runnables while it holds the Lease (always, without
// a lock), on every replica's manager.
type leaderGroup struct {
	lock  resourcelock.Interface // nil: no election
	lease string                 // the Lease's name
	log   logr.Logger

	leaseDuration, renewDeadline, retryPeriod time.Duration
	leaseSlack                                time.Duration // see the constant
	exit                                      func(error)   // os.Exit; tests record it

	mu        sync.Mutex
	runnables []manager.Runnable
	term      *term // while leading
}

// term is one period of leading: the Runnables it started and the first
// error one returned.
type term struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	first  error
}

// start runs r for the term; r's error ends it.
func (t *term) start(r manager.Runnable) {
	t.wg.Go(func() {
		if err := r.Start(t.ctx); err != nil {
			t.mu.Lock()
			if t.first == nil {
				t.first = err
			}
			t.mu.Unlock()
			t.cancel()
		}
	})
}

// add registers r for every term and, while leading, starts it now, as
// controller-runtime's manager starts a Runnable added after it has
// started (pkg/manager/runnable_group.go runnableGroup.Add): it does not
// wait for the next term.
func (g *leaderGroup) add(r manager.Runnable) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runnables = append(g.runnables, r)
	if g.term != nil {
		g.term.start(r)
	}
}

// NeedLeaderElection: the group runs on every replica and elects itself.
func (*leaderGroup) NeedLeaderElection() bool { return false }

// Start campaigns, leads and campaigns again after a lost Lease until ctx
// ends. It returns a Runnable's error.
func (g *leaderGroup) Start(ctx context.Context) error {
	if g.lock == nil {
		return g.lead(ctx)
	}
	if err := g.checkTiming(); err != nil {
		return err
	}
	for {
		if err := g.campaign(ctx); err != nil || ctx.Err() != nil {
			return err
		}
		g.log.Info("lost the leader Lease: leader-only work stopped, campaigning again", "lease", g.lease)
	}
}

// campaign runs one election: it returns once the Lease is lost (the
// leader-only work stopped) or ctx ended. On ctx's end the work stops before
// the Lease is given up, so two replicas never do it at once; the elector
// keeps renewing meanwhile. However Run ends, the work is told to stop at
// stopWorkAt and bounded by leaseDeadline of the last renewal (watchLease),
// during such a drain too. Once the work has stopped, for whatever reason,
// the election ends, so a term whose work watchLease stopped while Run still
// retried ends as a lost Lease does: Start campaigns again.
//
// The elector does not release the Lease itself (no ReleaseOnCancel): when a
// renewal fails, client-go's renew releases it before Run cancels the work's
// context (k8s.io/client-go v0.36.3 tools/leaderelection/leaderelection.go:
// LeaderElector.renew calls release, Run's deferred cancel runs after), so a
// follower could take it within a retry period while the work still ran.
// A Lease that could not be renewed is left to expire,
// leaseDuration after the last renewal (leaseDeadline); g.release gives it up
// only once campaign ends for good and the work has stopped. istiod releases
// on cancel (pilot/pkg/leaderelection/leaderelection.go
// LeaderElection.create, ReleaseOnCancel: true, accepting a brief overlap);
// meshguard does not.
func (g *leaderGroup) campaign(ctx context.Context) error {
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	lock := &renewalClock{Interface: g.lock}
	var (
		mu      sync.Mutex
		closing bool
		leading sync.WaitGroup
		failed  error
	)
	// stopWork makes a late OnStartedLeading a no-op and waits for the work.
	stopWork := func() {
		mu.Lock()
		closing = true
		mu.Unlock()
		leading.Wait()
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: g.leaseDuration, RenewDeadline: g.renewDeadline, RetryPeriod: g.retryPeriod,
		Name: g.lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaderCtx context.Context) {
				mu.Lock()
				if closing {
					mu.Unlock()
					return
				}
				leading.Add(1)
				mu.Unlock()
				defer leading.Done()
				stopped := make(chan struct{})
				defer close(stopped)
				workCtx, cancel := context.WithCancel(leaderCtx)
				defer cancel()
				go g.watchLease(lock, cancel, stopped)
				defer context.AfterFunc(ctx, cancel)()
				g.log.Info("acquired the leader Lease: starting leader-only work", "lease", g.lease)
				err := g.lead(workCtx)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
				// The work has stopped: end the election (it no longer
				// renews for work; watchLease may have stopped the work
				// while Run still retried), without giving the Lease up.
				stopElection()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	go func() {
		select {
		case <-ctx.Done():
			stopWork()
			stopElection()
		case <-electCtx.Done():
		}
	}()
	le.Run(electCtx)
	// Run cancelled the work's context; if a renewal failed (during a
	// graceful shutdown's drain too) the work may still run,
	// and watchLease exits the process if it outlives the Lease.
	stopWork()
	mu.Lock()
	err = failed
	mu.Unlock()
	if ctx.Err() != nil || err != nil {
		// Ending for good (shutdown, or a Runnable failed) with the work
		// stopped: give the Lease up so another replica leads within a retry
		// period rather than a lease duration.
		g.release()
	}
	return err
}

// release gives the Lease up if this replica still holds it, as client-go's
// ReleaseOnCancel does (leaderelection.go LeaderElector.release: holder
// cleared, lease duration 1 s); call it only once the leader-only work has
// stopped. The update carries the version read by Get, so it fails rather
// than overwrite a holder that took the Lease meanwhile.
func (g *leaderGroup) release() {
	ctx, cancel := context.WithTimeout(context.Background(), g.renewDeadline)
	defer cancel()
	rec, _, err := g.lock.Get(ctx)
	if err != nil {
		g.log.Error(err, "leader Lease not given up; another replica takes it once it expires", "lease", g.lock.Describe())
		return
	}
	if rec.HolderIdentity != g.lock.Identity() {
		return
	}
	now := metav1.NewTime(time.Now())
	if err := g.lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: rec.LeaderTransitions, LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now,
	}); err != nil {
		g.log.Error(err, "leader Lease not given up; another replica takes it once it expires", "lease", g.lock.Describe())
		return
	}
	g.log.Info("gave up the leader Lease", "lease", g.lock.Describe())
}

// renewalClock is the elector's lock, noting when this replica's last
// successful acquire or renewal began. In client-go v0.36.3
// (tools/leaderelection/leaderelection.go tryAcquireOrRenew,
// tryCoordinatedRenew) a term is won or kept only by a successful Create or
// Update of a record naming this replica; a write that fails may still have
// been applied, which only makes the Lease expire later than noted. A write
// is applied no earlier than it began, so a follower sees it (and starts its
// leaseDuration, isLeaseValid) no earlier either, and it can take the Lease
// only while the record it saw is still the latest one (its Update carries
// the resourceVersion it read).
type renewalClock struct {
	resourcelock.Interface
	mu   sync.Mutex
	last time.Time
}

func (l *renewalClock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.note(r, func() error { return l.Interface.Create(ctx, r) })
}

func (l *renewalClock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.note(r, func() error { return l.Interface.Update(ctx, r) })
}

// note runs write and, if it succeeded with this replica as the holder,
// notes when it began.
func (l *renewalClock) note(r resourcelock.LeaderElectionRecord, write func() error) error {
	began := time.Now()
	if err := write(); err != nil {
		return err
	}
	if r.HolderIdentity == l.Identity() {
		l.mu.Lock()
		if began.After(l.last) {
			l.last = began
		}
		l.mu.Unlock()
	}
	return nil
}

// lastRenewal is when the last successful acquire or renewal began (zero if
// none did).
func (l *renewalClock) lastRenewal() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// heldFor is how long the Lease stays ours after a renewal, as a follower
// counts it: client-go writes LeaseDurationSeconds as whole seconds
// (tryAcquireOrRenew: int(LeaseDuration / time.Second)) and followers use
// that record's value (isLeaseValid).
func (g *leaderGroup) heldFor() time.Duration {
	return time.Duration(int(g.leaseDuration/time.Second)) * time.Second
}

// leaseDeadline is when the leader-only work must have stopped after the
// renewal that began at renewed: a follower may take the Lease heldFor after
// it, less leaseSlack.
func (g *leaderGroup) leaseDeadline(renewed time.Time) time.Time {
	return renewed.Add(g.heldFor() - g.leaseSlack)
}

// stopWorkAt is when watchLease tells the leader-only work to stop if no
// renewal began after renewed: retryPeriod+renewDeadline after it, when
// client-go's Run gives the Lease up if the renewal's request returned at
// once (k8s.io/client-go v0.36.3 tools/leaderelection/leaderelection.go
// LeaderElector.renew: the next poll starts retryPeriod after the last one
// returned and gives up renewDeadline later). Run gives up later by that
// request's latency (up to the 5 s request timeout, newLeaseLock) or a
// request that returns late, so the group does not wait for it. What is
// left until leaseDeadline, 2 s with the defaults, is the work's stop budget: what it had before when Run gave up on time, and what
// checkTiming requires to be positive. Stopping earlier would pause the
// work on a short outage that Run still rides out; later, leave it less
// time to stop. If a renewal still succeeds, the pause ends once Start has
// campaigned again (at once: the Lease is still this replica's).
func (g *leaderGroup) stopWorkAt(renewed time.Time) time.Time {
	return renewed.Add(g.renewDeadline + g.retryPeriod)
}

// checkTiming fails when the work would have no time to stop between
// stopWorkAt and leaseDeadline: every lost Lease would end the process.
func (g *leaderGroup) checkTiming() error {
	if stop := g.leaseDeadline(time.Time{}).Sub(g.stopWorkAt(time.Time{})); stop <= 0 {
		return fmt.Errorf("leader election of Lease %q: lease duration %v (%v as written to the Lease) less slack %v, renew deadline %v and retry period %v leaves leader-only work no time to stop",
			g.lease, g.leaseDuration, g.heldFor(), g.leaseSlack, g.renewDeadline, g.retryPeriod)
	}
	return nil
}

// watchLease tells the leader-only work to stop (stopWork) at stopWorkAt of
// the last renewal, and exits the process if the work is still running at
// leaseDeadline of it; it returns once stopped is closed. It bounds the work
// from the renewal, not from Run's return: Run can give the Lease up later
// than retryPeriod+renewDeadline after the last renewal (its renew poll
// starts only once a slow renewal returned, or waits for a request that
// returns late, or the process was not scheduled), and work still running
// when a follower takes the Lease would act beside the new leader. Work
// that stops when told never ends the process; work that does not is
// ended by the exit, as controller-runtime's manager ends on a lost Lease
// (pkg/manager/internal.go OnStoppedLeading).
func (g *leaderGroup) watchLease(lock *renewalClock, stopWork context.CancelFunc, stopped <-chan struct{}) {
	timer := time.NewTimer(time.Until(g.stopWorkAt(lock.lastRenewal())))
	defer timer.Stop()
	told := false
	for {
		select {
		case <-stopped:
			return
		case <-timer.C:
		}
		renewed := lock.lastRenewal()
		if !told {
			if wait := time.Until(g.stopWorkAt(renewed)); wait > 0 {
				timer.Reset(wait) // renewed since the timer was set
				continue
			}
			told = true
			g.log.Info("leader Lease not renewed in time: stopping leader-only work before the Lease may be taken",
				"lease", g.lease, "sinceRenewal", time.Since(renewed).Round(time.Millisecond))
			stopWork()
		}
		if wait := time.Until(g.leaseDeadline(renewed)); wait > 0 {
			timer.Reset(wait) // the work's stop budget, or renewed meanwhile
			continue
		}
		select {
		case <-stopped: // stopped as the deadline came
			return
		default:
		}
		err := fmt.Errorf("leader-only work did not stop within %v of the last renewal of the Lease %q (a follower may take it after %v); exiting so that two replicas never do it at once",
			g.heldFor()-g.leaseSlack, g.lease, g.heldFor())
		g.log.Error(err, "lost the leader Lease")
		g.exit(err)
		return
	}
}

// lead runs every Runnable, and those added meanwhile, until ctx ends or
// one fails, and returns once all have returned.
func (g *leaderGroup) lead(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &term{ctx: ctx, cancel: cancel}
	g.mu.Lock()
	for _, r := range g.runnables {
		t.start(r)
	}
	g.term = t
	g.mu.Unlock()
	<-ctx.Done()
	// No Runnable starts in this term after this: wg.Wait may begin.
	g.mu.Lock()
	g.term = nil
	g.mu.Unlock()
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first
}
