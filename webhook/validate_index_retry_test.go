package webhook

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	networking "istio.io/api/networking/v1alpha3"
	clientnetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/validation/crossref"
)

// fakeInformer records the handler the index adds.
type fakeInformer struct {
	mu      sync.Mutex
	handler toolscache.ResourceEventHandler
}

func (f *fakeInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
	return syncedRegistration{}, nil
}

// syncedRegistration is a handler registration that has synced.
type syncedRegistration struct {
	toolscache.ResourceEventHandlerRegistration
}

func (syncedRegistration) HasSynced() bool { return true }

// A kind whose CRD is installed after meshguard started is watched once it
// is served (before, the index never saw it until a restart and every
// reference to such an object was reported missing).
func TestIndexWatchesKindServedLater(t *testing.T) {
	inf := &fakeInformer{}
	var calls atomic.Int32
	getInformer := func(context.Context, client.Object) (handlerAdder, error) {
		switch calls.Add(1) {
		case 1, 2:
			return nil, &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "networking.istio.io", Kind: "Gateway"}, SearchedVersions: []string{"v1"}}
		case 3: // a discovery hiccup: the kind is still tried
			return nil, errors.New("the server is currently unable to handle the request")
		}
		return inf, nil
	}
	var seen atomic.Value
	w := indexWatch{obj: &clientnetworkingv1.Gateway{}, set: func(o client.Object, present bool) {
		if present {
			seen.Store(o.GetNamespace() + "/" + o.GetName())
		}
	}}
	if reg, err := w.attach(context.Background(), getInformer); reg != nil || err != nil {
		t.Fatalf("first attach = %v, %v; want not attached, no error", reg, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		retryWatches(ctx, []indexWatch{w}, getInformer, time.Millisecond, func(indexWatch, bool) {}, logr.Discard())
		close(done)
	}()
	select {
	case <-done: // returns once every watch is attached
	case <-time.After(10 * time.Second):
		t.Fatal("retryWatches did not attach the watch")
	}
	cancel()
	inf.mu.Lock()
	h := inf.handler
	inf.mu.Unlock()
	if h == nil {
		t.Fatal("no handler added to the informer")
	}
	h.OnAdd(&clientnetworkingv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "ingress"}}, false)
	if got, _ := seen.Load().(string); got != "istio-system/ingress" {
		t.Errorf("index saw %q, want istio-system/ingress", got)
	}
}

// Only a kind the API server does not serve (no REST mapping) is left out of
// the index until it is served: any other failure to get its informer (API
// discovery unavailable at startup) fails the setup. Taken for "not served",
// such a kind left the index ready without it, so every reference to its
// objects looked missing and organisation rules saw none of them.
func TestIndexWatchOnlyUnservedKindsLeftOut(t *testing.T) {
	w := indexWatch{obj: &clientnetworkingv1.Gateway{}, set: func(client.Object, bool) {}}
	unavailable := errors.New("the server is currently unable to handle the request")
	reg, err := w.attach(context.Background(), func(context.Context, client.Object) (handlerAdder, error) { return nil, unavailable })
	if reg != nil || !errors.Is(err, unavailable) {
		t.Errorf("attach = %v, %v; want the discovery error", reg, err)
	}
	noMatch := &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "networking.istio.io", Kind: "Gateway"}, SearchedVersions: []string{"v1"}}
	if reg, err := w.attach(context.Background(), func(context.Context, client.Object) (handlerAdder, error) { return nil, noMatch }); reg != nil || err != nil {
		t.Errorf("attach of a kind not served = %v, %v; want left out, no error", reg, err)
	}
}

// lateRegistration is a handler registration that has not synced until
// synced is set; polled receives once when HasSynced is first asked.
type lateRegistration struct {
	toolscache.ResourceEventHandlerRegistration
	synced atomic.Bool
	once   sync.Once
	polled chan struct{}
}

func (r *lateRegistration) HasSynced() bool {
	r.once.Do(func() { close(r.polled) })
	return r.synced.Load()
}

type lateInformer struct{ reg *lateRegistration }

func (f lateInformer) AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return f.reg, nil
}

// A kind watched late counts as complete only once its handler has been
// given the informer's initial list (HasSynced), as at start-up
// (readyWhenSynced): before, the Gateways applied with their CRD are not
// all in the index, and a VirtualService naming one would be told it is
// missing (IST0101, IST0132), denied in a strict namespace.
func TestIndexLateWatchCompleteOnlyOnceSynced(t *testing.T) {
	reg := &lateRegistration{polled: make(chan struct{})}
	getInformer := func(context.Context, client.Object) (handlerAdder, error) { return lateInformer{reg}, nil }
	w := indexWatch{obj: &clientnetworkingv1.Gateway{}, set: func(client.Object, bool) {}}
	completed := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		retryWatches(ctx, []indexWatch{w}, getInformer, time.Millisecond, func(w indexWatch, synced bool) {
			if synced {
				completed <- w.kind()
			}
		}, logr.Discard())
		close(done)
	}()
	select {
	case <-reg.polled: // attached, waiting for the handler to sync
	case <-time.After(10 * time.Second):
		t.Fatal("retryWatches did not wait for the late watch to sync")
	}
	select {
	case <-completed:
		t.Fatal("the kind counted as complete before its handler synced")
	case <-done:
		t.Fatal("retryWatches returned before the late watch synced")
	default:
	}
	reg.synced.Store(true)
	select {
	case kind := <-completed:
		if kind != "Gateway" {
			t.Errorf("completed kind %q, want Gateway (as the cross-reference checks name it)", kind)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the kind never counted as complete after its handler synced")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("retryWatches did not return once every watch was complete")
	}
}

// A late watch that never syncs ends with ctx, not counted as complete.
func TestIndexLateWatchNotCompleteWhenStopped(t *testing.T) {
	reg := &lateRegistration{polled: make(chan struct{})}
	getInformer := func(context.Context, client.Object) (handlerAdder, error) { return lateInformer{reg}, nil }
	w := indexWatch{obj: &clientnetworkingv1.Gateway{}, set: func(client.Object, bool) {}}
	var completed atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		retryWatches(ctx, []indexWatch{w}, getInformer, time.Millisecond, func(_ indexWatch, synced bool) {
			if synced {
				completed.Store(true)
			}
		}, logr.Discard())
		close(done)
	}()
	select {
	case <-reg.polled:
	case <-time.After(10 * time.Second):
		t.Fatal("retryWatches did not wait for the late watch to sync")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("retryWatches did not return when stopped")
	}
	if completed.Load() {
		t.Error("a watch that never synced counted as complete")
	}
}

// A kind never served holds no object: the findings that depend on it are
// reported (a strict namespace denies), never dropped for as long as the CRD
// stays absent (they were, when every kind missing at start was incomplete).
func TestIndexNeverServedKindStaysComplete(t *testing.T) {
	ix := crossref.NewIndex("")
	ix.SetReady()
	var calls atomic.Int32
	getInformer := func(context.Context, client.Object) (handlerAdder, error) {
		calls.Add(1)
		return nil, &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "networking.istio.io", Kind: "ServiceEntry"}, SearchedVersions: []string{"v1"}}
	}
	w := indexWatch{obj: &clientnetworkingv1.ServiceEntry{}, set: func(client.Object, bool) {}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		watchLate(ix, []indexWatch{w}, getInformer, time.Millisecond, logr.Discard())(ctx)
		close(done)
	}()
	for calls.Load() < 3 { // retried, still not served
		runtime.Gosched()
	}
	vs := &networking.VirtualService{Hosts: []string{"r.example.com"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "missing"}}}}}}
	if fs := ix.Check("VirtualService", crossref.Key{Namespace: "default", Name: "r"}, vs); len(fs) != 1 {
		t.Errorf("ServiceEntry kind never served: findings %+v, want the missing host reported", fs)
	}
	cancel()
	<-done
}
