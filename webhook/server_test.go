package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux, as in the binary
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshguard/meshguard/internal/connlimittest"
)

// startServer starts NewServer on a free loopback port with a self-signed
// certificate and h at /inject; it stops when stop is called or the test ends.
func startServer(t *testing.T, h http.Handler) (addr string, stop func()) {
	t.Helper()
	handlers := map[string]http.Handler{}
	if h != nil {
		handlers[InjectPath] = h
	}
	return startServerWith(t, handlers, logr.Discard())
}

// startServerWith is startServer with handlers at their paths and the server
// logging to log.
func startServerWith(t *testing.T, handlers map[string]http.Handler, log logr.Logger) (addr string, stop func()) {
	t.Helper()
	addr, stop, _ = startServerLimited(t, handlers, log, 0)
	return addr, stop
}

// startServerLimited is startServerWith with maxConnections (0: the
// default); it also returns a client TLS configuration for the server.
func startServerLimited(t *testing.T, handlers map[string]http.Handler, log logr.Logger, maxConnections int) (addr string, stop func(), clientTLS *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := NewServer(ctrlwebhook.Options{Host: "127.0.0.1", Port: port, TLSOpts: []func(*tls.Config){func(c *tls.Config) {
		c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
	}}}, time.Second, maxConnections, log)
	for path, h := range handlers {
		s.Register(path, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for s.StartedChecker()(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("webhook server not reachable: %v", s.StartedChecker()(nil))
		}
		time.Sleep(10 * time.Millisecond)
	}
	clientTLS = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}} //nolint:gosec // test server
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), stop, clientTLS
}

// TestServerBoundsEveryRequest: a client that sends the headers of a request
// to a path no webhook serves and then trickles its body is disconnected at
// requestDeadline. Under controller-runtime's server (ReadHeaderTimeout only)
// net/http's discard of the unread body after the 404 or the redirect had no
// deadline: the connection stayed open as long as the client kept it.
func TestServerBoundsEveryRequest(t *testing.T) {
	defer func(d time.Duration) { requestDeadline = d }(requestDeadline)
	requestDeadline = 300 * time.Millisecond
	addr, _ := startServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, path := range []string{"/nothing-here", "//inject" /* ServeMux redirects unclean paths */, InjectPath} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test server
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// 3 bytes of a 1000-byte body; the rest never comes.
		if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc", path); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("POST %s with a withheld body: the connection was still open after 10 s (request deadline %v)", path, requestDeadline)
		}
	}
}

// TestServerDrainsInFlightRequests: when the server stops, new connections
// are refused while a request already being handled finishes, with its
// context still live (controller-runtime's server derives request contexts
// from the one whose end stops it, so they were cancelled at once).
func TestServerDrainsInFlightRequests(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ctxErr := make(chan error, 1)
	addr, stop := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		ctxErr <- r.Context().Err()
		_, _ = io.WriteString(w, "done")
	}))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test server
	type result struct {
		body string
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := client.Post("https://"+addr+InjectPath, "application/json", nil)
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{string(b), err}
	}()
	<-entered
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the stopping server still accepted connections after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-resc; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request: %q %v, want it answered", r.body, r.err)
	}
	if err := <-ctxErr; err != nil {
		t.Errorf("in-flight request's context: %v, want it live until the request ends", err)
	}
	<-stopped
}

// TestServerWithoutWebhooksServesNothing: a server nothing was registered on
// answers 404 everywhere; it never falls back to http.DefaultServeMux, where
// net/http/pprof (linked into the binary) serves /debug/pprof/.
func TestServerWithoutWebhooksServesNothing(t *testing.T) {
	addr, _ := startServer(t, nil)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test server
	for _, path := range []string{"/debug/pprof/", "/debug/vars", InjectPath} {
		resp, err := client.Get("https://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestServerLogsHandshakeErrorsStructured: a client that fails the TLS
// handshake (here one that does not trust the certificate, as an API server
// with a stale caBundle) writes nothing to stderr: net/http's message goes to
// the server's structured logger at V(1), since any client can cause one per
// connection attempt (httplog.ErrorLog). Before, with ErrorLog unset, net/http
// wrote an unstructured line to the standard logger per attempt.
func TestServerLogsHandshakeErrorsStructured(t *testing.T) {
	var stderr syncBuffer
	defer stdlog.SetOutput(stdlog.Writer())
	stdlog.SetOutput(&stderr)
	var mu sync.Mutex
	var lines []string
	log := funcr.NewJSON(func(obj string) { mu.Lock(); lines = append(lines, obj); mu.Unlock() }, funcr.Options{Verbosity: 1}).WithValues("server", "webhook")
	addr, stop := startServerWith(t, nil, log)
	for range 3 {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1"})
		if err == nil {
			c.Close()
			t.Fatal("handshake with an untrusted certificate succeeded")
		}
	}
	stop() // the server has handled every connection
	if s := stderr.String(); s != "" {
		t.Errorf("net/http wrote to the standard logger (stderr):\n%s", s)
	}
	mu.Lock()
	defer mu.Unlock()
	var n int
	for _, l := range lines {
		if strings.Contains(l, "TLS handshake error") {
			n++
			if !strings.Contains(l, `"level":1`) || !strings.Contains(l, `"server":"webhook"`) {
				t.Errorf("handshake error logged as %s, want V(1) with the server's name", l)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d handshake errors logged, want 3:\n%s", n, strings.Join(lines, "\n"))
	}
}

// syncBuffer is a strings.Builder safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAdmissionHandlersSlowClient: on the server serve runs them on
// (NewServer), a client that sends the headers of an AdmissionReview and then
// withholds the body does not hold /inject's or /validate's handler, and the
// memory it reads into, longer than an API server waits for a webhook: the
// request is cut off at requestDeadline, over HTTP/1.1 and per stream over
// HTTP/2. The handlers set no deadline of their own.
func TestAdmissionHandlersSlowClient(t *testing.T) {
	defer func(d time.Duration) { requestDeadline = d }(requestDeadline)
	requestDeadline = 300 * time.Millisecond
	registerValidationMetrics()
	// Each handler, once it returns, sends the request's HTTP major version.
	done := map[string]chan int{InjectPath: make(chan int, 2), ValidatePath: make(chan int, 2)}
	signal := func(path string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() { done[path] <- r.ProtoMajor }()
			h.ServeHTTP(w, r)
		})
	}
	addr, _ := startServerWith(t, map[string]http.Handler{
		InjectPath:   signal(InjectPath, newHandler(t, nil)),
		ValidatePath: signal(ValidatePath, validateHTTPHandler(&ValidationHandler{Log: logr.Discard()})),
	}, logr.Discard())
	h2 := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test server
	for _, path := range []string{InjectPath, ValidatePath} {
		// HTTP/1.1: headers and the start of a 100-byte body; the rest never comes.
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test server
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\":", path); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done[path]:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s over HTTP/1.1: the handler still waits for the body of a stalled client", path)
		}
		// HTTP/2: the same on one stream.
		withheld, stall := io.Pipe()
		defer stall.Close()
		req, err := http.NewRequest(http.MethodPost, "https://"+addr+path, io.MultiReader(strings.NewReader(`{"kind":`), withheld))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 100
		req.Header.Set("Content-Type", "application/json")
		go func() {
			if resp, err := h2.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		select {
		case proto := <-done[path]:
			if proto != 2 {
				t.Fatalf("%s: served over HTTP/%d, want HTTP/2", path, proto)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s over HTTP/2: the handler still waits for the body of a stalled stream", path)
		}
	}
}

// TestRequestDeadlineIsPerRequest: the deadline bounds each request, not the
// connection: a keep-alive connection serves the next AdmissionReview after
// the first one's deadline has passed.
func TestRequestDeadlineIsPerRequest(t *testing.T) {
	defer func(d time.Duration) { requestDeadline = d }(requestDeadline)
	requestDeadline = 2 * time.Second // one injection fits in it on a loaded machine
	addr, _ := startServer(t, newHandler(t, nil))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}} //nolint:gosec // test server
	body := reviewBody(t, testPod(0), nil)
	for i := range 2 {
		if i > 0 {
			time.Sleep(requestDeadline + 200*time.Millisecond) // past the first request's deadline
		}
		var reused bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused }})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+InjectPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"allowed":true`) {
			t.Fatalf("request %d: HTTP %d %v %.200s", i, resp.StatusCode, err, b)
		}
		if i > 0 && !reused {
			t.Fatal("the second request needed a new connection, want the one kept alive")
		}
	}
}

// TestServerConnectionLimit: at --webhook-max-connections the webhook
// server leaves a further client waiting (its TLS handshake is not
// answered) until a connection closes, then serves it. Before, every
// connection was accepted, each holding TLS state, goroutines and, on
// HTTP/2, receive windows.
func TestServerConnectionLimit(t *testing.T) {
	addr, _, clientTLS := startServerLimited(t, nil, logr.Discard(), 2)
	held := connlimittest.Hold(t, addr, clientTLS, 2)
	connlimittest.ExpectQueued(t, addr, clientTLS, func() { held[0].Close() })
}

// TestServerStalledHandshakeFreesItsSlot: a client that connects and never
// starts its TLS handshake is closed at requestDeadline (net/http bounds the
// handshake by the shortest of ReadHeaderTimeout, ReadTimeout and
// WriteTimeout: Server.tlsHandshakeTimeout), freeing its slot for the client
// waiting behind it.
func TestServerStalledHandshakeFreesItsSlot(t *testing.T) {
	defer func(d time.Duration) { requestDeadline = d }(requestDeadline)
	requestDeadline = time.Second // above ExpectQueued's 300 ms
	addr, _, clientTLS := startServerLimited(t, nil, logr.Discard(), 1)
	waitClosed := connlimittest.Stall(t, addr)
	connlimittest.ExpectQueued(t, addr, clientTLS, nil)
	waitClosed()
}
