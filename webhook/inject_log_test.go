package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// captureLogger returns a logger at the highest verbosity (controller-runtime
// logs requests and responses at V(5)) that records every line.
func captureLogger() (logr.Logger, func() string) {
	var mu sync.Mutex
	var buf strings.Builder
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
	return log, func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
}

// TestInjectLogsNoSecrets drives /inject with pods whose env values and
// annotations hold secrets and a bearer token (admitted, skipped, denied and
// undecodable requests) and checks that no secret reaches the logs, while the
// logs still say what happened.
func TestInjectLogsNoSecrets(t *testing.T) {
	const (
		envSecret = "s3cr3t-env-value-7f1c"
		token     = "Bearer eyJhbGciOiJSUzI1NiJ9.tok3n-9a8b"
	)
	secretPod := func(annos map[string]string) *corev1.Pod {
		p := testPod(0)
		p.Name = "payments"
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: envSecret}}
		p.Annotations = map[string]string{"example.com/authorization": token}
		for k, v := range annos {
			p.Annotations[k] = v
		}
		return p
	}
	privileged := secretPod(nil)
	privileged.Spec.Containers = append(privileged.Spec.Containers, corev1.Container{Name: "istio-proxy",
		Env:             []corev1.EnvVar{{Name: "TOKEN", Value: token}},
		SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)}})
	rawWith := func(raw string) func(*admissionv1.AdmissionRequest) {
		return func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(raw) }
	}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		mutate  func(*admissionv1.AdmissionRequest)
		body    []byte // raw HTTP body instead of an AdmissionReview
		allowed bool
		msg     string // substring of the denial
	}{
		{name: "injected", pod: secretPod(map[string]string{"proxy.istio.io/config": "proxyMetadata: {AUTH: '" + token + "'}"}), allowed: true},
		{name: "skipped", pod: secretPod(map[string]string{"sidecar.istio.io/inject": "false"}), allowed: true},
		{name: "not a create", pod: secretPod(nil), mutate: func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Update }, allowed: true},
		{name: "invalid annotation quoting the token", pod: secretPod(map[string]string{"sidecar.istio.io/interceptionMode": token}), msg: "sidecar.istio.io/interceptionMode"},
		{name: "invalid proxy config quoting the token", pod: secretPod(map[string]string{"proxy.istio.io/config": "concurrency: '" + token + "'"}), msg: "proxy.istio.io/config"},
		{name: "invalid quantity quoting the secret", pod: secretPod(map[string]string{"sidecar.istio.io/proxyCPU": envSecret}), msg: "proxyCPU"},
		{name: "privileged override", pod: privileged, msg: "securityContext.privileged=true"},
		{name: "undecodable pod next to the secret", pod: secretPod(nil),
			mutate: rawWith(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"` + envSecret + `"}],"image":5}]}}`), msg: "decoding pod"},
		{name: "undecodable review next to the token", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"x":"` + token + `"}, oops}}`)},
	}
	log, logs := captureLogger()
	h := NewInjectHTTPHandler(&InjectHandler{Config: NewConfigStore(config.Default()), Log: log}, 0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = reviewBody(t, tc.pod, tc.mutate)
			}
			r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if tc.body != nil {
				if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
					t.Fatalf("HTTP %d", w.Code)
				}
				return
			}
			_, resp := serve(t, h, body)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed=%v result=%+v", resp.Allowed, resp.Result)
			}
			if tc.msg != "" && (resp.Result == nil || !strings.Contains(resp.Result.Message, tc.msg)) {
				t.Fatalf("denial %+v lacks %q", resp.Result, tc.msg)
			}
			if tc.name == "undecodable pod next to the secret" && strings.Contains(resp.Result.Message, envSecret) {
				t.Errorf("decode error echoes pod content: %s", resp.Result.Message)
			}
		})
	}
	out := logs()
	for _, want := range []string{"sidecar injection denied", `"fields"=["annotation sidecar.istio.io/interceptionMode"]`, "wrote response", "decoding pod", "unable to decode the request"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q (is the capture working?):\n%s", want, out)
		}
	}
	for _, secret := range []string{envSecret, token, "eyJhbGciOiJSUzI1NiJ9"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain the secret %q:\n%s", secret, out)
		}
	}
}

func TestSafeDecodeError(t *testing.T) {
	in := errors.New(`ReadString: expects " or n, but found 5, error found in #10 byte of ...|"value":"pw"|..., bigger context ...|{"name":"X","value":"pw"}|...`)
	got := safeDecodeError(in).Error()
	if got != `ReadString: expects " or n, but found 5 (at byte 10)` {
		t.Fatalf("safeDecodeError = %q", got)
	}
	plain := errors.New("json: unexpected end")
	if safeDecodeError(plain) != plain {
		t.Fatal("errors without excerpts must pass through")
	}
}

func TestRedactLogger(t *testing.T) {
	log, logs := captureLogger()
	rl := redactLogger(log).WithValues("message", "secret-1", "kept", "v").WithName("n")
	rl.V(5).Info("wrote response", "message", "secret-2", "allowed", false)
	rl.Error(fmt.Errorf("e"), "failed", "message", "secret-3")
	out := logs()
	if strings.Contains(out, "secret-") || strings.Count(out, "[redacted]") != 4 || !strings.Contains(out, `"kept"="v"`) {
		t.Fatalf("redaction wrong:\n%s", out)
	}
}

// TestOnConfigRejected checks that InjectionOptions.OnConfigRejected reaches
// the config store SetupInjection builds: called with the rejection for a bad
// config (not for a good one), the last good config still serving.
func TestOnConfigRejected(t *testing.T) {
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(values, []byte("global: {hub: good.example}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []error
	o := InjectionOptions{ValuesPath: values, ReloadDebounce: 10 * time.Millisecond,
		OnConfigRejected: func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }}.withDefaults()
	snap, err := o.load()
	if err != nil {
		t.Fatal(err)
	}
	store := o.newConfigStore(snap, logr.Discard())
	w := o.watcher(store, logr.Discard())
	reloaded := make(chan error, 1)
	w.OnReload = func(err error) {
		select {
		case reloaded <- err:
		default:
		}
	}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() { cancel(); <-done }()

	calls := func() []error { mu.Lock(); defer mu.Unlock(); return append([]error(nil), got...) }
	waitFor := func(what string, cond func([]error) bool, write func()) []error {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if c := calls(); cond(c) {
				return c
			}
			if write != nil {
				write()
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: calls %v", what, calls())
		return nil
	}
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("initial reload: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no initial reload")
	}
	if c := calls(); len(c) != 0 {
		t.Fatalf("a good config was reported as rejected: %v", c)
	}
	bad := "meshguard: {allowedProxyImages: ['docker.io/[istio']}\n"
	c := waitFor("rejected reload", func(c []error) bool { return len(c) > 0 }, func() {
		// Atomically (rename), as a ConfigMap update is: an in-place write
		// can be read truncated, and an empty values file is a valid config
		// (Istio's defaults) that would rightly replace the good one.
		tmp := values + ".tmp"
		if err := os.WriteFile(tmp, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, values); err != nil {
			t.Fatal(err)
		}
	})
	if msg := c[len(c)-1].Error(); !strings.Contains(msg, "values.meshguard.allowedProxyImages[0]") {
		t.Fatalf("rejection %q should name the bad glob", msg)
	}
	if hub := store.Load().Values.Global.Hub; hub != "good.example" {
		t.Fatalf("bad config replaced the last good one: hub %s", hub)
	}
}

// TestConfigStoreLogNamesItsSource: a rejected injector config is logged
// with where it came from: the files, or in ConfigMap mode Istio's
// ConfigMaps (the file fields were logged empty there).
func TestConfigStoreLogNamesItsSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    InjectionOptions
		want []string
	}{
		{"files", InjectionOptions{MeshConfigPath: "/etc/mesh/mesh", ValuesPath: "/etc/values/values"},
			[]string{`"meshConfig"="/etc/mesh/mesh"`, `"values"="/etc/values/values"`}},
		{"configmaps", InjectionOptions{ConfigMaps: IstioConfigMaps{Namespace: "istio-system"}},
			[]string{`"configMaps"="istio-system/` + config.InjectorConfigMapName + `,` + config.MeshConfigMapName + `"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, lines := captureLogger()
			store := tc.o.newConfigStore(config.Default(), log)
			if _, err := store.Update(func() (*config.Snapshot, error) { return nil, errors.New("bad config") }); err == nil {
				t.Fatal("a failed build was accepted")
			}
			got := lines()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("log %q lacks %s", got, w)
				}
			}
			if tc.o.ConfigMaps.Enabled() && strings.Contains(got, `"meshConfig"=""`) {
				t.Errorf("ConfigMap mode logged empty file fields: %q", got)
			}
		})
	}
}
