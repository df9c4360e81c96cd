// Package runnable adapts functions to controller-runtime's manager, saying
// whether they run on every replica or only on the elected leader.
package runnable

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// EveryReplica runs on every replica, leader or not: what serves requests
// (webhooks, ext_authz, the serving certificate) and the state it reads
// (indexes, rules, config, snapshots) is needed on each one.
type EveryReplica func(context.Context) error

// Start implements manager.Runnable.
func (f EveryReplica) Start(ctx context.Context) error { return f(ctx) }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (EveryReplica) NeedLeaderElection() bool { return false }

// LeaderOnly runs only on the elected leader: what writes shared state
// (certificates, caBundles, audit reports). It is controller-runtime's own
// default for a Runnable that does not say, named here so the choice is
// visible where a runnable is added.
type LeaderOnly = manager.RunnableFunc
