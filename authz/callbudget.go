package authz

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// maxOpenCalls bounds the gRPC calls open at once server-wide, over every
// connection (each of which carries up to maxConcurrentStreams). A call
// waiting for the request memory budget holds its stream's initial window
// (streamWindow) of unread data and its metadata (maxHeaderListSize): at
// most about 80 MiB for all of them. Checks take tens of microseconds, so
// Envoy's calls in flight at once are far fewer; a call beyond it is
// refused (RESOURCE_EXHAUSTED), which Envoy takes for a failure of the
// service (the provider's failOpen / statusOnError apply).
const maxOpenCalls = 1024

// streamWindow is each gRPC stream's static flow-control window: what a
// call may send before its message is read. grpc-go's dynamic window (BDP
// estimation) grows it up to 16 MiB per stream, which the request memory
// budget would not count.
const streamWindow = 64 << 10

// connWindow is the connection's static window. grpc-go acknowledges
// connection-level data as it arrives (http2_server.go handleData), so it
// holds no memory; 1 MiB keeps a large CheckRequest (a request body) to a
// few round trips.
const connWindow = 1 << 20

// DefaultMaxRequestMemory is --authz-max-request-memory's default: 32
// CheckRequests of the default 4 MiB being read at once. With maxOpenCalls'
// windows and metadata, gRPC requests hold at most about 210 MiB, within
// the chart's 512Mi beside the policy snapshot.
const DefaultMaxRequestMemory = 128 << 20

// callBudget bounds the request memory of the gRPC port server-wide.
// grpc-go opens a stream's window to the whole declared message once the
// handler reads it (internal/transport flowcontrol.go inFlow.maybeAdjust),
// so each call reading its message may buffer MaxRecvMsgSize: 250 calls on
// one connection stalling just before their last byte held 1 GiB until
// callDeadline. Two limits, both before any message byte is read:
//   - tap (the InTapHandle, on the transport's reader goroutine, so it
//     never waits) refuses a call beyond maxOpenCalls; a refused stream is
//     reset and its data dropped (http2_server.go operateHeaders,
//     handleData);
//   - TagRPC (a stats handler, run on the call's own goroutine before the
//     message is read: server.go handleStream) reserves MaxRecvMsgSize of
//     the budget, waiting while it is taken, for as long as the call may
//     last (its deadline, at most callDeadline). Waiting rather than
//     refusing keeps a burst of small Checks answered: each holds its share
//     for tens of microseconds.
//
// Both are given back once, by whichever comes first: the call's end
// (HandleRPC's *stats.End), a health Watch's request having arrived
// (requestArrived: it is long-lived by design), or, for a stream grpc-go
// never hands to a handler, its context ending (tap).
type callBudget struct {
	open    atomic.Int64
	maxOpen int64
	slots   chan struct{} // one per MaxRecvMsgSize of the budget
	refused *refusalLog
}

func newCallBudget(o Options, log logr.Logger) *callBudget {
	n := max(1, o.MaxRequestMemory/int64(o.MaxRecvMsgSize))
	return &callBudget{maxOpen: maxOpenCalls, slots: make(chan struct{}, n), refused: &refusalLog{log: log, protocol: "grpc"}}
}

// callState bits: what a call holds, and whether it was given back.
const (
	holdsSlot int32 = 1 << iota
	released
)

// callCtx is the context tap returns: the call's state lives in it, so
// admitting a call costs one allocation besides the fallback AfterFunc.
type callCtx struct {
	context.Context
	b     *callBudget
	state atomic.Int32 // holdsSlot | released
	// stop cancels the fallback release on the context's end (tap).
	stop func() bool
}

// callStateKey: callCtx.Value's key for the call's own *callCtx.
type callStateKey struct{}

func (c *callCtx) Value(key any) any {
	if key == (callStateKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func callStateOf(ctx context.Context) *callCtx {
	c, _ := ctx.Value(callStateKey{}).(*callCtx)
	return c
}

// release gives back what the call holds, exactly once whoever calls it
// (the call's goroutine, requestArrived, or the fallback's goroutine).
func (c *callCtx) release() {
	old := c.state.Or(released)
	if old&released != 0 {
		return
	}
	if old&holdsSlot != 0 {
		<-c.b.slots
	}
	c.b.open.Add(-1)
}

// tap admits a call within maxOpenCalls, then bounds its duration
// (boundCall). The release on the context's end is a fallback for streams
// that never reach a handler, whose end no stats.End reports: a deadline
// passing between tap and the stream's registration (grpc-go's
// http2_server.go operateHeaders aborts it without handing it over), a
// malformed or unknown method (server.go handleStream answers
// Unimplemented itself). A call that reaches its handler cancels it
// (HandleRPC on *stats.Begin): grpc-go cancels a stream's context when it
// writes the status (http2_server.go finishStream), before stats.End, so
// the fallback would otherwise start a goroutine for every call.
func (b *callBudget) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if b.open.Add(1) > b.maxOpen {
		b.open.Add(-1)
		b.refused.add("open_calls")
		return nil, status.Errorf(codes.ResourceExhausted, "ext_authz server: %d calls open at once, the limit", b.maxOpen)
	}
	ctx, err := boundCall(ctx, info)
	if err != nil {
		b.open.Add(-1)
		return nil, err
	}
	c := &callCtx{Context: ctx, b: b}
	c.stop = context.AfterFunc(ctx, c.release)
	return c, nil
}

// TagRPC reserves the call's message memory, waiting while the budget is
// taken. A call whose context ends first gets none: its message read then
// fails on the same context, so nothing of it is buffered beyond its
// initial window.
func (b *callBudget) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	c := callStateOf(ctx)
	if c == nil { // not admitted by tap: grpcServerOptions installs both
		return ctx
	}
	select {
	case b.slots <- struct{}{}:
	default:
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			b.refused.add("request_memory")
			return ctx
		}
	}
	// Already released (the fallback, on the context's end): give the
	// slot back at once.
	if c.state.Or(holdsSlot)&released != 0 {
		<-b.slots
	}
	return ctx
}

// HandleRPC gives back what the call holds at its end. grpc-go emits
// Begin and, deferred in the same function, End on the call's goroutine
// for every stream it hands to a handler, a panicking one included
// (server.go processRPC).
func (b *callBudget) HandleRPC(ctx context.Context, s stats.RPCStats) {
	switch s.(type) {
	case *stats.Begin:
		if c := callStateOf(ctx); c != nil {
			c.stop()
		}
	case *stats.End:
		if c := callStateOf(ctx); c != nil {
			c.release()
		}
	}
}

// requestArrived gives back what a call holds once its request message has
// arrived (a health Watch: healthService.Watch).
func requestArrived(ctx context.Context) {
	if c := callStateOf(ctx); c != nil {
		c.release()
	}
}

func (b *callBudget) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (b *callBudget) HandleConn(context.Context, stats.ConnStats) {}

// refusalLog counts refused calls by reason and logs them at most once per
// refusalLogEvery, with how many there were since: a flood of refusals must
// not flood the log.
type refusalLog struct {
	log      logr.Logger
	protocol string
	mu       sync.Mutex
	last     time.Time
	n        map[string]int
}

const refusalLogEvery = 10 * time.Second

func (r *refusalLog) add(reason string) {
	DefaultMetrics().Refused.WithLabelValues(r.protocol, reason).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
	if now := time.Now(); now.Sub(r.last) >= refusalLogEvery {
		r.last = now
		r.log.Info("ext_authz calls refused: server-wide request memory bounds reached (docs/reliability.md)",
			"protocol", r.protocol, "refused", r.n, "metric", "meshguard_authz_refused_total")
		r.n = nil
	}
}
