package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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

// A ConfigMap watch that cannot sync (the API server refuses the list, as
// under RBAC that grants get but not list and watch) ends the trigger with
// an error naming the ConfigMaps, instead of waiting forever with no reload
// ever happening.
func TestConfigMapTriggerFailsWhenWatchesNeverSync(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"configmaps is forbidden: cannot list resource \"configmaps\""}`)
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	trig := &configMapTrigger{maps: IstioConfigMaps{Namespace: "istio-system"}, client: cs, debounce: time.Millisecond,
		syncTimeout: 300 * time.Millisecond, log: logr.Discard(), reload: func() error { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the informers
	errc := make(chan error, 1)
	go func() { errc <- trig.Start(ctx) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "istio-sidecar-injector") || !strings.Contains(err.Error(), "not synced") {
			t.Fatalf("want an error naming the ConfigMaps, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the trigger still waits for watches that cannot sync")
	}
}
