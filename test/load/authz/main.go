// Command authz is a bounded load test for meshguard's ext_authz service:
// it serves the real gRPC server on 127.0.0.1 (random port) and sends a fixed
// number of Check calls over real gRPC connections, then prints throughput
// and latency percentiles. With -churn it replaces the policy snapshot every
// interval during the load and checks that every verdict is the verdict of
// one whole snapshot, never of a half-applied one.
//
//	go run ./test/load/authz -checks 1000000 -concurrency 64 -churn 100ms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/policy"
)

type options struct {
	checks      int
	concurrency int
	conns       int
	policies    int
	churn       time.Duration // 0: no policy churn
	timeout     time.Duration // bound on the whole run
}

type report struct {
	Checks, Errors, Inconsistent int64
	Snapshots                    int64
	FirstError                   string
	Elapsed                      time.Duration
	P50, P99, Max                time.Duration
}

func (r report) String() string {
	return fmt.Sprintf("checks=%d errors=%d inconsistent=%d snapshots=%d elapsed=%s throughput=%.0f/s p50=%s p99=%s max=%s",
		r.Checks, r.Errors, r.Inconsistent, r.Snapshots, r.Elapsed.Round(time.Millisecond),
		float64(r.Checks)/r.Elapsed.Seconds(), r.P50, r.P99, r.Max)
}

func main() {
	var o options
	flag.IntVar(&o.checks, "checks", 100000, "number of Check calls")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent callers")
	flag.IntVar(&o.conns, "conns", 4, "gRPC connections shared by the callers")
	flag.IntVar(&o.policies, "policies", 1000, "background AuthorizationPolicies spread over 100 namespaces")
	flag.DurationVar(&o.churn, "churn", 0, "replace the policy snapshot this often during the load (e.g. 100ms); 0 = never")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "upper bound on the run")
	flag.Parse()
	r, err := run(context.Background(), o)
	fmt.Println(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if r.Errors > 0 || r.Inconsistent > 0 {
		fmt.Fprintln(os.Stderr, "first error:", r.FirstError)
		os.Exit(1)
	}
}

// Two generations of the policy under churn. In generation A the ALLOW
// policy "gate" admits /api and a DENY policy "block-admin" blocks /admin; in
// generation B "gate" admits /api and /admin and "block-admin" blocks /api.
// Both change together, so a half-applied snapshot would give a verdict
// (e.g. /admin allowed by "gate" rule 0 and not blocked) that neither
// generation gives.
func generation(b bool) []*securityv1.AuthorizationPolicy {
	gatePaths, blocked := []string{"/api/*"}, []string{"/admin/*"}
	if b {
		gatePaths, blocked = []string{"/api/*", "/admin/*"}, []string{"/api/secret"}
	}
	return []*securityv1.AuthorizationPolicy{
		policyOf("gate", securityapi.AuthorizationPolicy_ALLOW, gatePaths),
		policyOf("block-admin", securityapi.AuthorizationPolicy_DENY, blocked),
	}
}

func policyOf(name string, action securityapi.AuthorizationPolicy_Action, paths []string) *securityv1.AuthorizationPolicy {
	return &securityv1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.Unix(1700000000, 0)},
		Spec: securityapi.AuthorizationPolicy{
			Action: action,
			Rules:  []*securityapi.Rule{{To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{Paths: paths}}}}},
		},
	}
}

// background spreads n ALLOW policies over 100 namespaces other than "shop",
// so the engine works at a realistic size.
func background(n int) []*securityv1.AuthorizationPolicy {
	out := make([]*securityv1.AuthorizationPolicy, 0, n)
	for i := range n {
		p := policyOf(fmt.Sprintf("bg-%d", i), securityapi.AuthorizationPolicy_ALLOW, []string{fmt.Sprintf("/svc-%d/*", i)})
		p.Namespace = fmt.Sprintf("ns-%d", i%100)
		out = append(out, p)
	}
	return out
}

func setOf(b bool, bg []*securityv1.AuthorizationPolicy) *policy.Set {
	return &policy.Set{AuthorizationPolicies: append(slices.Clone(bg), generation(b)...)}
}

var paths = []string{"/api/items", "/admin/users", "/api/secret", "/public"}

func request(path string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/web/sa/frontend",
			Address: socket("10.1.0.7", 43210)},
		Destination: &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/shop/sa/api",
			Address: socket("10.1.0.9", 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: "api.shop.svc.cluster.local", Protocol: "HTTP/1.1",
		}},
	}}
}

func socket(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// outcome is what a caller sees of a verdict: the gRPC status code and
// reason, and the deciding policy meshguard names in its header.
type outcome struct {
	code   int32
	reason string
	policy string
}

func outcomeOf(resp *authv3.CheckResponse) outcome {
	o := outcome{code: resp.GetStatus().GetCode(), reason: resp.GetStatus().GetMessage()}
	headers := resp.GetOkResponse().GetHeaders()
	if d := resp.GetDeniedResponse(); d != nil {
		headers = d.GetHeaders()
	}
	for _, h := range headers {
		if h.GetHeader().GetKey() == authz.HeaderPolicy {
			o.policy = h.GetHeader().GetValue()
		}
	}
	return o
}

func run(ctx context.Context, o options) (report, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	bg := background(o.policies)
	mesh := policy.Mesh{}
	var err error
	engine := policy.NewEngine(mesh)

	// Expected outcomes of each generation, from servers that never change.
	outcomes := func(set *policy.Set) ([]outcome, error) {
		fixed := policy.NewEngine(mesh)
		if _, err := fixed.Update(ctx, set); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
		srv := authz.NewServer(fixed, authz.Options{DecisionLog: "off"}, logr.Discard())
		var out []outcome
		for _, p := range paths {
			resp, err := srv.Check(ctx, request(p))
			if err != nil {
				return nil, err
			}
			out = append(out, outcomeOf(resp))
		}
		return out, nil
	}
	expected := map[bool][]outcome{}
	for _, gen := range []bool{false, true} {
		if expected[gen], err = outcomes(setOf(gen, bg)); err != nil {
			return report{}, err
		}
	}
	// The check must be able to fail: a half-applied snapshot (A's gate with
	// B's block) gives some verdict that neither generation gives.
	half, err := outcomes(&policy.Set{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{generation(false)[0], generation(true)[1]}})
	if err != nil {
		return report{}, err
	}
	distinguishable := false
	for i := range paths {
		if half[i] != expected[false][i] && half[i] != expected[true][i] {
			distinguishable = true
		}
	}
	if !distinguishable {
		return report{}, errors.New("a half-applied snapshot gives the same verdicts as a whole one: the churn check would prove nothing")
	}

	if _, err := engine.Update(ctx, setOf(false, bg)); err != nil {
		return report{}, err
	}
	srv := authz.NewServer(engine, authz.Options{DecisionLog: "off"}, logr.Discard())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return report{}, err
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, lis, nil) }()
	defer func() { stopServe(); <-served }()

	conns := make([]*grpc.ClientConn, max(1, o.conns))
	for i := range conns {
		if conns[i], err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return report{}, err
		}
		defer conns[i].Close()
	}

	var r report
	r.Snapshots = 1
	churnDone := make(chan struct{})
	stopChurn := make(chan struct{})
	go func() {
		defer close(churnDone)
		if o.churn <= 0 {
			return
		}
		t := time.NewTicker(o.churn)
		defer t.Stop()
		gen := false
		for {
			select {
			case <-stopChurn:
				return
			case <-t.C:
				gen = !gen
				if _, err := engine.Update(ctx, setOf(gen, bg)); err != nil {
					fmt.Fprintln(os.Stderr, "policy update:", err)
					continue
				}
				atomic.AddInt64(&r.Snapshots, 1)
			}
		}
	}()

	var next atomic.Int64
	var firstErr sync.Once
	record := func(msg string) { firstErr.Do(func() { r.FirstError = msg }) }
	lat := make([][]time.Duration, o.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := authv3.NewAuthorizationClient(conns[w%len(conns)])
			for {
				i := next.Add(1) - 1
				if i >= int64(o.checks) || ctx.Err() != nil {
					return
				}
				p := int(i) % len(paths)
				t0 := time.Now()
				resp, err := client.Check(ctx, request(paths[p]))
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					atomic.AddInt64(&r.Errors, 1)
					record(err.Error())
					continue
				}
				got := outcomeOf(resp)
				if got != expected[false][p] && got != expected[true][p] {
					atomic.AddInt64(&r.Inconsistent, 1)
					record(fmt.Sprintf("%s: verdict %+v is neither generation's (%+v, %+v)", paths[p], got, expected[false][p], expected[true][p]))
				}
			}
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	close(stopChurn)
	<-churnDone
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r.Checks = int64(len(all))
	if len(all) > 0 {
		slices.Sort(all)
		r.P50, r.P99, r.Max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	if r.Checks < int64(o.checks) {
		return r, fmt.Errorf("only %d of %d checks ran before the %s bound", r.Checks, o.checks, o.timeout)
	}
	return r, nil
}
