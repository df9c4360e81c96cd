package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshguard/meshguard/webhook"
)

// WebhookServer is meshguard's webhook server (webhook.NewServer, as
// `meshguard serve` runs it) on 127.0.0.1 with a certificate from a CA made
// for it.
type WebhookServer struct {
	Server ctrlwebhook.Server
	// ClientConfig points the API server at this server (URL + CA bundle).
	ClientConfig webhook.ClientConfig
}

// NewWebhookServer builds, without starting it, the webhook server serve
// runs (webhook.NewServer: its request bounds, its error log) on a free
// 127.0.0.1 port with a serving certificate from a fresh CA.
func NewWebhookServer(t testing.TB) *WebhookServer {
	t.Helper()
	// envtest's own preparation: a fresh CA, a serving cert for 127.0.0.1 and a free port.
	prep := envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := prep.PrepWithoutInstalling(); err != nil {
		t.Fatalf("prepare webhook serving certs: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(prep.LocalServingCertDir) })
	cert, err := tls.LoadX509KeyPair(filepath.Join(prep.LocalServingCertDir, "tls.crt"), filepath.Join(prep.LocalServingCertDir, "tls.key"))
	if err != nil {
		t.Fatalf("load webhook serving cert: %v", err)
	}
	srv := webhook.NewServer(ctrlwebhook.Options{
		Host: prep.LocalServingHost,
		Port: prep.LocalServingPort,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
		}},
	}, 10*time.Second, 0, testr.NewWithInterface(t, testr.Options{}))
	return &WebhookServer{
		Server: srv,
		ClientConfig: webhook.ClientConfig{
			BaseURL:        fmt.Sprintf("https://%s:%d", prep.LocalServingHost, prep.LocalServingPort),
			CABundle:       prep.LocalServingCAData,
			TimeoutSeconds: 10,
		},
	}
}

// ServeWebhooks starts a NewWebhookServer, lets register add handlers, and
// stops it when the test ends.
func ServeWebhooks(t testing.TB, register func(ctrlwebhook.Server)) *WebhookServer {
	t.Helper()
	ws := NewWebhookServer(t)
	srv := ws.Server
	register(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("webhook server: %v", err)
		}
	})
	if err := waitFor(context.Background(), 10*time.Second, func() error { return srv.StartedChecker()(nil) }); err != nil {
		t.Fatalf("webhook server did not start: %v", err)
	}
	return ws
}

// CreateNamespace creates a namespace with labels, waits for its default
// ServiceAccount (as pods need), and deletes it (without waiting) when the
// test ends.
func CreateNamespace(t testing.TB, c *Cluster, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	if err := c.WaitForDefaultServiceAccount(ctx, name); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Client.Delete(ctx, ns)
	})
	return ns
}

// Eventually polls cond until it returns nil or timeout passes, and returns
// the last error.
func Eventually(timeout time.Duration, cond func() error) error {
	return waitFor(context.Background(), timeout, cond)
}

// waitFor polls cond until it returns nil, timeout passes or ctx ends (a
// Ctrl-C during `meshguard dev`'s start-up), and returns the last error.
func waitFor(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", context.Cause(ctx), err)
		case <-deadline.C:
			return fmt.Errorf("condition not met within %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
