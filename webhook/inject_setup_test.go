package webhook

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshguard/meshguard/injector/config"
)

func newTestManager(t *testing.T) manager.Manager {
	t.Helper()
	// The manager is never started: no API server is contacted.
	mgr, err := manager.New(&rest.Config{Host: "https://127.0.0.1:1"}, manager.Options{
		Metrics:       metricsserver.Options{BindAddress: "0"},
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{Host: "127.0.0.1", Port: 0, CertDir: t.TempDir()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

func TestSetupInjection(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "values.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("global: {hub: example.com/istio}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("global: {proxy: {statusPort: 99999}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	mgr := newTestManager(t)
	if err := SetupInjection(mgr, InjectionOptions{ValuesPath: good}, logr.Discard()); err != nil {
		t.Fatal(err)
	}
	_, pattern := mgr.GetWebhookServer().WebhookMux().Handler(httptest.NewRequest("POST", InjectPath, nil))
	if !strings.Contains(pattern, InjectPath) {
		t.Fatalf("%s not registered (matched pattern %q)", InjectPath, pattern)
	}
	_, pattern = mgr.GetWebhookServer().WebhookMux().Handler(httptest.NewRequest("POST", "/inject/cluster/east/net/n1", nil))
	if !strings.HasSuffix(pattern, InjectPath+"/") {
		t.Fatalf("URL-parameter paths not registered (matched pattern %q)", pattern)
	}

	err := SetupInjection(newTestManager(t), InjectionOptions{ValuesPath: bad}, logr.Discard())
	if err == nil || !strings.Contains(err.Error(), "statusPort") {
		t.Fatalf("invalid config at start-up: error %v should name statusPort", err)
	}
	err = SetupInjection(newTestManager(t), InjectionOptions{NativeSidecars: "maybe"}, logr.Discard())
	if err == nil || !strings.Contains(err.Error(), "--native-sidecars") {
		t.Fatalf("bad --native-sidecars: %v", err)
	}
}

func TestInjectionOptionsNativeOverride(t *testing.T) {
	// The values file says true; the flag decides over it, "auto" hands the
	// decision to node detection (nil), "" keeps the file's.
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("global: {nativeSidecars: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag string
		want string
	}{{"", "true"}, {"auto", "detect"}, {"true", "true"}, {"false", "false"}} {
		snap, err := InjectionOptions{NativeSidecars: tc.flag, ValuesPath: values}.load()
		if err != nil {
			t.Fatal(err)
		}
		got := "detect"
		if n := snap.Values.Global.NativeSidecars; n != nil {
			got = strconv.FormatBool(*n)
		}
		if got != tc.want {
			t.Errorf("--native-sidecars=%q over values true: %s, want %s", tc.flag, got, tc.want)
		}
	}
}

func TestInjectionOptionsFlags(t *testing.T) {
	var o InjectionOptions
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--mesh-config=/m", "--injector-values=/v", "--inject-max-request-bytes=1024"}); err != nil {
		t.Fatal(err)
	}
	if o.MeshConfigPath != "/m" || o.ValuesPath != "/v" || o.MaxRequestBytes != 1024 || o.ReloadDebounce != DefaultReloadDebounce {
		t.Fatalf("parsed %+v", o)
	}
}

// TestInjectMaxRequestBytesCeiling: --inject-max-request-bytes cannot promise
// more than controller-runtime's admission webhook reads (it refuses bodies of
// 7 MiB and more itself), and the largest accepted value really admits a body
// just below it.
func TestInjectMaxRequestBytesCeiling(t *testing.T) {
	if err := (InjectionOptions{MaxRequestBytes: maxAdmissionBytes}).Validate(); err == nil || !strings.Contains(err.Error(), "--inject-max-request-bytes") {
		t.Fatalf("limit %d: error %v should name the flag", maxAdmissionBytes, err)
	}
	limit := int64(maxAdmissionBytes - 1)
	if err := (InjectionOptions{MaxRequestBytes: limit}).Validate(); err != nil {
		t.Fatal(err)
	}
	// Padded in an app container's env, not an annotation: annotations
	// beyond the API server's 256 KiB total are denied before injection
	// (TestInjectDeniesHostileAnnotations).
	pod := testPod(0)
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PAD", Value: "x"}}
	size := len(reviewBody(t, pod, nil))
	pod.Spec.Containers[0].Env[0].Value = strings.Repeat("x", int(limit)-size+1)
	body := reviewBody(t, pod, nil)
	if int64(len(body)) != limit {
		t.Fatalf("body of %d bytes, want %d", len(body), limit)
	}
	h := NewInjectHTTPHandler(&InjectHandler{Config: NewConfigStore(config.Default()), Log: logr.Discard()}, limit)
	if _, resp := serve(t, h, body); !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("a %d-byte review under a %d-byte limit: allowed=%v result=%+v", len(body), limit, resp.Allowed, resp.Result)
	}
}

// TestOnConfigLoaded: every config the injector accepts, at start-up and on
// each reload, reaches InjectionOptions.OnConfigLoaded (serve passes its
// mesh config on to ext_authz); a rejected one does not.
func TestOnConfigLoaded(t *testing.T) {
	mesh := filepath.Join(t.TempDir(), "mesh")
	write := func(s string) {
		if err := os.WriteFile(mesh, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("trustDomain: first.td\n")
	var got []string
	o := InjectionOptions{MeshConfigPath: mesh, OnConfigLoaded: func(s *config.Snapshot) { got = append(got, s.Mesh.GetTrustDomain()) }}
	if err := SetupInjection(newTestManager(t), o, logr.Discard()); err != nil {
		t.Fatal(err)
	}
	w := o.watcher(NewConfigStore(config.Default()), logr.Discard())
	write("trustDomain: second.td\n")
	w.Reload()
	write("trustDomain: \"\"\n") // rejected
	w.Reload()
	if want := []string{"first.td", "second.td"}; !slices.Equal(got, want) {
		t.Fatalf("OnConfigLoaded saw %v, want %v", got, want)
	}
}
