package webhook

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// TestHeaderLimit: a request whose headers exceed maxHeaderBytes is refused
// before any handler runs, on HTTP/1.1 (431) and on HTTP/2 (431 or the
// connection closed), and one within it is served. Under controller-runtime's
// 1 MiB each of a connection's 100 streams could hold a megabyte of headers.
func TestHeaderLimit(t *testing.T) {
	var served atomic.Int32
	addr, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
	}))
	within, over := strings.Repeat("p", maxHeaderBytes/2), strings.Repeat("p", 2*maxHeaderBytes)

	h1 := func(pad string) int {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test server
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", InjectPath, pad); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// ran reports whether the handler ran since the last call.
	var seen int32
	ran := func() bool { n := served.Load(); defer func() { seen = n }(); return n > seen }
	if got := h1(over); got != http.StatusRequestHeaderFieldsTooLarge || ran() {
		t.Errorf("HTTP/1.1, %d bytes of headers: %d, handler ran %v; want 431, not run", len(over), got, served.Load() > seen)
	}
	if got := h1(within); got != http.StatusOK || !ran() {
		t.Errorf("HTTP/1.1, %d bytes of headers: %d, want 200 from the handler", len(within), got)
	}

	// HTTP/2 through raw frames: Go's client would itself refuse to send
	// more than the server's SETTINGS_MAX_HEADER_LIST_SIZE; a hostile one
	// does not.
	h2 := func(pad string) (status int, closed bool) {
		t.Helper()
		c := dialH2(t, addr)
		defer c.conn.Close()
		if err := c.writeStream(1, InjectPath, pad, -1, true); err != nil {
			return 0, true // refused while we were still writing
		}
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				return 0, true
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				return 0, true
			case *http2.MetaHeadersFrame:
				s, _ := strconv.Atoi(f.PseudoValue("status"))
				return s, false
			}
		}
	}
	if status, closed := h2(over); (status != http.StatusRequestHeaderFieldsTooLarge && !closed) || ran() {
		t.Errorf("HTTP/2, %d bytes of headers: status %d, connection closed %v; want 431 or closed, handler not run", len(over), status, closed)
	}
	if status, closed := h2(within); status != http.StatusOK || closed || !ran() {
		t.Errorf("HTTP/2, %d bytes of headers: status %d, connection closed %v; want 200 from the handler", len(within), status, closed)
	}
}

// TestHeaderMemoryBounded: what a connection's 100 streams can hold in
// headers while their bodies never arrive, measured in this process with
// the client in a child process (memoryClient). Under controller-runtime's
// 1 MiB limit, 3 connections of streams with ~1,000 KiB of headers each held
// +300 MiB of heap (outside the body budget) for 11 s; now such headers
// close the connection, and streams whose headers are just within the limit
// hold what the limit allows.
func TestHeaderMemoryBounded(t *testing.T) {
	withBudget(t, admissionBudgetBytes, time.Second)
	registerValidationMetrics()
	h := limitBody(&ctrlwebhook.Admission{Handler: &ValidationHandler{Log: logr.Discard()}}, DefaultMaxRequestBytes)
	var active atomic.Int32 // handlers running
	addr, _ := startServerWith(t, map[string]http.Handler{ValidatePath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		h.ServeHTTP(w, r)
	})}, logr.Discard())
	const conns = 3
	for _, tc := range []struct {
		name string
		pad  int
		held bool // streams held open, not refused
		most int64
	}{
		// The sizes the old limit let through: refused, almost nothing held.
		{"1000KiB", 1000 << 10, false, 16 << 20},
		// No padding: the API server's few hundred bytes, a stream's fixed cost.
		{"none", 0, true, conns * maxConcurrentStreams * 64 << 10},
		// Just within the limit: each stream holds its headers (about twice:
		// the decoded strings and the request's Header map share them; the
		// hpack buffers do not).
		{"within", maxHeaderBytes - 1<<10, true, conns * maxConcurrentStreams * 3 * maxHeaderBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The streams of the case before have ended (their client did).
			for deadline := time.Now().Add(10 * time.Second); active.Load() != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d handlers still running from the case before", active.Load())
				}
			}
			before := memInUse()
			results := runMemoryClient(t, addr, conns, tc.pad)
			streams := conns * maxConcurrentStreams
			if tc.held { // every stream in its handler, waiting for its body
				for deadline := time.Now().Add(10 * time.Second); active.Load() != int32(streams); time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%d of %d streams reached the handler; connections: %v", active.Load(), streams, results)
					}
				}
			}
			grown := int64(memInUse()) - int64(before)
			t.Logf("%d streams with %d bytes of padding on %d connections: %v; heap and stacks in use +%d KiB (%d bytes a stream)",
				streams, tc.pad, conns, results, grown>>10, grown/int64(streams))
			for _, r := range results {
				if (r == "held") != tc.held {
					t.Errorf("connection %s, want held %v", r, tc.held)
				}
			}
			if grown > tc.most {
				t.Errorf("heap and stacks in use grew %d MiB, want at most %d MiB", grown>>20, tc.most>>20)
			}
		})
	}
}

// memInUse is the heap and goroutine stacks in use after two collections
// (the second empties what sync.Pools kept through the first).
func memInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// runMemoryClient runs TestHeaderMemoryClient in a child process against
// addr and returns what each of its connections reported ("held" or why it
// was refused) once the server has read all its streams' headers. The child
// keeps its connections open until the test ends.
func runMemoryClient(t *testing.T, addr string, conns, pad int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHeaderMemoryClient$")
	cmd.Env = append(os.Environ(), "MEMCLIENT_ADDR="+addr, fmt.Sprintf("MEMCLIENT_CONNS=%d", conns), fmt.Sprintf("MEMCLIENT_PAD=%d", pad))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() }) // closing stdin ends the child
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "conn: "); ok {
				lines <- r
			}
		}
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	var results []string
	for len(results) < conns {
		select {
		case r, ok := <-lines:
			if !ok {
				t.Fatalf("memory client ended after %d of %d connections", len(results), conns)
			}
			results = append(results, r)
		case <-timeout.C:
			t.Fatalf("memory client: %d of %d connections reported in 60 s", len(results), conns)
		}
	}
	return results
}

// TestHeaderMemoryClient is runMemoryClient's child: MEMCLIENT_CONNS HTTP/2
// connections to MEMCLIENT_ADDR, each opening maxConcurrentStreams POSTs to
// /validate with MEMCLIENT_PAD bytes of X-Pad, a declared 6 MiB body and no
// body byte, then a PING. It reports "conn: held" once the PING is answered
// (the server reads frames in order, so it has read every stream's headers)
// or "conn: <why>" when the server refused the connection, then waits for
// stdin to close.
func TestHeaderMemoryClient(t *testing.T) {
	addr := os.Getenv("MEMCLIENT_ADDR")
	if addr == "" {
		t.Skip("runMemoryClient's child process")
	}
	conns, _ := strconv.Atoi(os.Getenv("MEMCLIENT_CONNS"))
	pad, _ := strconv.Atoi(os.Getenv("MEMCLIENT_PAD"))
	var open []*h2Conn // referenced until the end: a collection would close them
	for range conns {
		c := dialH2(t, addr)
		open = append(open, c)
		fmt.Printf("conn: %s\n", c.holdStreams(strings.Repeat("p", pad)))
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range open {
		c.conn.Close()
	}
}

// h2Conn is a raw HTTP/2 client connection that sends what it is told,
// whatever the server's settings.
type h2Conn struct {
	conn *tls.Conn
	fr   *http2.Framer
	addr string
}

// dialH2 connects to addr and exchanges the connection prefaces.
func dialH2(t *testing.T, addr string) *h2Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test server
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c := &h2Conn{conn: conn, fr: http2.NewFramer(conn, conn), addr: addr}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			if err := c.fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
}

// writeStream opens stream id: a request to path with pad as X-Pad, a
// declared body of length bytes (-1: none) and, with end, no body.
func (c *h2Conn) writeStream(id uint32, path, pad string, length int, end bool) error {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	method := http.MethodGet
	if length >= 0 {
		method = http.MethodPost
	}
	fields := []hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: c.addr}, {Name: ":path", Value: path},
		{Name: "content-type", Value: "application/json"},
	}
	if length >= 0 {
		fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(length)})
	}
	if pad != "" {
		fields = append(fields, hpack.HeaderField{Name: "x-pad", Value: pad, Sensitive: true}) // never indexed
	}
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			return err
		}
	}
	const frag = 16 << 10 // the minimum SETTINGS_MAX_FRAME_SIZE
	b := block.Bytes()
	first := b[:min(len(b), frag)]
	b = b[len(first):]
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(b) == 0}); err != nil {
		return err
	}
	for len(b) > 0 {
		next := b[:min(len(b), frag)]
		b = b[len(next):]
		if err := c.fr.WriteContinuation(id, len(b) == 0, next); err != nil {
			return err
		}
	}
	return nil
}

// holdStreams opens maxConcurrentStreams streams whose bodies never come
// and returns "held" once the server has read them all, or why it refused.
func (c *h2Conn) holdStreams(pad string) string {
	for i := range maxConcurrentStreams {
		if err := c.writeStream(uint32(2*i+1), ValidatePath, pad, DefaultMaxRequestBytes, false); err != nil {
			return "refused while writing: " + err.Error()
		}
	}
	data := [8]byte{'h', 'e', 'l', 'd'}
	if err := c.fr.WritePing(false, data); err != nil {
		return "refused while writing: " + err.Error()
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return "closed: " + err.Error()
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() && f.Data == data {
				return "held"
			}
		case *http2.GoAwayFrame:
			return fmt.Sprintf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			return fmt.Sprintf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" {
				return "answered " + s
			}
		}
	}
}
