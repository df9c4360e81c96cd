package certs

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/meshguard/meshguard/certs/pki"
)

// TestCertManagerLeafMissingNamesReported: cert-manager mode leaves an
// existing Certificate alone, so a served leaf without a name meshguard
// serves under (a --service-name or --cert-extra-san added later) is
// reported as an error naming the Certificate, not left to show as failing
// handshakes.
func TestCertManagerLeafMissingNamesReported(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now, time.Hour)
	o, err := Options{Mode: ModeCertManager, Namespace: "mg", Hosts: []string{"127.0.0.1"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		dns      []string
		reported bool
	}{
		{"covers every name", o.DNSNames(), false},
		{"lacks the extra SAN and the Service's names", []string{"old.mg.svc"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns, ips := pki.SplitHosts(tc.dns)
			leaf, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: time.Hour}, now)
			if err != nil {
				t.Fatal(err)
			}
			cs := kubefake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.servingSecretName(), Namespace: o.Namespace},
				Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM, "ca.crt": ca.CertPEM}})
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
			if s.current() == nil {
				t.Fatal("no serving certificate loaded")
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tc.reported && (len(errs) != 1 || !strings.Contains(errs[0], o.servingCertificateName()) || !strings.Contains(errs[0], "127.0.0.1")):
				t.Errorf("errors logged %q, want one naming the Certificate and the wanted names", errs)
			case !tc.reported && len(errs) > 0:
				t.Errorf("errors logged for a leaf covering every name: %q", errs)
			}
		})
	}
}
