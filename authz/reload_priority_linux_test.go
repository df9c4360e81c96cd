package authz

import (
	"context"
	"testing"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/meshguard/meshguard/internal/background"
	"github.com/meshguard/meshguard/policy"
)

// TestReloaderRebuildPriority: a rebuild beside a serving snapshot runs on a
// thread at internal/background's nice unless NormalPriority is set
// (--authz-rebuild-priority=normal), where it runs as the first build does.
func TestReloaderRebuildPriority(t *testing.T) {
	lowered := background.Run(func() {}) == nil // this host lets a thread lower its priority
	for _, tc := range []struct {
		name   string
		normal bool
	}{{"normal", true}, {"low", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var nice []int
			rl := &Reloader{
				Engine: newEngine(DefaultOptions(), logr.Discard()),
				Load: func(context.Context) (*policy.Set, error) {
					// The raw getpriority(PRIO_PROCESS, tid) is 20 - this thread's nice.
					p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
					if err != nil {
						t.Error(err)
					}
					nice = append(nice, 20-p)
					return &policy.Set{}, nil
				},
				Log:            logr.Discard(),
				NormalPriority: tc.normal,
			}
			for range 2 {
				if err := rl.Reload(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if len(nice) != 2 {
				t.Fatalf("loads: %v", nice)
			}
			if tc.normal && nice[1] != nice[0] {
				t.Errorf("rebuild ran at priority %d, first build at %d: want the same", nice[1], nice[0])
			}
			if !tc.normal && lowered && nice[1] != background.Nice {
				t.Errorf("rebuild ran at nice %d (first build %d): want %d", nice[1], nice[0], background.Nice)
			}
		})
	}
}
