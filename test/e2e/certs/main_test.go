// Package certs_test checks the serving certificates end to end: meshguard's
// certificate sources against a real kube-apiserver, with the real cert-manager
// controllers and CA injector running in-process, and the API server calling
// a webhook served with the Source's certificate over a 127.0.0.1 URL.
package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/test/certmanager"
	"github.com/meshguard/meshguard/test/cluster"
)

var kube *cluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	ctrl.SetLogger(testLogger("controller-runtime"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := cluster.Launch(ctx, cluster.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "launch cluster:", err)
		os.Exit(1)
	}
	kube = c
	stack, err := certmanager.Run(context.Background(), certmanager.Options{Kubeconfig: c.Kubeconfig, Config: c.Config})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start cert-manager:", err)
		_ = c.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := stack.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager:", err)
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop cluster:", err)
	}
	os.Exit(code)
}

// startManager runs a manager for meshguard's certificate runnables (leader
// election off, so the leader-only writers run at once).
func startManager(t *testing.T, setup func(manager.Manager)) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(kube.Config, ctrl.Options{
		Scheme:                 cluster.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	setup(mgr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// serveWebhook serves an allow-all validating handler on 127.0.0.1 with the
// Source's certificate and returns its URL and a call counter.
func serveWebhook(t *testing.T, src certs.Source) (string, *atomic.Int64) {
	t.Helper()
	port := cluster.FreePort(t)
	calls := &atomic.Int64{}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1", Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = src.GetCertificate }},
	})
	srv.Register("/validate", &ctrlwebhook.Admission{Handler: admission.HandlerFunc(
		func(context.Context, admission.Request) admission.Response {
			calls.Add(1)
			return admission.Allowed("")
		})})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("webhook server: %v", err)
		}
	})
	if err := cluster.Eventually(20*time.Second, func() error { return srv.StartedChecker()(nil) }); err != nil {
		t.Fatalf("webhook server: %v", err)
	}
	return fmt.Sprintf("https://127.0.0.1:%d/validate", port), calls
}

// webhookConfig is a ValidatingWebhookConfiguration for ConfigMap creation in
// namespaces labelled certs-e2e=<ns>, failing closed so any TLS failure shows.
func webhookConfig(name, ns, url string, annotations map[string]string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "certs.e2e.meshguard.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"certs-e2e": ns}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
		}},
	}
}

// load creates ConfigMaps (dry run: admission runs, etcd stays small)
// through the API server without pause and counts failures.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErrs  []error
	stop       chan struct{}
	done       chan struct{}
}

func startLoad(ns string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Namespace: ns}}
			err := kube.Client.Create(ctx, cm, client.DryRunAll)
			cancel()
			if err != nil {
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.firstErrs) < 5 {
					l.firstErrs = append(l.firstErrs, err)
				}
				l.mu.Unlock()
			} else {
				l.ok.Add(1)
			}
		}
	}()
	return l
}

// finish stops the load and fails the test on any failed request.
func (l *load) finish(t *testing.T, minOK int64) {
	t.Helper()
	close(l.stop)
	<-l.done
	t.Logf("admission load: %d ok, %d failed", l.ok.Load(), l.failed.Load())
	if f := l.failed.Load(); f != 0 {
		t.Errorf("%d admission requests failed during rotation; first: %v", f, l.firstErrs)
	}
	if l.ok.Load() < minOK {
		t.Errorf("only %d admission requests succeeded, want >= %d", l.ok.Load(), minOK)
	}
}

// servedLeaf is the certificate a TLS client gets from src right now.
func servedLeaf(src certs.Source) *x509.Certificate {
	c, err := src.GetCertificate(nil)
	if err != nil || c == nil {
		return nil
	}
	return c.Leaf
}

// testLogger prints with -v only; unlike testr it is safe for goroutines
// that log after the test returned.
func testLogger(name string) logr.Logger {
	if !testing.Verbose() {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) {
		fmt.Fprintf(os.Stderr, "%s %s %s\n", time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{}).WithName(name)
}

// progress waits until the webhook has been called n more times, proving the
// load runs through it (not around it).
func progress(t *testing.T, calls *atomic.Int64, n int64) {
	t.Helper()
	start := calls.Load()
	if err := cluster.Eventually(30*time.Second, func() error {
		if got := calls.Load() - start; got < n {
			return fmt.Errorf("%d webhook calls, want %d", got, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
