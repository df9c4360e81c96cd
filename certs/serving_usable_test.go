package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/meshguard/meshguard/certs/pki"
)

// leafWithEKU is a leaf of ca for dns and ips with exactly the extended key
// usages eku (pki.NewLeaf always sets serverAuth).
func leafWithEKU(t *testing.T, ca pki.KeyPair, dns []string, ips []net.IP, eku []x509.ExtKeyUsage, now time.Time) pki.KeyPair {
	t.Helper()
	c, err := ca.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: eku, DNSNames: dns, IPAddresses: ips}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Leaf, &key.PublicKey, c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pki.KeyPair{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})}
}

// cmSecrets are cert-manager mode's serving Secret (leaf, ca.crt = ca) and
// CA Secret (ca as tls.crt and ca.crt, as cert-manager writes a selfSigned
// CA).
func cmSecrets(o Options, ca, leaf pki.KeyPair) (serving, caSec *corev1.Secret) {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.servingSecretName(), Namespace: o.Namespace},
			Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM, "ca.crt": ca.CertPEM}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.caSecretName(), Namespace: o.Namespace},
			Data: map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: ca.KeyPEM, "ca.crt": ca.CertPEM}}
}

// updateAndAwait writes secs and waits until s's informer holds each of them.
func updateAndAwait(t *testing.T, s *cmSource, cs *kubefake.Clientset, secs ...*corev1.Secret) {
	t.Helper()
	for _, sec := range secs {
		if _, err := cs.CoreV1().Secrets(sec.Namespace).Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, sec := range secs {
		for got := s.watch.get(sec.Name); got == nil || string(got.Data[corev1.TLSCertKey]) != string(sec.Data[corev1.TLSCertKey]); got = s.watch.get(sec.Name) {
			if time.Now().After(deadline) {
				t.Fatalf("the informer never saw the update of Secret %s", sec.Name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestCertManagerKeepsPairWhenNewLeafUnusable: the serving Secret gets a
// leaf the API server cannot use (no serverAuth extended key usage: Go's
// TLS client refuses it as "incompatible key usage"; or without the
// Service's names): the pair served keeps serving and the refusal names the
// Secret. Istio's serving certificates carry serverAuth
// (security/pkg/pki/util/generate_cert.go genCertTemplateFromOptions).
func TestCertManagerKeepsPairWhenNewLeafUnusable(t *testing.T) {
	now := time.Now()
	o, err := Options{Mode: ModeCertManager, Namespace: "mg"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dns, _ := pki.SplitHosts(o.DNSNames())
	ca, _ := mustCA(t, now, 10*time.Hour)
	good := leafWithEKU(t, ca, dns, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, now)
	for _, tc := range []struct {
		name string
		leaf pki.KeyPair
		want string // in the error logged
	}{
		{"clientAuth only", leafWithEKU(t, ca, dns, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now), "key usage"},
		{"without the Service's names", leafWithEKU(t, ca, []string{"other.example"}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, now), "names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serving, caSec := cmSecrets(o, ca, good)
			cs := kubefake.NewClientset(serving, caSec)
			var logs logSink
			s := &cmSource{store: newStore(ModeCertManager), o: o, log: logs.logger(), kick: newKicker()}
			runSecretWatch(t, s, cs)
			s.load()
			if err := handshake(s.store, ca.CertPEM, dns[0], now); err != nil {
				t.Fatalf("handshake with the first pair: %v", err)
			}
			bad, _ := cmSecrets(o, ca, tc.leaf)
			updateAndAwait(t, s, cs, bad)
			s.load()
			if err := handshake(s.store, ca.CertPEM, dns[0], now); err != nil {
				t.Errorf("the pair served was replaced by one the API server cannot use: handshake for %s: %v", dns[0], err)
			}
			if errs := logs.errors(); len(errs) != 1 || !strings.Contains(errs[0], o.Namespace+"/"+o.servingSecretName()) || !strings.Contains(errs[0], tc.want) {
				t.Errorf("errors logged %q, want one naming Secret %s/%s and %q", errs, o.Namespace, o.servingSecretName(), tc.want)
			}
		})
	}
}

// TestFilesSuppliedLeafWithoutServerAuthRefused: an operator's tls.crt
// without the serverAuth extended key usage is refused at start, naming the
// file: every Go TLS client (the API server, Envoy's ext_authz client
// validates likewise) would refuse it.
func TestFilesSuppliedLeafWithoutServerAuthRefused(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	ca, _ := mustCA(t, now, 10*time.Hour)
	leaf := leafWithEKU(t, ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now)
	for name, b := range map[string][]byte{FileCACert: ca.CertPEM, FileLeafCert: leaf.CertPEM, FileLeafKey: leaf.KeyPEM} {
		if err := writeAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o, err := Options{Mode: ModeFiles, Dir: dir}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	err = checkSupplied(o, now)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, FileLeafCert)) || !strings.Contains(err.Error(), "key usage") {
		t.Errorf("supplied tls.crt without serverAuth: got %v, want a refusal naming %s and its key usage", err, filepath.Join(dir, FileLeafCert))
	}
}

// TestCertManagerReplicasAgreeOnBundle: the bundle cert-manager mode serves
// (and verifies client certificates with) is computed from the Secrets as
// they are now, so a replica that ran across a CA rotation and one started
// after it trust the same CAs; a CA that left both Secrets is not trusted
// any longer.
func TestCertManagerReplicasAgreeOnBundle(t *testing.T) {
	now := time.Now()
	o, err := Options{Mode: ModeCertManager, Namespace: "mg"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dns, _ := pki.SplitHosts(o.DNSNames())
	ca1, _ := mustCA(t, now, 10*time.Hour)
	ca2, _ := mustCA(t, now, 20*time.Hour)
	serving1, caSec1 := cmSecrets(o, ca1, mustLeaf(t, ca1, dns, now, time.Hour))
	cs := kubefake.NewClientset(serving1, caSec1)
	log := funcr.New(func(string, string) {}, funcr.Options{})
	running := &cmSource{store: newStore(ModeCertManager), o: o, log: log, kick: newKicker()}
	runSecretWatch(t, running, cs)
	running.load()

	// The CA renewed, the leaf not re-issued yet: both CAs are named.
	_, caSec2 := cmSecrets(o, ca2, pki.KeyPair{})
	updateAndAwait(t, running, cs, caSec2)
	running.load()
	if b := running.CABundle(); !pki.BundleContains(b, ca1.CertPEM) || !pki.BundleContains(b, ca2.CertPEM) {
		t.Fatalf("bundle while the leaf is of the earlier CA: holds it %v, the new one %v",
			pki.BundleContains(b, ca1.CertPEM), pki.BundleContains(b, ca2.CertPEM))
	}

	// The leaf re-issued from the new CA: the earlier CA is in no Secret.
	serving2, _ := cmSecrets(o, ca2, mustLeaf(t, ca2, dns, now, time.Hour))
	updateAndAwait(t, running, cs, serving2)
	running.load()
	fresh := &cmSource{store: newStore(ModeCertManager), o: o, log: log, kick: newKicker()}
	runSecretWatch(t, fresh, cs)
	fresh.load()
	if a, b := running.CABundle(), fresh.CABundle(); string(a) != string(b) {
		t.Errorf("replicas serve different bundles from the same Secrets: running one holds the earlier CA %v, fresh one %v",
			pki.BundleContains(a, ca1.CertPEM), pki.BundleContains(b, ca1.CertPEM))
	}
	client := leafWithEKU(t, ca1, nil, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now)
	cc, err := client.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*cmSource{"running": running, "fresh": fresh} {
		if err := verifyClient([]*x509.Certificate{cc.Leaf}, s.pool, now); err == nil {
			t.Errorf("%s replica trusts a client certificate of a CA no Secret names any longer", name)
		}
	}
}

// TestCertManagerWaitsForCAInBundleWithoutTimeout: in cert-manager mode
// cainjector, not meshguard, writes the caBundles; if it never puts the new
// CA in (down, annotation removed), the leader never asks for a leaf of that
// CA, CAWaitTimeout or not: such a leaf would fail every call (self mode,
// which writes the caBundles itself, keeps the timeout). The wait is logged
// as an error once CAWaitTimeout has passed.
func TestCertManagerWaitsForCAInBundleWithoutTimeout(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var triggered atomic.Bool
	f := newReissueFixture(t, start, Options{Mode: ModeCertManager, Namespace: "mg", CheckInterval: time.Hour, PropagationDelay: 10 * time.Millisecond,
		WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}, nil, func() { triggered.Store(true); cancel() })
	var logs logSink
	f.s.log = logs.logger()
	if err := f.s.watch.run(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	pass := 0
	at := []time.Duration{0, f.o.CAWaitTimeout - time.Second, f.o.CAWaitTimeout + time.Second, 10 * f.o.CAWaitTimeout}
	f.s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return start.Add(at[min(pass, len(at)-1)]) }
	f.cs.PrependReactor("get", "validatingwebhookconfigurations", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		pass++
		if pass > len(at) {
			cancel() // the passes of the test are over: end the term
		}
		return true, &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mg"},
			Webhooks: []admissionv1.ValidatingWebhook{{Name: "a.x.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: f.oldCA.CertPEM}}}}, nil
	})
	if err := f.s.reissue(ctx); err != nil {
		t.Fatal(err)
	}
	if triggered.Load() {
		t.Errorf("re-issuing from a CA no caBundle holds was asked for after CAWaitTimeout %v (%d passes)", f.o.CAWaitTimeout, pass)
	}
	if errs := logs.errors(); !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "not in every webhook caBundle") }) {
		t.Errorf("errors logged %q, want one saying the new CA is not in every caBundle", errs)
	}
}
