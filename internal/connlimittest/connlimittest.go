// Package connlimittest checks from outside that a server serves no more
// connections at once than its limit: the webhook server's and ext_authz's
// tests share it.
package connlimittest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// unserved is how long a handshake beyond the limit must stay unanswered. A
// negative can only be shown by waiting; a server that ignored its limit
// answers a loopback handshake well within it.
const unserved = 300 * time.Millisecond

// served bounds the wait for a handshake that must complete: generous, for
// a machine busy with other tests.
const served = 30 * time.Second

// ExpectQueued checks that, with the server at addr at its connection limit,
// a further client's TLS handshake (cfg) is not answered until release is
// called (release frees a slot: it closes a held connection; nil when the
// server itself must close one, e.g. a stalled handshake at its deadline),
// and completes afterwards. Where the server must free the slot, its bound
// must exceed 300 ms.
func ExpectQueued(t *testing.T, addr string, cfg *tls.Config, release func()) {
	t.Helper()
	ExpectServedAfter(t, addr, func(c net.Conn) error { return tls.Client(c, cfg).Handshake() }, release)
}

// ExpectServedAfter is ExpectQueued with exchange, run on a new connection
// to addr, as the proof of being served (a TLS handshake, a request
// answered).
func ExpectServedAfter(t *testing.T, addr string, exchange func(net.Conn) error, release func()) {
	t.Helper()
	c, err := net.Dial("tcp", addr) // the kernel accepts it: only Accept waits
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(served)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- exchange(c) }()
	select {
	case err := <-done:
		t.Fatalf("a connection beyond the limit was served (result %v)", err)
	case <-time.After(unserved):
	}
	if release != nil {
		release()
	}
	if err := <-done; err != nil {
		t.Fatalf("the queued connection, after a slot was freed: %v", err)
	}
}

// Hold opens n TLS connections to addr (handshakes complete) and returns
// them; the test closes them.
func Hold(t *testing.T, addr string, cfg *tls.Config, n int) []*tls.Conn {
	t.Helper()
	var cs []*tls.Conn
	for range n {
		d := &net.Dialer{Timeout: served}
		c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
		if err != nil {
			t.Fatalf("connection %d of %d: %v", len(cs)+1, n, err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// Stall opens a TCP connection to addr that never sends a byte (a TLS
// handshake that never starts). The returned function waits for the server
// to close it and fails the test if it has not within 30 s.
func Stall(t *testing.T, addr string) (waitClosed func()) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	closed := make(chan error, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(served))
		_, err := io.Copy(io.Discard, c) // plaintext gRPC writes its SETTINGS first
		closed <- err
	}()
	return func() {
		t.Helper()
		var ne net.Error
		if err := <-closed; errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("a connection that never sent a byte was still open after %v", served)
		}
	}
}
