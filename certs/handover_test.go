package certs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/meshguard/meshguard/certs/pki"
)

// The CA hand-over rule of both modes: a leaf of a new CA goes out only once
// every caBundle has held the new CA for PropagationDelay without a break, or
// after CAWaitTimeout. meshguard's own rule, with no Istio counterpart to
// port: istiod hands a new bundle to its webhook patcher at once (Istio:
// pilot/pkg/keycertbundle/watcher.go Watcher.SetAndNotify, read by
// pkg/webhooks/webhookpatch.go) and waits for no propagation.

// selfHandoverSetup is self mode with a CA due for rotation (a 10 h CA
// duration, the CA in the Secret issued for 100 h) and a leaf of it served.
func selfHandoverSetup(t *testing.T, start time.Time) (Options, pki.KeyPair, *kubefake.Clientset, *selfSource, func(*selfSource, time.Duration) bool) {
	t.Helper()
	o, err := Options{Mode: ModeSelf, Namespace: "mg", Hosts: []string{"127.0.0.1"}, CADuration: 10 * time.Hour, LeafDuration: time.Hour,
		WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	oldCA, oldCACert, leaf, cs := selfWithCA(t, o, start, 100*time.Hour)
	s := &selfSource{store: newStore(ModeSelf), o: o, log: logr.Discard(), cs: cs, kick: newKicker()}
	if err := s.set(leaf, oldCA.CertPEM); err != nil {
		t.Fatal(err)
	}
	// newLeaf reports whether the leaf Secret holds a leaf of another CA than the old one.
	newLeaf := func(s *selfSource, _ time.Duration) bool {
		sec, _ := cs.CoreV1().Secrets("mg").Get(context.Background(), o.selfLeafSecretName(), metav1.GetOptions{})
		l := leafState(sec).leaf
		return l != nil && !pki.SignedBy(l, oldCACert)
	}
	return o, oldCA, cs, s, newLeaf
}

// revertBundle sets the validating configuration's caBundle to old, as
// another writer (GitOps re-applying the manifest) would.
func revertBundle(t *testing.T, cs *kubefake.Clientset, old []byte) {
	t.Helper()
	ctx := context.Background()
	cfg, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "mg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Webhooks[0].ClientConfig.CABundle = old
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestSelfHandoverRestartsWhenBundleLosesCA: a caBundle that held the new CA,
// lost it and got it back restarts the propagation wait; the API server may
// still use the reverted bundle when meshguard re-patches it.
func TestSelfHandoverRestartsWhenBundleLosesCA(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	o, oldCA, cs, s, newLeaf := selfHandoverSetup(t, start)
	keep := true // whether meshguard's caBundle update sticks
	cs.PrependReactor("update", "validatingwebhookconfigurations", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return !keep, a.(k8stesting.UpdateAction).GetObject(), nil
	})
	pass := func(at time.Duration) bool {
		s.now = func() time.Time { return start.Add(at) }
		if _, err := s.reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		return newLeaf(s, at)
	}
	if pass(0) { // the new CA is made and in the caBundle from now
		t.Fatal("leaf of the new CA written at once")
	}
	revertBundle(t, cs, oldCA.CertPEM)
	keep = false
	if pass(o.PropagationDelay / 2) {
		t.Fatal("leaf of the new CA written while the caBundle lacks it")
	}
	keep = true
	if pass(o.PropagationDelay + time.Second) {
		t.Fatalf("leaf of the new CA written in the pass that put the new CA back in the caBundle (PropagationDelay %v not waited)", o.PropagationDelay)
	}
	if pass(o.PropagationDelay/2 + o.PropagationDelay + time.Second) {
		t.Fatal("leaf of the new CA written before the caBundle held it for PropagationDelay")
	}
	if !pass(2*o.PropagationDelay + 2*time.Second) {
		t.Fatal("no leaf of the new CA once the caBundle held it for PropagationDelay")
	}
}

// TestSelfHandoverResetsEachTerm: what one term saw of the caBundles is not
// trusted by the next (the caBundle may have been reverted and re-patched in
// between): a new term waits PropagationDelay from its own first sight.
func TestSelfHandoverResetsEachTerm(t *testing.T) {
	start := time.Now()
	o, oldCA, cs, s, newLeaf := selfHandoverSetup(t, start)
	s.now = func() time.Time { return start }
	if _, err := s.reconcile(context.Background()); err != nil { // term 1: new CA, in the caBundle from now
		t.Fatal(err)
	}
	if newLeaf(s, 0) {
		t.Fatal("leaf of the new CA written at once")
	}
	// Between the terms another writer reverts the caBundle; term 2's first
	// pass, past PropagationDelay, re-patches it.
	revertBundle(t, cs, oldCA.CertPEM)
	var err error
	if s.watch, err = newSecretWatch(cs, o.Namespace, []string{o.selfCASecretName(), o.selfLeafSecretName()}, func() {}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.watch.run(ctx); err != nil {
		t.Fatal(err)
	}
	term2, stop := context.WithCancel(ctx)
	defer stop()
	// End term 2 after its first pass: the leaf Secret is read after the caBundles.
	cs.PrependReactor("get", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == o.selfLeafSecretName() {
			stop()
		}
		return false, nil, nil
	})
	s.now = func() time.Time { return start.Add(o.PropagationDelay + time.Second) }
	if err := s.rotate(term2); err != nil {
		t.Fatal(err)
	}
	if ok, err := bundlesContain(context.Background(), cs, o.WebhookConfigs, mustCurrentSelfCA(t, cs, o)); err != nil || !ok {
		t.Fatalf("term 2 did not re-patch the caBundle: %v", err)
	}
	if newLeaf(s, 0) {
		t.Fatal("term 2 wrote a leaf of the new CA in the pass that re-patched the caBundle: it trusted term 1's sight of it")
	}
}

func mustCurrentSelfCA(t *testing.T, cs *kubefake.Clientset, o Options) []byte {
	t.Helper()
	sec, err := cs.CoreV1().Secrets("mg").Get(context.Background(), o.selfCASecretName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Data[corev1.TLSCertKey]
}

// TestCertManagerHandoverRestartsWhenBundleLosesCA: cert-manager mode asks
// for a leaf of the new CA only once the caBundles held it for
// PropagationDelay without a break: cainjector re-injects a reverted bundle,
// and the API server may still use the reverted one then.
func TestCertManagerHandoverRestartsWhenBundleLosesCA(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var triggers atomic.Int32
	var mu sync.Mutex
	pass, triggeredAt := 0, -1 // passes begun; the pass that asked for re-issuing
	f := newReissueFixture(t, start, Options{Mode: ModeCertManager, Namespace: "mg", CheckInterval: time.Hour,
		WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}, nil, func() {
		triggers.Add(1)
		mu.Lock()
		triggeredAt = pass - 1
		mu.Unlock()
		cancel() // asked: the next pass would come only after CheckInterval
	})
	o, oldCA, newCA, cs, s := f.o, f.oldCA, f.newCA, f.cs, f.s
	if err := s.watch.run(ctx); err != nil {
		t.Fatal(err)
	}
	// Each pass reads the configuration once, after taking the time; pass i
	// runs at at[i] and sees the new CA in the caBundle if holds[i].
	d := o.PropagationDelay
	at := []time.Duration{0, d / 2, d + time.Second, d/2 + d + time.Second, 2*d + 2*time.Second}
	holds := []bool{true, false, true, true, true}
	s.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return start.Add(at[min(pass, len(at)-1)])
	}
	bundle := func(ok bool) []byte {
		if ok {
			return append(append([]byte(nil), oldCA.CertPEM...), newCA.CertPEM...)
		}
		return oldCA.CertPEM
	}
	cs.PrependReactor("get", "validatingwebhookconfigurations", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		i := pass
		pass++
		if i >= len(holds) {
			cancel() // the passes of the test are over: end the term
			return true, nil, errors.New("term over")
		}
		return true, &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mg"},
			Webhooks: []admissionv1.ValidatingWebhook{{Name: "a.x.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: bundle(holds[i])}}}}, nil
	})
	if err := s.reissue(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case triggeredAt == 2:
		t.Fatalf("re-issuing asked for in the pass that saw the new CA back in the caBundle (PropagationDelay %v not waited)", d)
	case triggeredAt >= 0 && triggeredAt < 4:
		t.Fatalf("re-issuing asked for in pass %d, before the caBundle held the new CA for PropagationDelay %v (pass 4)", triggeredAt, d)
	case triggeredAt < 0:
		t.Fatalf("re-issuing not asked for once the caBundle held the new CA for PropagationDelay (%d passes)", pass)
	case triggers.Load() != 1:
		t.Fatalf("re-issuing asked for %d times, want once", triggers.Load())
	}
}

// TestCAHandoverRule: the rule alone, look by look (delay 3 s, timeout 2 m).
func TestCAHandoverRule(t *testing.T) {
	const delay, timeout = 3 * time.Second, 2 * time.Minute
	type look struct {
		fp       string
		at       time.Duration
		inBundle bool
		failed   bool // the caBundles could not be read
		reset    bool // before this look: a new term
		want     bool // trusted
		timedOut bool // waited
	}
	for _, tc := range []struct {
		name  string
		looks []look
	}{
		{"held for the delay", []look{{fp: "a", inBundle: true}, {fp: "a", at: delay - 1, inBundle: true}, {fp: "a", at: delay, inBundle: true, want: true}}},
		{"never held: timeout", []look{{fp: "a"}, {fp: "a", at: timeout - 1}, {fp: "a", at: timeout, timedOut: true}}},
		{"lost and held again: wait restarts", []look{{fp: "a", inBundle: true}, {fp: "a", at: time.Second},
			{fp: "a", at: delay + time.Second, inBundle: true}, {fp: "a", at: 2*delay + time.Second - 1, inBundle: true},
			{fp: "a", at: 2*delay + time.Second, inBundle: true, want: true}}},
		{"a failed read neither loses nor trusts", []look{{fp: "a", inBundle: true}, {fp: "a", at: delay, failed: true},
			{fp: "a", at: delay + 1, inBundle: true, want: true}}},
		{"another CA: times start over", []look{{fp: "a", inBundle: true}, {fp: "b", at: delay, inBundle: true},
			{fp: "b", at: 2*delay - 1, inBundle: true}, {fp: "b", at: 2 * delay, inBundle: true, want: true}}},
		{"new term: start over", []look{{fp: "a", inBundle: true}, {fp: "a", at: delay, inBundle: true, reset: true},
			{fp: "a", at: 2 * delay, inBundle: true, want: true}}},
		{"new term: timeout from its own first sight", []look{{fp: "a"}, {fp: "a", at: timeout, reset: true},
			{fp: "a", at: 2*timeout - 1}, {fp: "a", at: 2 * timeout, timedOut: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h caHandover
			for i, l := range tc.looks {
				now := t0.Add(l.at)
				if l.reset {
					h.reset()
				}
				h.see(l.fp, now)
				if !l.failed {
					h.bundles(l.inBundle, now)
				}
				got, timedOut := h.trusted(l.inBundle && !l.failed, now, delay), h.waited(now, timeout)
				if got != l.want || timedOut != l.timedOut {
					t.Fatalf("look %d (%+v): trusted %v, waited %v; want %v, %v", i, l, got, timedOut, l.want, l.timedOut)
				}
			}
		})
	}
}
