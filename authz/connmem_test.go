package authz

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"

	"github.com/meshguard/meshguard/policy"
)

// connMemClientEnv makes the test binary the client of
// TestIdleConnectionMemory: "protocol addr n", the CA in connMemCAEnv.
const (
	connMemClientEnv = "MESHGUARD_TEST_CONNMEM_CLIENT"
	connMemCAEnv     = "MESHGUARD_TEST_CONNMEM_CA"
)

// idleConnBudget is the server memory (heap and goroutine stacks) one idle
// TLS connection may hold, on either port (measured: about 55 KiB on the
// gRPC port, 24 KiB on the HTTP one): docs/reliability.md's memory bound
// under --authz-max-connections is this times the limit.
const idleConnBudget = 80 << 10

// TestIdleConnectionMemory measures what an idle client connection costs
// the ext_authz server over TLS: on the gRPC port a connection set up as
// Envoy's (HTTP/2 settled, no call in flight), on the HTTP port one that
// has had its first request answered. The clients run in a child process,
// so that only the server's memory is measured. Kernel socket buffers are
// not counted.
func TestIdleConnectionMemory(t *testing.T) {
	if spec := os.Getenv(connMemClientEnv); spec != "" {
		connMemClient(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("opens hundreds of connections")
	}
	const n = 200
	ca, caKey := newCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf(t, ca, caKey, "server", []string{"127.0.0.1"})}, MinVersion: tls.VersionTLS12}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	for _, protocol := range []string{"gRPC", "HTTP"} {
		t.Run(protocol, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(policy.NewEngine(policy.Mesh{}), Options{DecisionLog: "off", ShutdownTimeout: time.Second}, logr.Discard())
			serve := s.Serve
			if protocol == "HTTP" {
				serve = s.ServeHTTP
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- serve(ctx, lis, serverTLS) }()
			defer func() { cancel(); <-done }()
			// One connection first, so that what every server allocates
			// once (pools, the first handshake's state) is not counted.
			warm := exec.Command(os.Args[0], "-test.run=^TestIdleConnectionMemory$")
			warm.Env = append(os.Environ(), connMemClientEnv+"="+protocol+" "+lis.Addr().String()+" 1", connMemCAEnv+"="+string(caPEM))
			before := startConnMemClient(t, warm)
			defer before()
			base := inUse()
			cmd := exec.Command(os.Args[0], "-test.run=^TestIdleConnectionMemory$")
			cmd.Env = append(os.Environ(), connMemClientEnv+"="+protocol+" "+lis.Addr().String()+" "+strconv.Itoa(n), connMemCAEnv+"="+string(caPEM))
			stop := startConnMemClient(t, cmd)
			defer stop()
			per := (int64(inUse()) - int64(base)) / n
			t.Logf("%s: %d B (%.1f KiB) per idle TLS connection (heap and stacks, %d connections)", protocol, per, float64(per)/1024, n)
			if per > idleConnBudget {
				t.Errorf("%s: an idle TLS connection holds %d B of server memory, more than the %d B docs/reliability.md's bound assumes", protocol, per, idleConnBudget)
			}
		})
	}
}

// inUse is the heap and goroutine stack memory in use after a collection.
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// startConnMemClient runs cmd and waits for its "ready" line: every
// connection is set up and the server has answered on it. The returned
// function ends the client (its stdin closes).
func startConnMemClient(t *testing.T, cmd *exec.Cmd) func() {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "ready" {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return stop
		}
	}
	stop()
	t.Fatalf("the client process ended before its connections were ready: %v", sc.Err())
	return nil
}

// connMemClient is the child process: it opens the connections, prints
// "ready" and holds them until its stdin closes.
func connMemClient(t *testing.T, spec string) {
	var protocol, addr string
	var n int
	if _, err := fmt.Sscan(spec, &protocol, &addr, &n); err != nil {
		t.Fatalf("%s=%q: %v", connMemClientEnv, spec, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(os.Getenv(connMemCAEnv)))
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range n {
		switch protocol {
		case "gRPC":
			cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			cc.Connect()
			for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
				if !cc.WaitForStateChange(ctx, s) {
					t.Fatalf("gRPC connection not ready: %v", s)
				}
			}
		default:
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			r, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
