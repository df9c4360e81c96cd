package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// withBudget replaces the admission body budget for one test.
func withBudget(t *testing.T, size int64, wait time.Duration) {
	t.Helper()
	b, w := admissionBudget, admissionBudgetWait
	admissionBudget, admissionBudgetWait = newByteBudget(size), wait
	t.Cleanup(func() { admissionBudget, admissionBudgetWait = b, w })
}

// readProbe signals on full once a request's handler has read want bytes
// of its body, and counts the requests whose body it started reading.
type readProbe struct {
	next    http.Handler
	want    int64
	full    chan struct{}
	started atomic.Int32
}

func (p *readProbe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.started.Add(1)
	r.Body = &probedBody{ReadCloser: r.Body, p: p}
	p.next.ServeHTTP(w, r)
}

type probedBody struct {
	io.ReadCloser
	p    *readProbe
	n    int64
	sent bool
}

func (b *probedBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.n += int64(n)
	if !b.sent && b.n >= b.p.want {
		b.sent = true
		b.p.full <- struct{}{}
	}
	return n, err
}

// heapInUse is the heap in use after a collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestAdmissionBodyBudget: many streams on one HTTP/2 connection, each
// sending all but the last byte of a body at the limit and then stalling,
// pin no more heap than the server-wide body budget allows: the streams the
// budget cannot hold are answered 429 with Retry-After (the API server
// retries that within its timeout), and a small AdmissionReview still gets
// through beside the stalled ones. Without the budget every stream read its
// body (24 streams: +196 MiB of heap held up to requestDeadline).
func TestAdmissionBodyBudget(t *testing.T) {
	defer func(d time.Duration) { requestDeadline = d }(requestDeadline)
	requestDeadline = 20 * time.Second
	const (
		budget = 16 << 20
		n      = 24
		fits   = budget / DefaultMaxRequestBytes // bodies the budget holds at once
	)
	withBudget(t, budget, 200*time.Millisecond)
	registerValidationMetrics()
	probe := &readProbe{
		// validateHTTPHandler's chain, with the probe inside limitBody.
		next: &ctrlwebhook.Admission{Handler: &ValidationHandler{Log: logr.Discard()}},
		want: DefaultMaxRequestBytes - 1,
		full: make(chan struct{}, n),
	}
	addr, _ := startServerWith(t, map[string]http.Handler{ValidatePath: limitBody(probe, DefaultMaxRequestBytes)}, logr.Discard())
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 1} //nolint:gosec // test server
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	before := heapInUse()
	chunk := bytes.Repeat([]byte(" "), DefaultMaxRequestBytes-1)
	type answer struct {
		status     int
		retryAfter string
		proto      int
	}
	answers := make(chan answer, n)
	for range n {
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		req, err := http.NewRequest(http.MethodPost, "https://"+addr+ValidatePath, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = DefaultMaxRequestBytes
		req.Header.Set("Content-Type", "application/json")
		go func() {
			resp, err := c.Do(req)
			if err != nil {
				return // the stalled ones, at the test's end
			}
			resp.Body.Close()
			answers <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.ProtoMajor}
		}()
		go func() { _, _ = pw.Write(chunk) }()
	}

	// Await the answers to the streams the budget cannot hold, and the
	// bodies it holds read to their stalled end.
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	var refused, full int
	for refused < n-fits || full < fits {
		select {
		case a := <-answers:
			if a.status != http.StatusTooManyRequests || a.retryAfter != "1" || a.proto != 2 {
				t.Fatalf("a stream over the budget: HTTP/%d %d, Retry-After %q; want HTTP/2 429, Retry-After 1", a.proto, a.status, a.retryAfter)
			}
			refused++
		case <-probe.full:
			full++
		case <-timeout.C:
			t.Fatalf("after 15 s: %d of %d streams refused, %d bodies read whole (want %d and %d); heap in use +%d MiB",
				refused, n, full, n-fits, fits, int64(heapInUse()-before)>>20)
		}
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d stalled streams, budget %d MiB: %d read, %d refused, heap in use +%d MiB", n, budget>>20, full, refused, grown>>20)
	if got := probe.started.Load(); got != fits {
		t.Errorf("%d bodies read at once, want the %d the budget holds", got, fits)
	}
	if grown > 2*budget {
		t.Errorf("heap in use grew %d MiB with %d stalled bodies, want at most twice the %d MiB budget", grown>>20, n, budget>>20)
	}

	// A small review fits beside the stalled bodies (12 of 16 MiB held).
	small := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"small","kind":{"group":"networking.istio.io","version":"v1","kind":"Sidecar"},"namespace":"default","name":"x","operation":"DELETE","object":null}}`
	resp, err := c.Post("https://"+addr+ValidatePath, "application/json", strings.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var review struct {
		Response struct{ UID string } `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&review); resp.StatusCode != http.StatusOK || err != nil || review.Response.UID != "small" {
		t.Fatalf("small review beside the stalled ones: %d, uid %q, %v; want 200 and its review answered", resp.StatusCode, review.Response.UID, err)
	}
}

// TestAdmissionBudgetExhausted: with the whole budget held, a request waits
// for it at most admissionBudgetWait (or until its client goes), then is
// answered 429 with Retry-After and its body is never read; a request whose
// budget frees while it waits is served; a chunked body holds the limit
// while it is read, then only its length.
func TestAdmissionBudgetExhausted(t *testing.T) {
	const budget = 1 << 20
	withBudget(t, budget, 50*time.Millisecond)
	var served atomic.Int32
	h := limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}), 64<<10)
	post := func(ctx context.Context, body string, chunked bool) *httptest.ResponseRecorder {
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd)
		}
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, ValidatePath, rd)
		r.Header.Set("Content-Type", "application/json")
		if chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	if err := admissionBudget.sem.Acquire(context.Background(), budget); err != nil {
		t.Fatal(err)
	}
	w := post(context.Background(), "{}", false)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || served.Load() != 0 {
		t.Fatalf("budget exhausted: %d, Retry-After %q, served %d; want 429, Retry-After 1, not served", w.Code, w.Header().Get("Retry-After"), served.Load())
	}
	// A client that goes while waiting is not kept.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if w := post(ctx, "{}", false); w.Code != http.StatusServiceUnavailable || served.Load() != 0 {
		t.Fatalf("client gone while waiting: %d, served %d; want 503, not served", w.Code, served.Load())
	}

	// Budget freed while the request waits: served.
	admissionBudgetWait = time.Minute
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- post(context.Background(), "{}", false) }()
	admissionBudget.sem.Release(budget)
	if w := <-done; w.Code != http.StatusOK || served.Load() != 1 {
		t.Fatalf("budget freed: %d, served %d; want 200, served", w.Code, served.Load())
	}

	// Everything released once the handlers returned: the whole budget is
	// free again, after a chunked body too.
	if w := post(context.Background(), "{}", true); w.Code != http.StatusOK {
		t.Fatalf("chunked: %d %s", w.Code, w.Body)
	}
	if w := post(context.Background(), strings.Repeat(" ", 64<<10+1), true); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked over the limit: %d, want 413", w.Code)
	}
	if !admissionBudget.sem.TryAcquire(budget) {
		t.Fatal("budget not released after the handlers returned")
	}
	admissionBudget.sem.Release(budget)
}

// TestHTTP2StreamLimit: the webhook server offers HTTP/2 clients at most
// maxConcurrentStreams streams per connection (Go's default is 250), read
// from the server's first SETTINGS frame.
func TestHTTP2StreamLimit(t *testing.T) {
	addr, _ := startServer(t, nil)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test server
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// RFC 9113 §3.4: the server's preface is a SETTINGS frame.
	br := bufio.NewReader(conn)
	var hdr [9]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if hdr[3] != 0x4 {
		t.Fatalf("first frame type %d, want SETTINGS", hdr[3])
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	got := -1
	for i := 0; i+6 <= len(payload); i += 6 {
		if binary.BigEndian.Uint16(payload[i:]) == 0x3 { // SETTINGS_MAX_CONCURRENT_STREAMS
			got = int(binary.BigEndian.Uint32(payload[i+2:]))
		}
	}
	if got != maxConcurrentStreams {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, maxConcurrentStreams)
	}
}
