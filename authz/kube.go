package authz

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/policy"
)

// kubeSource reads the policy inputs from the API server. AuthorizationPolicies
// and PeerAuthentications come from informers of their own, which receive each
// object's JSON form and keep what policy.DecodeStored makes of it: the typed
// value and `meshguard validate`'s verdict on the JSON, taken once per
// change. A typed informer would hand over objects already stripped of fields
// meshguard's Istio API does not know (a newer CRD's), enforced as if never
// written. Pods come from the manager's cache.
type kubeSource struct {
	pods     cache.Cache
	policies []policyInformer
	regoDir  string
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
}

func newKubeSource(cfg *rest.Config, pods cache.Cache, regoDir string) (*kubeSource, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy client: %w", err)
	}
	k := &kubeSource{pods: pods, regoDir: regoDir}
	for _, r := range policyResources {
		gvr := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1beta1", Resource: r.resource}
		inf := dynamicinformer.NewFilteredDynamicInformer(dc, gvr, metav1.NamespaceAll, 0, toolscache.Indexers{}, nil).Informer()
		if err := inf.SetTransform(storedTransform(r.kind)); err != nil {
			return nil, fmt.Errorf("%s informer: %w", r.kind, err)
		}
		k.policies = append(k.policies, policyInformer{kind: r.kind, inf: inf})
	}
	return k, nil
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
	for _, p := range k.policies {
		for _, o := range p.inf.GetStore().List() {
			st, ok := o.(*policy.Stored)
			if !ok {
				return nil, fmt.Errorf("%s informer holds a %T", p.kind, o)
			}
			set.AddStored(st)
		}
	}
	var pods corev1.PodList
	if err := k.pods.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list Pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
			continue
		}
		set.Pods = append(set.Pods, p)
	}
	if k.regoDir != "" {
		mods, err := loadRego(k.regoDir)
		if err != nil {
			return nil, err
		}
		set.UserModules = mods
	}
	return set, nil
}

// Watch runs the policy informers and registers event handlers on them and
// on the cache's Pod informer; every add/update/delete sends on trigger. It
// returns once all of them have synced.
func (k *kubeSource) Watch(ctx context.Context, trigger chan<- struct{}) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(trigger) },
		UpdateFunc: func(any, any) { poke(trigger) },
		DeleteFunc: func(any) { poke(trigger) },
	}
	var synced []toolscache.InformerSynced
	for _, p := range k.policies {
		if _, err := p.inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("event handler for %s: %w", p.kind, err)
		}
		go p.inf.Run(ctx.Done())
		synced = append(synced, p.inf.HasSynced)
	}
	pods, err := k.pods.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("informer for Pods: %w", err)
	}
	if _, err := pods.AddEventHandler(h); err != nil {
		return fmt.Errorf("event handler for Pods: %w", err)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) || !k.pods.WaitForCacheSync(ctx) {
		return fmt.Errorf("wait for policy caches: %w", ctx.Err())
	}
	return nil
}

func poke(trigger chan<- struct{}) {
	select {
	case trigger <- struct{}{}:
	default:
	}
}
