package webhook

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clientnetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
		if calls.Add(1) < 3 {
			return nil, errors.New("no matches for kind \"Gateway\" in version \"networking.istio.io/v1\"")
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
	go func() { retryWatches(ctx, []indexWatch{w}, getInformer, time.Millisecond, logr.Discard()); close(done) }()
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
