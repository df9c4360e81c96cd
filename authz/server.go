// Package authz serves Envoy's ext_authz gRPC API
// (envoy.service.auth.v3.Authorization/Check) with decisions from package
// policy, loads policies from the API server or a directory, and exposes
// decision logs and Prometheus metrics.
package authz

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/go-logr/logr"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshguard/meshguard/internal/connlimit"
	"github.com/meshguard/meshguard/internal/textcut"
	"github.com/meshguard/meshguard/policy"
)

// Response header names.
const (
	HeaderPolicy     = "x-meshguard-policy"
	HeaderDecisionID = "x-meshguard-decision-id"
	HeaderReason     = "x-meshguard-reason"
	ServiceName      = "envoy.service.auth.v3.Authorization"
)

// Server answers Check calls from the Engine's current snapshot.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	engine  *policy.Engine
	opts    Options
	log     logr.Logger
	metrics *Metrics
	health  *health.Server
	hot     *hotStacks
	// endWatches ends the health Watch streams (see healthService).
	watchesEnded context.Context
	endWatches   context.CancelFunc

	idPrefix string
	seq      atomic.Uint64
	// allowSeq counts allowed decisions alone, for sampled logging: seq,
	// which denials and errors advance too, would skip every allow of a
	// client alternating allows and denials.
	allowSeq atomic.Uint64
	// headersWarned: the last snapshot version whose dropped user headers were logged.
	headersWarned atomic.Uint64
}

// NewServer returns a Server; it reports NOT_SERVING on the gRPC health
// service until the engine has a snapshot (see MarkReady).
func NewServer(engine *policy.Engine, o Options, log logr.Logger) *Server {
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Server{engine: engine, opts: o.withDefaults(), log: log, metrics: DefaultMetrics(), health: health.NewServer(),
		hot: newHotStacks(maxHotStacks), idPrefix: hex.EncodeToString(b[:]) + "-"}
	s.watchesEnded, s.endWatches = context.WithCancel(context.Background())
	if s.opts.FailOpen {
		// --fail-open answers a failed evaluation with the policies minus
		// the user modules (failOpen), which the engine then compiles.
		engine.EnableFailOpenFallback()
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	if engine.Snapshot() != nil {
		s.MarkReady()
	}
	return s
}

// MarkReady flips gRPC health to SERVING (called after the first snapshot).
func (s *Server) MarkReady() {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// Ready is a healthz.Checker for the manager's /readyz: nil once the first
// policy snapshot is active, so a replica takes Check traffic only when it
// can answer from policy.
func (s *Server) Ready(*http.Request) error {
	if s.engine.Snapshot() == nil {
		return policy.ErrNoSnapshot
	}
	return nil
}

// Engine returns the policy engine.
func (s *Server) Engine() *policy.Engine { return s.engine }

// Check implements the ext_authz API. It always returns a CheckResponse:
// policy outcomes and internal failures alike.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	d := s.decide(ctx, req, nil, "grpc")
	var resp *authv3.CheckResponse
	switch d.result {
	case "allow", "error_fail_open":
		resp = okResponse(d.id, d.verdict.Policy, d.verdict.ResponseHeaders)
	case "error":
		resp = deniedResponse(d.id, d.verdict, codes.Unavailable)
	case "cancelled":
		resp = deniedResponse(d.id, d.verdict, codes.Canceled)
	case "bad_request":
		resp = deniedResponse(d.id, d.verdict, codes.InvalidArgument)
	default:
		resp = deniedResponse(d.id, d.verdict, codes.PermissionDenied)
	}
	resp.DynamicMetadata = dynamicMetadata(d.verdict)
	return resp, nil
}

// decision is one evaluated request, shared by the gRPC and HTTP protocols
// so both give the same verdict, metrics and decision log for one request.
type decision struct {
	id      string
	verdict policy.Verdict
	result  string // allow, deny, bad_request, error, error_fail_open, cancelled
}

// decide evaluates req; badRequest (a request the protocol adapter could
// not map) is denied with 400 without evaluation, as a malformed CheckRequest is.
func (s *Server) decide(ctx context.Context, req *authv3.CheckRequest, badRequest error, protocol string) decision {
	start := time.Now()
	var buf [48]byte // the ID in one allocation
	id := string(strconv.AppendUint(append(buf[:0], s.idPrefix...), s.seq.Add(1), 10))
	var v policy.Verdict
	var err, userErr error
	if badRequest != nil {
		v = policy.Verdict{Status: 400, Action: "DENY", Rule: -1, Reason: "bad request: " + badRequest.Error()}
	} else {
		s.hot.run(func() { v, err, userErr = s.check(ctx, req) })
	}
	result := ""
	switch {
	// A call its client cancelled (Envoy resets the stream when the
	// downstream request ends, or gives up at the provider's timeout, which
	// meshguard_authz_evaluation_seconds shows) has no one to answer and
	// is not an evaluation failure: counted apart from errors, never failed open.
	case err != nil && errors.Is(err, context.Canceled):
		result = "cancelled"
		v = policy.Verdict{Status: 503, Action: "NONE", Rule: -1, Reason: "cancelled by the client: " + err.Error()}
	case err != nil:
		result = "error"
		v = policy.Verdict{Status: 503, Action: "NONE", Rule: -1, Reason: "internal error: " + err.Error()}
	// --fail-open: the user modules failed and the policies without them
	// allow (failOpen); when they deny, the request gets their denial below.
	case userErr != nil && v.Allowed:
		result = "error_fail_open"
		v.Reason = "fail-open: user Rego modules not applied (" + userErr.Error() + "); " + v.Reason
	case v.Allowed:
		result = "allow"
	case v.Status == 400:
		result = "bad_request"
	default:
		result = "deny"
	}
	if len(v.ResponseHeaders) > 0 {
		s.dropOwnHeaders(&v)
	}
	elapsed := time.Since(start)
	s.metrics.Latency.Observe(elapsed.Seconds())
	s.metrics.Decisions.WithLabelValues(result, v.Action).Inc()
	s.metrics.Protocol.WithLabelValues(protocol, result).Inc()
	if err == nil {
		err = userErr // logged as the error it is, whatever the fallback's verdict
	}
	s.logDecision(id, req, v, result, err, elapsed)
	return decision{id: id, verdict: v, result: result}
}

// ownHeader reports a response header name user Rego may not set:
// meshguard's own (x-meshguard-*) and Envoy's control headers (x-envoy-*).
// On the HTTP protocol the user headers share the 200's header map with
// x-meshguard-policy and x-envoy-auth-headers-to-remove, which Envoy applies
// after the headers it sets (ext_authz.cc onComplete): a user value there
// would forge the deciding policy or keep a client's forged one.
func ownHeader(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "x-meshguard-") || strings.HasPrefix(n, "x-envoy-")
}

// dropOwnHeaders removes the names ownHeader reserves from v's user
// headers (into a new map: the verdict's may be shared), logged once per
// snapshot, as a module that sets one sets it on every request.
func (s *Server) dropOwnHeaders(v *policy.Verdict) {
	var dropped []string
	for k := range v.ResponseHeaders {
		if ownHeader(k) {
			dropped = append(dropped, k)
		}
	}
	if len(dropped) == 0 {
		return
	}
	kept := make(map[string]string, len(v.ResponseHeaders)-len(dropped))
	for k, val := range v.ResponseHeaders {
		if !ownHeader(k) {
			kept[k] = val
		}
	}
	v.ResponseHeaders = kept
	if s.headersWarned.Swap(v.Version) != v.Version {
		slices.Sort(dropped)
		s.log.Info("user Rego response_headers reserved for meshguard or Envoy (x-meshguard-*, x-envoy-*) are dropped",
			"headers", textcut.LogField(strings.Join(dropped, ", ")), "snapshot", v.Version)
	}
}

// errEvaluationPanic: evaluating a request panicked.
var errEvaluationPanic = errors.New("evaluation panicked")

// check evaluates req against the engine's current snapshot. err is an
// internal error (the request is denied: 503). With --fail-open, an
// evaluation of a snapshot with user modules that failed is answered by
// failOpen; userErr is then that failure and v the verdict without them.
func (s *Server) check(ctx context.Context, req *authv3.CheckRequest) (v policy.Verdict, err, userErr error) {
	snap, err := s.snapshot()
	if err != nil {
		return policy.Verdict{}, err, nil
	}
	v, err = s.eval(ctx, snap, req)
	if err != nil && s.opts.FailOpen {
		return s.failOpen(ctx, snap, req, err)
	}
	return v, err, nil
}

// snapshot is the engine's current snapshot, or ErrNoSnapshot; a panic
// (an engine that is not there) is an error, as in eval.
func (s *Server) snapshot() (snap *policy.Snapshot, err error) {
	defer s.recoverPanic(&err)
	if snap = s.engine.Snapshot(); snap == nil {
		return nil, policy.ErrNoSnapshot
	}
	return snap, nil
}

// eval is snap's Check with a panic turned into an error: the request is
// denied and the server keeps answering the others (a panic on a hot-stack
// worker would end the process, as neither gRPC nor net/http recovers there).
func (s *Server) eval(ctx context.Context, snap *policy.Snapshot, req *authv3.CheckRequest) (v policy.Verdict, err error) {
	defer s.recoverPanic(&err)
	return snap.Check(ctx, req)
}

func (s *Server) recoverPanic(err *error) {
	if r := recover(); r != nil {
		s.log.Error(fmt.Errorf("%v", r), "evaluation panicked; request denied", "stack", string(debug.Stack()))
		*err = fmt.Errorf("%w: %v", errEvaluationPanic, r)
	}
}

// failOpen is what --fail-open makes of snap's evaluation error err: the
// verdict of the same policies without the user modules
// (Snapshot.WithoutUserModules), with err as userErr. Istio's ALLOW and
// DENY policies are Envoy RBAC filters, which never fail open; only the
// CUSTOM provider's ext_authz filter does (failure_mode_allow from the
// provider's failOpen; Istio: pilot/pkg/security/authz/builder/extauthz.go
// generateGRPCConfig, generateHTTPConfig), and the user modules are that
// check to meshguard (policy/failopen.go). So the fallback's denial is the
// answer, and every error of the generated rules themselves stays an
// internal error (503): a snapshot without user modules, a fallback that
// fails too (its deadline included). A panic (a request that tripped a
// bug: allowing it would let whoever found the input through every
// policy) and a cancelled call are never failed open.
func (s *Server) failOpen(ctx context.Context, snap *policy.Snapshot, req *authv3.CheckRequest, err error) (policy.Verdict, error, error) {
	if errors.Is(err, errEvaluationPanic) || errors.Is(err, context.Canceled) {
		return policy.Verdict{}, err, nil
	}
	without := snap.WithoutUserModules()
	if without == nil {
		return policy.Verdict{}, err, nil
	}
	v, ferr := s.eval(ctx, without, req)
	if ferr != nil {
		return policy.Verdict{}, fmt.Errorf("%w; without the user Rego modules (--fail-open): %w", err, ferr), nil
	}
	return v, nil, err
}

// okAlloc holds every message of an OK CheckResponse, so building one is a
// single allocation instead of ten (the gRPC path's per-request garbage).
type okAlloc struct {
	resp   authv3.CheckResponse
	oneof  authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
	status rpcstatus.Status
	hs     [2]*corev3.HeaderValueOption
	opts   [2]corev3.HeaderValueOption
	values [2]corev3.HeaderValue
}

// removePolicyHeader is shared by every response (marshalled, never changed).
var removePolicyHeader = []string{HeaderPolicy}

func okResponse(id, pol string, respHeaders map[string]string) *authv3.CheckResponse {
	a := &okAlloc{}
	n := 1
	a.values[0] = corev3.HeaderValue{Key: HeaderDecisionID, Value: id}
	if pol != "" {
		a.values[1] = corev3.HeaderValue{Key: HeaderPolicy, Value: pol}
		n = 2
	}
	for i := 0; i < n; i++ {
		a.opts[i].Header = &a.values[i]
		a.opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		a.hs[i] = &a.opts[i]
	}
	a.ok.Headers = a.hs[:n:n]
	if pol == "" {
		// A client's own x-meshguard-policy must not reach the upstream as if
		// meshguard had set it.
		a.ok.HeadersToRemove = removePolicyHeader
	}
	for k, v := range respHeaders {
		a.ok.ResponseHeadersToAdd = append(a.ok.ResponseHeadersToAdd, hv(k, v))
	}
	a.status.Code = int32(codes.OK)
	a.oneof.OkResponse = &a.ok
	a.resp.Status = &a.status
	a.resp.HttpResponse = &a.oneof
	return &a.resp
}

func deniedResponse(id string, v policy.Verdict, code codes.Code) *authv3.CheckResponse {
	hs := []*corev3.HeaderValueOption{hv(HeaderDecisionID, id)}
	if v.Policy != "" {
		hs = append(hs, hv(HeaderPolicy, v.Policy))
	}
	body := deniedBody(v)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: v.Reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(v.Status)},
			Headers: hs,
			Body:    body,
		}},
	}
}

// deniedBody is the downstream body of a denial, the same for both protocols.
func deniedBody(v policy.Verdict) string {
	switch {
	case v.Reason == "mTLS required":
		return "mTLS required"
	case v.Status == 503:
		return "authorization service error"
	case v.Status == 400:
		return "bad request"
	}
	return "RBAC: access denied"
}

func hv(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

// logDecision writes one structured line per decision: always in "full"
// mode; in "sampled" mode every non-allow and one in N allows.
func (s *Server) logDecision(id string, req *authv3.CheckRequest, v policy.Verdict, result string, err error, elapsed time.Duration) {
	switch s.opts.DecisionLog {
	case "off":
		return
	case "sampled":
		if result == "allow" && s.allowSeq.Add(1)%uint64(s.opts.DecisionLogSample) != 0 {
			return
		}
	}
	a := req.GetAttributes()
	// Fields from the request (and a reason that may quote one) are cut to
	// maxLogField: a CheckRequest may be --authz-max-recv-msg-size.
	kv := []any{
		"id", id, "result", result, "allowed", v.Allowed, "status", v.Status, "action", v.Action,
		"policy", v.Policy, "rule", v.Rule, "reason", textcut.LogField(v.Reason), "snapshot", v.Version, "peerAuthn", v.Mode,
		"source", textcut.LogField(a.GetSource().GetPrincipal()), "sourceIP", textcut.LogField(a.GetSource().GetAddress().GetSocketAddress().GetAddress()),
		"destination", textcut.LogField(a.GetDestination().GetAddress().GetSocketAddress().GetAddress()),
		// The query is left out: it may carry credentials (?access_token=...).
		"method", textcut.LogField(a.GetRequest().GetHttp().GetMethod()), "path", textcut.LogField(policy.WithoutQuery(a.GetRequest().GetHttp().GetPath())),
		"host", textcut.LogField(a.GetRequest().GetHttp().GetHost()), "latency", elapsed,
	}
	if len(v.Audit) > 0 {
		kv = appendHits(kv, "audit", v.Audit)
	}
	if len(v.Custom) > 0 {
		kv = appendHits(kv, "custom", v.Custom)
	}
	if len(v.DryRunDeny) > 0 || len(v.DryRunAllow) > 0 {
		kv = appendHits(appendHits(kv, "dryRunDeny", v.DryRunDeny), "dryRunAllow", v.DryRunAllow)
	}
	// A cancelled call is the client's doing (its reason says so): not an error line.
	if err != nil && result != "cancelled" {
		// An evaluation error may quote the input (a builtin's operand).
		if msg := err.Error(); len(msg) > maxLogField {
			err = errors.New(textcut.LogField(msg))
		}
		s.log.Error(err, "authz decision", kv...)
		return
	}
	s.log.Info("authz decision", kv...)
}

// maxLoggedPolicies bounds the policies a decision line's audit, custom,
// dryRunDeny and dryRunAllow lists name: a failed AUDIT, CUSTOM or dry-run
// policy matches every request, and thousands may match one workload.
const maxLoggedPolicies = 8

// appendHits appends key and hits to a decision line's kv, at most
// maxLoggedPolicies of them, and key+"More" and how many were left out when
// there are more (dynamicMetadata sends the first match alone).
func appendHits(kv []any, key string, hits []policy.Hit) []any {
	if len(hits) <= maxLoggedPolicies {
		return append(kv, key, hits)
	}
	return append(kv, key, hits[:maxLoggedPolicies], key+"More", len(hits)-maxLoggedPolicies)
}

// maxLogField bounds each request-derived field of a decision log line
// (textcut.LogField's cut).
const maxLogField = textcut.MaxLogField

// maxConcurrentStreams bounds the calls one gRPC connection carries at a
// time, each of which may buffer a CheckRequest of MaxRecvMsgSize: the bound
// the HTTP port has (Go's HTTP/2 server default). Envoy opens another
// connection when its streams reach it.
const maxConcurrentStreams = 250

// maxHeaderListSize bounds a gRPC call's metadata (HTTP/2 header list size,
// as grpc-go counts it: names, values and 32 bytes a field). Envoy's
// ext_authz calls carry a few hundred bytes (pseudo-headers, content-type,
// te, grpc-timeout, x-envoy-* and tracing headers): the HTTP request's
// headers travel inside the CheckRequest, not as metadata. grpc-go's
// default is 16 MiB and moving to 8 KiB (internal/transport
// defaultServerMaxHeaderListSize, upcomingDefaultHeaderListSize); the
// limit was --authz-max-recv-msg-size, so 250 streams of one connection
// held 1 GiB of metadata.
const maxHeaderListSize = 16 << 10

// DefaultMaxConnections is --authz-max-connections' default, per port.
// Each Envoy worker thread keeps its own connection to every ext_authz
// endpoint it balances over, so a replica sees about sidecars × worker
// threads (2 by default) connections whatever the replica count: 20,000
// serves 10,000 sidecars that use the provider. An idle TLS connection holds
// about 55 KiB of server memory on the gRPC port and 24 KiB on the HTTP one
// (TestIdleConnectionMemory): 20,000 on the gRPC port about 1.1 GiB, the
// bound docs/reliability.md states, where without a limit a flood of
// connections ran the process out of memory. A lower limit would refuse the
// sidecars of a large mesh, and ext_authz unreachable denies their requests.
const DefaultMaxConnections = 20000

// limit caps the connections open at once from lis at
// Options.MaxConnections: at the cap Accept waits, leaving new clients in
// the kernel's accept queue (not refused) until a connection closes; one
// that never completes its handshake is closed at handshakeTimeout
// (grpc.ConnectionTimeout, the HTTP server's ReadHeaderTimeout), so a
// stalled client holds its slot only that long.
func (s *Server) limit(lis net.Listener) net.Listener {
	return connlimit.Listener(lis, s.opts.MaxConnections)
}

// handshakeTimeout bounds a new connection's TLS and HTTP/2 handshake (gRPC)
// or its first request's headers (HTTP): a client that connects and sends
// nothing holds a goroutine and a socket only this long (grpc-go's default
// is 120 s). A variable for the tests only.
var handshakeTimeout = 10 * time.Second

// callDeadline bounds one ext_authz exchange: a gRPC call (boundCall) or an
// HTTP request (HTTPServer's read and write timeouts). A variable for the
// tests only.
var callDeadline = 30 * time.Second

// boundCall (called by the gRPC server's InTapHandle, callBudget.tap, before the request message
// is read) ends every call callDeadline after its headers, whatever
// grpc-timeout its client sent or left out: grpc-go bounds a call only by
// that header, and reads the request message before any interceptor runs,
// so a client that sent none and withheld the message held the stream, its
// goroutine and the partial message (up to --authz-max-recv-msg-size) while
// the connection lasted. grpc-go cancels the stream's context when the call
// ends, which stops the timer. A health Watch is long-lived by design: its
// bound ends once its request has arrived (healthService.Watch).
func boundCall(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName == healthpb.Health_Watch_FullMethodName {
		ctx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(callDeadline, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
		return context.WithValue(ctx, watchTimerKey{}, t), nil
	}
	// Envoy's calls carry a shorter grpc-timeout (the provider's timeout):
	// nothing to add to them.
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= callDeadline {
		return ctx, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callDeadline)
	_ = cancel // called when grpc-go cancels the parent at the end of the call
	return ctx, nil
}

// watchTimerKey: the context value holding a Watch call's bound (*time.Timer).
type watchTimerKey struct{}

// GRPCServerOptions are the gRPC server options of the ext_authz server:
// message, metadata and stream limits, keepalive, stream workers and optional TLS (tlsConfig
// nil = plaintext). The no-op server hack/bench-compare.sh measures meshguard
// against is built with this same function, so the two cannot drift.
func GRPCServerOptions(o Options, tlsConfig *tls.Config) []grpc.ServerOption {
	return grpcServerOptions(o, tlsConfig, logr.Discard())
}

// grpcServerOptions is GRPCServerOptions logging to log.
func grpcServerOptions(o Options, tlsConfig *tls.Config, log logr.Logger) []grpc.ServerOption {
	o = o.withDefaults()
	budget := newCallBudget(o, log)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(o.MaxRecvMsgSize),
		grpc.MaxHeaderListSize(maxHeaderListSize),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		// Static windows: what a call holds before its message is read
		// stays streamWindow (callBudget).
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.InTapHandle(budget.tap),
		grpc.StatsHandler(budget),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: o.KeepaliveTime, Timeout: o.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Long-lived workers instead of a goroutine per call (calls beyond
		// them still get their own goroutine, so a slow call never queues
		// another). OPA's deep recursion runs on hotStacks either way; more
		// workers than cores made requests slower at low concurrency (gRPC
		// hands calls to its workers in turn, so each finds a cold stack).
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	return opts
}

// GRPCServer builds the gRPC server (GRPCServerOptions) with Authorization,
// health and, when enabled, reflection.
func (s *Server) GRPCServer(tlsConfig *tls.Config) *grpc.Server {
	g := grpc.NewServer(grpcServerOptions(s.opts, tlsConfig, s.log)...)
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, healthService{Server: s.health, stopping: s.watchesEnded})
	if s.opts.Reflection {
		reflection.Register(g)
	}
	return g
}

// Serve serves on lis until ctx is done, then stops gracefully (bounded).
// At most Options.MaxConnections connections are open at once (limit).
func (s *Server) Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error {
	g := s.GRPCServer(tlsConfig)
	lis = s.limit(lis)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("ext_authz gRPC server on %s: %w", lis.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}
	s.health.Shutdown()
	s.endWatches() // after Shutdown: each watcher is told NOT_SERVING first
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownTimeout):
		g.Stop()
	}
	return nil
}

// healthService is grpc-go's health server whose Watch streams end when
// stopping is done. health.Server.Shutdown only sends NOT_SERVING to the
// watchers and leaves their streams open (google.golang.org/grpc/health
// server.go Watch, Shutdown), and GracefulStop waits for every stream, so
// one open Watch held Serve for the whole ShutdownTimeout.
type healthService struct {
	*health.Server
	stopping context.Context
}

// Watch is health.Server.Watch until stopping; then the watcher gets
// NOT_SERVING (unless that was its last status) and the stream ends with
// UNAVAILABLE.
func (h healthService) Watch(in *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	// The request has arrived: the stream may outlive callDeadline
	// (boundCall) and holds nothing of the request memory bounds
	// (callBudget).
	if t, ok := stream.Context().Value(watchTimerKey{}).(*time.Timer); ok {
		t.Stop()
	}
	requestArrived(stream.Context())
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(h.stopping, cancel)()
	w := &watchStream{Health_WatchServer: stream, ctx: ctx, last: -1}
	err := h.Server.Watch(in, w)
	if h.stopping.Err() == nil || stream.Context().Err() != nil {
		return err // the client's own end, or a failed send
	}
	// Watch may have seen the cancellation before Shutdown's NOT_SERVING.
	if w.last != healthpb.HealthCheckResponse_NOT_SERVING {
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}); err != nil {
			return err
		}
	}
	return status.Error(codes.Unavailable, "ext_authz server shutting down")
}

// watchStream is a Watch stream with its own context, remembering the last
// status sent.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx  context.Context
	last healthpb.HealthCheckResponse_ServingStatus
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(m *healthpb.HealthCheckResponse) error {
	if err := w.Health_WatchServer.Send(m); err != nil {
		return err
	}
	w.last = m.GetStatus()
	return nil
}

// Dynamic metadata keys, as Envoy's RBAC filter writes them for Istio's
// dry-run and AUDIT policies (source/extensions/filters/http/rbac/
// rbac_filter.cc: shadow_effective_policy_id, shadow_engine_result, prefixed
// by the shadow_rules_stat_prefix Istio sets in pilot/pkg/security/authz/
// builder/builder.go: istio_dry_run_allow_ / istio_dry_run_deny_;
// access_log_hint for the LOG action AUDIT maps to). Envoy stores ext_authz
// metadata under the ext_authz filter's namespace (envoy.filters.http.ext_authz).
const (
	MetaDryRunAllowPrefix = "istio_dry_run_allow_"
	MetaDryRunDenyPrefix  = "istio_dry_run_deny_"
	MetaShadowPolicyID    = "shadow_effective_policy_id"
	MetaShadowResult      = "shadow_engine_result"
	MetaAccessLogHint     = "access_log_hint"
	MetaAuditPolicyID     = "meshguard_audit_policy_id"
)

// dynamicMetadata reports the dry-run and AUDIT matches. Only matches are
// reported: a shadow engine without a matching dry-run policy has no entry
// (docs/operations.md "Dynamic metadata").
func dynamicMetadata(v policy.Verdict) *structpb.Struct {
	if len(v.DryRunAllow) == 0 && len(v.DryRunDeny) == 0 && len(v.Audit) == 0 {
		return nil
	}
	f := map[string]*structpb.Value{}
	if len(v.DryRunAllow) > 0 {
		f[MetaDryRunAllowPrefix+MetaShadowPolicyID] = structpb.NewStringValue(rbacPolicyID(v.DryRunAllow[0]))
		f[MetaDryRunAllowPrefix+MetaShadowResult] = structpb.NewStringValue("allowed")
	}
	if len(v.DryRunDeny) > 0 {
		f[MetaDryRunDenyPrefix+MetaShadowPolicyID] = structpb.NewStringValue(rbacPolicyID(v.DryRunDeny[0]))
		f[MetaDryRunDenyPrefix+MetaShadowResult] = structpb.NewStringValue("denied")
	}
	if len(v.Audit) > 0 {
		f[MetaAccessLogHint] = structpb.NewBoolValue(true)
		f[MetaAuditPolicyID] = structpb.NewStringValue(rbacPolicyID(v.Audit[0]))
	}
	if len(f) == 0 {
		return nil
	}
	return &structpb.Struct{Fields: f}
}

// rbacPolicyID names a rule as Istio names RBAC policies
// (pilot/pkg/security/authz/model/model.go: ns[NS]-policy[NAME]-rule[N]).
func rbacPolicyID(h policy.Hit) string {
	ns, name, ok := strings.Cut(h.Policy, "/")
	if !ok {
		return h.Policy
	}
	return fmt.Sprintf("ns[%s]-policy[%s]-rule[%d]", ns, name, h.Rule)
}
