//go:build dev

package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/scheme"
	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/webhook"
)

// `dev --revision canary` must create the canary's configurations (the names
// the certificate code patches, the canary's selectors), not the default's.
func TestDevClientConfigRevision(t *testing.T) {
	o := &serveOptions{webhookHost: "127.0.0.1", webhookPort: 9443, namespace: "mg"}
	o.certOpts.Revision = "canary"
	cc := devClientConfig(o, []byte("ca"))
	if cc.BaseURL != "https://127.0.0.1:9443" || cc.OwnNamespace != "mg" || string(cc.CABundle) != "ca" {
		t.Fatalf("client config %+v", cc)
	}
	m, v := webhook.MutatingWebhookConfiguration(cc), webhook.ValidatingWebhookConfiguration(cc)
	if m.Name != webhook.MutatingConfigNameFor("canary") || v.Name != webhook.ValidatingConfigNameFor("canary") || len(m.Webhooks) != 2 {
		t.Fatalf("dev --revision canary creates %s (%d entries) and %s", m.Name, len(m.Webhooks), v.Name)
	}
}

// TestDevRefusesInvalidFlagValues: dev takes serve's flags and refuses what
// serve refuses, naming the flag, before it starts a control plane (a
// negative --shutdown-timeout made Ctrl-C wait without bound); its own
// default --webhook-port 0 stays valid.
func TestDevRefusesInvalidFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--shutdown-timeout=-1s"}, "--shutdown-timeout"},
		{[]string{"--audit-qps=0"}, "--audit-qps"},
		{[]string{"--decision-log=loud"}, "--decision-log"},
		{[]string{"--tls-verify-client"}, "--tls-verify-client"},
		{[]string{"--webhook-port=70000"}, "--webhook-port"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"dev", "--k8s-bin", filepath.Join(t.TempDir(), "absent")}, tc.args...))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		if err := cmd.Execute(); err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("dev %v: err = %v, want it refused naming %s", tc.args, err, tc.flag)
		}
	}
}

func TestDevInstructionsRevision(t *testing.T) {
	var def, canary strings.Builder
	o := &serveOptions{webhooks: true}
	printDevInstructions(&def, "kc", "/repo/bin/k8s", o)
	o.certOpts.Revision = "canary"
	printDevInstructions(&canary, "kc", "", o)
	if !strings.Contains(def.String(), "label namespace demo istio-injection=enabled") || !strings.Contains(def.String(), "metadata: {name: bad, namespace: demo}") {
		t.Errorf("default revision instructions:\n%s", def.String())
	}
	// The commands use the kubectl make k8s-bin built, which is not on PATH.
	if !strings.Contains(def.String(), "\n  export PATH=/repo/bin/k8s:$PATH\n") || strings.Contains(canary.String(), "export PATH") {
		t.Errorf("PATH export: with a kubectl directory:\n%s\nwithout:\n%s", def.String(), canary.String())
	}
	if kubectlDir("kubectl") != "" || kubectlDir("/repo/bin/k8s/kubectl") != "/repo/bin/k8s" {
		t.Errorf("kubectlDir: %q, %q", kubectlDir("kubectl"), kubectlDir("/repo/bin/k8s/kubectl"))
	}
	if !strings.Contains(canary.String(), "label namespace demo istio.io/rev=canary") || !strings.Contains(canary.String(), "metadata: {name: bad, namespace: demo, labels: {istio.io/rev: canary}}") {
		t.Errorf("canary instructions:\n%s", canary.String())
	}
}

// TestDevHelpOneDefault: a flag whose default dev overrides shows dev's
// default only ("--cert-mode ... (default "files")"), not serve's
// description of its own besides it.
func TestDevHelpOneDefault(t *testing.T) {
	cmd := newRootCmd()
	var out strings.Builder
	cmd.SetArgs([]string{"dev", "--help"})
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "--cert-mode") {
			if strings.Count(line, "(default") != 1 || !strings.Contains(line, `(default "files")`) {
				t.Errorf("dev --help: %q, want dev's default only", line)
			}
			return
		}
	}
	t.Fatalf("no --cert-mode in dev --help:\n%s", out.String())
}

// TestDevRefusesFlags: dev listens on loopback only (its ext_authz is
// plaintext, its API server an admin playground) and serves its own local
// CA's certificate from its temporary directory; it refuses, naming the
// flag, what would do otherwise, before it starts a control plane. Before,
// it listened on 0.0.0.0 when told, and took --cert-dir and --cert-mode only
// to ignore or fail on them.
func TestDevRefusesFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string // "": accepted (dev goes on to look for the control plane)
	}{
		{[]string{"--webhook-host=0.0.0.0"}, "--webhook-host"},
		{[]string{"--webhook-host="}, "--webhook-host"},
		{[]string{"--webhook-host=192.0.2.1"}, "--webhook-host"},
		{[]string{"--authz-addr=0.0.0.0:19000"}, "--authz-addr"},
		{[]string{"--authz-addr=:19000"}, "--authz-addr"},
		{[]string{"--authz-addr=19000"}, "--authz-addr"},
		{[]string{"--authz-http-addr=:19001"}, "--authz-http-addr"},
		{[]string{"--metrics-addr=:18080"}, "--metrics-addr"},
		{[]string{"--metrics-addr="}, "--metrics-addr"}, // serve's :8080
		{[]string{"--health-addr=:18081"}, "--health-addr"},
		{[]string{"--health-addr=[::]:18081"}, "--health-addr"},
		{[]string{"--cert-dir=" + t.TempDir()}, "--cert-dir"},
		{[]string{"--cert-mode=self"}, "--cert-mode"},
		{[]string{"--cert-mode=cert-manager"}, "--cert-mode"},
		{[]string{"--cert-mode="}, "--cert-mode"},
		{nil, ""},
		{[]string{"--webhook-host=localhost", "--authz-addr=[::1]:19000", "--metrics-addr=localhost:18080", "--health-addr=127.0.0.2:18081"}, ""},
		{[]string{"--metrics-addr=0", "--health-addr=", "--authz-http-addr=127.0.0.1:19001"}, ""},
		// What does not listen is not checked.
		{[]string{"--authz=false", "--authz-addr=0.0.0.0:19000"}, ""},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"dev", "--k8s-bin", filepath.Join(t.TempDir(), "absent")}, tc.args...))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		err := cmd.Execute()
		if tc.flag == "" {
			if err == nil || !strings.Contains(err.Error(), "missing in") {
				t.Errorf("dev %v: err = %v, want it accepted (and the absent control plane reported)", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.flag+" ") {
			t.Errorf("dev %v: err = %v, want it refused naming %s", tc.args, err, tc.flag)
		}
	}
}

// TestDevCertificates: dev's CA lives a day (its key sits in a temporary
// directory; before, it lived 5 years) and may sign leaves only; its serving
// certificate ends no later than the CA, and the session ends no later than
// the certificate (files mode does not renew it).
func TestDevCertificates(t *testing.T) {
	for _, tc := range []struct {
		args []string
		life time.Duration // of the serving certificate and the session
	}{
		{nil, 24 * time.Hour},
		{[]string{"--cert-duration=1h"}, time.Hour},
		{[]string{"--cert-ca-duration=2h", "--cert-duration=48h"}, 2 * time.Hour},
	} {
		o := &serveOptions{}
		cmd := newDevCmdFor(o)
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		o.certOpts.Dir = t.TempDir()
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := certs.Setup(ctx, nil, o.certOpts, logr.Discard()); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cancel()
		ca, leaf := readCert(t, filepath.Join(o.certOpts.Dir, certs.FileCACert)), readCert(t, filepath.Join(o.certOpts.Dir, certs.FileLeafCert))
		if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
			t.Errorf("%v: CA isCA %v maxPathLen %d (zero %v), want a CA of path length 0", tc.args, ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
		}
		if leaf.NotAfter.After(ca.NotAfter) {
			t.Errorf("%v: leaf ends %s, after the CA (%s)", tc.args, leaf.NotAfter, ca.NotAfter)
		}
		if got := leaf.NotAfter.Sub(start); got < tc.life-time.Second || got > tc.life+time.Minute {
			t.Errorf("%v: leaf lives %s from start, want %s", tc.args, got, tc.life)
		}
		if end := devSessionEnd(start, o); end.After(leaf.NotAfter) || end.Before(start.Add(tc.life-time.Second)) {
			t.Errorf("%v: session ends %s, leaf %s", tc.args, end, leaf.NotAfter)
		}
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// webhookServerSpy is a manager whose webhook server is recorded when asked
// for (asking controller-runtime's starts it).
type webhookServerSpy struct {
	manager.Manager
	asked atomic.Bool
}

func (m *webhookServerSpy) GetWebhookServer() ctrlwebhook.Server {
	m.asked.Store(true)
	return startedServer{}
}

type startedServer struct{ ctrlwebhook.Server }

func (startedServer) StartedChecker() healthz.Checker { return healthz.Ping }

type staticSource struct{ certs.Source }

func (staticSource) CABundle() []byte { return []byte("ca") }

// lockedBuffer is written by devStarted's goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDevStartedOnlyWhatRuns: dev installs the webhook configurations
// (failurePolicy Fail) and prints the webhook steps and endpoints only for
// what it serves. Before, --webhooks=false still installed both
// configurations, pointing at a webhook server with no handlers, so every
// Istio config write and every pod in a labelled namespace was refused;
// --authz=false still printed an ext_authz address.
func TestDevStartedOnlyWhatRuns(t *testing.T) {
	for _, tc := range []struct {
		webhooks, authz bool
		metrics         string
	}{{true, true, "127.0.0.1:8080"}, {false, true, "0"}, {true, false, "127.0.0.1:8080"}, {false, false, "0"}} {
		o := &serveOptions{webhooks: tc.webhooks, authz: tc.authz, webhookHost: "127.0.0.1", webhookPort: 9443,
			metricsAddr: tc.metrics, healthAddr: "127.0.0.1:8081"}
		o.authzOpts.Addr = "127.0.0.1:9000"
		cl := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
		out := &lockedBuffer{}
		mgr := &webhookServerSpy{}
		devStarted(context.Background(), cl, out, "kc", "", o, logr.Discard())(mgr, staticSource{})
		if err := cluster.Eventually(10*time.Second, func() error {
			if !strings.Contains(out.String(), "health: ") {
				return fmt.Errorf("instructions not printed: %q", out.String())
			}
			return nil
		}); err != nil {
			t.Fatalf("webhooks %v: %v", tc.webhooks, err)
		}
		var mwc admissionregistrationv1.MutatingWebhookConfigurationList
		var vwc admissionregistrationv1.ValidatingWebhookConfigurationList
		if err := cl.List(context.Background(), &mwc); err != nil {
			t.Fatal(err)
		}
		if err := cl.List(context.Background(), &vwc); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if installed := len(mwc.Items) == 1 && len(vwc.Items) == 1; installed != tc.webhooks || (!tc.webhooks && len(mwc.Items)+len(vwc.Items) != 0) {
			t.Errorf("webhooks %v: %d mutating, %d validating configurations installed", tc.webhooks, len(mwc.Items), len(vwc.Items))
		}
		if mgr.asked.Load() != tc.webhooks {
			t.Errorf("webhooks %v: webhook server asked for (started) %v", tc.webhooks, mgr.asked.Load())
		}
		if strings.Contains(s, "label namespace demo") != tc.webhooks {
			t.Errorf("webhooks %v: instructions:\n%s", tc.webhooks, s)
		}
		if strings.Contains(s, "ext_authz gRPC: 127.0.0.1:9000") != tc.authz {
			t.Errorf("authz %v: instructions:\n%s", tc.authz, s)
		}
		if strings.Contains(s, "metrics:") != (tc.metrics != "0") {
			t.Errorf("metrics %q: instructions:\n%s", tc.metrics, s)
		}
	}
}

// devChildArgs runs TestDevSignalsLeaveNothing's `meshguard dev` process.
const devChildArgs = "MESHGUARD_TEST_DEV_ARGS"

// fakeControlPlane writes kube-apiserver, etcd and kube-controller-manager
// that never become ready (as a slow or stuck start-up) and append their
// pids to pids.
func fakeControlPlane(t *testing.T, pids string) string {
	t.Helper()
	dir := t.TempDir()
	// exec -a keeps argv0, the path it was started as, as the real binaries
	// do: KillProcesses knows kube-apiserver and etcd by it.
	script := "#!/bin/bash\ncase \"$1\" in --help) exit 0;; esac\necho $$ >> '" + pids + "'\nexec -a \"$0\" sleep 300\n"
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDevSignalsLeaveNothing: a signal during start-up ends `meshguard dev`
// within seconds, and SIGHUP (a closed terminal) or two SIGINTs leave no
// control-plane process (envtest starts them in process groups of their own,
// which a terminal's signals do not reach) and no temporary directory (admin
// kubeconfig, etcd data, the CA key). Before, SIGHUP killed dev at once and
// left both; the first SIGINT waited for envtest's start-up timeouts (448 s
// with these fakes), so users pressed it again, which exited leaving both.
func TestDevSignalsLeaveNothing(t *testing.T) {
	if args := os.Getenv(devChildArgs); args != "" {
		cmd := newRootCmd()
		cmd.SetArgs(strings.Split(args, "\n"))
		if err := cmd.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	for _, tc := range []struct {
		name    string
		signals []syscall.Signal
	}{
		{"SIGHUP", []syscall.Signal{syscall.SIGHUP}},
		{"SIGINT", []syscall.Signal{syscall.SIGINT}},
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp, pids := t.TempDir(), filepath.Join(t.TempDir(), "pids")
			var stderr bytes.Buffer
			child := exec.Command(os.Args[0], "-test.run=^TestDevSignalsLeaveNothing$")
			child.Env = append(os.Environ(), "TMPDIR="+tmp, devChildArgs+"="+strings.Join([]string{"dev",
				"--k8s-bin", fakeControlPlane(t, pids), "--authz-addr", "127.0.0.1:0", "--metrics-addr", "0", "--health-addr", "0"}, "\n"))
			child.Stderr = &stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- child.Wait() }()
			t.Cleanup(func() {
				_ = child.Process.Kill()
				if t.Failed() {
					t.Logf("meshguard dev's stderr:\n%s", stderr.String())
				}
			})
			// Start-up is under way once the fake etcd runs.
			var started []int
			if err := cluster.Eventually(30*time.Second, func() error {
				var err error
				started, err = readPids(pids)
				if err == nil && len(started) == 0 {
					err = errors.New("no control-plane process started")
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for _, sig := range tc.signals {
				if err := child.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-exited:
				if err == nil {
					t.Errorf("dev ended without an error status")
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("dev still running 20s after %v", tc.signals)
			}
			all, err := readPids(pids)
			if err != nil {
				t.Fatal(err)
			}
			for _, pid := range all {
				if err := cluster.Eventually(10*time.Second, func() error { return cluster.ProcessGone(pid) }); err != nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("after %v: %v", tc.signals, err)
				}
			}
			left, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range left {
				t.Errorf("after %v: %s left in TMPDIR", tc.signals, e.Name())
			}
		})
	}
}

func readPids(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
