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
	"sync"
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

// smallReview is an AdmissionReview of a few hundred bytes /validate
// answers 200 without an index.
const smallReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"small","kind":{"group":"networking.istio.io","version":"v1","kind":"Sidecar"},"namespace":"default","name":"x","operation":"DELETE","object":null}}`

// postSmallReview posts smallReview and fails t unless it is answered 200
// with its review.
func postSmallReview(t *testing.T, c *http.Client, addr string) {
	t.Helper()
	resp, err := c.Post("https://"+addr+ValidatePath, "application/json", strings.NewReader(smallReview))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var review struct {
		Response struct{ UID string } `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&review); resp.StatusCode != http.StatusOK || err != nil || review.Response.UID != "small" {
		t.Fatalf("small review beside the stalled streams: %d (Retry-After %q), uid %q, %v; want 200 and its review answered",
			resp.StatusCode, resp.Header.Get("Retry-After"), review.Response.UID, err)
	}
}

// h2Client is an HTTP/2 client of the test server on one connection.
func h2Client(t *testing.T) *http.Client {
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 1} //nolint:gosec // test server
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestAdmissionBodyBudget: many streams on one HTTP/2 connection, each
// sending all but the last byte of a body at the limit and then stalling,
// pin no more heap than the server-wide body budget allows: a stream holds
// twice the bytes that reached it (its buffer and controller-runtime's
// copy), so the budget holds what it can of them, and every stream that
// finds it full is answered 429 with Retry-After (the API server retries
// that within its timeout); a small AdmissionReview still gets through
// beside the stalled ones. Without the budget every stream read its body
// (24 streams: +196 MiB of heap held up to requestDeadline).
func TestAdmissionBodyBudget(t *testing.T) {
	defer func(d time.Duration) { requestDeadline = d }(requestDeadline)
	requestDeadline = 20 * time.Second
	defer func(d time.Duration) { bodyReadBase = d }(bodyReadBase)
	bodyReadBase = 20 * time.Second // no stalled stream times out here
	const (
		budget = 16 << 20
		n      = 24
		fits   = budget / (2 * DefaultMaxRequestBytes) // whole bodies the budget holds at once
	)
	withBudget(t, budget, 200*time.Millisecond)
	registerValidationMetrics()
	probe := &readProbe{
		next: limitBody(&ctrlwebhook.Admission{Handler: &ValidationHandler{Log: logr.Discard()}}, DefaultMaxRequestBytes),
		want: DefaultMaxRequestBytes - 1,
		full: make(chan struct{}, n),
	}
	addr, _ := startServerWith(t, map[string]http.Handler{ValidatePath: probe}, logr.Discard())
	c := h2Client(t)

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

	// Await every stream's end: refused, or its body read to its stalled
	// end.
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	var refused, full int
	for refused+full < n {
		select {
		case a := <-answers:
			if a.status != http.StatusTooManyRequests || a.retryAfter != "1" || a.proto != 2 {
				t.Fatalf("a stream over the budget: HTTP/%d %d, Retry-After %q; want HTTP/2 429, Retry-After 1", a.proto, a.status, a.retryAfter)
			}
			refused++
		case <-probe.full:
			full++
		case <-timeout.C:
			t.Fatalf("after 15 s: %d of %d streams refused, %d bodies read whole; heap in use +%d MiB",
				refused, n, full, int64(heapInUse()-before)>>20)
		}
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d stalled streams, budget %d MiB: %d read, %d refused, heap in use +%d MiB", n, budget>>20, full, refused, grown>>20)
	if full > fits {
		t.Errorf("%d bodies read whole at once, want at most the %d the budget holds", full, fits)
	}
	if grown > 2*budget {
		t.Errorf("heap in use grew %d MiB with %d stalled bodies, want at most twice the %d MiB budget", grown>>20, n, budget>>20)
	}
	postSmallReview(t, c, addr) // beside at most 12 of 16 MiB held
}

// TestAdmissionZeroByteStalls: streams that declare bodies at the limit
// and send nothing hold none of the budget, so the API server's small review
// is answered at once beside as many of them as the connections carry. When
// the budget counted declared lengths, 11 such streams from any pod held all
// 64 MiB for up to 30 s and every admission was refused 429; when it held
// twice one 32 KiB chunk per stream before its bytes arrived, 1,024 did
// (11 HTTP/2 connections of 100 streams).
func TestAdmissionZeroByteStalls(t *testing.T) {
	withBudget(t, admissionBudgetBytes, time.Second)
	registerValidationMetrics()
	// More streams than the budget had 64 KiB reservations for.
	const streams = admissionBudgetBytes/(64<<10) + maxConcurrentStreams/2
	entered := make(chan struct{}, streams)
	h := limitBody(&ctrlwebhook.Admission{Handler: &ValidationHandler{Log: logr.Discard()}}, DefaultMaxRequestBytes)
	addr, _ := startServerWith(t, map[string]http.Handler{ValidatePath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Stall") != "" {
			entered <- struct{}{}
		}
		h.ServeHTTP(w, r)
	})}, logr.Discard())
	var clients []*http.Client
	for range (streams + maxConcurrentStreams - 1) / maxConcurrentStreams {
		clients = append(clients, h2Client(t))
	}
	for i := range streams {
		pr, pw := io.Pipe() // never written: no body byte is sent
		t.Cleanup(func() { pw.Close() })
		req, err := http.NewRequest(http.MethodPost, "https://"+addr+ValidatePath, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = DefaultMaxRequestBytes
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Stall", "1")
		c := clients[i/maxConcurrentStreams]
		go func() {
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for range streams {
		<-entered
	}
	if held := admissionBudget.inUse(); held != 0 {
		t.Errorf("%d stalled streams that sent nothing hold %d bytes of the budget, want 0", streams, held)
	}
	start := time.Now()
	postSmallReview(t, h2Client(t), addr)
	if d := time.Since(start); d >= admissionBudgetWait {
		t.Errorf("small review answered after %v: it waited for budget the stalled streams hold", d)
	}
}

// TestAdmissionBudgetNoHeadOfLine: a small request is served while a
// larger one waits for room the budget does not have, if its own bytes
// fit: the budget is not FIFO by size.
func TestAdmissionBudgetNoHeadOfLine(t *testing.T) {
	const budget = 1 << 20
	withBudget(t, budget, 2*time.Second)
	waiting := make(chan struct{}, 4)
	admissionBudget.waitHook = func() { waiting <- struct{}{} }
	h := limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}), DefaultMaxRequestBytes)
	post := func(body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, ValidatePath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	release := holdBudget(t, budget-40<<10) // 40 KiB free
	big := make(chan *httptest.ResponseRecorder, 1)
	go func() { big <- post(strings.Repeat(" ", 512<<10)) }()
	<-waiting // the big one waits for room
	if w := post("{}"); w.Code != http.StatusOK {
		t.Fatalf("small request beside a waiting big one: %d %s, want 200", w.Code, w.Body)
	}
	select {
	case w := <-big:
		t.Fatalf("the big request ended (%d) before the small one was served: the small one waited behind it", w.Code)
	default:
	}
	release()
	if w := <-big; w.Code != http.StatusOK {
		t.Fatalf("big request once the budget is free: %d %s, want 200", w.Code, w.Body)
	}
}

// TestAdmissionBodyReadDeadline: a body that does not arrive within
// bodyReadBase plus its length at bodyReadRate is answered 408, before
// requestDeadline, and what it held of the budget is given back.
func TestAdmissionBodyReadDeadline(t *testing.T) {
	defer func(d time.Duration) { bodyReadBase = d }(bodyReadBase)
	bodyReadBase = 200 * time.Millisecond
	withBudget(t, 1<<20, time.Second)
	registerValidationMetrics()
	h := limitBody(&ctrlwebhook.Admission{Handler: &ValidationHandler{Log: logr.Discard()}}, DefaultMaxRequestBytes)
	addr, _ := startServerWith(t, map[string]http.Handler{ValidatePath: h}, logr.Discard())
	withheld, stall := io.Pipe()
	defer stall.Close()
	// The client closes the body when answered, which ends its write.
	body := struct {
		io.Reader
		io.Closer
	}{io.MultiReader(strings.NewReader(`{"kind":`), withheld), withheld}
	req, err := http.NewRequest(http.MethodPost, "https://"+addr+ValidatePath, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 100
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := h2Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || resp.ProtoMajor != 2 {
		t.Fatalf("a stalled body: HTTP/%d %d after %v, want HTTP/2 408", resp.ProtoMajor, resp.StatusCode, time.Since(start))
	}
	if d := time.Since(start); d >= requestDeadline {
		t.Errorf("answered after %v, not before requestDeadline %v", d, requestDeadline)
	}
	if got := admissionBudget.inUse(); got != 0 {
		t.Errorf("%d bytes of the budget held after the answer, want 0", got)
	}
}

// holdBudget takes n bytes of the admission budget until the returned
// func (or the test's end).
func holdBudget(t *testing.T, n int64) func() {
	t.Helper()
	if ok, _ := admissionBudget.take(n); !ok {
		t.Fatalf("%d bytes of the budget are not free", n)
	}
	var once sync.Once
	release := func() { once.Do(func() { admissionBudget.release(n) }) }
	t.Cleanup(release)
	return release
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

	release := holdBudget(t, budget)
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
	release()
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
	if got := admissionBudget.inUse(); got != 0 {
		t.Fatalf("%d bytes of the budget held after the handlers returned, want 0", got)
	}
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
