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
		exit: func(error) { os.Exit(1) }}
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
	exit                                      func(error) // os.Exit; tests record it

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
// keeps renewing meanwhile, and if a renewal fails during that drain the
// work gets the same stopMargin bound as on a Lease lost while serving.
//
// The elector does not release the Lease itself (no ReleaseOnCancel): when a
// renewal fails, client-go's renew releases it before Run cancels the work's
// context (k8s.io/client-go v0.36.3 tools/leaderelection/leaderelection.go:
// LeaderElector.renew calls release, Run's deferred cancel runs after), so a
// follower could take it within a retry period while the work still ran
// (reviewer h119). A Lease that could not be renewed is left to expire,
// leaseDuration after the last renewal (stopMargin); g.release gives it up
// only once campaign ends for good and the work has stopped. istiod releases
// on cancel (pilot/pkg/leaderelection/leaderelection.go
// LeaderElection.create, ReleaseOnCancel: true, accepting a brief overlap);
// meshguard does not.
func (g *leaderGroup) campaign(ctx context.Context) error {
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var (
		mu      sync.Mutex
		closing bool
		leading sync.WaitGroup
		failed  error
		drained bool // the shutdown stopped the work before it stopped the election
	)
	// stopWork makes a late OnStartedLeading a no-op and waits for the work.
	stopWork := func() {
		mu.Lock()
		closing = true
		mu.Unlock()
		leading.Wait()
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: g.lock, LeaseDuration: g.leaseDuration, RenewDeadline: g.renewDeadline, RetryPeriod: g.retryPeriod,
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
				workCtx, cancel := context.WithCancel(leaderCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				g.log.Info("acquired the leader Lease: starting leader-only work", "lease", g.lease)
				if err := g.lead(workCtx); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					stopElection()
				}
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
			mu.Lock()
			drained = true
			mu.Unlock()
			stopElection()
		case <-electCtx.Done():
		}
	}()
	le.Run(electCtx)
	mu.Lock()
	bounded := !drained
	mu.Unlock()
	if bounded && g.workOutlived(stopWork) {
		// Run returned with the work possibly still running: a renewal
		// failed, during a graceful shutdown's drain too (reviewer h123), or
		// a Runnable failed. Another replica may take the Lease
		// leaseDuration after our last renewal, and Run gave up at least
		// retryPeriod+renewDeadline after it: work still running then would
		// act beside the new leader. Exit, as controller-runtime's manager
		// does on a lost Lease.
		err := fmt.Errorf("leader-only work did not stop within %v of losing the Lease %q; exiting so that two replicas never do it at once",
			g.stopMargin(), g.lease)
		g.log.Error(err, "lost the leader Lease")
		g.exit(err)
	}
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

// stopMargin is the time between Run giving up a Lease it cannot renew
// (client-go renew: a poll of renewDeadline, begun retryPeriod after the last
// renewal) and another replica taking it (leaseDuration after that renewal).
func (g *leaderGroup) stopMargin() time.Duration {
	return g.leaseDuration - g.renewDeadline - g.retryPeriod
}

// workOutlived runs stopWork and reports whether it took longer than
// stopMargin.
func (g *leaderGroup) workOutlived(stopWork func()) bool {
	stopped := make(chan struct{})
	go func() { stopWork(); close(stopped) }()
	timer := time.NewTimer(g.stopMargin())
	defer timer.Stop()
	select {
	case <-stopped:
		return false
	case <-timer.C:
		return true
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
