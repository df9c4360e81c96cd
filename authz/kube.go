package authz

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/policy"
)

// kubeSource reads the policy inputs from the API server. AuthorizationPolicies,
// PeerAuthentications and RequestAuthentications come from informers of their own, which receive each
// object's JSON form and keep what policy.DecodeStored makes of it: the typed
// value and `meshguard validate`'s verdict on the JSON, taken once per
// change. A typed informer would hand over objects already stripped of fields
// meshguard's Istio API does not know (a newer CRD's), enforced as if never
// written. Pods come from the manager's cache.
//
// When either kind's CRD changes, the policy informers are replaced by new
// ones (see relistOnCRDChange): the API server serves every object read after
// a CRD change with the new schema, but an object that did not change sends
// no event, and an open watch goes on decoding with the old schema until the
// API server tears its old storage down, so an informer would otherwise keep
// a policy as the old schema pruned it.
type kubeSource struct {
	client  dynamic.Interface
	crds    metadata.Interface
	pods    cache.Cache
	regoDir string
	// revision: the istio.io/rev whose policies Load reads (policy.InRevision).
	revision string
	log      logr.Logger

	mu       sync.Mutex
	policies []policyInformer // the informers Load reads

	// discovery: meshConfig.discoverySelectors (SetDiscoverySelectors);
	// namespaces: the Namespaces' names and labels (watchNamespaces), always
	// watched, so selectors a mesh config reload adds apply at once.
	discovery  atomic.Pointer[meshconfig.DiscoverySelectors]
	namespaces toolscache.SharedIndexInformer
}

type policyInformer struct {
	kind string
	inf  toolscache.SharedIndexInformer
}

// policyResources: the kinds the engine reads, at v1beta1, which every Istio
// release with these kinds serves (all versions share one schema).
var policyResources = []struct{ kind, resource string }{
	{"AuthorizationPolicy", "authorizationpolicies"},
	{"PeerAuthentication", "peerauthentications"},
	// Read for the headers jwt_authn changes before Istio's RBAC filter
	// (policy/jwtheaders.go), with the same revision and discoverySelectors
	// filters.
	{"RequestAuthentication", "requestauthentications"},
}

func newKubeSource(cfg *rest.Config, pods cache.Cache, regoDir, revision string, log logr.Logger) (*kubeSource, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy client: %w", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("CRD client: %w", err)
	}
	return newKubeSourceFor(dc, mc, pods, regoDir, revision, log)
}

// newKubeSourceFor is newKubeSource with its clients given (tests: fakes).
func newKubeSourceFor(dc dynamic.Interface, mc metadata.Interface, pods cache.Cache, regoDir, revision string, log logr.Logger) (*kubeSource, error) {
	k := &kubeSource{client: dc, crds: mc, pods: pods, regoDir: regoDir, revision: revision, log: log}
	k.discovery.Store(&meshconfig.DiscoverySelectors{})
	var err error
	if k.policies, err = k.newPolicyInformers(); err != nil {
		return nil, err
	}
	nsGVR := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	k.namespaces = metadatainformer.NewFilteredMetadataInformer(mc, nsGVR, metav1.NamespaceAll, 0, toolscache.Indexers{}, nil).Informer()
	if err := k.namespaces.SetTransform(namespaceLabels); err != nil {
		return nil, fmt.Errorf("namespace informer: %w", err)
	}
	return k, nil
}

// namespaceLabels keeps what the discovery selectors read of a Namespace.
func namespaceLabels(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: m.Name, Labels: m.Labels,
		ResourceVersion: m.ResourceVersion}}, nil
}

// SetDiscoverySelectors makes Load keep only the policies of the namespaces
// d selects, as istiod reads only those (pkg/kube/namespace/filter.go,
// installed by pilot/pkg/bootstrap/server.go NewServer; crdclient applies it
// to every namespaced kind, the root namespace included). It reports
// whether the selectors changed (the caller then asks for a rebuild).
func (k *kubeSource) SetDiscoverySelectors(d meshconfig.DiscoverySelectors) bool {
	old := k.discovery.Swap(&d)
	return old.String() != d.String()
}

// selectedNamespaces returns the namespaces the discovery selectors select,
// nil when they select every namespace.
func (k *kubeSource) selectedNamespaces() (map[string]bool, error) {
	d := k.discovery.Load()
	if d.All() {
		return nil, nil
	}
	out := map[string]bool{}
	for _, o := range k.namespaces.GetStore().List() {
		ns, ok := o.(*metav1.PartialObjectMetadata)
		if !ok {
			return nil, fmt.Errorf("namespace informer holds a %T", o)
		}
		if d.Selects(ns.Labels) {
			out[ns.Name] = true
		}
	}
	return out, nil
}

func (k *kubeSource) newPolicyInformers() ([]policyInformer, error) {
	var out []policyInformer
	for _, r := range policyResources {
		gvr := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1beta1", Resource: r.resource}
		inf := dynamicinformer.NewFilteredDynamicInformer(k.client, gvr, metav1.NamespaceAll, 0, toolscache.Indexers{}, nil).Informer()
		if err := inf.SetTransform(storedTransform(r.kind)); err != nil {
			return nil, fmt.Errorf("%s informer: %w", r.kind, err)
		}
		out = append(out, policyInformer{kind: r.kind, inf: inf})
	}
	return out, nil
}

// storedTransform makes the informer store a *policy.Stored in place of the
// unstructured object it received.
func storedTransform(kind string) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil // already transformed
		}
		return policy.DecodeStored(kind, u.Object)
	}
}

// Load lists the informers' objects into a Set; every List is in memory.
// The Pods are the cache's own objects, not deep copies: a reload at 10,000
// policies would otherwise copy every object (garbage the GC collects beside
// the requests), and a policy.Set is read-only, which is the condition
// UnsafeDisableDeepCopy sets. An unchanged object also keeps its translation
// (policy.CompileNext reuses it for the same object).
func (k *kubeSource) Load(ctx context.Context) (*policy.Set, error) {
	set := &policy.Set{UserModules: map[string]string{}}
	k.mu.Lock()
	policies := k.policies
	k.mu.Unlock()
	selected, err := k.selectedNamespaces()
	if err != nil {
		return nil, err
	}
	for _, p := range policies {
		for _, o := range p.inf.GetStore().List() {
			st, ok := o.(*policy.Stored)
			if !ok {
				return nil, fmt.Errorf("%s informer holds a %T", p.kind, o)
			}
			if selected != nil && !selected[st.GetNamespace()] {
				continue // discoverySelectors leave its namespace out: istiod never reads it
			}
			for _, o := range set.AddStoredIn(k.revision, st) {
				k.log.V(1).Info("policy skipped: labelled for another revision", "policy", o.String(), "label", o.Label, "revision", o.Revision)
			}
		}
	}
	var pods corev1.PodList
	if err := k.pods.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list Pods: %w", err)
	}
	// Terminating Pods too: they serve until their containers stop (the
	// index prefers a running Pod with the same IP and drops finished ones,
	// policy.podIndex).
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.PodIP != "" {
			set.Pods = append(set.Pods, p)
		}
	}
	if k.regoDir != "" {
		mods, err := loadRego(k.regoDir, k.log)
		if err != nil {
			return nil, err
		}
		set.UserModules = mods
	}
	return set, nil
}

// Watch runs the policy informers and registers event handlers on them and
// on the cache's Pod informer; every add/update/delete sends on trigger. It
// returns once all of them, and the CRD informers behind relistOnCRDChange,
// have synced.
func (k *kubeSource) Watch(ctx context.Context, trigger chan<- struct{}) error {
	pods, err := k.pods.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("informer for Pods: %w", err)
	}
	if _, err := pods.AddEventHandler(pokeOnChange(trigger)); err != nil {
		return fmt.Errorf("event handler for Pods: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	synced, err := runPolicyInformers(runCtx, k.policies, trigger)
	if err != nil {
		stop()
		return err
	}
	changed := make(chan struct{}, 1)
	crdSynced, err := k.watchCRDs(ctx, changed)
	if err != nil {
		stop()
		return err
	}
	nsSynced, err := k.watchNamespaces(ctx, trigger)
	if err != nil {
		stop()
		return err
	}
	// The Namespaces too: a set built before they are listed would drop
	// every policy, or keep those of namespaces the selectors leave out.
	if !toolscache.WaitForCacheSync(ctx.Done(), append(append(synced, crdSynced...), nsSynced)...) || !k.pods.WaitForCacheSync(ctx) {
		stop()
		return fmt.Errorf("wait for policy caches: %w", ctx.Err())
	}
	go k.relistOnCRDChange(ctx, changed, trigger, stop)
	return nil
}

func pokeOnChange(trigger chan<- struct{}) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(trigger) },
		UpdateFunc: func(any, any) { poke(trigger) },
		DeleteFunc: func(any) { poke(trigger) },
	}
}

// runPolicyInformers starts policies until ctx ends.
func runPolicyInformers(ctx context.Context, policies []policyInformer, trigger chan<- struct{}) ([]toolscache.InformerSynced, error) {
	var synced []toolscache.InformerSynced
	for _, p := range policies {
		if _, err := p.inf.AddEventHandler(pokeOnChange(trigger)); err != nil {
			return nil, fmt.Errorf("event handler for %s: %w", p.kind, err)
		}
		go p.inf.Run(ctx.Done())
		synced = append(synced, p.inf.HasSynced)
	}
	return synced, nil
}

// crdSettle is how long relistOnCRDChange waits after a CRD change before
// listing again: the API server swaps the kind's storage when its own CRD
// informer sees the change, which can come a moment after meshguard's.
const crdSettle = 2 * time.Second

// watchCRDs sends on changed when the spec of a policy kind's CRD
// (policyResources) changes (its generation moves) or the CRD is
// created. Only those CRDs are watched, by name, and only their metadata
// is kept.
func (k *kubeSource) watchCRDs(ctx context.Context, changed chan<- struct{}) ([]toolscache.InformerSynced, error) {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	h := toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(_ any, initial bool) {
			if !initial {
				poke(changed)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, okOld := oldObj.(metav1.Object)
			n, okNew := newObj.(metav1.Object)
			// A CRD being deleted moves its generation too; its objects
			// are then deleted, which the running informers must see.
			if okOld && okNew && n.GetDeletionTimestamp() == nil &&
				(o.GetGeneration() != n.GetGeneration() || o.GetUID() != n.GetUID()) {
				poke(changed)
			}
		},
	}
	var synced []toolscache.InformerSynced
	for _, r := range policyResources {
		name := r.resource + ".security.istio.io"
		inf := metadatainformer.NewFilteredMetadataInformer(k.crds, gvr, metav1.NamespaceAll, 0, toolscache.Indexers{},
			func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			}).Informer()
		if err := inf.SetTransform(crdIdentity); err != nil {
			return nil, fmt.Errorf("CRD %s informer: %w", name, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("event handler for CRD %s: %w", name, err)
		}
		go inf.Run(ctx.Done())
		synced = append(synced, inf.HasSynced)
	}
	return synced, nil
}

// watchNamespaces runs the Namespace informer: a Namespace created, deleted
// or relabelled may change what the discovery selectors select (Istio's
// filter.go notifies its handlers on the same events), so each sends on
// trigger when selectors are set; without them nothing a Namespace says
// changes the set.
func (k *kubeSource) watchNamespaces(ctx context.Context, trigger chan<- struct{}) (toolscache.InformerSynced, error) {
	pokeIfSelecting := func() {
		if !k.discovery.Load().All() {
			poke(trigger)
		}
	}
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { pokeIfSelecting() },
		UpdateFunc: func(oldObj, newObj any) {
			o, okOld := oldObj.(*metav1.PartialObjectMetadata)
			n, okNew := newObj.(*metav1.PartialObjectMetadata)
			if !okOld || !okNew || !maps.Equal(o.Labels, n.Labels) {
				pokeIfSelecting()
			}
		},
		DeleteFunc: func(any) { pokeIfSelecting() },
	}
	if _, err := k.namespaces.AddEventHandler(h); err != nil {
		return nil, fmt.Errorf("event handler for Namespaces: %w", err)
	}
	go k.namespaces.Run(ctx.Done())
	return k.namespaces.HasSynced, nil
}

// crdIdentity keeps what watchCRDs compares: a CRD's annotations alone (the
// last-applied configuration) can be as large as its schema.
func crdIdentity(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: m.Name, UID: m.UID,
		ResourceVersion: m.ResourceVersion, Generation: m.Generation, DeletionTimestamp: m.DeletionTimestamp}}, nil
}

// relistOnCRDChange replaces the policy informers after each CRD change.
// The current ones stop at once, so no event decoded with the old schema
// reaches their stores, and Load keeps reading those stores (the policies
// as they were before the change) until the new informers, started
// crdSettle later, have listed every object with the new schema.
func (k *kubeSource) relistOnCRDChange(ctx context.Context, changed <-chan struct{}, trigger chan<- struct{}, stopCurrent context.CancelFunc) {
	defer func() { stopCurrent() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		stopCurrent()
		k.log.Info("AuthorizationPolicy or PeerAuthentication CRD changed: listing the policies again", "after", crdSettle)
		if !settle(ctx, changed, crdSettle) {
			return
		}
		next, err := k.newPolicyInformers()
		if err != nil {
			k.log.Error(err, "policy informers not replaced after a CRD change; serving the policies as listed before it", "step", "create")
			continue
		}
		runCtx, stop := context.WithCancel(ctx)
		stopCurrent = stop
		synced, err := runPolicyInformers(runCtx, next, trigger)
		if err != nil {
			k.log.Error(err, "policy informers not replaced after a CRD change; serving the policies as listed before it", "step", "start")
			continue
		}
		if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
			return
		}
		k.mu.Lock()
		k.policies = next
		k.mu.Unlock()
		k.log.Info("policies listed again after a CRD change")
		poke(trigger)
	}
}

// settle waits d, starting again at each further change; false if ctx ended.
func settle(ctx context.Context, changed <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-changed:
			t.Reset(d)
		case <-t.C:
			return true
		}
	}
}

func poke(trigger chan<- struct{}) {
	select {
	case trigger <- struct{}{}:
	default:
	}
}
