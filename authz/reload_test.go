package authz

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/reload"
)

func TestReloaderReportsRejectedUpdates(t *testing.T) {
	broken := errors.New("AuthorizationPolicy shop/bad: spec.rules[0]: broken")
	var reported []error
	o := DefaultOptions()
	o.OnReloadError = func(err error) { reported = append(reported, err) }
	rl := &Reloader{
		Engine: newEngine(o, logr.Discard()),
		Load:   func(context.Context) (*policy.Set, error) { return nil, broken },
		Log:    logr.Discard(),
	}
	errorsBefore := testutilCounter(reload.ReloadErrorsTotal.WithLabelValues(string(reload.Policy)))
	if err := rl.Reload(context.Background()); !errors.Is(err, broken) {
		t.Fatalf("Reload = %v, want %v", err, broken)
	}
	if len(reported) != 1 || !errors.Is(reported[0], broken) {
		t.Fatalf("OnReloadError saw %v, want exactly the load error", reported)
	}
	if got := testutilCounter(reload.ReloadErrorsTotal.WithLabelValues(string(reload.Policy))); got != errorsBefore+1 {
		t.Fatalf("meshguard_config_reload_errors_total{source=policy} = %v, want %v", got, errorsBefore+1)
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
