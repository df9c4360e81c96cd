package runnable

import (
	"context"
	"errors"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/manager"
)

func TestLeaderElectionChoice(t *testing.T) {
	errRan := errors.New("ran")
	fn := func(context.Context) error { return errRan }
	for _, tc := range []struct {
		name       string
		r          manager.Runnable
		wantLeader bool
	}{
		{"every replica", EveryReplica(fn), false},
		{"leader only", LeaderOnly(fn), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r.Start(context.Background()); !errors.Is(err, errRan) {
				t.Fatalf("Start: got %v, want the function's error", err)
			}
			// The manager treats a Runnable without NeedLeaderElection as
			// leader-only (manager.runnables Add).
			leader := true
			if lr, ok := tc.r.(manager.LeaderElectionRunnable); ok {
				leader = lr.NeedLeaderElection()
			}
			if leader != tc.wantLeader {
				t.Fatalf("needs leader election: got %v, want %v", leader, tc.wantLeader)
			}
		})
	}
}
