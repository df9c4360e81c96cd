package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	jsoniter "github.com/json-iterator/go"
	"github.com/spf13/pflag"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/internal/textcut"
	"github.com/meshguard/meshguard/reload"
)

// InjectionOptions configure the /inject webhook.
type InjectionOptions struct {
	// MeshConfigPath is a MeshConfig YAML file (Istio ConfigMap "istio", key
	// "mesh"); empty means Istio's defaults.
	MeshConfigPath string
	// ValuesPath is the injector values file (ConfigMap
	// "istio-sidecar-injector", key "values"); empty means Istio's defaults.
	ValuesPath string
	// MaxRequestBytes bounds the AdmissionReview body (Istio: 6 MiB).
	MaxRequestBytes int64
	// ReloadDebounce coalesces bursts of file events (ConfigMap updates swap
	// several symlinks at once).
	ReloadDebounce time.Duration
	// OnConfigRejected, if set, is called with the reason after every
	// rejected reload of the config files (the last good config keeps
	// serving), e.g. to record a Kubernetes Event: the config store's
	// reload.Reporting.OnReject. It runs on the watcher goroutine: it must
	// not block for long.
	OnConfigRejected func(err error)
	// NativeSidecars is the cluster-wide native sidecar switch: "auto"
	// detects support from the nodes' kubelet versions (Istio's default,
	// ENABLE_NATIVE_SIDECARS=auto, from a node informer instead of a list
	// per request); "true"/"false" fix it; "" keeps the values file's
	// global.nativeSidecars and detects when that is unset.
	NativeSidecars string
	// ConfigMaps, when enabled, replace the files: Istio's ConfigMaps in
	// the cluster (inject_configmaps.go).
	ConfigMaps IstioConfigMaps
	// OnConfigLoaded, if set, is called with every config loaded and
	// accepted: at start-up and after each accepted reload (serve passes its
	// mesh config on to ext_authz). It runs on the loading goroutine and
	// must not block.
	OnConfigLoaded func(*config.Snapshot)
}

// Defaults for InjectionOptions. DefaultMaxRequestBytes is the body limit of
// both admission endpoints (/validate's always): Istio's injector and
// validation webhook read at most kube.MaxRequestBodyBytes, 6 MiB
// (pkg/kube/util.go HTTPConfigReader): twice the API server's 3 MiB request
// body limit, for an AdmissionReview carries object and oldObject.
const (
	DefaultMaxRequestBytes = 6 << 20
	DefaultReloadDebounce  = 100 * time.Millisecond
)

// maxAdmissionBytes: controller-runtime's admission webhook refuses bodies of
// this size and more itself (pkg/webhook/admission/http.go maxRequestSize),
// so MaxRequestBytes must stay below it to mean what it says.
const maxAdmissionBytes = 7 << 20

// AddFlags registers the injection flags.
func (o *InjectionOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MeshConfigPath, "mesh-config", o.MeshConfigPath,
		"MeshConfig YAML file (e.g. the mounted 'mesh' key of ConfigMap istio); empty = Istio defaults; hot-reloaded")
	fs.StringVar(&o.ValuesPath, "injector-values", o.ValuesPath,
		"sidecar injector values YAML/JSON (Istio's 'values' subset); empty = Istio defaults; hot-reloaded")
	fs.Int64Var(&o.MaxRequestBytes, "inject-max-request-bytes", DefaultMaxRequestBytes,
		"largest AdmissionReview body /inject accepts (below 7 MiB)")
	fs.DurationVar(&o.ReloadDebounce, "inject-reload-debounce", DefaultReloadDebounce,
		"delay that coalesces config file changes before reloading")
	fs.StringVar(&o.NativeSidecars, "native-sidecars", o.NativeSidecars,
		`inject istio-proxy as a Kubernetes native sidecar: auto (when every node's kubelet is >= 1.33, or the pod's node's), true or false; "" = values global.nativeSidecars, auto when unset; pods can override with sidecar.istio.io/nativeSidecar`)
	o.ConfigMaps.AddFlags(fs)
}

// load reads the config files and applies the flag overrides.
func (o InjectionOptions) load() (*config.Snapshot, error) {
	snap, err := o.loadSource()
	if err != nil {
		return nil, err
	}
	switch o.NativeSidecars {
	case "":
	case "auto":
		snap.Values.Global.NativeSidecars = nil
	case "true", "false":
		b := o.NativeSidecars == "true"
		snap.Values.Global.NativeSidecars = &b
	default:
		return nil, fmt.Errorf("--native-sidecars: %q is not auto, true, false or empty", o.NativeSidecars)
	}
	return snap, nil
}

// loadAndReport is load, passing an accepted config to OnConfigLoaded (a
// loaded snapshot is always accepted by the store: reload.Store.Update).
func (o InjectionOptions) loadAndReport() (*config.Snapshot, error) {
	snap, err := o.load()
	if err == nil && o.OnConfigLoaded != nil {
		o.OnConfigLoaded(snap)
	}
	return snap, err
}

// Validate refuses negative sizes and delays, and a body limit the webhook
// cannot honour, naming the flag (zero takes the default).
func (o InjectionOptions) Validate() error {
	if o.MaxRequestBytes < 0 {
		return fmt.Errorf("--inject-max-request-bytes %d: must not be negative", o.MaxRequestBytes)
	}
	if o.MaxRequestBytes >= maxAdmissionBytes {
		return fmt.Errorf("--inject-max-request-bytes %d: must be below %d, the admission webhook's own body limit", o.MaxRequestBytes, maxAdmissionBytes)
	}
	if o.ReloadDebounce < 0 {
		return fmt.Errorf("--inject-reload-debounce %s: must not be negative", o.ReloadDebounce)
	}
	return nil
}

func (o InjectionOptions) withDefaults() InjectionOptions {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.ReloadDebounce <= 0 {
		o.ReloadDebounce = DefaultReloadDebounce
	}
	return o
}

// ConfigStore holds the current injector config snapshot; readers never
// block, and an update replaces it only once it validated completely.
type ConfigStore = reload.Store[config.Snapshot]

// NewConfigStore returns a store serving s whose updates count as
// reload.InjectorConfig (rejections are not logged: SetupInjection's store is).
func NewConfigStore(s *config.Snapshot) *ConfigStore {
	return reload.NewStore(s, reload.Reporting{Source: reload.InjectorConfig})
}

// newConfigStore is SetupInjection's store: rejected updates are counted,
// logged on log with where the config came from (the files, or Istio's
// ConfigMaps) and passed to o.OnConfigRejected.
func (o InjectionOptions) newConfigStore(s *config.Snapshot, log logr.Logger) *ConfigStore {
	if o.ConfigMaps.Enabled() {
		injectorName, meshName := o.ConfigMaps.names()
		log = log.WithValues("configMaps", o.ConfigMaps.Namespace+"/"+injectorName+","+meshName)
	} else {
		log = log.WithValues("meshConfig", o.MeshConfigPath, "values", o.ValuesPath)
	}
	return reload.NewStore(s, reload.Reporting{Source: reload.InjectorConfig, Log: log, OnReject: o.OnConfigRejected})
}

// InjectHandler is the admission handler for pod CREATE.
type InjectHandler struct {
	Config *ConfigStore
	Log    logr.Logger
	// ProxyConfigs, if set, reads ProxyConfig resources (networking.istio.io
	// v1beta1) for the mesh root namespace and the pod's namespace: the
	// manager's cache in serve, so a request never waits on the API server.
	ProxyConfigs client.Reader
	// Namespaces, if set, reads the pod's namespace (its OpenShift UID range
	// annotations) when the values say OpenShift (injector.IsOpenShift); the
	// manager's cache in serve.
	Namespaces client.Reader
	// Nodes, if set, auto-detects native sidecar support from the nodes'
	// kubelet versions (used when neither the values nor the pod decide).
	Nodes *NodeTracker
}

var _ admission.Handler = (*InjectHandler)(nil)

// Handle decides and injects. It has no side effects, so dry-run requests
// need no special treatment (sideEffects: None).
func (h *InjectHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	result, reason := "error", "decode"
	defer func() { observe(result, reason, start) }()

	// The API server always sends a request with a UID and matches the
	// response to it by that UID: anything else is not an admission request
	// to answer (Istio's inject fails on a review without a request).
	if req.UID == "" {
		h.Log.Error(errNoRequest, "refusing the admission request")
		return admission.Errored(http.StatusBadRequest, errNoRequest)
	}
	if req.Kind.Kind != "Pod" || req.Kind.Group != "" || req.Operation != admissionv1.Create {
		result, reason = "skipped", "not_pod_create"
		return admission.Allowed("meshguard injects only on pod CREATE")
	}
	pod := &corev1.Pod{}
	if err := podJSON.Unmarshal(req.Object.Raw, pod); err != nil {
		err = safeDecodeError(err)
		h.Log.Error(err, "decoding pod", "namespace", textcut.LogField(req.Namespace), "name", textcut.LogField(req.Name))
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding pod %s/%s: %w", req.Namespace, req.Name, err))
	}
	// Decoding ignores the object's type fields; a request.kind Pod whose
	// object says otherwise is not a pod to patch.
	if err := checkPodType(pod); err != nil {
		h.Log.Error(err, "decoding pod", "namespace", textcut.LogField(req.Namespace), "name", textcut.LogField(req.Name))
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding pod %s/%s: %w", req.Namespace, req.Name, err))
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	// The pod's logger is built only for a message that is written: its
	// key/value pairs cost allocations on every request otherwise.
	log := func() logr.Logger {
		// Fields from the review are cut as every request-derived log field is (textcut.LogField).
		return h.Log.WithValues("namespace", textcut.LogField(ns), "pod", textcut.LogField(podRef(pod, req.Name)),
			"uid", textcut.LogField(string(req.UID)), "dryRun", req.DryRun != nil && *req.DryRun)
	}
	// Annotations beyond the API server's total are refused before any of
	// them is parsed (the API server checks them only after the mutating
	// webhooks): denied as an invalid pod, naming metadata.annotations.
	if err := injector.CheckAnnotationsSize(pod); err != nil {
		result, reason = "denied", "invalid"
		log().Info("sidecar injection denied", "fields", injector.Fields(err))
		return deniedAsIstio(fmt.Sprintf("pod %s/%s: %v", ns, podRef(pod, req.Name), err))
	}
	debug := h.Log.V(1).Enabled()
	proxyEnv, pathWarning := proxyEnvFromPath(pathFrom(ctx))
	cfg := h.Config.Load()
	d := injector.Decide(pod, ns, cfg)
	if pathWarning != "" {
		d.Warnings = append(d.Warnings, pathWarning)
	}
	if !d.Inject {
		result, reason = "skipped", d.Reason
		if debug {
			log().V(1).Info("skipping sidecar injection", "reason", d.Reason)
		}
		return admission.Allowed("").WithWarnings(d.Warnings...)
	}
	opts, why, err := h.clusterInputs(ctx, cfg, pod, ns)
	if err != nil {
		// Injecting without them would silently give the pod a different
		// proxy than the cluster asks for.
		result, reason = "error", why
		log().Error(err, "reading cluster state for injection")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("pod %s/%s: %w", ns, podRef(pod, req.Name), err))
	}
	opts.ProxyEnv = proxyEnv
	res, err := injector.Inject(pod, ns, cfg, opts)
	if err != nil {
		result, reason = "denied", "invalid"
		// The message (returned to the requester) may quote annotation
		// values; log only the names of the offending fields.
		log().Info("sidecar injection denied", "fields", injector.Fields(err))
		return deniedAsIstio(err.Error()).WithWarnings(d.Warnings...)
	}
	result, reason = "injected", d.Reason
	if len(res.Patch) == 0 {
		reason = "unchanged"
	}
	buf, _ := ctx.Value(patchBufferKey{}).(*patchBuffer)
	patch, err := encodePatch(res.Patch, buf)
	if err != nil {
		result, reason = "error", "encode"
		log().Error(err, "encoding the injection patch")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("pod %s/%s: encoding the patch: %w", ns, podRef(pod, req.Name), err))
	}
	if debug {
		log().V(1).Info("injected sidecar", "reason", d.Reason, "ops", len(res.Patch))
	}
	resp := admission.Allowed("")
	if len(patch) > 0 {
		// Set as bytes, so admission.Response.Complete does not marshal the
		// ops again with encoding/json.
		resp.Patch, resp.PatchType = patch, &jsonPatchType
	}
	return resp.WithWarnings(append(d.Warnings, res.Warnings...)...)
}

// jsonPatchType is every patched response's patchType (read only).
var jsonPatchType = admissionv1.PatchTypeJSONPatch

// clusterInputs reads what injection needs from the cluster besides the pod:
// ProxyConfig resources, on OpenShift the namespace's annotations, and the
// native sidecar decision. why labels a failure in the metrics.
func (h *InjectHandler) clusterInputs(ctx context.Context, cfg *config.Snapshot, pod *corev1.Pod, ns string) (opts injector.Options, why string, err error) {
	if opts.ProxyConfigs, err = listProxyConfigs(ctx, h.ProxyConfigs, cfg.Mesh.GetRootNamespace(), ns); err != nil {
		return opts, "proxyconfig_read", err
	}
	// Istio reads the namespace only on OpenShift, for its UID range
	// (pkg/kube/inject/webhook.go Webhook.inject); elsewhere it is not read.
	if injector.IsOpenShift(cfg) {
		if opts.NamespaceAnnotations, err = namespaceAnnotations(ctx, h.Namespaces, ns); err != nil {
			return opts, "namespace_read", err
		}
	}
	if h.Nodes != nil {
		opts.NativeSidecars, opts.NativeSidecarsNote = h.Nodes.Decide(pod.Spec.NodeName)
	}
	return opts, "", nil
}

// errNoRequest answers, on both admission endpoints, a review without a
// request or request.uid: the API server always sends one and matches the
// response to it by that UID.
var errNoRequest = errors.New("the AdmissionReview has no request or its request.uid is empty")

// checkPodType refuses an object whose apiVersion or kind, when set, is not
// v1 Pod.
func checkPodType(pod *corev1.Pod) error {
	if pod.Kind != "" && pod.Kind != "Pod" {
		return fmt.Errorf("request.object: kind %q is not Pod", pod.Kind)
	}
	if pod.APIVersion != "" && pod.APIVersion != "v1" {
		return fmt.Errorf("request.object: apiVersion %q is not v1", pod.APIVersion)
	}
	return nil
}

func podRef(pod *corev1.Pod, reqName string) string {
	switch {
	case pod.Name != "":
		return pod.Name
	case reqName != "":
		return reqName
	case pod.GenerateName != "":
		return pod.GenerateName + "*"
	}
	return ""
}

// requestDeadline bounds reading a request and writing its response on every
// server NewHTTPServer builds (ReadTimeout, WriteTimeout): the longest an API
// server waits for a webhook (timeoutSeconds is at most 30). The admission
// handlers set no deadline of their own: every product path serves them
// through NewServer.
var requestDeadline = 30 * time.Second

// limitBody is the HTTP side of /inject and /validate, in front of
// controller-runtime's admission webhook: the one body bound (over max bytes:
// 413), the server-wide budget of body bytes in flight (admissionBudget), and
// the answers Istio gives before decoding (pkg/kube/inject/webhook.go
// serveInject, pkg/webhooks/validation/server/server.go serve), which
// controller-runtime gives as an HTTP 200 AdmissionReview instead: no body is
// 400, then a Content-Type other than application/json is 415. It reads the
// body itself (readBody), so that the budget counts bytes that arrived, never
// a declared length, and hands the webhook a reader over what it read.
func limitBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			http.Error(w, fmt.Sprintf("request body of %d bytes exceeds the %d byte limit", r.ContentLength, max), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body == nil {
			r.Body = http.NoBody
		}
		// An outer limitBody (tests nest them) read the body already.
		if _, nested := r.Body.(*admissionBody); !nested {
			budget := admissionBudget
			body := bodyBuffers.Get().(*admissionBody)
			var held int64
			defer func() {
				budget.release(held)
				body.free()
			}()
			var status int
			var err error
			held, status, err = body.readFrom(w, r, max, budget)
			if err != nil {
				if status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				http.Error(w, err.Error(), status)
				return
			}
			r.Body, r.ContentLength = body, body.len
		}
		if r.ContentLength == 0 {
			http.Error(w, "no body found", http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			http.Error(w, fmt.Sprintf("invalid Content-Type %q, want application/json", ct), http.StatusUnsupportedMediaType)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admissionBudgetBytes bounds the admission body memory /inject and /validate
// hold at once, over all connections and streams: twice each body's bytes
// that arrived (limitBody's buffer and the copy controller-runtime reads from
// it, pkg/webhook/admission/http.go ServeHTTP io.ReadAll), from their arrival
// until the handler returns (docs/reliability.md). 64 MiB is five bodies at
// the 6 MiB limit, or five hundred pods of 64 KiB, more than the API
// server's real traffic. Istio's webhooks have no such bound (each request
// is read whole, pkg/kube/util.go HTTPConfigReader); docs/compatibility.md.
const admissionBudgetBytes = 64 << 20

var (
	admissionBudget = newByteBudget(admissionBudgetBytes)
	// admissionBudgetWait is how long a body waits for budget for the bytes
	// it just read before the request is answered 429 with Retry-After,
	// which the API server retries after that many seconds within its
	// timeoutSeconds (client-go rest/with_retry.go checkWait).
	admissionBudgetWait = time.Second
	// A body must arrive within bodyReadBase plus its length (the limit when
	// chunked) at bodyReadRate bytes per second, else 408: the API server
	// sends it from memory at once, and a client trickling it releases its
	// share of the budget sooner than requestDeadline would (6 MiB: 11 s).
	bodyReadBase       = 5 * time.Second
	bodyReadRate int64 = 1 << 20
)

// A body is read into chunks that grow with what arrived, never ahead of
// it: chunk k holds firstBodyChunk<<k bytes, at most 32 KiB (class
// bodyChunkClasses-1), and is taken only once the ones before it are full.
// A stream's buffers are thus at most firstBodyChunk plus twice the bytes
// that reached it (what the budget holds), and one that sends nothing costs
// only its first chunk.
const (
	firstBodyChunk   = 4 << 10
	bodyChunkClasses = 4 // chunk sizes: 4, 8, 16, 32 KiB
)

// maxPooledBodyChunks bounds the chunks a body gives back to the pools (188
// KiB, as maxPooledPatch bounds the patch buffers): a rare large body's are
// not kept.
const maxPooledBodyChunks = 8

var (
	// bodyBuffers holds admissionBodies without chunks, and
	// bodyChunkPools[c] the spare chunks of class c (firstBodyChunk<<c
	// bytes), so a stream takes a chunk only as it needs one.
	bodyBuffers    = sync.Pool{New: func() any { return new(admissionBody) }}
	bodyChunkPools [bodyChunkClasses]sync.Pool
)

// admissionBody is a request body read whole by limitBody and the reader
// the webhook reads it through.
type admissionBody struct {
	chunks []*[]byte // filled chunks; the last one may have room
	len    int64
	ci     int // read position: chunk, offset
	off    int
}

// readFrom reads r's body (at most max bytes) into b, holding in budget
// twice the bytes of each read once they arrived, never room they might
// fill. It returns the bytes held (to release once the handler returns), or
// the status and error to answer.
func (b *admissionBody) readFrom(w http.ResponseWriter, r *http.Request, max int64, budget *byteBudget) (held int64, status int, err error) {
	declared := r.ContentLength >= 0
	limit := r.ContentLength
	if !declared {
		limit = max + 1 // one byte over the limit tells a chunked body too large
	}
	if limit == 0 {
		return 0, 0, nil
	}
	// Served through NewServer the deadline is supported (not by test
	// recorders, where ReadTimeout does not apply either). It only ever
	// shortens ReadTimeout (requestDeadline, counted from the stream's
	// headers on HTTP/2, from the request line on HTTP/1.1), and goes back
	// to it once the body is read, so that a slow handler is not cut off by a
	// deadline meant for the body.
	if d := bodyReadBase + time.Duration(min(limit, max))*time.Second/time.Duration(bodyReadRate); d < requestDeadline {
		start, rc := time.Now(), http.NewResponseController(w)
		_ = rc.SetReadDeadline(start.Add(d))
		defer func() { _ = rc.SetReadDeadline(start.Add(requestDeadline)) }()
	}
	for b.len < limit {
		chunk := b.nextChunk()
		room := (*chunk)[len(*chunk):cap(*chunk)]
		n, rerr := r.Body.Read(room[:min(int64(len(room)), limit-b.len)])
		if n > 0 {
			// Held after the read: a stream that sends nothing holds no
			// budget, whatever it declared.
			if status, err := budget.acquire(r.Context(), 2*int64(n)); err != nil {
				return held, status, err
			}
			held += 2 * int64(n)
			*chunk = (*chunk)[:len(*chunk)+n]
			b.len += int64(n)
		}
		switch {
		case rerr == nil:
		case !declared && (errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)):
			return held, 0, nil // a chunked body's end
		case errors.Is(rerr, io.EOF) && b.len == limit:
		case errors.Is(rerr, io.EOF):
			return held, http.StatusBadRequest, fmt.Errorf("reading the body: %d of %d bytes: %w", b.len, limit, io.ErrUnexpectedEOF)
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return held, http.StatusRequestTimeout, fmt.Errorf("reading the body: %d of %d bytes arrived in time: %w", b.len, limit, rerr)
		default:
			return held, http.StatusBadRequest, fmt.Errorf("reading the body: %w", rerr)
		}
	}
	if b.len > max {
		return held, http.StatusRequestEntityTooLarge, fmt.Errorf("reading the body: request body exceeds the %d byte limit", max)
	}
	return held, 0, nil
}

// nextChunk returns the last chunk if it has room, else appends the next
// one, from its class's pool when it has one.
func (b *admissionBody) nextChunk() *[]byte {
	k := len(b.chunks)
	if k > 0 && len(*b.chunks[k-1]) < cap(*b.chunks[k-1]) {
		return b.chunks[k-1]
	}
	c := min(k, bodyChunkClasses-1)
	p, _ := bodyChunkPools[c].Get().(*[]byte)
	if p == nil {
		s := make([]byte, 0, firstBodyChunk<<c)
		p = &s
	}
	b.chunks = append(b.chunks, p)
	return p
}

func (b *admissionBody) Read(p []byte) (int, error) {
	for b.ci < len(b.chunks) {
		if c := (*b.chunks[b.ci])[b.off:]; len(c) > 0 {
			n := copy(p, c)
			b.off += n
			return n, nil
		}
		b.ci, b.off = b.ci+1, 0
	}
	return 0, io.EOF
}

func (b *admissionBody) Close() error { return nil }

// free gives b's first maxPooledBodyChunks chunks back to their pools and
// b, without chunks, to bodyBuffers.
func (b *admissionBody) free() {
	for i, p := range b.chunks {
		if i < maxPooledBodyChunks {
			*p = (*p)[:0]
			bodyChunkPools[min(i, bodyChunkClasses-1)].Put(p)
		}
		b.chunks[i] = nil
	}
	if cap(b.chunks) > maxPooledBodyChunks {
		b.chunks = nil
	}
	b.chunks, b.len, b.ci, b.off = b.chunks[:0], 0, 0, 0
	bodyBuffers.Put(b)
}

// byteBudget is a budget of bytes. Unlike a FIFO semaphore, a waiter takes
// room as soon as its own bytes fit, so a small request is never queued
// behind a larger one; a waiter wants at most twice one read (32 KiB)
// and waits at most admissionBudgetWait, so none starves for long.
type byteBudget struct {
	mu    sync.Mutex
	used  int64
	size  int64
	freed chan struct{} // closed by release when someone waits
	// waitHook, when set (tests), is called as a request starts waiting.
	waitHook func()
}

func newByteBudget(size int64) *byteBudget { return &byteBudget{size: size} }

// take holds n bytes if they fit, else returns the channel release closes.
func (b *byteBudget) take(n int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.size {
		b.used += n
		return true, nil
	}
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return false, b.freed
}

// acquire holds n bytes (at most the whole budget), waiting at most
// admissionBudgetWait and no longer than ctx (the client). When it cannot,
// it returns the status to answer: 429 (limitBody adds Retry-After) or 503
// for a client that went.
func (b *byteBudget) acquire(ctx context.Context, n int64) (int, error) {
	n = min(n, b.size)
	ok, freed := b.take(n)
	if ok {
		return 0, nil
	}
	if b.waitHook != nil {
		b.waitHook()
	}
	timer := time.NewTimer(admissionBudgetWait)
	defer timer.Stop()
	for {
		select {
		case <-freed:
		case <-timer.C:
			return http.StatusTooManyRequests, fmt.Errorf("admission body budget exhausted: %d bytes of request bodies in flight; retry", b.size)
		case <-ctx.Done():
			return http.StatusServiceUnavailable, fmt.Errorf("request cancelled while waiting for the admission body budget: %w", ctx.Err())
		}
		if ok, freed = b.take(n); ok {
			return 0, nil
		}
	}
}

// release gives back n of the bytes acquire held.
func (b *byteBudget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// inUse is the bytes held.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// NewInjectHTTPHandler returns h as the /inject http.Handler (AdmissionReview
// v1 and v1beta1) with the body limit applied (controller-runtime refuses 7 MiB
// and more in any case; InjectionOptions.Validate). It sets no time bound:
// serve it through NewServer, which cuts every exchange off at requestDeadline.
func NewInjectHTTPHandler(h *InjectHandler, maxBytes int64) http.Handler {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	crLog := redactLogger(h.Log)
	wh := &admission.Webhook{
		Handler:      h,
		RecoverPanic: ptrTo(true),
		// The default constructor adds per-request WithValues (allocations on
		// every call) for logs it only emits at V(5); our handler logs with
		// the pod's identity itself.
		// controller-runtime logs the response message at V(5): redact it.
		LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return crLog },
		WithContextFunc: func(ctx context.Context, r *http.Request) context.Context {
			if r.URL.Path == InjectPath {
				return ctx // no URL parameters (pathFrom: ""), and no allocation
			}
			return context.WithValue(ctx, pathKey{}, r.URL.Path)
		},
	}
	return limitBody(withPatchBuffer(wh), maxBytes)
}

// withPatchBuffer lends each request a patchBuffer for the time the webhook
// takes to answer it.
func withPatchBuffer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := patchBuffers.Get().(*patchBuffer)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), patchBufferKey{}, buf)))
		if cap(buf.b) <= maxPooledPatch {
			patchBuffers.Put(buf)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

// SetupInjection loads and validates the injector config (failing when it is
// invalid, so a bad deployment is caught at start), registers InjectPath on the
// manager's webhook server and adds the config file watcher as a Runnable.
func SetupInjection(mgr manager.Manager, o InjectionOptions, log logr.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o = o.withDefaults()
	log = log.WithName("injector")
	o.ConfigMaps.Reader = mgr.GetAPIReader()
	snap, err := o.loadAndReport()
	if err != nil {
		return fmt.Errorf("sidecar injection config: %w", err)
	}
	registerMetrics()
	store := o.newConfigStore(snap, log)
	proxyConfigs, err := proxyConfigReader(mgr, log)
	if err != nil {
		return err
	}
	namespaces, err := namespaceReader(mgr, log)
	if err != nil {
		return err
	}
	handler := &InjectHandler{Config: store, Log: log, ProxyConfigs: proxyConfigs, Namespaces: namespaces}
	// Auto-detect native sidecar support unless the flag fixed it.
	if o.NativeSidecars != "true" && o.NativeSidecars != "false" {
		if handler.Nodes, err = nodeTrackerFor(mgr, log); err != nil {
			return err
		}
	}
	h := NewInjectHTTPHandler(handler, o.MaxRequestBytes)
	for _, path := range injectPaths {
		mgr.GetWebhookServer().Register(path, h)
	}
	w := o.watcher(store, log)
	if err := mgr.Add(w); err != nil {
		return fmt.Errorf("adding injector config watcher: %w", err)
	}
	return o.watchConfigMaps(mgr, w, log)
}

// injectPaths are the paths the injection webhook is served on: /inject and,
// for /inject/cluster/<id>/net/<network>/... of remote clusters, every path
// under it (Istio's pkg/kube/inject/webhook.go NewWebhook).
var injectPaths = []string{InjectPath, InjectPath + "/"}

// watcher is the config file watcher SetupInjection runs.
func (o InjectionOptions) watcher(store *ConfigStore, log logr.Logger) *ConfigWatcher {
	return &ConfigWatcher{Store: store, MeshPath: o.MeshConfigPath, ValuesPath: o.ValuesPath, Debounce: o.ReloadDebounce,
		Log: log, Load: o.loadAndReport}
}

// podJSON decodes pods faster than encoding/json (the pod decode dominates
// large-pod latency) and honours the same struct tags and json.Unmarshaler
// implementations (Quantity, IntOrString, Time). Field names are matched
// case-sensitively like the API server's decoder, so every decoded field
// exists under its canonical name and patch paths always resolve (a
// case-insensitive "SPEC" key was found by FuzzInjectAdmissionReview).
var podJSON = jsoniter.Config{EscapeHTML: true, SortMapKeys: true, ValidateJsonRawMessage: true, CaseSensitive: true}.Froze()

type pathKey struct{}

func pathFrom(ctx context.Context) string {
	p, _ := ctx.Value(pathKey{}).(string)
	return p
}

// proxyEnvFromPath turns the webhook path's parameters into proxy env vars
// as Istio's pkg/kube/inject/webhook.go parseInjectEnvs does:
// /inject/<key>/<value>/... ("--slash--" in a value stands for "/") or the
// deprecated /inject/:ENV:<key>=<value>:ENV:... (pairs without "=" or with
// an empty key are skipped); "cluster" is ISTIO_META_CLUSTER_ID, "net"
// ISTIO_META_NETWORK, other keys are upper-cased and an empty one is
// skipped. A last key without a value is ignored with the returned warning
// (Istio logs it): a misconfigured path must not block every pod.
func proxyEnvFromPath(path string) (env map[string]string, warning string) {
	if path == "" || path == InjectPath || path == InjectPath+"/" {
		return nil, "" // the usual path ("": pathFrom's for InjectPath), without splitting it
	}
	parts := strings.SplitN(strings.TrimSuffix(path, "/"), "/", 3) // "", "inject", the rest
	if len(parts) < 3 {
		return nil, ""
	}
	var kv []string
	if pairs, ok := strings.CutPrefix(parts[2], ":ENV:"); ok {
		for _, pair := range strings.Split(pairs, ":ENV:") {
			if k, v, found := strings.Cut(pair, "="); found && k != "" {
				kv = append(kv, k, v)
			}
		}
	} else {
		kv = strings.Split(parts[2], "/")
		for i := 1; i < len(kv); i += 2 {
			kv[i] = strings.ReplaceAll(kv[i], "--slash--", "/")
		}
	}
	env = make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i]
		if i == len(kv)-1 {
			warning = fmt.Sprintf("webhook path %q: odd number of parameters, the last key %q is ignored", path, k)
			break
		}
		switch k {
		case "cluster":
			k = "ISTIO_META_CLUSTER_ID"
		case "net":
			k = "ISTIO_META_NETWORK"
		default:
			k = strings.ToUpper(k)
		}
		if k != "" {
			env[k] = kv[i+1]
		}
	}
	return env, warning
}
