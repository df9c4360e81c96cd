// Package faults runs `meshguard serve` as a real process against the real
// API server and breaks things around it: the API server goes away and comes
// back, a corrupt config arrives, SIGTERM arrives under load.
package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/meshguard/meshguard/test/binary"
	"github.com/meshguard/meshguard/test/cluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	binary.Cleanup()
	os.Exit(code)
}

// meshguard is a `meshguard serve` process on loopback ports.
type meshguard struct {
	cmd                                          *exec.Cmd
	exited                                       chan error
	webhookURL, authzAddr, metricsURL, readyzURL string
	http                                         *http.Client
	meshConfig                                   string
	roots                                        *x509.CertPool
	clientCert                                   tls.Certificate
}

func startMeshguard(t *testing.T, c *cluster.Cluster, extraArgs ...string) *meshguard {
	t.Helper()
	bin, err := binary.Path()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := &meshguard{exited: make(chan error, 1), meshConfig: filepath.Join(dir, "mesh.yaml")}
	if err := os.WriteFile(m.meshConfig, []byte("trustDomain: cluster.local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webhookPort, authzPort, metricsPort, healthPort := cluster.FreePort(t), cluster.FreePort(t), cluster.FreePort(t), cluster.FreePort(t)
	m.webhookURL = fmt.Sprintf("https://127.0.0.1:%d", webhookPort)
	m.authzAddr = fmt.Sprintf("127.0.0.1:%d", authzPort)
	m.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	m.readyzURL = fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort)
	m.cmd = exec.Command(bin, "serve",
		"--kubeconfig", c.Kubeconfig,
		"--namespace", "meshguard-system",
		"--cert-mode", "files", "--cert-dir", filepath.Join(dir, "certs"), "--cert-extra-san", "127.0.0.1",
		"--webhook-host", "127.0.0.1", "--webhook-port", strconv.Itoa(webhookPort),
		"--authz-addr", m.authzAddr,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", healthPort),
		"--mesh-config", m.meshConfig,
		"--decision-log", "off",
		"--shutdown-timeout", "10s",
	)
	m.cmd.Args = append(m.cmd.Args, extraArgs...)
	// As the downward API does in a cluster: Events about meshguard land on its Pod.
	m.cmd.Env = append(os.Environ(), "POD_NAME=meshguard-test", "POD_UID=")
	m.cmd.Stdout, m.cmd.Stderr = os.Stderr, os.Stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.exited <- m.cmd.Wait() }()
	t.Cleanup(func() { _ = m.cmd.Process.Kill() })

	if err := cluster.Eventually(time.Minute, cluster.ProcessReady(m.exited, m.readyzURL)); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	m.roots = x509.NewCertPool()
	if !m.roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA in ca.crt")
	}
	pool := m.roots
	// ext_authz reports SERVING once its first policy snapshot is active.
	// The serving leaf is also valid for client auth: tests present it where
	// meshguard verifies client certificates.
	if m.clientCert, err = tls.LoadX509KeyPair(filepath.Join(dir, "certs", "tls.crt"), filepath.Join(dir, "certs", "tls.key")); err != nil {
		t.Fatal(err)
	}
	creds := insecure.NewCredentials()
	if slices.Contains(extraArgs, "--authz-tls") {
		creds = credentials.NewTLS(&tls.Config{RootCAs: m.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{m.clientCert}})
	}
	healthConn, err := grpc.NewClient(m.authzAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer healthConn.Close()
	if err := cluster.Eventually(time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(healthConn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("ext_authz health: %s", resp.Status)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64,
	}}
	return m
}

// review posts an AdmissionReview for obj to path and returns the response.
func (m *meshguard) review(path string, kind metav1.GroupVersionKind, resource metav1.GroupVersionResource, namespace string, obj runtime.Object) (*admissionv1.AdmissionResponse, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "4a7b6c2e-0000-4000-8000-000000000001", Kind: kind, Resource: resource, Namespace: namespace,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		return nil, err
	}
	resp, err := m.http.Post(m.webhookURL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode AdmissionReview: %w", err)
	}
	if out.Response == nil {
		return nil, errors.New("AdmissionReview without response")
	}
	return out.Response, nil
}

// waitCleanExit waits (at most 30 s) for meshguard to exit after SIGTERM and
// requires exit status 0.
func (m *meshguard) waitCleanExit(t *testing.T) {
	t.Helper()
	select {
	case err := <-m.exited:
		if err != nil {
			t.Errorf("meshguard exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("meshguard did not exit within 30s of SIGTERM")
	}
}

func (m *meshguard) inject() error {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "shop"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	resp, err := m.review("/inject", metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, "shop", pod)
	if err != nil {
		return err
	}
	if !resp.Allowed || !bytes.Contains(resp.Patch, []byte("istio-proxy")) {
		return fmt.Errorf("pod not injected: allowed=%v patch=%.200s", resp.Allowed, resp.Patch)
	}
	return nil
}

func (m *meshguard) validateBadVirtualService() error {
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "bad", "namespace": "shop"},
		"spec": map[string]any{"hosts": []any{"web"}, "http": []any{map[string]any{
			"route": []any{map[string]any{"destination": map[string]any{"host": "web"}, "weight": -5}},
		}}},
	}}
	resp, err := m.review("/validate", metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
		metav1.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}, "shop", vs)
	if err != nil {
		return err
	}
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "weight") {
		return fmt.Errorf("bad VirtualService not denied with its field: %+v", resp.Result)
	}
	return nil
}

func (m *meshguard) check(ctx context.Context, conn *grpc.ClientConn) (allowed bool, err error) {
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/shop/sa/client"},
		Destination: &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/shop/sa/web", Address: socket("10.0.0.9", 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/admin", Host: "web.shop.svc.cluster.local", Protocol: "HTTP/1.1",
		}},
	}})
	if err != nil {
		return false, err
	}
	if code := codes.Code(resp.GetStatus().GetCode()); code != codes.OK && code != codes.PermissionDenied {
		return false, fmt.Errorf("check answered %s: %s", code, resp.GetStatus().GetMessage())
	}
	return codes.Code(resp.GetStatus().GetCode()) == codes.OK, nil
}

func socket(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func (m *meshguard) metric(name string) (float64, error) {
	resp, err := http.Get(m.metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? ([0-9.e+-]+)$`).FindSubmatch(data)
	if match == nil {
		return 0, fmt.Errorf("metric %s not exported", name)
	}
	return strconv.ParseFloat(string(match[1]), 64)
}

func TestAPIServerOutageAndRecovery(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "shop", nil)
	m := startMeshguard(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient(m.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Baseline: no policy, the request is allowed; a DENY policy turns it down.
	if allowed, err := m.check(ctx, conn); err != nil || !allowed {
		t.Fatalf("baseline check: allowed=%v err=%v", allowed, err)
	}
	deny := &securityv1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-admin", Namespace: "shop"},
		Spec: securityapi.AuthorizationPolicy{
			Action: securityapi.AuthorizationPolicy_DENY,
			Rules:  []*securityapi.Rule{{To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{Paths: []string{"/admin"}}}}}},
		},
	}
	if err := c.Client.Create(ctx, deny); err != nil {
		t.Fatal(err)
	}
	waitVerdict(t, ctx, m, conn, false, 10*time.Second)

	// The API server goes away: every request path keeps answering from what
	// meshguard already has.
	if err := c.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	if allowed, err := m.check(ctx, conn); err != nil || allowed {
		t.Errorf("ext_authz during the outage: allowed=%v err=%v, want the last snapshot's denial", allowed, err)
	}
	if err := m.inject(); err != nil {
		t.Errorf("injection during the outage: %v", err)
	}
	if err := m.validateBadVirtualService(); err != nil {
		t.Errorf("validation during the outage: %v", err)
	}

	// It comes back; the watches recover and pick up a change made afterwards.
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Delete(ctx, deny); err != nil {
		t.Fatal(err)
	}
	waitVerdict(t, ctx, m, conn, true, 90*time.Second)
}

func waitVerdict(t *testing.T, ctx context.Context, m *meshguard, conn *grpc.ClientConn, want bool, timeout time.Duration) {
	t.Helper()
	if err := cluster.Eventually(timeout, func() error {
		allowed, err := m.check(ctx, conn)
		if err != nil {
			return err
		}
		if allowed != want {
			return fmt.Errorf("allowed=%v, want %v", allowed, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptMeshConfigKeepsLastGood(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "meshguard-system", nil)
	m := startMeshguard(t, c)
	const metric = "meshguard_injector_config_reload_errors_total"
	before, err := m.metric(metric)
	if err != nil {
		before = 0 // a counter without samples is not exported yet
	}
	if err := os.WriteFile(m.meshConfig, []byte("trustDomain: [unterminated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Eventually(30*time.Second, func() error {
		after, err := m.metric(metric)
		if err != nil {
			return err
		}
		if after <= before {
			return fmt.Errorf("%s = %v, want > %v", metric, after, before)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.inject(); err != nil {
		t.Errorf("injection after a corrupt config: %v", err)
	}
	// A Warning Event on meshguard's Pod tells the operator.
	if err := cluster.Eventually(30*time.Second, func() error {
		var list eventsv1.EventList
		if err := c.Client.List(context.Background(), &list, client.InNamespace("meshguard-system")); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == "InjectorConfigRejected" && e.Regarding.Name == "meshguard-test" && e.Type == corev1.EventTypeWarning &&
				strings.Contains(e.Note, "mesh config") {
				return nil
			}
		}
		return fmt.Errorf("no InjectorConfigRejected event among %d events", len(list.Items))
	}); err != nil {
		t.Error(err)
	}
}

func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "shop", nil)
	m := startMeshguard(t, c)

	var ok, failedResponses, afterSignal atomic.Int64
	var signalled atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstBad error
	stop := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := signalled.Load()
				err := m.inject()
				switch {
				case err == nil:
					ok.Add(1)
					if sent {
						afterSignal.Add(1)
					}
				case isConnectionError(err):
					// The listener is closed: new requests are refused once draining starts.
					if !signalled.Load() {
						mu.Lock()
						firstBad = err
						mu.Unlock()
					}
				default:
					failedResponses.Add(1)
					mu.Lock()
					firstBad = err
					mu.Unlock()
				}
			}
		}()
	}
	if err := cluster.Eventually(30*time.Second, func() error {
		if ok.Load() < 200 {
			return fmt.Errorf("%d requests so far", ok.Load())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	signalled.Store(true)
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-m.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("meshguard did not exit within 30s of SIGTERM")
	}
	close(stop)
	wg.Wait()
	if exitErr != nil {
		t.Errorf("meshguard exited with %v after SIGTERM, want 0", exitErr)
	}
	if failedResponses.Load() != 0 || firstBad != nil {
		t.Errorf("%d requests failed with a response or before shutdown; first: %v", failedResponses.Load(), firstBad)
	}
	t.Logf("%d requests served, %d of them sent after SIGTERM", ok.Load(), afterSignal.Load())
}

func isConnectionError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "server closed idle connection")
}

// Every listener speaks TLS 1.2 at least and prefers TLS 1.3.
func TestListenersRequireTLS12(t *testing.T) {
	c := cluster.Start(t)
	m := startMeshguard(t, c, "--authz-tls")
	listeners := map[string]string{"webhook": strings.TrimPrefix(m.webhookURL, "https://"), "ext_authz": m.authzAddr}
	for name, addr := range listeners {
		t.Run(name, func(t *testing.T) {
			old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: m.roots, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
			if err == nil {
				old.Close()
				t.Errorf("%s accepted a TLS 1.1 handshake", name)
			}
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: m.roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatalf("%s: TLS handshake: %v", name, err)
			}
			defer conn.Close()
			if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
				t.Errorf("%s negotiated %s, want TLS 1.3", name, tls.VersionName(v))
			}
		})
	}
}

// With --tls-verify-client, ext_authz answers only proxies that present a
// certificate from the CA bundle.
func TestExtAuthzVerifiesClientCertificates(t *testing.T) {
	c := cluster.Start(t)
	m := startMeshguard(t, c, "--authz-tls", "--tls-verify-client")
	health := func(certs ...tls.Certificate) error {
		conn, err := grpc.NewClient(m.authzAddr, grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{RootCAs: m.roots, ServerName: "127.0.0.1", Certificates: certs})))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
		return err
	}
	if err := health(); err == nil {
		t.Error("ext_authz answered a client without a certificate")
	}
	if err := health(m.clientCert); err != nil {
		t.Errorf("ext_authz refused a client with a certificate from the bundle: %v", err)
	}
}

// TestSIGTERMReleasesLeaderLease: a leader stopped by SIGTERM (a rolling
// update) gives its Lease up once its leader-only work has stopped, so
// another replica takes over within a retry period instead of waiting out
// the lease (15 s), as istiod's elections do (pilot/pkg/leaderelection
// ReleaseOnCancel: true).
func TestSIGTERMReleasesLeaderLease(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "shop", nil)
	cluster.CreateNamespace(t, c, "meshguard-system", nil)
	m := startMeshguard(t, c, "--leader-elect", "--shutdown-delay", "0s")
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "meshguard-system", Name: "meshguard-leader"}
	var lease coordinationv1.Lease
	if err := cluster.Eventually(30*time.Second, func() error {
		if err := c.Client.Get(ctx, key, &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return errors.New("no holder yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m.waitCleanExit(t)
	if err := c.Client.Get(ctx, key, &lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("Lease still held by %q after the leader's SIGTERM: the next leader waits out the lease", *h)
	}
}

// TestAPIServerOutageKeepsLeaderServing: a leader that cannot renew its
// Lease while the API server is away (longer than the renew deadline, 10 s)
// stops its leader-only work and campaigns again, as istiod does
// (pilot/pkg/leaderelection Run: "Leader election cycle lost. Trying
// again"); it keeps serving admission and ext_authz throughout, as every
// other replica does (docs/operations.md "Losing the leader pauses those
// writes, never serving"). controller-runtime's manager instead exits the
// process without a graceful shutdown when its lease is lost.
func TestAPIServerOutageKeepsLeaderServing(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "shop", nil)
	cluster.CreateNamespace(t, c, "meshguard-system", nil)
	m := startMeshguard(t, c, "--leader-elect")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	key := client.ObjectKey{Namespace: "meshguard-system", Name: "meshguard-leader"}
	holder := func() (string, error) {
		var lease coordinationv1.Lease
		if err := c.Client.Get(ctx, key, &lease); err != nil {
			return "", err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return "", errors.New("no holder")
		}
		return *lease.Spec.HolderIdentity, nil
	}
	if err := cluster.Eventually(30*time.Second, func() error { _, err := holder(); return err }); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(m.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if err := c.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second) // past the 10 s renew deadline and the 15 s lease
	for time.Now().Before(deadline) {
		select {
		case err := <-m.exited:
			t.Fatalf("meshguard exited during the API server outage: %v", err)
		case <-time.After(time.Second):
		}
		if err := m.inject(); err != nil {
			t.Fatalf("injection during the outage: %v", err)
		}
		if _, err := m.check(ctx, conn); err != nil {
			t.Fatalf("ext_authz during the outage: %v", err)
		}
	}
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	// The only replica campaigns again and wins.
	if err := cluster.Eventually(40*time.Second, func() error {
		select {
		case err := <-m.exited:
			return fmt.Errorf("meshguard exited: %v", err)
		default:
		}
		_, err := holder()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.validateBadVirtualService(); err != nil {
		t.Errorf("validation after the outage: %v", err)
	}
}

// TestSIGTERMTurnsGRPCHealthNotServing: on SIGTERM the ext_authz gRPC
// health service reports NOT_SERVING for the whole --shutdown-delay, as
// /readyz fails, while Checks are still answered, so Envoys health-checking
// the ext_authz cluster leave the replica before its listener closes.
func TestSIGTERMTurnsGRPCHealthNotServing(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "shop", nil)
	m := startMeshguard(t, c, "--shutdown-delay", "4s")
	conn, err := grpc.NewClient(m.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if _, err := m.check(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Await NOT_SERVING (the signal's handling takes a moment) well inside
	// the 4s delay, answered on the connection that is still open.
	health := healthpb.NewHealthClient(conn)
	if err := cluster.Eventually(2*time.Second, func() error {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
			return fmt.Errorf("%s, want NOT_SERVING (as /readyz)", resp.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("gRPC health during the shutdown delay: %v", err)
	}
	if _, err := m.check(ctx, conn); err != nil {
		t.Errorf("Check during the shutdown delay: %v, want it still answered", err)
	}
	m.waitCleanExit(t)
}
