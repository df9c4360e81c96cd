// Package replicas runs three `meshguard serve` processes against the real
// API server, as the chart's replicated Deployment does, and checks that
// they behave as one service (docs/operations.md "Scaling out"): one
// leader holds the Lease and does the cluster-wide work (self-managed CA and
// serving certificate, caBundle patching), every replica serves admission and ext_authz, the leader's
// SIGKILL and a rolling SIGTERM restart lose no admission request, and a
// policy change reaches every replica.
//
// The API server calls a webhook through one URL and cannot spread calls
// itself here (no kube-proxy), so the test puts a small loopback TCP
// balancer in front of the three webhook ports: round robin per connection
// over the ready replicas, as a Service routes to ready endpoints. ext_authz load is spread
// over the three gRPC ports by the load generator itself, which stops sending
// to a replica when it kills or stops it (what Envoy's health checking does).
package replicas

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/test/binary"
	"github.com/meshguard/meshguard/test/cluster"
)

const (
	mgNamespace = "meshguard-system"
	leaseName   = "meshguard-leader"
	vwcName     = "meshguard-validator" // meshguard's default validating configuration name
	loadNS      = "replicas-e2e"
	// controller-runtime's default lease duration; a new leader must take
	// over within it (plus one retry period) after the leader dies.
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	// inFlightWindow bounds when a failed admission request counts as in
	// flight on a SIGKILLed replica (the API server's webhook timeout is 10s).
	inFlightWindow = 11 * time.Second
)

var kube *cluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	// The API server (a child process, it inherits the environment) then
	// calls webhooks over HTTP/1.1: its connection pool holds one connection
	// per concurrent call, which the balancer spreads over the replicas. Over
	// HTTP/2 every call shares one connection, pinned to one replica (as
	// kube-proxy would pin it to one endpoint), and two replicas would never
	// see an admission request. client-go reads DISABLE_HTTP2
	// (k8s.io/apimachinery/pkg/util/net SetTransportDefaults).
	os.Setenv("DISABLE_HTTP2", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := cluster.Launch(ctx, cluster.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "launch cluster:", err)
		os.Exit(1)
	}
	kube = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop cluster:", err)
	}
	binary.Cleanup()
	os.Exit(code)
}

// replica is one `meshguard serve` process; restart reuses its ports.
type replica struct {
	name                             string
	webhookPort                      int
	authzAddr, metricsURL, readyzURL string
	meshConfig                       string
	cmd                              *exec.Cmd
	exited                           chan error
	conn                             *grpc.ClientConn
	authz                            authv3.AuthorizationClient
	alive                            atomic.Bool // ready: in the balancer and the ext_authz rotation
	top                              *testing.T  // the whole test: a process outlives the subtest that started it
}

func newReplica(t *testing.T, name string) *replica {
	dir := t.TempDir()
	r := &replica{
		top: t, name: name, webhookPort: cluster.FreePort(t), authzAddr: cluster.FreeAddr(t),
		meshConfig: filepath.Join(dir, "mesh.yaml"),
	}
	r.metricsURL = "http://" + cluster.FreeAddr(t) + "/metrics"
	r.readyzURL = "http://" + cluster.FreeAddr(t) + "/readyz"
	if err := os.WriteFile(r.meshConfig, []byte("trustDomain: cluster.local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(r.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r.conn, r.authz = conn, authv3.NewAuthorizationClient(conn)
	return r
}

func hostPort(url string) string {
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics"), "/readyz")
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	bin, err := binary.Path()
	if err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan error, 1)
	r.cmd = exec.Command(bin, "serve",
		"--kubeconfig", kube.Kubeconfig,
		"--namespace", mgNamespace,
		"--leader-elect",
		"--cert-mode", "self", "--cert-extra-san", "127.0.0.1",
		// Lifetimes of seconds, so the leader's certificate work is visible
		// within the test: the leaf renews every few seconds.
		"--cert-duration", "24s", "--cert-renew-before", "16s", "--cert-ca-duration", "1h",
		"--cert-check-interval", "1s",
		"--webhook-host", "127.0.0.1", "--webhook-port", strconv.Itoa(r.webhookPort),
		"--authz-addr", r.authzAddr,
		"--metrics-addr", hostPort(r.metricsURL),
		"--health-addr", hostPort(r.readyzURL),
		"--mesh-config", r.meshConfig,
		"--decision-log", "off",
		"--shutdown-timeout", "10s", "--shutdown-delay", "2s",
	)
	r.cmd.Env = append(os.Environ(), "POD_NAME="+r.name, "POD_UID=")
	// The output is kept (its end) so a replica that fails to start says why.
	out := &outputTail{}
	var w io.Writer = out
	if testing.Verbose() {
		w = io.MultiWriter(os.Stderr, out)
	}
	r.cmd.Stdout, r.cmd.Stderr = w, w
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited := r.cmd, r.exited
	go func() { exited <- cmd.Wait() }()
	r.top.Cleanup(func() { _ = cmd.Process.Kill() })
	if err := cluster.Eventually(90*time.Second, cluster.ProcessReady(exited, r.readyzURL)); err != nil {
		t.Fatalf("%s: %v; the end of its output:\n%s", r.name, err, out)
	}
	r.alive.Store(true)
}

// outputTail keeps the last 16 KiB written to it.
type outputTail struct {
	mu  sync.Mutex
	buf []byte
}

func (o *outputTail) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if over := len(o.buf) - 16<<10; over > 0 {
		o.buf = append(o.buf[:0], o.buf[over:]...)
	}
	return len(p), nil
}

func (o *outputTail) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// stop sends sig and waits for the process to end.
func (r *replica) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	r.alive.Store(false)
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if sig == syscall.SIGTERM && err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", r.name, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit after %v", r.name, sig)
	}
}

// metric reads one sample (name with its label set, as exposed) from /metrics.
func (r *replica) metric(series string) (float64, bool) {
	resp, err := http.Get(r.metricsURL)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func (r *replica) isLeader() bool {
	v, ok := r.metric(`leader_election_master_status{name="` + leaseName + `"}`)
	return ok && v == 1
}

// webhookCalls counts the validation requests this replica answered.
func (r *replica) webhookCalls() float64 {
	resp, err := http.Get(r.metricsURL)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "controller_runtime_webhook_requests_total{") && strings.Contains(line, `webhook="/validate"`) {
			if f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				total += f
			}
		}
	}
	return total
}

// balancer is the loopback TCP balancer in front of the webhook ports.
type balancer struct {
	ln       net.Listener
	backends []*replica
	next     atomic.Uint64
}

// startBalancer routes each new connection to the next ready replica, as a
// Service routes to ready endpoints only.
func startBalancer(t *testing.T, reps []*replica) *balancer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: reps}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.proxy(c)
		}
	}()
	return b
}

func (b *balancer) proxy(c net.Conn) {
	defer c.Close()
	start := b.next.Add(1)
	var up net.Conn
	for i := range b.backends {
		r := b.backends[(int(start)+i)%len(b.backends)]
		if !r.alive.Load() {
			continue
		}
		var err error
		if up, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.webhookPort), time.Second); err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (b *balancer) url() string { return "https://" + b.ln.Addr().String() + "/validate" }

// admissionWorkers: concurrent admission requests, so that the API server
// keeps several connections to the balancer and so to every replica.
const admissionWorkers = 6

// baselineRequests is how many admission requests and ext_authz checks the
// load has answered before a replica is killed under it.
const baselineRequests = 50

// load sends admission (dry-run VirtualService creates through the API
// server) and ext_authz checks (round robin over the replicas in rotation)
// until stopped, counting failures.

type load struct {
	admOK, admFail, authzOK, authzFail atomic.Int64
	// killedAt: when a replica was SIGKILLed (see onKilled).
	killedAt atomic.Int64
	inFlight atomic.Int64
	mu       sync.Mutex
	errs     []string
	stop     chan struct{} // ends the ext_authz loop
	stopAdm  chan struct{} // ends the admission workers
	wg       sync.WaitGroup
	admWG    sync.WaitGroup
	admOnce  sync.Once
}

func startLoad(reps []*replica) *load {
	l := &load{stop: make(chan struct{}), stopAdm: make(chan struct{})}
	for w := 0; w < admissionWorkers; w++ {
		l.admWG.Add(1)
		go func() {
			defer l.admWG.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stopAdm:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				sent := time.Now()
				err := kube.Client.Create(ctx, virtualService(fmt.Sprintf("vs-%d-%d", w, i), 10), client.DryRunAll)
				cancel()
				if err != nil && l.onKilled(sent, err) {
					l.inFlight.Add(1)
					continue
				}
				l.count(&l.admOK, &l.admFail, "admission", err)
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			r := reps[i%len(reps)]
			if !r.alive.Load() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := r.authz.Check(ctx, checkRequest("web"))
			cancel()
			if err == nil && resp.GetStatus().GetCode() != 0 {
				err = fmt.Errorf("%s: denied: %s", r.name, resp.GetStatus().GetMessage())
			}
			if err != nil && !r.alive.Load() {
				continue // in flight on a replica taken out of rotation: what Envoy retries elsewhere
			}
			l.count(&l.authzOK, &l.authzFail, "ext_authz "+r.name, err)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

// onKilled reports whether a failed admission request went to the SIGKILLed
// replica: sent before the kill and failed within inFlightWindow, or sent on
// one of its keep-alive connections in the moment before the balancer saw
// the connection die (a connection-level error within a second of the kill).
func (l *load) onKilled(sent time.Time, err error) bool {
	k := l.killedAt.Load()
	if k == 0 {
		return false
	}
	kill := time.Unix(0, k)
	if sent.Before(kill) {
		return time.Since(kill) < inFlightWindow
	}
	msg := err.Error()
	connErr := strings.HasSuffix(msg, ": EOF") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
	return connErr && sent.Sub(kill) < time.Second
}

// stopAdmission ends the admission workers (ext_authz load goes on).
func (l *load) stopAdmission() {
	l.admOnce.Do(func() { close(l.stopAdm) })
	l.admWG.Wait()
}

func (l *load) count(ok, fail *atomic.Int64, what string, err error) {
	if err == nil {
		ok.Add(1)
		return
	}
	fail.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, what+": "+err.Error())
	}
	l.mu.Unlock()
}

func (l *load) finish(t *testing.T, phase string) {
	t.Helper()
	l.stopAdmission()
	close(l.stop)
	l.wg.Wait()
	t.Logf("%s: admission %d ok / %d failed / %d in flight on the killed replica; ext_authz %d ok / %d failed", phase,
		l.admOK.Load(), l.admFail.Load(), l.inFlight.Load(), l.authzOK.Load(), l.authzFail.Load())
	if l.inFlight.Load() > admissionWorkers {
		t.Errorf("%s: %d admission requests failed at the kill, more than could be in flight (%d)", phase, l.inFlight.Load(), admissionWorkers)
	}
	if l.admFail.Load() != 0 || l.authzFail.Load() != 0 {
		t.Errorf("%s: failed requests; first: %v", phase, l.errs)
	}
	if l.admOK.Load() < 20 || l.authzOK.Load() < 100 {
		t.Errorf("%s: too little load to mean anything", phase)
	}
}

func virtualService(name string, weight int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": name, "namespace": loadNS},
		"spec": map[string]any{
			"hosts": []any{"reviews"},
			"http":  []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}, "weight": weight}}}},
		},
	}}
	return u
}

// checkRequest is a plaintext HTTP request to a workload of namespace shop.
func checkRequest(sa string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.5", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Destination: &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/shop/sa/" + sa},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/", Host: "web.shop"}},
	}}
}

// bundleHistory records every distinct caBundle of the validating
// configuration, in order, by polling it while the test runs.
type bundleHistory struct {
	mu   sync.Mutex
	seen []string
	stop chan struct{}
	done chan struct{}
}

func watchBundles() *bundleHistory {
	h := &bundleHistory{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var cfg admissionregistrationv1.ValidatingWebhookConfiguration
			if err := kube.Client.Get(context.Background(), types.NamespacedName{Name: vwcName}, &cfg); err == nil && len(cfg.Webhooks) > 0 {
				b := string(cfg.Webhooks[0].ClientConfig.CABundle)
				h.mu.Lock()
				if b != "" && (len(h.seen) == 0 || h.seen[len(h.seen)-1] != b) {
					h.seen = append(h.seen, b)
				}
				h.mu.Unlock()
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// check stops the watch and fails if a caBundle value came back after
// another replaced it: two writers disagreeing would flap between values.
func (h *bundleHistory) check(t *testing.T) {
	close(h.stop)
	<-h.done
	for i, b := range h.seen {
		if slices.Contains(h.seen[:i], b) {
			t.Errorf("caBundle flapped: value %d reappeared after being replaced (history of %d values)", i, len(h.seen))
		}
	}
	t.Logf("caBundle history: %d distinct values", len(h.seen))
}

func leaseHolder(t *testing.T) string {
	var l coordinationv1.Lease
	if err := kube.Client.Get(context.Background(), types.NamespacedName{Namespace: mgNamespace, Name: leaseName}, &l); err != nil {
		return ""
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaders returns the replicas that report holding the Lease.
func leaders(reps []*replica) []*replica {
	var out []*replica
	for _, r := range reps {
		if r.alive.Load() && r.isLeader() {
			out = append(out, r)
		}
	}
	return out
}

// servedSerial is the serial of the serving certificate a replica presents.
func servedSerial(r *replica) string {
	conn, err := tlsDial(r.webhookPort)
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestReplicas(t *testing.T) {
	cluster.CreateNamespace(t, kube, mgNamespace, nil)
	cluster.CreateNamespace(t, kube, loadNS, map[string]string{"replicas-e2e": "on"})
	reps := []*replica{newReplica(t, "meshguard-0"), newReplica(t, "meshguard-1"), newReplica(t, "meshguard-2")}
	lb := startBalancer(t, reps)

	// The validating configuration exists first, as the chart installs it;
	// the leader fills in caBundle.
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	url := lb.url()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: vwcName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "validation.meshguard.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"networking.istio.io"}, APIVersions: []string{"*"}, Resources: []string{"virtualservices"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"replicas-e2e": "on"}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
		}},
	}
	ctx := context.Background()
	if err := kube.Client.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	bundles := watchBundles()
	for _, r := range reps {
		r.start(t)
	}

	// Exactly one leader, the one the Lease names.
	var leader *replica
	if err := cluster.Eventually(leaseDuration+10*time.Second, func() error {
		ls := leaders(reps)
		if len(ls) != 1 {
			return fmt.Errorf("%d replicas report leadership", len(ls))
		}
		if !strings.HasPrefix(leaseHolder(t), hostnameOr()) {
			return fmt.Errorf("lease holder %q", leaseHolder(t))
		}
		leader = ls[0]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("leader: %s (lease holder %s)", leader.name, leaseHolder(t))

	// Admission works through the balancer: a bad VirtualService is denied
	// by meshguard, a good one admitted.
	if err := cluster.Eventually(30*time.Second, func() error {
		err := kube.Client.Create(ctx, virtualService("bad", -15), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "weight") {
			return fmt.Errorf("bad VirtualService: %v", err)
		}
		return kube.Client.Create(ctx, virtualService("good", 10), client.DryRunAll)
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("identical verdicts and policy propagation", func(t *testing.T) {
		checkAll := func(sa string) []bool {
			out := make([]bool, len(reps))
			for i, r := range reps {
				resp, err := r.authz.Check(ctx, checkRequest(sa))
				out[i] = err == nil && resp.GetStatus().GetCode() == 0
			}
			return out
		}
		if got := checkAll("web"); !slices.Equal(got, []bool{true, true, true}) {
			t.Fatalf("before the policy: allowed per replica = %v", got)
		}
		pol := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
			"metadata": map[string]any{"name": "deny-admin", "namespace": "shop"},
			"spec":     map[string]any{"action": "DENY", "rules": []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"notPrincipals": []any{"*"}}}}}}},
		}}
		cluster.CreateNamespace(t, kube, "shop", nil)
		start := time.Now()
		if err := kube.Client.Create(ctx, pol); err != nil {
			t.Fatal(err)
		}
		reached := make([]time.Duration, len(reps))
		if err := cluster.Eventually(30*time.Second, func() error {
			for i, r := range reps {
				if reached[i] != 0 {
					continue
				}
				resp, err := r.authz.Check(ctx, checkRequest("web"))
				if err == nil && resp.GetStatus().GetCode() != 0 {
					reached[i] = time.Since(start)
				}
			}
			for i := range reps {
				if reached[i] == 0 {
					return fmt.Errorf("policy not yet on %s", reps[i].name)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sorted := slices.Clone(reached)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		t.Logf("policy propagation to the three replicas: %v (spread %v)", reached, sorted[2]-sorted[0])
		if got := checkAll("web"); !slices.Equal(got, []bool{false, false, false}) {
			t.Errorf("after the policy: allowed per replica = %v", got)
		}
		if err := kube.Client.Delete(ctx, pol); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Eventually(30*time.Second, func() error {
			if got := checkAll("web"); !slices.Equal(got, []bool{true, true, true}) {
				return fmt.Errorf("after deleting the policy: allowed per replica = %v", got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("leader SIGKILL under load", func(t *testing.T) {
		l := startLoad(reps)
		// The kill lands under load: await a baseline of answered admission
		// requests and ext_authz checks rather than a fixed period.
		if err := cluster.Eventually(30*time.Second, func() error {
			if a, z := l.admOK.Load(), l.authzOK.Load(); a < baselineRequests || z < baselineRequests {
				return fmt.Errorf("%d admission requests and %d ext_authz checks answered, want %d of each before the kill", a, z, baselineRequests)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		before := map[*replica]float64{}
		for _, r := range reps {
			before[r] = r.webhookCalls()
		}
		oldHolder := leaseHolder(t)
		killedAt := time.Now()
		l.killedAt.Store(killedAt.UnixNano())
		leader.stop(t, syscall.SIGKILL)
		var newLeader *replica
		if err := cluster.Eventually(leaseDuration+retryPeriod+5*time.Second, func() error {
			ls := leaders(reps)
			if len(ls) != 1 {
				return fmt.Errorf("%d live replicas report leadership", len(ls))
			}
			if h := leaseHolder(t); h == oldHolder || h == "" {
				return fmt.Errorf("lease still held by %q", h)
			}
			newLeader = ls[0]
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		takeover := time.Since(killedAt)
		t.Logf("%s took over %v after the leader's SIGKILL (lease duration %v)", newLeader.name, takeover, leaseDuration)
		// The new leader continues the certificate work: the serving leaf
		// (24s life, renewed 16s before expiry) is renewed by it.
		serial := servedSerial(newLeader)
		if err := cluster.Eventually(30*time.Second, func() error {
			if s := servedSerial(newLeader); s == "" || s == serial {
				return fmt.Errorf("serving certificate not renewed since the takeover")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// ... and the caBundle reconciliation: a caBundle removed by hand
		// (a GitOps tool re-applying the manifest) is put back by the new leader.
		l.stopAdmission() // without a caBundle the API server cannot call the webhook
		var cfg admissionregistrationv1.ValidatingWebhookConfiguration
		if err := kube.Client.Get(ctx, types.NamespacedName{Name: vwcName}, &cfg); err != nil {
			t.Fatal(err)
		}
		want := string(cfg.Webhooks[0].ClientConfig.CABundle)
		cfg.Webhooks[0].ClientConfig.CABundle = nil
		if err := kube.Client.Update(ctx, &cfg); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Eventually(30*time.Second, func() error {
			var got admissionregistrationv1.ValidatingWebhookConfiguration
			if err := kube.Client.Get(ctx, types.NamespacedName{Name: vwcName}, &got); err != nil {
				return err
			}
			if b := string(got.Webhooks[0].ClientConfig.CABundle); b != want {
				return fmt.Errorf("caBundle not restored by the new leader (%d bytes)", len(b))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		l.finish(t, "leader SIGKILL")
		// Admission went through every live replica.
		for _, r := range reps {
			if r.alive.Load() && r.webhookCalls() <= before[r] {
				t.Errorf("%s answered no admission request during the load", r.name)
			}
		}
		leader = newLeader
		// Bring the killed replica back for the rolling restart.
		for _, r := range reps {
			if !r.alive.Load() {
				r.start(t)
			}
		}
	})

	t.Run("rolling restart under load", func(t *testing.T) {
		l := startLoad(reps)
		for _, r := range reps {
			r.stop(t, syscall.SIGTERM)
			r.start(t)
		}
		if err := cluster.Eventually(leaseDuration+retryPeriod+5*time.Second, func() error {
			if ls := leaders(reps); len(ls) != 1 {
				return fmt.Errorf("%d replicas report leadership", len(ls))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		l.finish(t, "rolling restart")
	})

	bundles.check(t)
}

// hostnameOr is the prefix of controller-runtime's leader identity (the
// host name, then "_" and a UUID).
func hostnameOr() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// tlsDial connects to a replica's webhook port to read the certificate it
// serves (only the certificate is looked at, so it is not verified here;
// admission through the API server verifies it against caBundle).
func tlsDial(port int) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(port),
		&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate only
}
