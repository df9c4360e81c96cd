package main

import (
	"context"
	"testing"
	"time"
)

// The shortened form that `make test` runs; `make load` runs a million checks.
func TestLoadWithPolicyChurn(t *testing.T) {
	r, err := run(context.Background(), options{
		checks: 20000, concurrency: 32, conns: 2, policies: 100, churn: 100 * time.Millisecond, timeout: 3 * time.Minute,
	})
	t.Log(r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Inconsistent != 0 {
		t.Fatalf("%d errors, %d inconsistent verdicts; first: %s", r.Errors, r.Inconsistent, r.FirstError)
	}
	if r.Snapshots < 3 {
		t.Errorf("only %d snapshots during the load: the churn did not overlap the checks", r.Snapshots)
	}
}
