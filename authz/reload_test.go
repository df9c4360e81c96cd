package authz

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/policy"
)

func TestReloaderReportsRejectedUpdates(t *testing.T) {
	broken := errors.New("AuthorizationPolicy shop/bad: spec.rules[0]: broken")
	var reported []error
	rl := &Reloader{
		Engine:  policy.NewEngine(policy.Mesh{}),
		Load:    func(context.Context) (*policy.Set, error) { return nil, broken },
		Log:     logr.Discard(),
		OnError: func(err error) { reported = append(reported, err) },
	}
	if err := rl.Reload(context.Background()); !errors.Is(err, broken) {
		t.Fatalf("Reload = %v, want %v", err, broken)
	}
	if len(reported) != 1 || !errors.Is(reported[0], broken) {
		t.Fatalf("OnError saw %v, want exactly the load error", reported)
	}

	// A good update is not reported.
	rl.Load = func(context.Context) (*policy.Set, error) { return &policy.Set{}, nil }
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(reported) != 1 {
		t.Fatalf("a successful update was reported: %v", reported)
	}
}
