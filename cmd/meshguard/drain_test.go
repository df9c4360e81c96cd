package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// handlerServer is a webhook server that keeps the handler registered.
type handlerServer struct {
	ctrlwebhook.Server
	h http.Handler
}

func (s *handlerServer) Register(_ string, h http.Handler) { s.h = h }

// TestDrain: once draining begins (SIGTERM), /readyz fails and every webhook
// response closes its connection (docs/operations.md); before, neither.
func TestDrain(t *testing.T) {
	d := newDrain(0)
	srv := &handlerServer{}
	drainingServer{Server: srv, d: d}.Register("/inject", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, draining := range []bool{false, true} {
		if draining {
			close(d.begun)
		}
		rec := httptest.NewRecorder()
		srv.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", nil))
		if got := rec.Header().Get("Connection") == "close"; got != draining || rec.Code != http.StatusOK {
			t.Errorf("draining %v: status %d, Connection: close %v", draining, rec.Code, got)
		}
		if err := d.ready(nil); (err != nil) != draining {
			t.Errorf("draining %v: readyz check %v", draining, err)
		}
	}
}

// TestShutdownSignalsSecondExits: the first signal ends the context, the
// second runs beforeExit and then exits with status 1 (dev stops its
// control plane there: deferred calls do not run past os.Exit). A signal in
// extra (dev's SIGHUP) counts as either.
func TestShutdownSignalsSecondExits(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second syscall.Signal
	}{
		{"SIGINT twice", syscall.SIGINT, syscall.SIGINT},
		{"SIGHUP then SIGTERM", syscall.SIGHUP, syscall.SIGTERM},
		{"SIGTERM then SIGHUP", syscall.SIGTERM, syscall.SIGHUP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var order []string
			exited := make(chan int, 1)
			osExit = func(code int) { order = append(order, "exit"); exited <- code }
			t.Cleanup(func() { osExit = os.Exit })
			ctx, stop := shutdownSignals{extra: []os.Signal{syscall.SIGHUP}, beforeExit: func() { order = append(order, "beforeExit") }}.context(context.Background())
			defer stop()
			if err := syscall.Kill(os.Getpid(), tc.first); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not end the context", tc.first)
			}
			if err := syscall.Kill(os.Getpid(), tc.second); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-exited:
				if code != 1 || strings.Join(order, ",") != "beforeExit,exit" {
					t.Errorf("exit %d, order %v; want beforeExit then exit 1", code, order)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not exit", tc.second)
			}
		})
	}
}
