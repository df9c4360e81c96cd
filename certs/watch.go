package certs

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// secretWatch keeps an informer on a few named Secrets of one namespace. A
// field selector per name keeps RBAC narrowable to resourceNames and the
// cache small; reading through it avoids the kubelet's 30–100 s Secret-mount
// delay (controller-runtime's certwatcher does the same).
type secretWatch struct {
	listers map[string]corelisters.SecretNamespaceLister
	synced  []cache.InformerSynced
	start   []func(<-chan struct{})
}

func newSecretWatch(cs kubernetes.Interface, namespace string, names []string, onChange func()) (*secretWatch, error) {
	w := &secretWatch{listers: map[string]corelisters.SecretNamespaceLister{}}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { onChange() },
		UpdateFunc: func(any, any) { onChange() },
		DeleteFunc: func(any) { onChange() },
	}
	for _, name := range names {
		f := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Hour,
			informers.WithNamespace(namespace),
			informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = "metadata.name=" + name }))
		inf := f.Core().V1().Secrets()
		if _, err := inf.Informer().AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("watch Secret %s/%s: %w", namespace, name, err)
		}
		w.listers[name] = inf.Lister().Secrets(namespace)
		w.synced = append(w.synced, inf.Informer().HasSynced)
		w.start = append(w.start, f.Start)
	}
	return w, nil
}

// run starts the informers and waits for their first list.
func (w *secretWatch) run(ctx context.Context) error {
	for _, s := range w.start {
		s(ctx.Done())
	}
	return w.wait(ctx)
}

// wait waits for the first list of the informers run started. The leader's
// work uses it: informers it started would stop with its term, and a
// factory never starts an informer twice.
func (w *secretWatch) wait(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return fmt.Errorf("secret informers did not sync: %w", ctx.Err())
	}
	return nil
}

// get returns the cached Secret or nil when absent.
func (w *secretWatch) get(name string) *corev1.Secret {
	s, err := w.listers[name].Get(name)
	if err != nil {
		return nil
	}
	return s
}

// kicker coalesces wake-ups for a reconcile loop.
type kicker chan struct{}

func newKicker() kicker { return make(kicker, 1) }

func (k kicker) kick() {
	select {
	case k <- struct{}{}:
	default:
	}
}

// watchWebhookConfigs calls onChange whenever one of the named webhook
// configurations is created, changed or deleted, so self mode fills in
// caBundle as soon as serve creates them and repairs a wiped one at once.
func watchWebhookConfigs(cs kubernetes.Interface, names WebhookConfigNames, onChange func()) (func(context.Context), error) {
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { onChange() },
		UpdateFunc: func(any, any) { onChange() },
		DeleteFunc: func(any) { onChange() },
	}
	var starts []func(<-chan struct{})
	add := func(name string, informer func(informers.SharedInformerFactory) cache.SharedIndexInformer) error {
		f := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Hour,
			informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = "metadata.name=" + name }))
		if _, err := informer(f).AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch webhook configuration %s: %w", name, err)
		}
		starts = append(starts, f.Start)
		return nil
	}
	for _, n := range names.Mutating {
		if err := add(n, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Admissionregistration().V1().MutatingWebhookConfigurations().Informer()
		}); err != nil {
			return nil, err
		}
	}
	for _, n := range names.Validating {
		if err := add(n, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Admissionregistration().V1().ValidatingWebhookConfigurations().Informer()
		}); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) {
		for _, s := range starts {
			s(ctx.Done())
		}
	}, nil
}
