package certs

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/meshguard/meshguard/certs/pki"
)

// TestCertManagerCorruptCASecretNamed: since ParseCerts refuses data after
// the last PEM block (c5ad57e), a corrupt CA Secret stops the bundle merge;
// the error logged must name that Secret, not only the serving one.
func TestCertManagerCorruptCASecretNamed(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now, time.Hour)
	o, err := Options{Mode: ModeCertManager, Namespace: "mg"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dns, ips := pki.SplitHosts(o.DNSNames())
	leaf, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubefake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.servingSecretName(), Namespace: o.Namespace},
			Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM, "ca.crt": ca.CertPEM}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.caSecretName(), Namespace: o.Namespace},
			Data: map[string][]byte{corev1.TLSCertKey: []byte("garbage")}})
	var mu sync.Mutex
	var errs []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(args, `"error"`) {
			errs = append(errs, args)
		}
	}, funcr.Options{})
	s := &cmSource{store: newStore(ModeCertManager), o: o, log: log, kick: newKicker()}
	runSecretWatch(t, s, cs)
	s.load()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !strings.Contains(errs[0], o.Namespace+"/"+o.caSecretName()) {
		t.Fatalf("errors logged %q, want one naming the CA Secret %s/%s", errs, o.Namespace, o.caSecretName())
	}
	// Fail closed: nothing is installed from Secrets whose CAs cannot be
	// read (no pair served with a bundle missing the CA Secret's CA).
	if cur := s.current(); cur != nil || len(s.CABundle()) != 0 {
		t.Fatalf("served a pair (%v) or bundle (%d bytes) despite the corrupt CA Secret", cur != nil, len(s.CABundle()))
	}
}

// TestSelfCorruptBundleNamed: self mode's CA bundle merges the CA Secret's
// ca.crt or, with that Secret gone, the leaf Secret's. The error logged when
// one cannot be read names the Secret and key that failed; it always named
// the CA Secret, which need not even exist.
func TestSelfCorruptBundleNamed(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now.Add(-time.Hour), 10*time.Hour)
	o, err := Options{Mode: ModeSelf, Namespace: "mg"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name string, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace}, Type: corev1.SecretTypeTLS, Data: data}
	}
	garbage := []byte("garbage")
	for _, tc := range []struct {
		name          string
		secrets       []*corev1.Secret
		want, notWant string
	}{
		{"leaf Secret's ca.crt, CA Secret gone", []*corev1.Secret{secret(o.selfLeafSecretName(), map[string][]byte{"ca.crt": garbage})},
			"Secret mg/" + o.selfLeafSecretName() + " ca.crt", o.selfCASecretName()},
		{"CA Secret's ca.crt", []*corev1.Secret{
			secret(o.selfCASecretName(), map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: ca.KeyPEM, "ca.crt": garbage}),
			secret(o.selfLeafSecretName(), map[string][]byte{"ca.crt": ca.CertPEM})},
			"Secret mg/" + o.selfCASecretName() + " ca.crt", o.selfLeafSecretName()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := kubefake.NewClientset()
			for _, sec := range tc.secrets {
				if _, err := cs.CoreV1().Secrets(o.Namespace).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			var errs []string
			log := funcr.New(func(_, args string) {
				if strings.Contains(args, `"error"`) {
					errs = append(errs, args)
				}
			}, funcr.Options{})
			s := &selfSource{store: newStore(ModeSelf), o: o, log: log, cs: cs, kick: newKicker()}
			if _, _, err := s.ensureCA(context.Background(), now); err != nil {
				t.Fatal(err)
			}
			if len(errs) != 1 || !strings.Contains(errs[0], tc.want) || strings.Contains(errs[0], tc.notWant) {
				t.Fatalf("errors logged %q, want one naming %q and not %q", errs, tc.want, tc.notWant)
			}
		})
	}
}

// TestSelfCorruptBundleKeepsServedCA: when the bundle to merge cannot be read
// (here the leaf Secret's ca.crt, the CA Secret gone), ensureCA starts over
// from the new CA and the CAs of the pair served, so the API server keeps
// trusting the served leaf until one of the new CA replaces it
// (docs/operations.md: the old CA stays in the bundle until it expires, as
// in a scheduled rotation).
func TestSelfCorruptBundleKeepsServedCA(t *testing.T) {
	now := time.Now()
	oldCA, _ := mustCA(t, now.Add(-time.Hour), 10*time.Hour)
	o, err := Options{Mode: ModeSelf, Namespace: "mg"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubefake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.selfLeafSecretName(), Namespace: o.Namespace},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"ca.crt": []byte("garbage")}})
	s := &selfSource{store: newStore(ModeSelf), o: o, log: funcr.New(func(_, _ string) {}, funcr.Options{}), cs: cs, kick: newKicker()}
	served := mustLeaf(t, oldCA, []string{"mg.mg.svc"}, now.Add(-time.Hour), 5*time.Hour)
	if err := s.set(served, oldCA.CertPEM); err != nil {
		t.Fatal(err)
	}
	ca, bundle, err := s.ensureCA(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if !pki.BundleContains(bundle, oldCA.CertPEM) || !pki.BundleContains(bundle, ca.CertPEM) {
		t.Fatalf("bundle after a corrupt ca.crt lacks the served leaf's CA (%v) or the new CA (%v)",
			pki.BundleContains(bundle, oldCA.CertPEM), pki.BundleContains(bundle, ca.CertPEM))
	}
}

// runSecretWatch gives s cert-manager mode's watch of its two Secrets in cs
// and runs it until the test ends.
func runSecretWatch(t *testing.T, s *cmSource, cs kubernetes.Interface) {
	t.Helper()
	s.watch = runWatch(t, cs, s.o.Namespace, s.o.caSecretName(), s.o.servingSecretName())
}

// runWatch returns a synced watch of the named Secrets in cs, running until
// the test ends.
func runWatch(t *testing.T, cs kubernetes.Interface, namespace string, names ...string) *secretWatch {
	t.Helper()
	w, err := newSecretWatch(cs, namespace, names, func() {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}
