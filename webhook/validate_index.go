package webhook

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	clientnetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/internal/runnable"
	"github.com/meshguard/meshguard/validation/crossref"
)

// watchIndex fills a cross-reference index from the manager's cache
// (Services, Namespaces, ServiceEntries, Gateways, VirtualServices,
// DestinationRules). The informers start with the manager.
func watchIndex(mgr manager.Manager, domain string, log logr.Logger) (*crossref.Index, error) {
	if err := clientnetworkingv1.AddToScheme(mgr.GetScheme()); err != nil {
		return nil, fmt.Errorf("adding Istio networking types to the scheme: %w", err)
	}
	ix := crossref.NewIndex(domain)
	key := func(o client.Object) crossref.Key {
		return crossref.Key{Namespace: o.GetNamespace(), Name: o.GetName()}
	}
	watches := []indexWatch{
		{&corev1.Service{}, func(o client.Object, present bool) {
			if svc, ok := o.(*corev1.Service); ok {
				ix.SetKubeService(indexedService(svc), present)
			} else {
				ix.SetService(o.GetNamespace(), o.GetName(), present)
			}
		}},
		{&corev1.Namespace{}, func(o client.Object, present bool) { ix.SetNamespace(o.GetName(), o.GetLabels(), present) }},
		{&clientnetworkingv1.ServiceEntry{}, func(o client.Object, present bool) {
			if se, ok := o.(*clientnetworkingv1.ServiceEntry); ok && present {
				ix.SetServiceEntry(key(o), &se.Spec)
			} else {
				ix.SetServiceEntry(key(o), nil)
			}
		}},
		{&clientnetworkingv1.Gateway{}, func(o client.Object, present bool) {
			if gw, ok := o.(*clientnetworkingv1.Gateway); ok && present {
				ix.SetGateway(key(o), &gw.Spec)
			} else {
				ix.SetGateway(key(o), nil)
			}
		}},
		{&clientnetworkingv1.VirtualService{}, func(o client.Object, present bool) {
			if vs, ok := o.(*clientnetworkingv1.VirtualService); ok && present {
				ix.SetVirtualService(key(o), &vs.Spec)
			} else {
				ix.SetVirtualService(key(o), nil)
			}
		}},
		{&clientnetworkingv1.DestinationRule{}, func(o client.Object, present bool) {
			if dr, ok := o.(*clientnetworkingv1.DestinationRule); ok && present {
				ix.SetDestinationRule(key(o), &dr.Spec)
			} else {
				ix.SetDestinationRule(key(o), nil)
			}
		}},
	}
	getInformer := func(ctx context.Context, obj client.Object) (handlerAdder, error) {
		return mgr.GetCache().GetInformer(ctx, obj)
	}
	var missing []indexWatch
	var handlers []toolscache.ResourceEventHandlerRegistration
	for _, w := range watches {
		reg, err := w.attach(context.Background(), getInformer)
		if err != nil {
			return nil, err
		}
		if reg != nil {
			handlers = append(handlers, reg)
		} else {
			// Typically an Istio CRD not installed yet: nothing of the kind is
			// stored, so the index is right without it until it is installed.
			log.Info("kind not served yet; cross-reference checks watch it once it is", "kind", fmt.Sprintf("%T", w.obj))
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		// Istio's CRDs installed after meshguard (a GitOps tool applying
		// both at once) would otherwise stay unwatched until a restart, and
		// every reference to their objects would be reported missing.
		late := watchLate(ix, missing, getInformer, indexWatchRetry, log)
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			late(ctx)
			return nil
		})); err != nil {
			return nil, fmt.Errorf("adding cross-reference watch retry: %w", err)
		}
	}
	if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
		readyWhenSynced(ctx, ix, mgr.GetCache().WaitForCacheSync, handlers, log)
		<-ctx.Done()
		return nil
	})); err != nil {
		return nil, fmt.Errorf("adding cross-reference readiness runnable: %w", err)
	}
	return ix, nil
}

// readyWhenSynced marks ix ready (findings and organisation rules start)
// once the cache has synced and every handler has been given the objects of
// its informer's initial list: before, the index is partial. A synced
// informer has them in its store, but hands them to its handlers
// asynchronously (client-go's SharedInformer.HasSynced: "this doesn't tell
// you if an individual handler is synced"), so the cache alone is not enough.
func readyWhenSynced(ctx context.Context, ix *crossref.Index, cacheSynced func(context.Context) bool, handlers []toolscache.ResourceEventHandlerRegistration, log logr.Logger) {
	if !cacheSynced(ctx) {
		return
	}
	synced := make([]toolscache.InformerSynced, len(handlers))
	for i, h := range handlers {
		synced[i] = h.HasSynced
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	ix.SetReady()
	log.Info("cross-reference index ready")
}

// indexWatch is one kind the index follows: set records or forgets an object.
type indexWatch struct {
	obj client.Object
	set func(o client.Object, present bool)
}

// kind is the name of w's kind as the cross-reference checks name it
// ("Gateway", "ServiceEntry", "Service", ...): its Go type's name.
func (w indexWatch) kind() string { return reflect.TypeOf(w.obj).Elem().Name() }

// handlerAdder is the part of a controller-runtime informer the index uses.
type handlerAdder interface {
	AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}

// attach has the informer of w's kind feed the index and returns the
// handler's registration. It returns nil, and no error, when the API server
// does not serve the kind (yet): nothing of it is stored. Any other failure
// is an error: the index must not be taken as complete without the kind.
func (w indexWatch) attach(ctx context.Context, getInformer func(context.Context, client.Object) (handlerAdder, error)) (toolscache.ResourceEventHandlerRegistration, error) {
	inf, err := getInformer(ctx, w.obj)
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("watching %T: %w", w.obj, err)
	}
	set := w.set
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { applyObj(obj, true, set) },
		UpdateFunc: func(_, obj any) { applyObj(obj, true, set) },
		DeleteFunc: func(obj any) { applyObj(obj, false, set) },
	})
	if err != nil {
		return nil, fmt.Errorf("watching %T: %w", w.obj, err)
	}
	return reg, nil
}

// watchLate returns what attaches the watches of missing as their kinds are
// served (retryWatches). A kind not served holds no object, so the index is
// right without it (its findings are reported); from the moment its watch
// attaches until its handler has synced, objects of it stored with its CRD
// (a GitOps tool applying both at once) may not be in the index yet, so the
// kind is incomplete in ix and crossref's Check drops the findings that
// depend on it. Objects stored between the CRD being served and the next
// retry are not seen until then: a reference to one is reported missing for
// up to that long (a strict namespace denies it; a GitOps tool applies again).
func watchLate(ix *crossref.Index, missing []indexWatch, getInformer func(context.Context, client.Object) (handlerAdder, error), period time.Duration, log logr.Logger) func(context.Context) {
	return func(ctx context.Context) {
		retryWatches(ctx, missing, getInformer, period, func(w indexWatch, synced bool) {
			ix.SetKindComplete(w.kind(), synced)
			if synced {
				log.Info("cross-reference index now holds every object of this kind", "kind", w.kind())
			}
		}, log)
	}
}

// indexWatchRetry is how often a kind not served at start is tried again.
const indexWatchRetry = 10 * time.Second

// retryWatches attaches the missing watches, trying every period until all
// are attached or ctx ends, and calls state(w, false) when a watch attaches
// and state(w, true) once its handler has been given its informer's initial
// list (HasSynced), as readyWhenSynced
// awaits it at start: before, objects of the kind stored while it was not
// served (a GitOps tool applying CRDs and objects at once) are not all in the
// index yet. It returns once every watch is complete or ctx ends; a watch that
// does not sync does not hold back the others.
func retryWatches(ctx context.Context, missing []indexWatch, getInformer func(context.Context, client.Object) (handlerAdder, error), period time.Duration, state func(w indexWatch, synced bool), log logr.Logger) {
	var syncing sync.WaitGroup
	defer syncing.Wait()
	t := time.NewTicker(period)
	defer t.Stop()
	for len(missing) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		missing = slices.DeleteFunc(missing, func(w indexWatch) bool {
			reg, err := w.attach(ctx, getInformer)
			if err != nil {
				log.Error(err, "cross-reference checks cannot watch this kind yet; retrying", "kind", fmt.Sprintf("%T", w.obj))
				return false
			}
			if reg == nil {
				return false
			}
			log.Info("cross-reference checks now watch this kind; waiting for its objects", "kind", fmt.Sprintf("%T", w.obj))
			state(w, false)
			syncing.Go(func() {
				if toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
					state(w, true)
				}
			})
			return true
		})
	}
}

func applyObj(obj any, present bool, set func(client.Object, bool)) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if o, ok := obj.(client.Object); ok {
		set(o, present)
	}
}

// indexedService is what the cross-reference checks read of a Service: its
// port numbers and its networking.istio.io/exportTo annotation.
func indexedService(svc *corev1.Service) crossref.Service {
	s := crossref.Service{Key: crossref.Key{Namespace: svc.Namespace, Name: svc.Name}, PortsKnown: true,
		ExportTo: svc.Annotations[crossref.ExportToAnnotation]}
	for _, p := range svc.Spec.Ports {
		s.Ports = append(s.Ports, uint32(p.Port))
	}
	return s
}
