package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/meshguard/meshguard/certs/pki"
)

// docs/operations.md told operators to delete both
// self-mode Secrets to drop a leaked CA at once, but ensureCA carried the
// served bundle (the leaked CA in it) into the new CA Secret's ca.crt, where
// it stayed, and in every caBundle, until it expired. meshguard's own rule:
// Istio keeps one CA and has no such carry-over.

// handshake runs a TLS handshake between a server serving st's certificate
// and a client trusting caBundle (as the API server trusts a webhook's), at
// now, for host. Over loopback TCP, not net.Pipe: a client's alert written
// while the server still writes its flight would block on an unbuffered pipe.
func handshake(st *store, caBundle []byte, host string, now time.Time) error {
	pool := x509.NewCertPool()
	cas, err := pki.ParseCerts(caBundle)
	if err != nil {
		return err
	}
	for _, c := range cas {
		pool.AddCert(c)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc, err := ln.Accept()
		if err != nil {
			return
		}
		defer sc.Close()
		_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tls.Server(sc, &tls.Config{GetCertificate: st.GetCertificate}).Handshake()
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	_ = cc.SetDeadline(time.Now().Add(10 * time.Second))
	err = tls.Client(cc, &tls.Config{RootCAs: pool, ServerName: host, Time: func() time.Time { return now }}).Handshake()
	cc.Close()
	<-done
	return err
}

func webhookCABundle(t *testing.T, cs *kubefake.Clientset) []byte {
	t.Helper()
	cfg, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), "mg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Webhooks[0].ClientConfig.CABundle
}

// loadLeafSecret installs the leaf Secret's pair in st, as a replica's
// informer would; a missing Secret changes nothing.
func loadLeafSecret(t *testing.T, st *store, sec *corev1.Secret) {
	t.Helper()
	if sec == nil {
		return
	}
	if err := st.set(pki.KeyPair{CertPEM: sec.Data[corev1.TLSCertKey], KeyPEM: sec.Data[corev1.TLSPrivateKeyKey]}, sec.Data["ca.crt"]); err != nil {
		t.Fatalf("replica refused the leaf Secret: %v", err)
	}
}

// TestSelfDeletedSecretsDropCarriedCA: once the CA Secret is deleted (alone,
// or with the leaf Secret, in either order, a pass apart or at once), the old
// CA stays in the caBundles only while a leaf of it may still be served:
// once every replica serves a leaf of the new CA (the leader's and the leaf
// Secret's for PropagationDelay), it leaves the CA Secret's ca.crt, the leaf
// Secret's ca.crt and every caBundle, and a leaf forged with its key no
// longer passes a handshake. Throughout, every replica (one of them loading
// the leaf Secret a pass late) passes a handshake with a client trusting the
// caBundle. A scheduled rotation keeps the old CA until it expires.
func TestSelfDeletedSecretsDropCarriedCA(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	d := 3 * time.Second // PropagationDelay's default, set below
	// Pass times: the new CA is trusted at d+2s and its leaf written; the
	// leader serves it at d+3s; the old CA may leave at 2d+4s.
	at := []time.Duration{0, time.Second, d + 2*time.Second, d + 3*time.Second, 2*d + 4*time.Second, 30 * time.Minute}
	const dropPass = 4
	type step struct {
		deleteCA, deleteLeaf, newLeader bool
	}
	for _, c := range []struct {
		name       string
		caDuration time.Duration // --cert-ca-duration; the CA in the Secret is of 100 h
		before     map[int]step  // done before pass i
		dropped    bool
	}{
		{"both Secrets deleted", 100 * time.Hour, map[int]step{0: {deleteCA: true, deleteLeaf: true}}, true},
		{"CA Secret deleted, leaf Secret a pass later", 100 * time.Hour, map[int]step{0: {deleteCA: true}, 1: {deleteLeaf: true}}, true},
		{"leaf Secret deleted, CA Secret a pass later", 100 * time.Hour, map[int]step{0: {deleteLeaf: true}, 1: {deleteCA: true}}, true},
		{"CA Secret deleted alone", 100 * time.Hour, map[int]step{0: {deleteCA: true}}, true},
		{"both deleted, new leader once the new leaf is written", 100 * time.Hour, map[int]step{0: {deleteCA: true, deleteLeaf: true}, 3: {newLeader: true}}, true},
		{"both deleted, new leader once the new CA is written", 100 * time.Hour, map[int]step{0: {deleteCA: true, deleteLeaf: true}, 1: {newLeader: true}}, true},
		{"scheduled rotation (CA duration shortened) keeps the old CA", 10 * time.Hour, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := Options{Mode: ModeSelf, Namespace: "mg", Hosts: []string{"127.0.0.1"}, CADuration: c.caDuration, LeafDuration: time.Hour,
				PropagationDelay: d, WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			dns, _ := pki.SplitHosts(o.DNSNames())
			host := dns[0]
			oldCA, oldCACert, leaf, cs := selfWithCA(t, o, start, 100*time.Hour)
			newLeader := func() *selfSource {
				return &selfSource{store: newStore(ModeSelf), o: o, log: logr.Discard(), cs: cs, kick: newKicker()}
			}
			s := newLeader()
			late := newStore(ModeSelf) // a replica loading the leaf Secret a pass late
			servers := []*store{s.store, late}
			for _, st := range servers {
				if err := st.set(leaf, oldCA.CertPEM); err != nil {
					t.Fatal(err)
				}
			}
			getSecret := func(name string) *corev1.Secret {
				sec, err := s.getSecret(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				return sec
			}
			check := func(when string, i int, now time.Time) {
				t.Helper()
				bundle := webhookCABundle(t, cs)
				for j, st := range servers {
					if err := handshake(st, bundle, host, now); err != nil {
						t.Fatalf("pass %d (+%s) %s: replica %d fails a handshake with a client trusting the caBundle: %v", i, at[i], when, j, err)
					}
				}
			}
			var lastLeafSec *corev1.Secret
			for i, a := range at {
				now := start.Add(a)
				st := c.before[i]
				for _, del := range []struct {
					do   bool
					name string
				}{{st.deleteCA, o.selfCASecretName()}, {st.deleteLeaf, o.selfLeafSecretName()}} {
					if del.do {
						if err := cs.CoreV1().Secrets("mg").Delete(ctx, del.name, metav1.DeleteOptions{}); err != nil {
							t.Fatal(err)
						}
					}
				}
				if st.newLeader {
					// A replica until now: it served the old leaf, then
					// whatever the leaf Secret held.
					s = newLeader()
					if err := s.set(leaf, oldCA.CertPEM); err != nil {
						t.Fatal(err)
					}
					loadLeafSecret(t, s.store, getSecret(o.selfLeafSecretName()))
					servers = append(servers, s.store)
				}
				for _, srv := range servers {
					srv.now = func() time.Time { return now }
				}
				loadLeafSecret(t, late, lastLeafSec)
				if _, err := s.reconcile(ctx); err != nil {
					t.Fatalf("pass %d: %v", i, err)
				}
				check("before the replicas load the leaf Secret", i, now)
				lastLeafSec = getSecret(o.selfLeafSecretName())
				for _, srv := range servers {
					if srv != late {
						loadLeafSecret(t, srv, lastLeafSec)
					}
				}
				check("after", i, now)

				caSec := getSecret(o.selfCASecretName())
				inHooks, err := bundlesContain(ctx, cs, o.WebhookConfigs, oldCA.CertPEM)
				if err != nil {
					t.Fatal(err)
				}
				where := map[string]bool{"webhook caBundle": inHooks, "CA Secret ca.crt": pki.BundleContains(caSec.Data["ca.crt"], oldCA.CertPEM),
					"served bundle": pki.BundleContains(s.CABundle(), oldCA.CertPEM)}
				if lastLeafSec != nil {
					where["leaf Secret ca.crt"] = pki.BundleContains(lastLeafSec.Data["ca.crt"], oldCA.CertPEM)
				}
				for w, has := range where {
					if wantHas := !c.dropped || i < dropPass; has != wantHas {
						t.Errorf("pass %d (+%s): old CA in %s = %v, want %v", i, a, w, has, wantHas)
					}
				}
				if i >= dropPass {
					if v, ok := caSec.Annotations[carriedAnnotation]; ok {
						t.Errorf("pass %d: CA Secret still carries annotation %s=%q", i, carriedAnnotation, v)
					}
					if cur := s.current(); pki.SignedBy(cur.Leaf, oldCACert) {
						t.Fatalf("pass %d: the leader still serves a leaf of the old CA", i)
					}
				}
			}
			// A leaf forged with the old CA's key.
			now := start.Add(at[len(at)-1])
			forged, err := pki.NewLeaf(oldCA, pki.LeafSpec{DNSNames: dns, Lifetime: time.Hour}, now)
			if err != nil {
				t.Fatal(err)
			}
			evil := newStore(ModeSelf)
			evil.now = func() time.Time { return now }
			if err := evil.set(forged, oldCA.CertPEM); err != nil {
				t.Fatal(err)
			}
			err = handshake(evil, webhookCABundle(t, cs), host, now)
			if c.dropped && err == nil {
				t.Error("a leaf forged with the old CA's key passes a handshake with a client trusting the caBundle")
			}
			if !c.dropped && err != nil {
				t.Errorf("scheduled rotation: the old CA left the caBundle before it expired: %v", err)
			}
		})
	}
}

// TestSelfCarriedAnnotationUnreadable: an entry of the annotation that is not
// a certificate fingerprint is reported (naming the Secret and the
// annotation) and ignored; the CAs it does name still leave.
func TestSelfCarriedAnnotationUnreadable(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	o, err := Options{Mode: ModeSelf, Namespace: "mg", Hosts: []string{"127.0.0.1"}, CADuration: 100 * time.Hour, LeafDuration: time.Hour,
		WebhookConfigs: WebhookConfigNames{Validating: []string{"mg"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	ca, _, leaf, cs := selfWithCA(t, o, start, 100*time.Hour)
	other, otherCert := mustCA(t, start.Add(-2*time.Hour), 100*time.Hour)
	caSec, err := cs.CoreV1().Secrets("mg").Get(ctx, o.selfCASecretName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caSec.Data["ca.crt"] = append(append([]byte{}, other.CertPEM...), ca.CertPEM...)
	caSec.Annotations = map[string]string{carriedAnnotation: "not-a-fingerprint, " + pki.Fingerprint(otherCert)}
	if _, err := cs.CoreV1().Secrets("mg").Update(ctx, caSec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs []string
	log := funcr.New(func(prefix, args string) { logs = append(logs, args) }, funcr.Options{})
	s := &selfSource{store: newStore(ModeSelf), o: o, log: log, cs: cs, kick: newKicker()}
	if err := s.set(leaf, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	for _, a := range []time.Duration{0, o.PropagationDelay + time.Second} {
		s.now = func() time.Time { return start.Add(a) }
		if _, err := s.reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := bundlesContain(ctx, cs, o.WebhookConfigs, other.CertPEM); err != nil || ok {
		t.Errorf("the CA the annotation names is still in the caBundle: %v, %v", ok, err)
	}
	joined := strings.Join(logs, "\n")
	if !strings.Contains(joined, "not-a-fingerprint") || !strings.Contains(joined, carriedAnnotation) || !strings.Contains(joined, "mg/"+o.selfCASecretName()) {
		t.Errorf("the unreadable entry was not reported with the Secret and annotation; logs:\n%s", joined)
	}
}
