package authz

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/meshguard/meshguard/policy"
)

// TestGRPCRequestMemoryBounded: one connection opens maxConcurrentStreams
// calls, each sending all but the last byte of a CheckRequest at
// --authz-max-recv-msg-size (or, in the metadata case, HEADERS just under
// that size) and stalling. grpc-go opens each stream's window to the
// declared message length, so without a server-wide bound every partial
// message stayed in the heap until callDeadline: 250 MiB here (1 GiB at the
// default 4 MiB). Under the request memory budget at most budget /
// MaxRecvMsgSize messages are read at once; the other calls wait with
// their stream's initial 64 KiB window, and metadata above
// maxHeaderListSize is refused at once. The heap is sampled while the
// calls are held (until callDeadline ends them).
func TestGRPCRequestMemoryBounded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metaOnly bool
	}{{"partial messages", false}, {"metadata", true}} {
		t.Run(tc.name, func(t *testing.T) { grpcRequestMemory(t, tc.metaOnly) })
	}
}

func grpcRequestMemory(t *testing.T, metaOnly bool) {
	if testing.Short() {
		t.Skip("holds hundreds of MiB without the bound")
	}
	defer func(d time.Duration) { callDeadline = d }(callDeadline)
	callDeadline = 3 * time.Second // how long the calls are held
	const (
		msgSize = 1 << 20
		budget  = 8 << 20
		streams = maxConcurrentStreams
		// What the bound allows: the budget, each waiting stream's initial
		// window and metadata, and slack for the server's own allocations.
		bound = budget + streams*(64<<10+maxHeaderListSize) + 24<<20
	)
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	g := NewServer(engine, Options{DecisionLog: "off", MaxRecvMsgSize: msgSize, MaxRequestMemory: budget}, logr.Discard()).GRPCServer(nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	before := heapAfterGC()

	c := newRawH2Client(t, lis.Addr().String())
	defer c.conn.Close()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	var wg sync.WaitGroup
	for i := range streams {
		id := uint32(2*i + 1)
		hb.Reset()
		for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/" + ServiceName + "/Check"},
			{":authority", "x"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if metaOnly {
			_ = enc.WriteField(hpack.HeaderField{Name: "x-pad", Value: string(bytes.Repeat([]byte("p"), msgSize-4<<10))})
		}
		c.open(id)
		c.writeHeaders(id, hb.Bytes())
		if metaOnly {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix := make([]byte, 5)
			binary.BigEndian.PutUint32(prefix[1:], msgSize)
			c.send(id, prefix, msgSize-1) // all but the last byte
		}()
	}

	// Sample the heap until every call has ended (callDeadline) or every
	// sender is done; keep the peak.
	var peak int64
	allEnded := make(chan struct{})
	go func() { c.waitEnded(streams); close(allEnded) }()
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-allEnded:
			done = true
		case <-tick.C:
		}
		peak = max(peak, int64(heapAfterGC())-int64(before))
	}
	<-sent
	t.Logf("one connection, %d streams, metadata only %v: peak server heap +%d MiB (bound %d MiB)", streams, metaOnly, peak>>20, bound>>20)
	if peak > bound {
		t.Errorf("one connection held +%d MiB of heap, over the %d MiB the %d MiB request memory budget allows", peak>>20, bound>>20, budget>>20)
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rawH2Client is an HTTP/2 client that honours flow control and records
// which streams the server ended (RST_STREAM or END_STREAM).
type rawH2Client struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex // writes

	mu       sync.Mutex
	cond     *sync.Cond
	connWin  int64
	initWin  int64
	win      map[uint32]int64
	ended    map[uint32]bool
	closedCn bool
}

func newRawH2Client(t *testing.T, addr string) *rawH2Client {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawH2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn), connWin: 65535, initWin: 65535,
		win: map[uint32]int64{}, ended: map[uint32]bool{}}
	c.cond = sync.NewCond(&c.mu)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	c.write(func() error { return c.fr.WriteSettings() })
	// Wait for the server's SETTINGS (its initial window) before opening streams.
	settled := make(chan struct{})
	go c.read(settled)
	<-settled
	return c
}

func (c *rawH2Client) write(f func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// The server may close the connection (an oversized header value is a
	// connection error): the test asserts on memory, not on writes.
	if err := f(); err != nil {
		c.t.Logf("write: %v", err)
	}
}

func (c *rawH2Client) read(settled chan struct{}) {
	var once sync.Once
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.mu.Lock()
			c.closedCn = true
			c.cond.Broadcast()
			c.mu.Unlock()
			once.Do(func() { close(settled) })
			return
		}
		c.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
					c.initWin = int64(v)
				}
				go c.write(func() error { return c.fr.WriteSettingsAck() })
				once.Do(func() { close(settled) })
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.connWin += int64(f.Increment)
			} else {
				c.win[f.StreamID] += int64(f.Increment)
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				go c.write(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.RSTStreamFrame:
			c.ended[f.StreamID] = true
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				c.ended[f.StreamID] = true
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				c.ended[f.StreamID] = true
			}
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

func (c *rawH2Client) open(id uint32) {
	c.mu.Lock()
	c.win[id] += c.initWin
	c.mu.Unlock()
}

func (c *rawH2Client) writeHeaders(id uint32, block []byte) {
	block = append([]byte(nil), block...)
	c.write(func() error {
		const maxFrame = 16384
		first := block[:min(len(block), maxFrame)]
		rest := block[len(first):]
		if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndHeaders: len(rest) == 0}); err != nil {
			return err
		}
		for len(rest) > 0 {
			n := min(len(rest), maxFrame)
			if err := c.fr.WriteContinuation(id, n == len(rest), rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
}

// zeros is the payload send writes, shared: the client's own memory must
// not count as the server's.
var zeros = make([]byte, 16384)

// send writes prefix and then n zero bytes on stream id as flow control
// allows, without ending the stream; it returns early when the server ends
// the stream.
func (c *rawH2Client) send(id uint32, prefix []byte, n int) {
	c.sendData(id, prefix)
	for n > 0 {
		k := min(n, len(zeros))
		if !c.sendData(id, zeros[:k]) {
			return
		}
		n -= k
	}
}

func (c *rawH2Client) sendData(id uint32, data []byte) bool {
	for len(data) > 0 {
		c.mu.Lock()
		for !c.closedCn && !c.ended[id] && (c.connWin <= 0 || c.win[id] <= 0) {
			c.cond.Wait()
		}
		if c.closedCn || c.ended[id] {
			c.mu.Unlock()
			return false
		}
		n := min(int64(len(data)), 16384, c.connWin, c.win[id])
		c.connWin -= n
		c.win[id] -= n
		c.mu.Unlock()
		chunk := data[:n]
		c.write(func() error { return c.fr.WriteData(id, false, chunk) })
		data = data[n:]
	}
	return true
}

// waitEnded waits until the server has ended the first n client streams
// (or closed the connection).
func (c *rawH2Client) waitEnded(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.closedCn && len(c.ended) < n {
		c.cond.Wait()
	}
}

// TestCallBudgetReleasedOnce: whatever way a call ends, what it took of the
// budget (an open call, a message slot) is given back exactly once: a
// Check, a health Watch (given back once its request arrived, while it
// stays open), an unknown and a malformed method (grpc-go answers them
// without a handler, so no stats.End) and a call whose deadline passes
// before grpc-go hands it over. A missing release leaves open > 0, a
// second one makes it negative.
func TestCallBudgetReleasedOnce(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	s := NewServer(engine, Options{DecisionLog: "off"}, logr.Discard())
	b := newCallBudget(s.opts, logr.Discard())
	g := grpc.NewServer(grpc.InTapHandle(b.tap), grpc.StatsHandler(b))
	authv3.RegisterAuthorizationServer(g, s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, healthService{Server: hs, stopping: context.Background()})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()

	waitReleased := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for b.open.Load() != 0 || len(b.slots) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d calls open and %d slots taken, want 0 and 0", what, b.open.Load(), len(b.slots))
			}
			runtime.Gosched()
		}
	}

	if _, err := authv3.NewAuthorizationClient(conn).Check(ctx, request("/")); err != nil {
		t.Fatal(err)
	}
	waitReleased("Check")

	watchCtx, cancel := context.WithCancel(ctx)
	w, err := healthpb.NewHealthClient(conn).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil { // the request has arrived
		t.Fatal(err)
	}
	waitReleased("open Watch")
	cancel()
	if _, err := w.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Watch after cancel: %v", err)
	}
	waitReleased("cancelled Watch")

	for _, method := range []string{"/no.Such/Method", "/" + ServiceName + "/Nope"} {
		err := conn.Invoke(ctx, method, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("%s: %v, want Unimplemented", method, err)
		}
		waitReleased(method)
	}

	// A malformed method name and a 1 ns grpc-timeout, on a raw connection
	// (grpc-go's client sends neither).
	c := newRawH2Client(t, lis.Addr().String())
	defer c.conn.Close()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i, h := range [][][2]string{
		{{":path", "nomethod"}},
		{{":path", "/" + ServiceName + "/Check"}, {"grpc-timeout", "1n"}},
	} {
		id := uint32(2*i + 1)
		hb.Reset()
		for _, kv := range append([][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "x"},
			{"content-type", "application/grpc"}, {"te", "trailers"}}, h...) {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		c.open(id)
		c.writeHeaders(id, hb.Bytes())
		c.waitEnded(i + 1)
		waitReleased(h[0][1])
	}
}

// TestCallBudgetAllocs: what the budget adds to a call that reaches its
// handler (tap, TagRPC, Begin, End) stays a few allocations: issue 17
// counts every microsecond of a Check. It was 20 with a sync.OnceFunc and
// a context.AfterFunc per bound and a slice of releases in the context.
func TestCallBudgetAllocs(t *testing.T) {
	o := Options{}
	b := newCallBudget(o.withDefaults(), logr.Discard())
	parent, cancel := context.WithTimeout(context.Background(), callDeadline/2) // as grpc-timeout: boundCall adds nothing
	defer cancel()
	info := &tap.Info{FullMethodName: "/" + ServiceName + "/Check"}
	tag := &stats.RPCTagInfo{FullMethodName: info.FullMethodName}
	begin, end := &stats.Begin{}, &stats.End{}
	allocs := testing.AllocsPerRun(1000, func() {
		ctx, cancel := context.WithCancel(parent) // the stream's context
		ctx, err := b.tap(ctx, info)
		if err != nil {
			t.Fatal(err)
		}
		ctx = b.TagRPC(ctx, tag)
		b.HandleRPC(ctx, begin)
		cancel() // grpc-go cancels it writing the status, before End
		b.HandleRPC(ctx, end)
	})
	// The stream's own context.WithCancel is 2 of them; the fallback
	// AfterFunc 4 (its context, stop, the function, the parent's children).
	if allocs > 9 {
		t.Errorf("a call allocates %.0f times (the stream's context included), want at most 9", allocs)
	}
	if b.open.Load() != 0 || len(b.slots) != 0 {
		t.Errorf("%d calls open and %d slots taken after every call ended, want 0 and 0", b.open.Load(), len(b.slots))
	}
}
