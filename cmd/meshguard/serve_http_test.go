package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/internal/connlimittest"
)

// addRecorder is a manager that only records the Runnables added to it.
type addRecorder struct {
	manager.Manager
	added []manager.Runnable
}

func (a *addRecorder) Add(r manager.Runnable) error { a.added = append(a.added, r); return nil }

// startHTTP runs serveHTTP's server for h on a loopback port until the test
// ends and returns its address. With shorten, every time bound the server was
// built with is cut to that (a bound it lacks stays absent), so a test can see
// the bounds act without waiting out the product's 30 s.
func startHTTP(t *testing.T, name string, h http.Handler, shorten time.Duration) string {
	t.Helper()
	rec := &addRecorder{}
	if err := serveHTTP(rec, name, "127.0.0.1:0", h, time.Second, logr.Discard()); err != nil {
		t.Fatal(err)
	}
	if len(rec.added) != 1 {
		t.Fatalf("%d runnables added, want the server", len(rec.added))
	}
	srv := rec.added[0].(*manager.Server)
	if shorten > 0 {
		for _, d := range []*time.Duration{&srv.Server.ReadHeaderTimeout, &srv.Server.ReadTimeout, &srv.Server.WriteTimeout} {
			if *d > 0 {
				*d = shorten
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv.Listener.Addr().String()
}

// TestProbeAndMetricsServersBoundRequests: a client that sends the headers
// of a request to the health probe or metrics port and then withholds the
// body is disconnected within the request deadline (30 s; the test cuts the
// server's bounds to 100 ms). Under controller-runtime's servers
// (ReadHeaderTimeout only) net/http's discard of the unread body after the
// handler had no deadline: the connection stayed open as long as the client
// kept it.
func TestProbeAndMetricsServersBoundRequests(t *testing.T) {
	const bound = 100 * time.Millisecond
	p := &probeChecks{healthz: map[string]healthz.Checker{"ping": healthz.Ping}, readyz: map[string]healthz.Checker{}}
	addrs := map[string]string{
		"/readyz":  startHTTP(t, "health probe", p.handler(), bound),
		"/metrics": startHTTP(t, "metrics", http.NotFoundHandler(), bound),
	}
	errc := make(chan error, len(addrs))
	for path, addr := range addrs {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc", path); err != nil {
				errc <- err
				return
			}
			if err := c.SetReadDeadline(time.Now().Add(10 * bound)); err != nil {
				errc <- err
				return
			}
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				errc <- fmt.Errorf("POST %s with a withheld body: the connection was still open after %v (bounds cut to %v)", path, 10*bound, bound)
				return
			}
			errc <- nil
		}()
	}
	for range addrs {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

// TestProbeChecks: /healthz and /readyz answer as controller-runtime's probe
// server does: every check, /<check> for one, checks added after the server
// started included.
func TestProbeChecks(t *testing.T) {
	p := &probeChecks{healthz: map[string]healthz.Checker{}, readyz: map[string]healthz.Checker{}}
	if err := p.AddHealthzCheck("ping", healthz.Ping); err != nil {
		t.Fatal(err)
	}
	if err := p.AddReadyzCheck("certificate", healthz.Ping); err != nil {
		t.Fatal(err)
	}
	addr := startHTTP(t, "health probe", p.handler(), 0)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz", "/readyz/certificate", "/healthz/ping"} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", path, code, body)
		}
	}
	if err := p.AddReadyzCheck("draining", func(*http.Request) error { return errors.New("shutting down") }); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz"); code != http.StatusInternalServerError || !strings.Contains(body, "draining") {
		t.Errorf("GET /readyz with a failing check: %d %s, want 500 naming it", code, body)
	}
	if code, _ := get("/readyz/certificate"); code != http.StatusOK {
		t.Errorf("GET /readyz/certificate: %d, want 200 (only that check)", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: %d, want 200 (readiness checks are not liveness checks)", code)
	}
}

// TestProbeAndMetricsServersLogStructured: what net/http logs on the probe
// and metrics servers goes to the process's logger with the server's name,
// not to stderr (httplog.ErrorLog; ErrorLog was unset).
func TestProbeAndMetricsServersLogStructured(t *testing.T) {
	for _, name := range []string{"health probe", "metrics"} {
		var lines []string
		log := funcr.NewJSON(func(obj string) { lines = append(lines, obj) }, funcr.Options{})
		rec := &addRecorder{}
		if err := serveHTTP(rec, name, "127.0.0.1:0", http.NotFoundHandler(), time.Second, log); err != nil {
			t.Fatal(err)
		}
		srv := rec.added[0].(*manager.Server)
		_ = srv.Listener.Close()
		if srv.Server.ErrorLog == nil {
			t.Fatalf("%s server: ErrorLog unset, net/http writes to stderr", name)
		}
		srv.Server.ErrorLog.Printf("http: panic serving %s: %v", "127.0.0.1:1", "boom")
		if len(lines) != 1 || !strings.Contains(lines[0], `"server":"`+name+`"`) || !strings.Contains(lines[0], "panic serving") {
			t.Errorf("%s server logged %q, want one entry naming it", name, lines)
		}
	}
}

// TestMetricsServerConnectionLimit: the metrics server serves at most
// metricsMaxConnections connections at once; a further client waits (its
// request is not answered) until one closes. Before, every connection was
// accepted.
func TestMetricsServerConnectionLimit(t *testing.T) {
	addr := startHTTP(t, "metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), 0)
	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		return r.Body.Close()
	}
	var held []net.Conn
	for range metricsMaxConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := get(c); err != nil { // served: the connection holds a slot
			t.Fatalf("connection %d: %v", len(held)+1, err)
		}
		held = append(held, c)
	}
	connlimittest.ExpectServedAfter(t, addr, get, func() { held[0].Close() })
}

// TestHealthProbeServerCannotBeStarved: clients holding many connections to
// the health probe server, some idle, some after a request, never keep the
// kubelet's probe waiting: the server has no connection cap and closes a
// connection after its one request. With a cap of 100 and keep-alives, 100
// connections kept alive made the probe wait past its timeout (and the
// container be restarted).
func TestHealthProbeServerCannotBeStarved(t *testing.T) {
	addr := startHTTP(t, probeServer, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), 0)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for range 150 {
		c := dial()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		// Keep-alives off: the server closes the connection after the response.
		if n, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after its request, the connection is still open (read %v, %v), want it closed by the server", n, err)
		}
	}
	for range 150 {
		dial() // idle: never sends a request
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("probe with 150 idle connections open: %v", err)
	}
	_ = resp.Body.Close()
}
