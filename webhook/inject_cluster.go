package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	clientnetworkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The cluster state /inject reads besides the pod: ProxyConfig resources, the
// pod's namespace and the nodes' kubelet versions, each from an informer of the manager's cache
// that every replica starts (leader or not) and that holds the replica out
// of the Service (a readiness check) until its initial list is done, so no
// admission request waits for a list.

// informerGate starts an informer for obj with the manager and records
// whether its initial list is done or its kind is not served.
type informerGate struct {
	cache   cache.Cache
	obj     client.Object
	what    string // for logs and readiness: "ProxyConfig resources", "namespaces", "nodes"
	log     logr.Logger
	onReady func(context.Context, cache.Informer) error // optional, before the gate opens
	state   atomic.Int32
	// retry and absentRetry pace the attempts after a failure and while the
	// kind is not served (defaults 5 s and 1 min).
	retry, absentRetry time.Duration
}

const (
	gatePending int32 = iota
	gateSynced
	gateAbsent // the API server does not serve the kind (CRD not installed)
)

func addInformerGate(mgr manager.Manager, name string, g *informerGate) error {
	if err := mgr.Add(g); err != nil {
		return err
	}
	return mgr.AddReadyzCheck(name, g.ready)
}

// Start waits for the informer's initial list, retrying transient failures.
// While the kind is not served (Istio's CRDs are often installed after
// meshguard) it keeps checking, every absentRetry, so resources created
// later are picked up without a restart.
func (g *informerGate) Start(ctx context.Context) error {
	retry, absentRetry := g.retry, g.absentRetry
	if retry <= 0 {
		retry = 5 * time.Second
	}
	if absentRetry <= 0 {
		absentRetry = time.Minute
	}
	for {
		inf, err := g.cache.GetInformer(ctx, g.obj)
		if err == nil && g.onReady != nil {
			err = g.onReady(ctx, inf)
		}
		wait := retry
		switch {
		case err == nil:
			if g.state.Swap(gateSynced) == gateAbsent {
				g.log.Info("now served by the API server; injection uses them", "what", g.what)
			}
			return nil
		case ctx.Err() != nil:
			return nil
		case meta.IsNoMatchError(err):
			if g.state.Swap(gateAbsent) != gateAbsent {
				g.log.Info("not served by the API server (CRD not installed?); injecting without them until they are", "what", g.what)
			}
			wait = absentRetry
		default:
			g.log.Error(err, "starting the informer; retrying", "what", g.what)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// NeedLeaderElection: every replica serves /inject.
func (g *informerGate) NeedLeaderElection() bool { return false }

func (g *informerGate) ready(*http.Request) error {
	if g.state.Load() == gatePending {
		return fmt.Errorf("%s not listed yet", g.what)
	}
	return nil
}

// proxyConfigReader returns the reader /inject lists ProxyConfig resources
// with: the manager's cache behind an informer gate. Without the ProxyConfig
// CRD there are no resources.
func proxyConfigReader(mgr manager.Manager, log logr.Logger) (client.Reader, error) {
	if err := clientnetworkingv1beta1.AddToScheme(mgr.GetScheme()); err != nil {
		return nil, fmt.Errorf("adding Istio networking v1beta1 types to the scheme: %w", err)
	}
	src := &proxyConfigSource{Reader: mgr.GetCache(), gate: &informerGate{
		cache: mgr.GetCache(), obj: &clientnetworkingv1beta1.ProxyConfig{}, what: "ProxyConfig resources", log: log}}
	return src, addInformerGate(mgr, "proxyconfigs", src.gate)
}

// listProxyConfigs reads the ProxyConfig resources of the root namespace and
// of ns. A cluster without the ProxyConfig CRD has none.
func listProxyConfigs(ctx context.Context, r client.Reader, rootNamespace, ns string) ([]*clientnetworkingv1beta1.ProxyConfig, error) {
	if r == nil {
		return nil, nil
	}
	var out []*clientnetworkingv1beta1.ProxyConfig
	for _, n := range slices.Compact([]string{rootNamespace, ns}) {
		var l clientnetworkingv1beta1.ProxyConfigList
		// Read-only use (the injector clones what it merges): skip the cache's deep copy.
		if err := r.List(ctx, &l, client.InNamespace(n), client.UnsafeDisableDeepCopy); err != nil {
			if meta.IsNoMatchError(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("listing ProxyConfig resources in namespace %s: %w", n, err)
		}
		out = append(out, l.Items...)
	}
	return out, nil
}

// proxyConfigSource is a client.Reader over the cache that reports no match
// when the ProxyConfig CRD is absent.
type proxyConfigSource struct {
	client.Reader
	gate *informerGate
}

func (s *proxyConfigSource) List(ctx context.Context, l client.ObjectList, opts ...client.ListOption) error {
	if s.gate.state.Load() == gateAbsent {
		return &meta.NoKindMatchError{GroupKind: clientnetworkingv1beta1.SchemeGroupVersion.WithKind("ProxyConfig").GroupKind()}
	}
	return s.Reader.List(ctx, l, opts...)
}

// namespaceReader returns the manager's cache, reading namespaces behind an
// informer gate (the validation webhook's cross-references share the
// informer).
func namespaceReader(mgr manager.Manager, log logr.Logger) (client.Reader, error) {
	gate := &informerGate{cache: mgr.GetCache(), obj: &corev1.Namespace{}, what: "namespaces", log: log}
	return mgr.GetCache(), addInformerGate(mgr, "namespaces", gate)
}

// namespaceAnnotations reads namespace ns's annotations; a namespace that
// does not exist (yet, in the cache) has none.
func namespaceAnnotations(ctx context.Context, r client.Reader, ns string) (map[string]string, error) {
	if r == nil || ns == "" {
		return nil, nil
	}
	var n corev1.Namespace
	switch err := r.Get(ctx, client.ObjectKey{Name: ns}, &n); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	return n.Annotations, nil
}

// nativeSidecarMinKubelet is the kubelet version from which Kubernetes
// sidecar containers are GA (Istio's ENABLE_NATIVE_SIDECARS=auto).
var nativeSidecarMinKubelet = version.MajorMinor(1, 33)

// NodeTracker keeps, from the node informer, which nodes run a kubelet that
// supports native sidecars: Istio's ENABLE_NATIVE_SIDECARS=auto, without
// walking the nodes on any request (docs/compatibility.md "Safer / faster by design"):
// node events update
// the counts and the explanation, requests only read them.
type NodeTracker struct {
	mu   sync.RWMutex
	all  map[string]string // node name → kubelet version
	old  map[string]string // the nodes among them below 1.33 (or unparsable)
	note string            // why the cluster-wide answer is no; rebuilt when old changes
}

// NewNodeTracker returns an empty tracker; Set and Delete feed it.
func NewNodeTracker() *NodeTracker {
	return &NodeTracker{all: map[string]string{}, old: map[string]string{}}
}

// Set records a node's kubelet version.
func (t *NodeTracker) Set(name, kubelet string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.all[name]
	t.all[name] = kubelet
	prev, wasOld := t.old[name]
	isOld := !supportsNativeSidecars(kubelet)
	if isOld {
		t.old[name] = kubelet
	} else {
		delete(t.old, name)
	}
	// Most node events are status updates that change nothing here.
	if !known || wasOld != isOld || (isOld && prev != kubelet) {
		t.rebuildNote()
	}
}

// Delete forgets a node.
func (t *NodeTracker) Delete(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, known := t.all[name]; !known {
		return
	}
	delete(t.all, name)
	delete(t.old, name)
	t.rebuildNote()
}

// rebuildNote names the first old node by name; called with mu held, only
// when the set of old nodes or the node count changed.
func (t *NodeTracker) rebuildNote() {
	if len(t.old) == 0 {
		t.note = ""
		return
	}
	first := ""
	for n := range t.old {
		if first == "" || n < first {
			first = n
		}
	}
	t.note = fmt.Sprintf("%d of %d nodes run a kubelet older than v1.33 (%s: %q)", len(t.old), len(t.all), first, t.old[first])
}

func supportsNativeSidecars(kubelet string) bool {
	v, err := version.ParseGeneric(kubelet)
	return err == nil && v.AtLeast(nativeSidecarMinKubelet)
}

// Decide is the auto decision for a pod scheduled on nodeName (empty when
// not yet scheduled, the usual case at admission): that node's kubelet if it
// is known, else every node's. nil when no node is known (nothing to base a
// decision on: classic sidecars); note says why the answer is no.
func (t *NodeTracker) Decide(nodeName string) (native *bool, note string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	yes, no := true, false
	if v, ok := t.all[nodeName]; ok && nodeName != "" {
		if _, isOld := t.old[nodeName]; !isOld {
			return &yes, ""
		}
		return &no, fmt.Sprintf("node %s runs kubelet %q, older than v1.33", nodeName, v)
	}
	switch {
	case len(t.all) == 0:
		return nil, ""
	case len(t.old) == 0:
		return &yes, ""
	}
	return &no, t.note
}

// nodeTrackerFor feeds a NodeTracker from the manager's node informer,
// behind an informer gate.
func nodeTrackerFor(mgr manager.Manager, log logr.Logger) (*NodeTracker, error) {
	t := NewNodeTracker()
	gate := &informerGate{cache: mgr.GetCache(), obj: &corev1.Node{}, what: "nodes", log: log,
		onReady: func(ctx context.Context, inf cache.Informer) error {
			reg, err := inf.AddEventHandler(nodeHandler(t))
			if err != nil {
				return err
			}
			// The existing nodes reach the handler asynchronously: open the
			// gate only once the tracker has seen them all.
			if !toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
				return ctx.Err()
			}
			return nil
		}}
	return t, addInformerGate(mgr, "nodes", gate)
}

func nodeHandler(t *NodeTracker) toolscache.ResourceEventHandlerFuncs {
	set := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			t.Set(n.Name, n.Status.NodeInfo.KubeletVersion)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				t.Delete(n.Name)
			}
		},
	}
}

// StripNode is a cache transform for Node objects that keeps only what
// /inject reads (name and kubelet version), so a large cluster's nodes cost
// little memory in every replica.
func StripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		TypeMeta:   n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion},
		Status:     corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: n.Status.NodeInfo.KubeletVersion}},
	}, nil
}
