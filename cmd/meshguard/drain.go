package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// drain is the hand-over of a replica that is told to stop (SIGTERM on a
// rolling update or scale-down): for `delay` it keeps serving while /readyz
// fails, so its endpoint leaves the Service, and answers every webhook
// request with "Connection: close", so that the API server moves its
// keep-alive connections to other replicas after a response instead of
// racing the final close with a new request. Then the servers shut down
// gracefully (--shutdown-timeout).
type drain struct {
	delay time.Duration
	begun chan struct{} // closed when draining starts
}

func newDrain(delay time.Duration) *drain {
	return &drain{delay: delay, begun: make(chan struct{})}
}

// signalContext is shutdownContext with the drain period in front: the
// context ends `delay` after the first SIGTERM or SIGINT.
func (d *drain) signalContext() context.Context {
	ctx, _ := shutdownContext(context.Background(), d.delay, func() { close(d.begun) })
	return ctx
}

// shutdownContext is ctrl.SetupSignalHandler for every command that serves
// (serve, authz serve): the context ends `delay` after the first SIGTERM or
// SIGINT (onFirst, if set, runs at that signal); a second signal exits at
// once (status 1), also during the graceful stop that follows. Unlike
// SetupSignalHandler it may be called more than once in a process (tests
// run commands in-process): when the context ends before a signal (parent
// ended, or stop was called, as signal.NotifyContext's), the handler is
// removed. SIGHUP keeps Go's default (the process ends): Kubernetes stops
// a Pod with SIGTERM, and serve leaves nothing behind to clean up.
func shutdownContext(parent context.Context, delay time.Duration, onFirst func()) (context.Context, context.CancelFunc) {
	return shutdownSignals{delay: delay, onFirst: onFirst}.context(parent)
}

// osExit is os.Exit; tests of the second signal replace it.
var osExit = os.Exit

// shutdownSignals is shutdownContext's configuration, for a command that
// needs more than serve: dev catches SIGHUP too (a closed terminal) and
// must stop what it started before a second signal exits the process.
type shutdownSignals struct {
	extra      []os.Signal // caught besides SIGINT and SIGTERM
	delay      time.Duration
	onFirst    func()
	beforeExit func() // runs before a second signal's os.Exit(1): deferred calls will not
}

func (s shutdownSignals) context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	c := make(chan os.Signal, 2)
	signal.Notify(c, append([]os.Signal{os.Interrupt, syscall.SIGTERM}, s.extra...)...)
	exit := func() {
		if s.beforeExit != nil {
			s.beforeExit()
		}
		osExit(1)
		signal.Stop(c) // reached only when a test replaced osExit
	}
	go func() {
		select {
		case <-c:
		case <-ctx.Done():
			signal.Stop(c)
			return
		}
		if s.onFirst != nil {
			s.onFirst()
		}
		select {
		case <-time.After(s.delay):
		case <-c:
			exit()
			return
		}
		cancel()
		<-c
		exit()
	}()
	return ctx, cancel
}

// draining reports whether draining has begun.
func (d *drain) draining() bool {
	select {
	case <-d.begun:
		return true
	default:
		return false
	}
}

// ready is a readyz check that fails while draining.
func (d *drain) ready(*http.Request) error {
	if d.draining() {
		return errors.New("shutting down")
	}
	return nil
}

// drainingServer closes each webhook connection after its response while
// draining.
type drainingServer struct {
	ctrlwebhook.Server
	d *drain
}

func (s drainingServer) Register(path string, h http.Handler) {
	s.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.draining() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	}))
}
