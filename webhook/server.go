package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshguard/meshguard/internal/connlimit"
	"github.com/meshguard/meshguard/internal/httplog"
)

// NewServer returns the webhook HTTPS server: controller-runtime's
// (registration, its controller_runtime_webhook_* metrics, the mux) served
// by an http.Server that bounds the whole of every request, not only its
// headers. controller-runtime's server (pkg/internal/httpserver New) sets
// ReadHeaderTimeout alone, so a client trickling a body, to a webhook or to
// any other path (after a 404, or ServeMux's redirect of an unclean path,
// net/http discards up to 256 KiB of unread body), held the connection and its
// goroutine for as long as it liked. The admission handlers rely on this bound
// (requestDeadline). o.TLSOpts must set GetCertificate (serve's certificate
// source); a graceful stop waits at most shutdownTimeout for in-flight
// requests. net/http's own messages (a client's failed TLS handshake) go to
// log (NewHTTPServer).
func NewServer(o ctrlwebhook.Options, shutdownTimeout time.Duration, maxConnections int, log logr.Logger) ctrlwebhook.Server {
	if o.WebhookMux == nil {
		o.WebhookMux = http.NewServeMux()
	}
	if o.Port <= 0 {
		o.Port = ctrlwebhook.DefaultPort
	}
	if maxConnections <= 0 {
		maxConnections = DefaultMaxConnections
	}
	return &server{Server: ctrlwebhook.NewServer(o), o: o, shutdownTimeout: shutdownTimeout, maxConnections: maxConnections, log: log}
}

// NewHTTPServer is an http.Server for h with controller-runtime's header
// and idle limits whose every exchange, on HTTP/1 per request, on HTTP/2 per
// stream, is cut off at requestDeadline, headers, body and response alike:
// the webhook server's, and serve's health probe and metrics servers'
// (controller-runtime's have the same gap). What net/http logs goes to log
// (httplog.ErrorLog), not to stderr.
func NewHTTPServer(h http.Handler, log logr.Logger) *http.Server {
	return &http.Server{
		Handler:        h,
		ErrorLog:       httplog.ErrorLog(log),
		MaxHeaderBytes: maxHeaderBytes,
		IdleTimeout:    90 * time.Second, // controller-runtime's
		// The API server waits at most 30 s (timeoutSeconds) for a webhook,
		// a kubelet probe or a scrape far less: none needs longer. The
		// admission handlers shorten the read of a small body
		// (limitBody: bodyReadBase plus its length at bodyReadRate).
		ReadHeaderTimeout: requestDeadline,
		ReadTimeout:       requestDeadline,
		WriteTimeout:      requestDeadline,
		// Go's default is 250 streams per connection. An API server opens
		// another connection when one is at the limit, so a lower one does
		// not starve it; what the streams may read at once is bounded
		// server-wide by the admission body budget (limitBody).
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxConcurrentStreams},
	}
}

// DefaultMaxConnections is --webhook-max-connections' default. The
// webhook's clients are kube-apiservers, which multiplex admission calls
// over a few HTTP/2 connections each (another only when one has
// maxConcurrentStreams open), plus the kubelet's probes: a few dozen
// connections at most. 1,000 leaves room for many API servers and
// HTTP/1.1 clients (an API server with DISABLE_HTTP2 opens one per call in
// flight) while bounding what a flood of connections can hold: each costs
// its TLS state and goroutines and, on HTTP/2, up to 1 MiB of unread body
// and its streams' headers (maxHeaderBytes; about 3 MiB for 100 streams at
// the limit, docs/reliability.md) for at most requestDeadline; the bodies
// read are bounded server-wide by the admission body budget (limitBody).
const DefaultMaxConnections = 1000

// maxHeaderBytes bounds a request's headers on the servers NewHTTPServer
// builds: on HTTP/1 (net/http answers 431 beyond it plus 4 KiB of slack)
// and on HTTP/2, where net/http derives from it the SETTINGS_MAX_HEADER_LIST_SIZE
// it advertises and enforces (plus 320 bytes) and its HPACK decoder's longest
// string, so a larger block is answered 431 or closes the connection before
// it is held. Headers are outside the admission body budget, and each of a
// connection's streams holds its own while the handler waits for the body:
// under net/http's default of 1 MiB (controller-runtime's, and istiod's
// webhook server's, pilot/pkg/bootstrap/webhook.go initSecureWebhookServer),
// 3 connections of 100 streams held +300 MiB. The API server sends a few
// hundred bytes (a bearer token, when its kubeconfig for webhooks has one,
// a few KiB), a kubelet probe or a scrape no more.
const maxHeaderBytes = 16 << 10

// maxConcurrentStreams is the HTTP/2 streams one client connection may have
// open at once on the servers NewHTTPServer builds.
const maxConcurrentStreams = 100

type server struct {
	ctrlwebhook.Server // Register, WebhookMux, NeedLeaderElection
	o                  ctrlwebhook.Options
	shutdownTimeout    time.Duration
	maxConnections     int
	log                logr.Logger
	started            atomic.Bool
}

func (s *server) addr() string { return net.JoinHostPort(s.o.Host, strconv.Itoa(s.o.Port)) }

// Start serves until ctx ends, then stops gracefully. In-flight requests
// keep their own context until they end (controller-runtime's derive theirs
// from ctx, cancelled as the stop begins).
func (s *server) Start(ctx context.Context) error {
	cfg := &tls.Config{NextProtos: []string{"h2"}} // as controller-runtime's
	for _, op := range s.o.TLSOpts {
		op(cfg)
	}
	if cfg.GetCertificate == nil {
		return errors.New("webhook server: no serving certificate (TLSOpts must set GetCertificate)")
	}
	tcp, err := net.Listen("tcp", s.addr())
	if err != nil {
		return fmt.Errorf("webhook server listen on %s: %w", s.addr(), err)
	}
	// The limit counts TCP connections, handshaken or not: net/http closes
	// one whose handshake stalls at requestDeadline (NewHTTPServer).
	lis := tls.NewListener(connlimit.Listener(tcp, s.maxConnections), cfg)
	// Options' mux, never nil: DefaultServer's is nil until a Register, and
	// a nil Handler is http.DefaultServeMux, where the net/http/pprof and
	// expvar linked into the binary register /debug/.
	hs := NewHTTPServer(s.o.WebhookMux, s.log)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lis) }()
	s.started.Store(true)
	select {
	case err := <-errc:
		return fmt.Errorf("webhook server on %s: %w", s.addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}

// StartedChecker is controller-runtime's: healthy once started and a TLS
// connection to the port succeeds.
func (s *server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("webhook server has not been started yet")
		}
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", s.addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that the port answers
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}
