package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/internal/connlimittest"
	"github.com/meshguard/meshguard/policy"
)

// serveLimited serves ext_authz over TLS on loopback with
// Options.MaxConnections = max, on the gRPC port (Serve) or the HTTP one
// (ServeHTTP), until the test ends; it returns the address and a client TLS
// configuration for it.
func serveLimited(t *testing.T, protocol string, maxConns int) (string, *tls.Config) {
	t.Helper()
	ca, caKey := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf(t, ca, caKey, "server", []string{"127.0.0.1"})}, MinVersion: tls.VersionTLS12}
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(policy.NewEngine(policy.Mesh{}), Options{DecisionLog: "off", MaxConnections: maxConns, ShutdownTimeout: time.Second}, logr.Discard())
	serve := s.Serve
	clientTLS.NextProtos = []string{"h2"}
	if protocol == "HTTP" {
		serve = s.ServeHTTP
		clientTLS.NextProtos = []string{"http/1.1"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, lis, serverTLS) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s server: %v", protocol, err)
		}
	})
	return lis.Addr().String(), clientTLS
}

// TestConnectionLimit: at --authz-max-connections, the gRPC and the HTTP
// port leave a further client waiting (its TLS handshake is not answered)
// until a connection closes, then serve it. Before, every connection was
// accepted, each holding TLS state, goroutines and HTTP/2 buffers.
func TestConnectionLimit(t *testing.T) {
	for _, protocol := range []string{"gRPC", "HTTP"} {
		t.Run(protocol, func(t *testing.T) {
			addr, clientTLS := serveLimited(t, protocol, 2)
			held := connlimittest.Hold(t, addr, clientTLS, 2)
			connlimittest.ExpectQueued(t, addr, clientTLS, func() { held[0].Close() })
		})
	}
}

// TestStalledHandshakeFreesItsSlot: a client that connects and never starts
// its TLS handshake holds a slot of the limit only until handshakeTimeout:
// the server closes it and serves the client waiting behind it.
func TestStalledHandshakeFreesItsSlot(t *testing.T) {
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = time.Second // above ExpectQueued's 300 ms
	for _, protocol := range []string{"gRPC", "HTTP"} {
		t.Run(protocol, func(t *testing.T) {
			addr, clientTLS := serveLimited(t, protocol, 1)
			waitClosed := connlimittest.Stall(t, addr)
			connlimittest.ExpectQueued(t, addr, clientTLS, nil)
			waitClosed()
		})
	}
}
