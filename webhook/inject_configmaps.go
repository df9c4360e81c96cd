package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/reload"
)

// IstioConfigMaps locates Istio's injector inputs in the cluster: ConfigMap
// istio-sidecar-injector (keys config, values) and ConfigMap istio (key
// mesh), as Istio's injector reads them. Namespace empty: the webhook reads
// files instead (InjectionOptions.MeshConfigPath, ValuesPath).
type IstioConfigMaps struct {
	Namespace    string
	InjectorName string
	MeshName     string
	// Reader reads the ConfigMaps; SetupInjection sets the manager's API
	// reader (a reload reads the current objects, not a cache).
	Reader client.Reader
	// read, if set, is what a reload already read (readForReload): Load
	// validates it instead of reading again.
	read *readResult
}

// AddFlags registers the ConfigMap flags.
func (c *IstioConfigMaps) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Namespace, "istio-config-namespace", c.Namespace,
		"read the injector config from Istio's ConfigMaps in this namespace (e.g. istio-system) instead of files; hot-reloaded")
	fs.StringVar(&c.InjectorName, "injector-configmap", config.InjectorConfigMapName,
		`ConfigMap with Istio's injector "config" and "values" keys (istio-sidecar-injector-<revision> for a revision)`)
	fs.StringVar(&c.MeshName, "mesh-configmap", config.MeshConfigMapName,
		`ConfigMap with Istio's "mesh" key`)
}

// Enabled says whether the config comes from the cluster.
func (c IstioConfigMaps) Enabled() bool { return c.Namespace != "" }

func (c IstioConfigMaps) names() (injectorName, meshName string) {
	injectorName, meshName = c.InjectorName, c.MeshName
	if injectorName == "" {
		injectorName = config.InjectorConfigMapName
	}
	if meshName == "" {
		meshName = config.MeshConfigMapName
	}
	return injectorName, meshName
}

// Load reads both ConfigMaps and validates them into one snapshot. The
// injector ConfigMap must exist with keys config and values, and the istio
// ConfigMap, when it exists, with key mesh; a missing istio ConfigMap means
// Istio's default mesh config, as for istiod.
func (c IstioConfigMaps) Load(ctx context.Context) (*config.Snapshot, error) {
	r := c.read
	if r == nil {
		r = &readResult{}
		r.in, r.err = c.inputs(ctx)
	}
	if r.err != nil {
		return nil, r.err
	}
	snap, err := r.in.Load()
	if err != nil {
		return nil, fmt.Errorf("the Istio ConfigMaps in namespace %s: %w", c.Namespace, err)
	}
	return snap, nil
}

// readResult is one read of the ConfigMaps: the inputs, or what is wrong
// with the ConfigMaps read (a missing key), to be rejected as a bad config.
type readResult struct {
	in  config.Inputs
	err error
}

// readForReload reads the ConfigMaps for a reload: a failure to read them
// (readError) is returned, anything else is in the result for Load.
func (c IstioConfigMaps) readForReload(ctx context.Context) (IstioConfigMaps, error) {
	in, err := c.inputs(ctx)
	var re readError
	if errors.As(err, &re) {
		return c, err
	}
	c.read = &readResult{in: in, err: err}
	return c, nil
}

// inputs reads the ConfigMaps' keys.
func (c IstioConfigMaps) inputs(ctx context.Context) (config.Inputs, error) {
	if c.Reader == nil {
		return config.Inputs{}, errors.New("no API reader for Istio's ConfigMaps")
	}
	injectorName, meshName := c.names()
	var inj, mesh corev1.ConfigMap
	if err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: injectorName}, &inj); err != nil {
		return config.Inputs{}, readError{fmt.Errorf("reading ConfigMap %s/%s: %w", c.Namespace, injectorName, err)}
	}
	in := config.Inputs{
		Config: []byte(inj.Data[config.KeyConfig]), Values: []byte(inj.Data[config.KeyValues]),
		ConfigSource: fmt.Sprintf("ConfigMap %s/%s key %s", c.Namespace, injectorName, config.KeyConfig),
		ValuesSource: fmt.Sprintf("ConfigMap %s/%s key %s", c.Namespace, injectorName, config.KeyValues),
		MeshSource:   fmt.Sprintf("ConfigMap %s/%s key %s", c.Namespace, meshName, config.KeyMesh),
	}
	// A missing key is an error, as in Istio's readConfigMap: its settings
	// must not silently become the defaults.
	for _, k := range []string{config.KeyConfig, config.KeyValues} {
		if _, ok := inj.Data[k]; !ok {
			return config.Inputs{}, fmt.Errorf("ConfigMap %s/%s has no data key %q", c.Namespace, injectorName, k)
		}
	}
	switch err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: meshName}, &mesh); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return config.Inputs{}, readError{fmt.Errorf("reading ConfigMap %s/%s: %w", c.Namespace, meshName, err)}
	default:
		m, ok := mesh.Data[config.KeyMesh]
		if !ok {
			return config.Inputs{}, fmt.Errorf("ConfigMap %s/%s has no data key %q", c.Namespace, meshName, config.KeyMesh)
		}
		in.Mesh = []byte(m)
	}
	return in, nil
}

// readError marks a failure to read the ConfigMaps from the API server,
// which a retry may cure; a config that fails validation is not retried (it
// is reported, and the last good config keeps serving until the next change).
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

// configMapTrigger reloads the injector config (ConfigWatcher.Reload: the
// last good config keeps serving when the new one is rejected) whenever one
// of Istio's two ConfigMaps changes, from an informer on their namespace
// only.
type configMapTrigger struct {
	maps     IstioConfigMaps
	client   kubernetes.Interface
	reload   func() error
	debounce time.Duration
	retryMin time.Duration // first wait after a failed read; 0: a second
	// syncTimeout bounds the wait for the watches; 0: configMapSyncTimeout.
	syncTimeout time.Duration
	log         logr.Logger
}

// configMapSyncTimeout is how long the ConfigMap watches may take to sync,
// as controller-runtime's CacheSyncTimeout bounds a controller's (2 min):
// a watch that never syncs (RBAC granting get but not list and watch)
// would leave the start-up config serving with no change ever reloaded,
// and only client-go's own log lines to show it.
const configMapSyncTimeout = 2 * time.Minute

// NeedLeaderElection is false: every replica serves /inject.
func (t *configMapTrigger) NeedLeaderElection() bool { return false }

// Start watches until ctx ends.
func (t *configMapTrigger) Start(ctx context.Context) error {
	injectorName, meshName := t.maps.names()
	changed := make(chan struct{}, 1)
	notify := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok || (cm.Name != injectorName && cm.Name != meshName) {
			return
		}
		signal(changed)
	}
	// One informer per ConfigMap, narrowed by a field selector on its name:
	// nothing else in Istio's namespace is cached, and RBAC can grant
	// get/list/watch by resourceNames (deploy/helm Role "-istio-config").
	var synced []toolscache.InformerSynced
	for _, name := range []string{injectorName, meshName} {
		lw := toolscache.NewFilteredListWatchFromClient(t.client.CoreV1().RESTClient(), "configmaps", t.maps.Namespace,
			func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			})
		inf := toolscache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, toolscache.Indexers{})
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, obj any) { notify(obj) },
			DeleteFunc: notify,
		}); err != nil {
			return fmt.Errorf("watching Istio's ConfigMap %s/%s: %w", t.maps.Namespace, name, err)
		}
		go inf.Run(ctx.Done())
		synced = append(synced, inf.HasSynced)
	}
	timeout := t.syncTimeout
	if timeout <= 0 {
		timeout = configMapSyncTimeout
	}
	syncCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !toolscache.WaitForCacheSync(syncCtx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil // ctx ended
		}
		return fmt.Errorf("watching Istio's ConfigMaps %s and %s in namespace %s: not synced within %s (may the ServiceAccount list and watch them?)",
			injectorName, meshName, t.maps.Namespace, timeout)
	}
	t.run(ctx, changed)
	return nil
}

// run reloads once now (a change since SetupInjection is not missed), then
// after every burst of changes, debounced with reload.Debounce's bound. A
// reload that could not read the ConfigMaps is tried again, after a second
// doubling up to a minute, so one failed read (an API server timeout) does
// not leave the old config serving until the next change.
func (t *configMapTrigger) run(ctx context.Context, changed chan struct{}) {
	base := t.retryMin
	if base <= 0 {
		base = time.Second
	}
	var wait time.Duration
	var retry *time.Timer // one pending retry at most; a reload supersedes it
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	reloadOnce := func() {
		if retry != nil {
			retry.Stop()
		}
		err := t.reload()
		if wait = retryAfter(err, wait, base); wait > 0 {
			injectorName, meshName := t.maps.names()
			t.log.Error(err, "reading Istio's ConfigMaps failed; the last good injector config keeps serving, trying again",
				"namespace", t.maps.Namespace, "injectorConfigMap", injectorName, "meshConfigMap", meshName, "in", wait.String())
			retry = time.AfterFunc(wait, func() { signal(changed) })
		}
	}
	reloadOnce()
	reload.Debounce(ctx, changed, t.debounce, reloadOnce)
}

// retryAfter is the wait before the next try after a reload that returned
// err, the previous wait being prev: 0 (no retry) unless the ConfigMaps
// could not be read, then base doubling up to a minute.
func retryAfter(err error, prev, base time.Duration) time.Duration {
	var re readError
	if !errors.As(err, &re) {
		return 0
	}
	return min(max(2*prev, base), time.Minute)
}

// signal sends on a one-slot channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// loadSource reads the injector config from Istio's ConfigMaps when they are
// configured, else from the files; both at once is a configuration error.
func (o InjectionOptions) loadSource() (*config.Snapshot, error) {
	if !o.ConfigMaps.Enabled() {
		return config.LoadFiles(o.MeshConfigPath, o.ValuesPath)
	}
	if o.MeshConfigPath != "" || o.ValuesPath != "" {
		return nil, errors.New("--istio-config-namespace and the --mesh-config/--injector-values files are exclusive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return o.ConfigMaps.Load(ctx)
}

// watchConfigMaps adds the ConfigMap trigger for w when the config comes
// from the cluster.
func (o InjectionOptions) watchConfigMaps(mgr manager.Manager, w *ConfigWatcher, log logr.Logger) error {
	if !o.ConfigMaps.Enabled() {
		return nil
	}
	reload := readThenReload(o.ConfigMaps, w, func(read IstioConfigMaps) func() (*config.Snapshot, error) {
		o := o
		o.ConfigMaps = read
		return o.loadAndReport // InjectionOptions.watcher's Load, over what was read
	})
	t, err := newConfigMapTrigger(o.ConfigMaps, mgr.GetConfig(), reload, o.ReloadDebounce, log)
	if err != nil {
		return err
	}
	if err := mgr.Add(t); err != nil {
		return fmt.Errorf("adding the Istio ConfigMap watcher: %w", err)
	}
	return nil
}

// readThenReload is the trigger's reload for watcher w: it reads the
// ConfigMaps first, outside w's Store, so a failure to read them (an API
// server timeout, retried by the trigger) is logged by the trigger as such
// and reported to w.OnReload, but neither counted in
// meshguard_config_reload_errors_total nor reported as a rejected config
// (the Store's OnReject: serve's InjectorConfigRejected Event) on every
// retry. What was read then goes through w (Store.Update) with load(read)
// as its Load: a config that fails validation is rejected as before.
func readThenReload(maps IstioConfigMaps, w *ConfigWatcher, load func(read IstioConfigMaps) func() (*config.Snapshot, error)) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		read, err := maps.readForReload(ctx)
		cancel()
		if err != nil {
			if w.OnReload != nil {
				w.OnReload(err)
			}
			return err
		}
		once := *w
		once.Load = load(read)
		return once.reload()
	}
}

func newConfigMapTrigger(maps IstioConfigMaps, cfg *rest.Config, reload func() error, debounce time.Duration, log logr.Logger) (*configMapTrigger, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for Istio's ConfigMaps: %w", err)
	}
	if debounce <= 0 {
		debounce = DefaultReloadDebounce
	}
	return &configMapTrigger{maps: maps, client: cs, reload: reload, debounce: debounce, log: log}, nil
}

// NewIstioConfigMapWatcher returns a runnable that keeps store loaded from
// Istio's ConfigMaps (maps, read with maps.Reader): it reloads when either
// changes; a rejected config is logged, counted and reported to onReload
// (may be nil) while the last good one keeps serving (ConfigWatcher.Reload).
// SetupInjection wires the same for --istio-config-namespace.
func NewIstioConfigMapWatcher(maps IstioConfigMaps, cfg *rest.Config, store *ConfigStore, debounce time.Duration, log logr.Logger, onReload func(error)) (manager.Runnable, error) {
	w := &ConfigWatcher{Store: store, Log: log, OnReload: onReload}
	reload := readThenReload(maps, w, func(read IstioConfigMaps) func() (*config.Snapshot, error) {
		return func() (*config.Snapshot, error) { return read.Load(context.Background()) } // read: no API call
	})
	return newConfigMapTrigger(maps, cfg, reload, debounce, log)
}
