package authz

import (
	"context"
	"fmt"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/policy"
)

// KubeLoader lists AuthorizationPolicies, PeerAuthentications and Pods from
// a controller-runtime cache (informer-backed, so a List is in-memory).
// The cache's own objects, not deep copies: a reload at 10,000 policies
// would otherwise copy every object (garbage the GC collects beside the
// requests), and a policy.Set is read-only, which is the condition
// UnsafeDisableDeepCopy sets. An unchanged object then also keeps its
// translation (policy.CompileNext reuses it for the same object).
func KubeLoader(c client.Reader, regoDir string) Loader {
	noCopy := client.UnsafeDisableDeepCopy
	return func(ctx context.Context) (*policy.Set, error) {
		set := &policy.Set{UserModules: map[string]string{}}
		var aps secv1.AuthorizationPolicyList
		if err := c.List(ctx, &aps, noCopy); err != nil {
			return nil, fmt.Errorf("list AuthorizationPolicies: %w", err)
		}
		set.AuthorizationPolicies = append(set.AuthorizationPolicies, aps.Items...)
		var pas secv1.PeerAuthenticationList
		if err := c.List(ctx, &pas, noCopy); err != nil {
			return nil, fmt.Errorf("list PeerAuthentications: %w", err)
		}
		set.PeerAuthentications = append(set.PeerAuthentications, pas.Items...)
		var pods corev1.PodList
		if err := c.List(ctx, &pods, noCopy); err != nil {
			return nil, fmt.Errorf("list Pods: %w", err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
				continue
			}
			set.Pods = append(set.Pods, p)
		}
		if regoDir != "" {
			mods, err := loadRego(regoDir)
			if err != nil {
				return nil, err
			}
			set.UserModules = mods
		}
		return set, nil
	}
}

// WatchKube registers event handlers on the cache's informers for the three
// kinds; every add/update/delete sends on trigger. It waits for the caches to
// sync before returning.
func WatchKube(ctx context.Context, c cache.Cache, trigger chan<- struct{}) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(trigger) },
		UpdateFunc: func(any, any) { poke(trigger) },
		DeleteFunc: func(any) { poke(trigger) },
	}
	for _, obj := range []client.Object{&secv1.AuthorizationPolicy{}, &secv1.PeerAuthentication{}, &corev1.Pod{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("event handler for %T: %w", obj, err)
		}
	}
	if !c.WaitForCacheSync(ctx) {
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
