package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jsonpatchv5 "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/reload"
)

func testPod(envs int) *corev1.Pod {
	c := corev1.Container{Name: "app", Image: "example.com/app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	for i := 0; i < envs; i++ {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: fmt.Sprintf("value-%d", i)})
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: "app", Labels: map[string]string{"app": "app"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
	}
}

func reviewBody(t testing.TB, pod *corev1.Pod, mutate func(*admissionv1.AdmissionRequest)) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID("uid-1"),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: pod.Namespace,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
	if mutate != nil {
		mutate(req)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serve(t testing.TB, h http.Handler, body []byte) (*httptest.ResponseRecorder, *admissionv1.AdmissionResponse) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil {
		t.Fatalf("response %d %q: %v", w.Code, w.Body.String(), err)
	}
	if ar.Response == nil {
		t.Fatalf("no response in %s", w.Body.String())
	}
	return w, ar.Response
}

func newHandler(t testing.TB, snap *config.Snapshot) http.Handler {
	t.Helper()
	if snap == nil {
		snap = config.Default()
	}
	return NewInjectHTTPHandler(&InjectHandler{Config: NewConfigStore(snap), Log: logr.Discard()}, 0)
}

func TestInjectHandler(t *testing.T) {
	h := newHandler(t, nil)
	optOut := testPod(0)
	optOut.Annotations = map[string]string{"sidecar.istio.io/inject": "false"}
	hostNet := testPod(0)
	hostNet.Spec.HostNetwork = true
	badAnno := testPod(0)
	badAnno.Annotations = map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "x"}
	warnPod := testPod(0)
	warnPod.Annotations = map[string]string{"sidecar.istio.io/rewriteAppHTTPProbers": "maybe"}
	// An inject value other than true/false is ignored with a warning
	// (Istio's injectRequired falls back to the default policy); the
	// warning is returned whether the pod is then injected or denied.
	maybeInject := testPod(0)
	maybeInject.Labels["sidecar.istio.io/inject"] = "maybe"
	maybeBadAnno := maybeInject.DeepCopy()
	maybeBadAnno.Annotations = badAnno.Annotations
	cases := []struct {
		name    string
		pod     *corev1.Pod
		mutate  func(*admissionv1.AdmissionRequest)
		allowed bool
		patched bool
		msg     string
		warning string
	}{
		{name: "inject", pod: testPod(0), allowed: true, patched: true},
		{name: "dry-run injects the same", pod: testPod(0), mutate: func(r *admissionv1.AdmissionRequest) { r.DryRun = ptrTo(true) }, allowed: true, patched: true},
		{name: "opt-out annotation", pod: optOut, allowed: true},
		{name: "host network", pod: hostNet, allowed: true},
		{name: "kube-system", pod: testPod(0), mutate: func(r *admissionv1.AdmissionRequest) { r.Namespace = "kube-system" }, allowed: true},
		{name: "update ignored", pod: testPod(0), mutate: func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Update }, allowed: true},
		// A Pod kind of another API group (a CRD) is not a core pod: the
		// MutatingWebhookConfiguration matches only core pods, as Istio's.
		{name: "Pod of another group ignored", pod: testPod(0), mutate: func(r *admissionv1.AdmissionRequest) { r.Kind.Group = "example.com" }, allowed: true},
		{name: "invalid inject label warns, injects", pod: maybeInject, allowed: true, patched: true, warning: "sidecar.istio.io/inject"},
		{name: "invalid inject label warns, denied", pod: maybeBadAnno, allowed: false, msg: "traffic.sidecar.istio.io/excludeInboundPorts", warning: "sidecar.istio.io/inject"},
		{name: "invalid annotation denied", pod: badAnno, allowed: false, msg: "traffic.sidecar.istio.io/excludeInboundPorts"},
		{name: "garbage object", pod: testPod(0), mutate: func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(`{"spec":{"containers":"nope"}}`) }, allowed: false, msg: "decoding pod"},
		{name: "warning for ignored annotation", pod: warnPod, allowed: true, patched: true, warning: "rewriteAppHTTPProbers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, resp := serve(t, h, reviewBody(t, tc.pod, tc.mutate))
			if w.Code != http.StatusOK {
				t.Fatalf("HTTP %d", w.Code)
			}
			if resp.UID != "uid-1" || resp.Allowed != tc.allowed || (len(resp.Patch) > 0) != tc.patched {
				t.Fatalf("uid=%s allowed=%v patch=%s result=%+v", resp.UID, resp.Allowed, resp.Patch, resp.Result)
			}
			if tc.msg != "" && (resp.Result == nil || !strings.Contains(resp.Result.Message, tc.msg)) {
				t.Fatalf("message %+v lacks %q", resp.Result, tc.msg)
			}
			if tc.warning != "" && !strings.Contains(strings.Join(resp.Warnings, ";"), tc.warning) {
				t.Fatalf("warnings %q lack %q", resp.Warnings, tc.warning)
			}
			if tc.patched {
				if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
					t.Fatalf("patchType %v", resp.PatchType)
				}
				checkPatchApplies(t, tc.pod, resp.Patch)
			}
		})
	}
}

func checkPatchApplies(t testing.TB, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	got := applyPatch(t, pod, patch)
	names := []string{}
	for _, c := range got.Spec.Containers {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "app,istio-proxy" || len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].Name != "istio-init" {
		t.Fatalf("patched pod containers %v init %d", names, len(got.Spec.InitContainers))
	}
	return got
}

// applyPatch returns pod with a JSON patch applied, as the API server does.
func applyPatch(t testing.TB, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	p, err := jsonpatchv5.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(pod)
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("patch does not apply: %v", err)
	}
	got := &corev1.Pod{}
	if err := json.Unmarshal(out, got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestInjectHandlerBodyLimit(t *testing.T) {
	h := NewInjectHTTPHandler(&InjectHandler{Config: NewConfigStore(config.Default()), Log: logr.Discard()}, 4096)
	body := reviewBody(t, testPod(200), nil)
	r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d, want 413: %s", w.Code, w.Body.String())
	}
	// Without Content-Length (chunked) the same limit gives the same answer.
	r = httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized chunked body: HTTP %d, want 413: %s", w.Code, w.Body.String())
	}
}

func TestInjectMetrics(t *testing.T) {
	registerMetrics()
	before := testutil.ToFloat64(injectRequests.WithLabelValues("injected", "policy_enabled"))
	h := newHandler(t, nil)
	serve(t, h, reviewBody(t, testPod(0), nil))
	if got := testutil.ToFloat64(injectRequests.WithLabelValues("injected", "policy_enabled")); got != before+1 {
		t.Fatalf("injected counter %v, want %v", got, before+1)
	}
	if n := testutil.CollectAndCount(injectDuration); n != 1 {
		t.Fatalf("histogram collected %d metrics", n)
	}
	var m dto.Metric
	if err := injectDuration.Write(&m); err != nil {
		t.Fatal(err)
	}
	b := m.GetHistogram().GetBucket()
	if len(b) == 0 || b[0].GetUpperBound() != 0.0001 || b[len(b)-1].GetUpperBound() != 1 {
		t.Fatalf("buckets %v, want 100µs .. 1s", b)
	}
}

// reloadTimeout bounds the wait for one reload: generous, as a loaded
// machine may be slow, while a lost file event still fails the test.
const reloadTimeout = 30 * time.Second

// nextReload returns the error of the next reload reported on reloads
// (ConfigWatcher.OnReload), failing the test if none comes in time.
func nextReload(t *testing.T, reloads <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-reloads:
		return err
	case <-time.After(reloadTimeout):
		t.Fatalf("%s: no reload within %s", what, reloadTimeout)
		return nil
	}
}

// replaceFile puts content at path with one rename from a directory that is
// not watched, as a ConfigMap update is atomic: one file event in the
// watched directory, so a lost event is a lost reload (no other event of
// the same write would trigger it), and never a half-written file (an empty
// values file is valid).
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestConfigWatcherReload(t *testing.T) {
	registerMetrics()
	dir := t.TempDir()
	values := filepath.Join(dir, "values")
	if err := os.WriteFile(values, []byte(`{"global":{"hub":"first.example"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := config.LoadFiles("", values)
	if err != nil {
		t.Fatal(err)
	}
	store := NewConfigStore(snap)
	// Buffered beyond the reloads the test makes: OnReload never blocks
	// the watcher, even after a failed test stopped reading.
	reloads := make(chan error, 16)
	w := &ConfigWatcher{Store: store, ValuesPath: values, Debounce: 20 * time.Millisecond, Log: logr.Discard(),
		OnReload: func(err error) {
			select {
			case reloads <- err:
			default:
			}
		}}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() { cancel(); <-done }()

	// Once it watches, the watcher reads the files again (a change made
	// between start-up and the watch must not be missed): after this first
	// reload, a write is seen only through its file event.
	if err := nextReload(t, reloads, "initial re-read"); err != nil {
		t.Fatalf("initial re-read: %v", err)
	}
	injectorErrors := reload.ReloadErrorsTotal.WithLabelValues(string(reload.InjectorConfig))
	errsBefore := testutil.ToFloat64(injectorErrors)

	replaceFile(t, values, `{"global":{"hub":"second.example"}}`)
	if err := nextReload(t, reloads, "good config"); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if hub := store.Load().Values.Global.Hub; hub != "second.example" {
		t.Fatalf("good reload: hub %s", hub)
	}

	replaceFile(t, values, `{"global":{"proxy":{"autoInject":"sometimes"}}}`)
	if err := nextReload(t, reloads, "bad config"); err == nil {
		t.Fatal("bad config accepted")
	}
	if hub := store.Load().Values.Global.Hub; hub != "second.example" {
		t.Fatalf("bad config replaced the good one: hub %s", hub)
	}
	if testutil.ToFloat64(injectorErrors) <= errsBefore {
		t.Fatal("reload error metric not incremented")
	}
}

// TestConfigWatcherConfigMapSwap reloads when a mounted ConfigMap is updated
// the way the kubelet does it: a new timestamped directory and an atomic
// rename of the ..data symlink, without writing to the watched path.
func TestConfigWatcherConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mkGen := func(name, hub string) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "values"), []byte(`{"global":{"hub":"`+hub+`"}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mkGen("..gen1", "one.example")
	if err := os.Symlink("..gen1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(dir, "values")
	if err := os.Symlink("..data/values", values); err != nil {
		t.Fatal(err)
	}
	// The next generation and its symlink are made before the watch, so the
	// swap below is a single rename, as the kubelet's last step is.
	mkGen("..gen2", "two.example")
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..gen2", tmp); err != nil {
		t.Fatal(err)
	}
	snap, err := config.LoadFiles("", values)
	if err != nil {
		t.Fatal(err)
	}
	store := NewConfigStore(snap)
	reloads := make(chan error, 16)
	w := &ConfigWatcher{Store: store, ValuesPath: values, Debounce: 20 * time.Millisecond, Log: logr.Discard(),
		OnReload: func(err error) {
			select {
			case reloads <- err:
			default:
			}
		}}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() { cancel(); <-done }()

	if err := nextReload(t, reloads, "initial re-read"); err != nil {
		t.Fatalf("initial re-read: %v", err)
	}
	if hub := store.Load().Values.Global.Hub; hub != "one.example" {
		t.Fatalf("before the swap: hub %s", hub)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := nextReload(t, reloads, "symlink swap"); err != nil {
		t.Fatalf("symlink swap: %v", err)
	}
	if hub := store.Load().Values.Global.Hub; hub != "two.example" {
		t.Fatalf("after the swap: hub %s", hub)
	}
}

// TestProxyEnvFromPath: the path parameters as Istio's parseInjectEnvs reads
// them, the deprecated :ENV: form included; a last key without a value is
// ignored with a warning, not a denial.
func TestProxyEnvFromPath(t *testing.T) {
	cases := []struct {
		path     string
		want     map[string]string
		wantWarn bool
	}{
		{path: "", want: nil},
		{path: "/inject", want: nil},
		{path: "/inject/", want: map[string]string{}},
		{path: "/inject/cluster/east/net/net1", want: map[string]string{"ISTIO_META_CLUSTER_ID": "east", "ISTIO_META_NETWORK": "net1"}},
		{path: "/inject/my_var/a--slash--b", want: map[string]string{"MY_VAR": "a/b"}},
		{path: "/inject/cluster", want: map[string]string{}, wantWarn: true},
		{path: "/inject/cluster/east/net", want: map[string]string{"ISTIO_META_CLUSTER_ID": "east"}, wantWarn: true},
		{path: "/inject//v/net/n1", want: map[string]string{"ISTIO_META_NETWORK": "n1"}},
		{path: "/inject/:ENV:cluster=east:ENV:net=n1:ENV:root=/a/b:ENV:bad:ENV:=x", want: map[string]string{
			"ISTIO_META_CLUSTER_ID": "east", "ISTIO_META_NETWORK": "n1", "ROOT": "/a/b"}},
	}
	for _, tc := range cases {
		got, warning := proxyEnvFromPath(tc.path)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || (warning != "") != tc.wantWarn {
			t.Errorf("%s: got %v, warning %q; want %v (warning %v)", tc.path, got, warning, tc.want, tc.wantWarn)
		}
	}
}

func TestInjectHandlerURLPath(t *testing.T) {
	h := newHandler(t, nil)
	r := httptest.NewRequest(http.MethodPost, "/inject/cluster/east/net/net1", bytes.NewReader(reviewBody(t, testPod(0), nil)))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("%v %s", err, w.Body.String())
	}
	if !strings.Contains(string(ar.Response.Patch), `{"name":"ISTIO_META_CLUSTER_ID","value":"east"}`) ||
		!strings.Contains(string(ar.Response.Patch), `"path":"/metadata/labels/topology.istio.io~1network","value":"net1"`) {
		t.Fatalf("URL parameters not applied: %s", ar.Response.Patch)
	}
}

// TestInjectHandlerSkipWarnings: the warnings of a pod left alone reach the
// requester too: an invalid inject value under a disabled policy, and a
// webhook path with an odd number of parameters.
func TestInjectHandlerSkipWarnings(t *testing.T) {
	disabled, err := config.Load(nil, []byte(`{"global":{"proxy":{"autoInject":"disabled"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	pod := testPod(0)
	pod.Labels["sidecar.istio.io/inject"] = "maybe"
	_, resp := serve(t, newHandler(t, disabled), reviewBody(t, pod, nil))
	if !resp.Allowed || len(resp.Patch) != 0 || !strings.Contains(strings.Join(resp.Warnings, ";"), "sidecar.istio.io/inject") {
		t.Errorf("disabled policy, inject=maybe: allowed=%v patch=%s warnings=%q; want allowed, unpatched, warned", resp.Allowed, resp.Patch, resp.Warnings)
	}

	r := httptest.NewRequest(http.MethodPost, "/inject/cluster", bytes.NewReader(reviewBody(t, testPod(0), nil)))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	newHandler(t, nil).ServeHTTP(w, r)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("%v %s", err, w.Body.String())
	}
	if !strings.Contains(strings.Join(ar.Response.Warnings, ";"), "odd number of parameters") {
		t.Errorf("path /inject/cluster: warnings %q, want the odd-parameters warning", ar.Response.Warnings)
	}
}

// TestInjectHandlerRefusesMalformedRequests: what the API server never sends
// is refused (allowed false, no patch) instead of being answered as if it
// were a pod CREATE: Istio's serveInject fails on a review without a request
// (webhook.go inject dereferences it) and Kubernetes matches a response to
// its request by UID.
func TestInjectHandlerRefusesMalformedRequests(t *testing.T) {
	h := newHandler(t, nil)
	pod := `{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"i"}]}}`
	review := func(request string) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"` + request + `}`)
	}
	req := func(uid, object string) string {
		return `,"request":{` + uid + `"kind":{"version":"v1","kind":"Pod"},"namespace":"a","operation":"CREATE","object":` + object + `}`
	}
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"no request", "", "no request"},
		{"request without uid", req(``, pod), "request.uid"},
		{"object of another kind", req(`"uid":"u",`, `{"apiVersion":"v1","kind":"Service","spec":{"containers":[{"name":"a","image":"i"}]}}`), `request.object: kind "Service"`},
		{"object of another version", req(`"uid":"u",`, `{"apiVersion":"v2","kind":"Pod","spec":{"containers":[{"name":"a","image":"i"}]}}`), `request.object: apiVersion "v2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := review(tc.body)
			_, resp := serve(t, h, body)
			if resp.Allowed || len(resp.Patch) > 0 || resp.Result == nil || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, tc.msg) {
				t.Fatalf("want a 400 denial naming %q, got allowed=%v patch=%d result=%+v", tc.msg, resp.Allowed, len(resp.Patch), resp.Result)
			}
		})
	}
	// The same pod with matching or absent type fields is injected.
	for _, obj := range []string{pod, `{"spec":{"containers":[{"name":"a","image":"i"}]}}`} {
		if _, resp := serve(t, h, review(req(`"uid":"u",`, obj))); !resp.Allowed || len(resp.Patch) == 0 || resp.UID != "u" {
			t.Fatalf("%s: allowed=%v patch=%d uid=%q", obj, resp.Allowed, len(resp.Patch), resp.UID)
		}
	}
}
