package main

import (
	"context"
	"testing"
	"time"
)

func TestRunShort(t *testing.T) {
	r, err := run(context.Background(), options{concurrency: 4, duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.P99 <= 0 || r.P99 > r.Max {
		t.Fatalf("report %+v (first error %q)", r, r.FirstError)
	}
}

func TestRunRejectsUnboundedInput(t *testing.T) {
	for _, o := range []options{{concurrency: 0, duration: time.Second}, {concurrency: 1, duration: time.Hour}} {
		if _, err := run(context.Background(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
