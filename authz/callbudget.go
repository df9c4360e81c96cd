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
// Both are given back when the call ends (its context is cancelled), a
// health Watch's once its request has arrived (it is long-lived by design).
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

// releaseKey: the context value holding a call's release function.
type releaseKey struct{}

// tap admits a call within maxOpenCalls, then bounds its duration
// (boundCall).
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
	release := sync.OnceFunc(func() { b.open.Add(-1) })
	context.AfterFunc(ctx, release)
	return context.WithValue(ctx, releaseKey{}, []func(){release}), nil
}

// TagRPC reserves the call's message memory, waiting while the budget is
// taken. A call whose context ends first gets none: its message read then
// fails on the same context, so nothing of it is buffered beyond its
// initial window.
func (b *callBudget) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
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
	release := sync.OnceFunc(func() { <-b.slots })
	context.AfterFunc(ctx, release)
	releases, _ := ctx.Value(releaseKey{}).([]func())
	return context.WithValue(ctx, releaseKey{}, append(releases[:len(releases):len(releases)], release))
}

// requestArrived gives back what a call holds once its request message has
// arrived (a health Watch: healthService.Watch).
func requestArrived(ctx context.Context) {
	releases, _ := ctx.Value(releaseKey{}).([]func())
	for _, r := range releases {
		r()
	}
}

func (b *callBudget) HandleRPC(context.Context, stats.RPCStats) {}

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
