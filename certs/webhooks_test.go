package certs

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/meshguard/meshguard/certs/pki"
)

// TestApplyBundlesLeavesWebhooksRemovable: once meshguard has set caBundle,
// the owner of the configuration can still drop a webhook from it by
// server-side apply (Flux, Argo CD). Written by server-side apply, meshguard
// co-owned every webhook entry, so SSA kept the dropped one, with only
// name and caBundle (an invalid webhook the API server refuses); written by
// an update, as Istio's WebhookCertPatcher does, it owns caBundle only.
func TestApplyBundlesLeavesWebhooksRemovable(t *testing.T) {
	ctx := context.Background()
	cs := kubefake.NewClientset()
	vwc := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	hook := func(name string) *ac.ValidatingWebhookApplyConfiguration {
		return ac.ValidatingWebhook().WithName(name).WithSideEffects("None").WithAdmissionReviewVersions("v1").
			WithClientConfig(ac.WebhookClientConfig().WithURL("https://127.0.0.1:1/" + name)).
			WithNamespaceSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"x": "y"}))
	}
	user := metav1.ApplyOptions{FieldManager: "gitops"}
	if _, err := vwc.Apply(ctx, ac.ValidatingWebhookConfiguration("mg").WithWebhooks(hook("a.x.io"), hook("b.x.io")), user); err != nil {
		t.Fatal(err)
	}
	ca, _ := mustCA(t, t0, time.Hour)
	names := WebhookConfigNames{Validating: []string{"mg"}}
	if wrote, err := applyBundles(ctx, cs, names, ca.CertPEM); err != nil || !wrote {
		t.Fatalf("applyBundles = %v, %v", wrote, err)
	}
	if ok, err := bundlesContain(ctx, cs, names, ca.CertPEM); err != nil || !ok {
		t.Fatalf("caBundle not set: %v, %v", ok, err)
	}
	got, err := vwc.Apply(ctx, ac.ValidatingWebhookConfiguration("mg").WithWebhooks(hook("a.x.io")), user)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, w := range got.Webhooks {
		left = append(left, w.Name)
	}
	if len(got.Webhooks) != 1 || got.Webhooks[0].Name != "a.x.io" || len(got.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Fatalf("after the owner dropped b.x.io by server-side apply, webhooks %v (want a.x.io, caBundle kept)", left)
	}
	// Nothing differs: no write.
	if wrote, err := applyBundles(ctx, cs, names, ca.CertPEM); err != nil || wrote {
		t.Fatalf("applyBundles with caBundle in place = %v, %v", wrote, err)
	}
}

// TestSelfReconcileBothSecretsDeletedOrCorrupt: with both Secrets deleted (to start
// over) or corrupt while the replicas serve a leaf of the old CA, the leader
// keeps that CA in the caBundle next to the new one and serves a leaf of the
// new CA only once it is trusted, as when the CA Secret alone is deleted.
// Corrupt, the leaf was re-issued from the new CA in the pass that first put
// that CA in the caBundle, before the API server could trust it.
func TestSelfReconcileBothSecretsDeletedOrCorrupt(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(map[bool]string{false: "deleted", true: "corrupt"}[corrupt], func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			oldCA, _ := mustCA(t, now.Add(-time.Hour), 10*time.Hour)
			o, err := Options{Mode: ModeSelf, Namespace: "mg", Hosts: []string{"127.0.0.1"}, WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			dns, ips := pki.SplitHosts(o.DNSNames())
			leaf, err := pki.NewLeaf(oldCA, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: 5 * time.Hour}, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			objs := []runtime.Object{&admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mg"},
				Webhooks: []admissionv1.ValidatingWebhook{{Name: "a.x.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: oldCA.CertPEM}}}}}
			garbage := map[string][]byte{corev1.TLSCertKey: []byte("garbage"), corev1.TLSPrivateKeyKey: []byte("garbage")}
			if corrupt {
				for _, name := range []string{o.selfCASecretName(), o.selfLeafSecretName()} {
					objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "mg"}, Type: corev1.SecretTypeTLS, Data: garbage})
				}
			}
			cs := kubefake.NewClientset(objs...)
			s := &selfSource{store: newStore(ModeSelf), o: o, log: logr.Discard(), cs: cs, kick: newKicker()}
			if err := s.set(leaf, oldCA.CertPEM); err != nil {
				t.Fatal(err)
			}
			if _, err := s.reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			served, _ := s.GetCertificate(nil)
			if ok, err := bundlesContain(ctx, cs, o.WebhookConfigs, oldCA.CertPEM); err != nil || !ok {
				t.Fatalf("caBundle dropped the CA of the served leaf %q: %v", served.Leaf.Subject.CommonName, err)
			}
			sec, err := cs.CoreV1().Secrets("mg").Get(ctx, o.selfLeafSecretName(), metav1.GetOptions{})
			if err == nil && string(sec.Data[corev1.TLSCertKey]) != "garbage" {
				t.Fatal("a leaf of the new CA was written before the new CA could be trusted")
			}
			// Once trusted (PropagationDelay later), the leaf is re-issued from the new CA.
			s.now = func() time.Time { return time.Now().Add(o.PropagationDelay + time.Second) }
			if _, err := s.reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if sec, err = cs.CoreV1().Secrets("mg").Get(ctx, o.selfLeafSecretName(), metav1.GetOptions{}); err != nil || leafState(sec).leaf == nil {
				t.Fatalf("no readable leaf after the new CA was trusted: %v", err)
			}
		})
	}
}

// TestSelfReconcileCADurationShortened: a CA issued under a longer
// --cert-ca-duration is replaced as at a scheduled rotation: both CAs in the
// caBundle, the leaf re-issued from the new CA only once it is trusted.
// selfWithCA is self mode's cluster state at now: a CA of the given life in
// the CA Secret (issued an hour before), a one-hour leaf of it in the leaf
// Secret, and ValidatingWebhookConfiguration "mg" trusting that CA.
func selfWithCA(t *testing.T, o Options, now time.Time, caLife time.Duration) (pki.KeyPair, *x509.Certificate, pki.KeyPair, *kubefake.Clientset) {
	t.Helper()
	ca, caCert := mustCA(t, now.Add(-time.Hour), caLife)
	dns, ips := pki.SplitHosts(o.DNSNames())
	leaf, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: time.Hour}, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tlsSecret := func(name string, kp pki.KeyPair) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "mg"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, "ca.crt": ca.CertPEM}}
	}
	cs := kubefake.NewClientset(tlsSecret(o.selfCASecretName(), ca), tlsSecret(o.selfLeafSecretName(), leaf),
		&admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mg"},
			Webhooks: []admissionv1.ValidatingWebhook{{Name: "a.x.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: ca.CertPEM}}}})
	return ca, caCert, leaf, cs
}

func TestSelfReconcileCADurationShortened(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	o, err := Options{Mode: ModeSelf, Namespace: "mg", Hosts: []string{"127.0.0.1"}, CADuration: 10 * time.Hour, LeafDuration: time.Hour,
		WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	oldCA, oldCACert, leaf, cs := selfWithCA(t, o, now, 100*time.Hour)
	s := &selfSource{store: newStore(ModeSelf), o: o, log: logr.Discard(), cs: cs, kick: newKicker()}
	if err := s.set(leaf, oldCA.CertPEM); err != nil {
		t.Fatal(err)
	}
	if _, err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	caSec, err := cs.CoreV1().Secrets("mg").Get(ctx, o.selfCASecretName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newCA := pki.KeyPair{CertPEM: caSec.Data[corev1.TLSCertKey], KeyPEM: caSec.Data[corev1.TLSPrivateKeyKey]}
	c, err := newCA.Parsed()
	if err != nil || pki.Fingerprint(c.Leaf) == pki.Fingerprint(oldCACert) || c.Leaf.NotAfter.After(now.Add(11*time.Hour)) {
		t.Fatalf("CA not replaced by one of the shorter duration: %v", err)
	}
	for _, ca := range [][]byte{oldCA.CertPEM, newCA.CertPEM} {
		if ok, err := bundlesContain(ctx, cs, o.WebhookConfigs, ca); err != nil || !ok {
			t.Fatalf("caBundle lacks the old or the new CA: %v", err)
		}
	}
	if sec, _ := cs.CoreV1().Secrets("mg").Get(ctx, o.selfLeafSecretName(), metav1.GetOptions{}); !pki.SignedBy(leafState(sec).leaf, oldCACert) {
		t.Fatal("a leaf of the new CA was written before the new CA could be trusted")
	}
	s.now = func() time.Time { return time.Now().Add(o.PropagationDelay + time.Second) }
	if _, err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if sec, _ := cs.CoreV1().Secrets("mg").Get(ctx, o.selfLeafSecretName(), metav1.GetOptions{}); !pki.SignedBy(leafState(sec).leaf, c.Leaf) {
		t.Fatal("leaf not re-issued from the new CA once it was trusted")
	}
}

// TestBundlesContainEveryWebhook: the new CA counts as trusted only once
// every webhook of every configuration holds it (the API server verifies each
// webhook with its own caBundle); an absent configuration counts as trusting.
func TestBundlesContainEveryWebhook(t *testing.T) {
	ca, _ := mustCA(t, t0, time.Hour)
	other, _ := mustCA(t, t0, time.Hour)
	hook := func(name string, bundle []byte) admissionv1.MutatingWebhook {
		return admissionv1.MutatingWebhook{Name: name, ClientConfig: admissionv1.WebhookClientConfig{CABundle: bundle}}
	}
	for _, c := range []struct {
		name  string
		hooks []admissionv1.MutatingWebhook
		want  bool
	}{
		{"every webhook", []admissionv1.MutatingWebhook{hook("a.x.io", ca.CertPEM), hook("b.x.io", append(append([]byte{}, other.CertPEM...), ca.CertPEM...))}, true},
		{"second webhook lacks it", []admissionv1.MutatingWebhook{hook("a.x.io", ca.CertPEM), hook("b.x.io", other.CertPEM)}, false},
		{"first webhook lacks it", []admissionv1.MutatingWebhook{hook("a.x.io", nil), hook("b.x.io", ca.CertPEM)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := kubefake.NewClientset(&admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mg"}, Webhooks: c.hooks})
			got, err := bundlesContain(context.Background(), cs, WebhookConfigNames{Mutating: []string{"mg"}, Validating: []string{"absent"}}, ca.CertPEM)
			if err != nil || got != c.want {
				t.Fatalf("bundlesContain = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// TestSelfReconcileWaitsForTrustedCA: after a CA rotation the leaf of the
// new CA is served only PropagationDelay after every caBundle was seen to
// hold the new CA (docs/compatibility.md "self-managed leaf"), counted from
// that moment, not from an earlier pass where the write did not stick; and
// when the caBundles never get it, the leaf is re-issued anyway once
// CAWaitTimeout has passed.
func TestSelfReconcileWaitsForTrustedCA(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	o, err := Options{Mode: ModeSelf, Namespace: "mg", Hosts: []string{"127.0.0.1"}, CADuration: 10 * time.Hour, LeafDuration: time.Hour,
		WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// A reconcile pass at start+at, with caBundle updates kept or dropped.
	type pass struct {
		at      time.Duration
		keep    bool
		wantNew bool // the leaf Secret holds a leaf of the new CA after it
	}
	for _, c := range []struct {
		name   string
		passes []pass
	}{
		{"delay counted from when the caBundles hold the new CA", []pass{{0, false, false}, {o.PropagationDelay + time.Second, true, false}, {2*o.PropagationDelay + 2*time.Second, true, true}}},
		{"caBundles never updated: re-issued after CAWaitTimeout", []pass{{0, false, false}, {o.CAWaitTimeout - time.Second, false, false}, {o.CAWaitTimeout + time.Second, false, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			oldCA, oldCACert, leaf, cs := selfWithCA(t, o, start, 100*time.Hour)
			keep := false
			// A dropped update reports success but stores nothing (the
			// caBundle reverted by another writer, say).
			cs.PrependReactor("update", "validatingwebhookconfigurations", func(a k8stesting.Action) (bool, runtime.Object, error) {
				return !keep, a.(k8stesting.UpdateAction).GetObject(), nil
			})
			s := &selfSource{store: newStore(ModeSelf), o: o, log: logr.Discard(), cs: cs, kick: newKicker()}
			if err := s.set(leaf, oldCA.CertPEM); err != nil {
				t.Fatal(err)
			}
			for i, p := range c.passes {
				keep = p.keep
				s.now = func() time.Time { return start.Add(p.at) }
				if _, err := s.reconcile(ctx); err != nil {
					t.Fatal(err)
				}
				sec, err := cs.CoreV1().Secrets("mg").Get(ctx, o.selfLeafSecretName(), metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				l := leafState(sec).leaf
				if gotNew := l != nil && !pki.SignedBy(l, oldCACert); gotNew != p.wantNew {
					t.Fatalf("pass %d (at +%s, caBundle updates kept: %v): leaf of the new CA = %v, want %v", i, p.at, p.keep, gotNew, p.wantNew)
				}
			}
		})
	}
}
