package webhook

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/validation/crossref"
)

// The index reads a Service's port numbers and exportTo annotation, which
// the destination checks (IST0101 host:port, IST0112, exportTo) need.
func TestIndexedService(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews", Annotations: map[string]string{crossref.ExportToAnnotation: ".,a"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}, {Port: 9080}}},
	}
	got := indexedService(svc)
	if got.Key != (crossref.Key{Namespace: "shop", Name: "reviews"}) || !got.PortsKnown || !slices.Equal(got.Ports, []uint32{80, 9080}) || got.ExportTo != ".,a" {
		t.Errorf("got %+v", got)
	}
}

// The index is not ready while a handler is still being handed its
// informer's initial list: a synced informer has the objects in its store but
// delivers them to handlers asynchronously. Marked ready on the cache's sync
// alone, the index served a partial view as complete: here the namespace's
// strict-references label was not there yet, so strict denials (and
// organisation rules reading namespaceLabels) were silently skipped.
func TestIndexReadyOnlyOnceHandlersSynced(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	inf := toolscache.NewSharedIndexInformer(listOnly{&toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &corev1.NamespaceList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: []corev1.Namespace{
				{ObjectMeta: metav1.ObjectMeta{Name: "prod", ResourceVersion: "1", Labels: map[string]string{crossref.StrictLabel: "true"}}},
			}}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}}, &corev1.Namespace{}, 0, toolscache.Indexers{})
	ix := crossref.NewIndex("")
	release := make(chan struct{})
	w := indexWatch{&corev1.Namespace{}, func(o client.Object, present bool) {
		<-release // a handler slower than the informer's store
		ix.SetNamespace(o.GetName(), o.GetLabels(), present)
	}}
	reg, err := w.attach(ctx, func(context.Context, client.Object) (handlerAdder, error) { return inf, nil })
	if err != nil || reg == nil {
		t.Fatalf("attach: %v, %v", reg, err)
	}
	go inf.Run(ctx.Done())
	cacheSynced := func(ctx context.Context) bool { return toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) }
	// Await the decision instead of sleeping: either readyWhenSynced has
	// asked the handler whether it synced and heard no (from then on only
	// the handler's sync may make the index ready), or the index is already
	// ready (the bug).
	polled := &pollSignal{ResourceEventHandlerRegistration: reg, notSynced: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		readyWhenSynced(ctx, ix, cacheSynced, []toolscache.ResourceEventHandlerRegistration{polled}, logr.Discard())
		close(done)
	}()
	if !cacheSynced(ctx) {
		t.Fatal("informer did not sync")
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for waiting := true; waiting; {
		select {
		case <-polled.notSynced:
			waiting = false
		case <-tick.C:
			waiting = !ix.Ready()
		case <-deadline:
			t.Fatal("readyWhenSynced neither asked the handler whether it synced nor made the index ready")
		}
	}
	if ix.Ready() && !ix.Strict("prod") {
		t.Fatal("index ready before its namespace handler had the initial list: namespace prod not strict")
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("index not ready after the handler synced")
	}
	if !ix.Ready() || !ix.Strict("prod") {
		t.Errorf("ready=%v strict(prod)=%v, want both", ix.Ready(), ix.Strict("prod"))
	}
}

// pollSignal closes notSynced the first time HasSynced answers false.
type pollSignal struct {
	toolscache.ResourceEventHandlerRegistration
	once      sync.Once
	notSynced chan struct{}
}

func (p *pollSignal) HasSynced() bool {
	synced := p.ResourceEventHandlerRegistration.HasSynced()
	if !synced {
		p.once.Do(func() { close(p.notSynced) })
	}
	return synced
}

// listOnly is a ListWatch without the watch-list protocol: the informer lists.
type listOnly struct{ *toolscache.ListWatch }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }
