package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// A reload that could not read the ConfigMaps (an API server timeout) is
// tried again without a further change, until it succeeds.
func TestConfigMapTriggerRetriesFailedReads(t *testing.T) {
	var calls atomic.Int32
	done := make(chan struct{})
	trig := &configMapTrigger{debounce: time.Millisecond, retryMin: 5 * time.Millisecond, log: logr.Discard(),
		reload: func() error {
			if calls.Add(1) <= 2 {
				return readError{errors.New("reading ConfigMap istio-system/istio-sidecar-injector: etcdserver: request timed out")}
			}
			close(done)
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go trig.run(ctx, make(chan struct{}, 1))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("reload called %d times and never succeeded", calls.Load())
	}
}

// Only read failures are retried, backing off from base to a minute; a
// config that fails validation waits for the next change.
func TestRetryAfter(t *testing.T) {
	read := readError{errors.New("timeout")}
	for _, c := range []struct {
		err  error
		prev time.Duration
		want time.Duration
	}{
		{nil, 0, 0},
		{errors.New("values.global.proxy.autoInject: not enabled or disabled"), 4 * time.Second, 0},
		{read, 0, time.Second},
		{read, time.Second, 2 * time.Second},
		{fmt.Errorf("store: %w", read), 40 * time.Second, time.Minute},
		{read, time.Minute, time.Minute},
	} {
		if got := retryAfter(c.err, c.prev, time.Second); got != c.want {
			t.Errorf("retryAfter(%v, %v) = %v, want %v", c.err, c.prev, got, c.want)
		}
	}
}
