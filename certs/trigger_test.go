package certs

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/meshguard/meshguard/certs/pki"
)

// TestTriggerIssuing: the Issuing condition is set as cmctl renew sets it
// (apiutil.SetCertificateCondition), replacing an Issuing=False a failed
// issuance left; conditions is a list map keyed by type, so a second
// Issuing entry is a duplicate the API server refuses.
func TestTriggerIssuing(t *testing.T) {
	scheme, err := newCMScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		have []cmapi.CertificateCondition
		want bool // triggered
	}{
		{"no conditions", nil, true},
		{"Ready only", []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue}}, true},
		{"after a failed issuance", []cmapi.CertificateCondition{
			{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue},
			{Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionFalse, Reason: "Failed"},
		}, true},
		{"already issuing", []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: "mg-serving", Namespace: "mg"},
				Status: cmapi.CertificateStatus{Conditions: tc.have}}
			cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(crt).WithStatusSubresource(crt).Build()
			ctx := context.Background()
			var got cmapi.Certificate
			if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &got); err != nil {
				t.Fatal(err)
			}
			triggered, err := TriggerIssuing(ctx, cl, &got, TriggerReason, "test")
			if err != nil || triggered != tc.want {
				t.Fatalf("TriggerIssuing = %v, %v; want %v", triggered, err, tc.want)
			}
			if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &got); err != nil {
				t.Fatal(err)
			}
			issuing := 0
			for _, c := range got.Status.Conditions {
				if c.Type != cmapi.CertificateConditionIssuing {
					continue
				}
				issuing++
				if c.Status != cmmeta.ConditionTrue {
					t.Errorf("Issuing condition %s (%s), want True", c.Status, c.Reason)
				}
			}
			if issuing != 1 {
				t.Errorf("%d Issuing conditions, want 1: %+v", issuing, got.Status.Conditions)
			}
		})
	}
}

// TestReissueRetriesSlowly: while the served leaf is not from the CA in the
// CA Secret, the leader asks cert-manager to re-issue it once, and again at
// most every CheckInterval, not on every 250 ms pass: a failing issuance
// (cert-manager leaves Issuing=False, here at once) would otherwise be
// re-triggered in a hot loop, past cert-manager's own backoff.
func TestReissueRetriesSlowly(t *testing.T) {
	var triggers atomic.Int32
	f := newReissueFixture(t, time.Now(),
		Options{Mode: ModeCertManager, Namespace: "mg", CheckInterval: time.Hour, PropagationDelay: time.Millisecond},
		[]cmapi.CertificateCondition{{Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionFalse, Reason: "Failed"}},
		func() { triggers.Add(1) }) // the issuance fails at once: Issuing stays False
	s, cs := f.s, f.cs
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := s.watch.run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.reissue(ctx); err != nil {
		t.Fatal(err)
	}
	if n := triggers.Load(); n != 1 {
		t.Fatalf("Issuing set %d times in 1.5 s, want once", n)
	}
	// Once asked, it waits for the new leaf (a Secret event) or CheckInterval,
	// not polling the webhook configurations every 250 ms.
	gets := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "validatingwebhookconfigurations" {
			gets++
		}
	}
	if gets > 2 { // the pass that sees the new CA, the one after PropagationDelay
		t.Errorf("%d reads of the validating configuration in 1.5 s, want 2: none once re-issuing was asked for", gets)
	}
}

// reissueFixture is cert-manager mode with the CA Secret holding newCA while
// the served leaf is still one of oldCA: the state in which the leader asks
// cert-manager to re-issue the serving Certificate (whose status starts with
// conditions). onTrigger runs on each status update, i.e. each time Issuing
// is set. The caller runs s.watch with its own context.
type reissueFixture struct {
	o            Options
	oldCA, newCA pki.KeyPair
	cs           *kubefake.Clientset
	s            *cmSource
}

func newReissueFixture(t *testing.T, start time.Time, opts Options, conditions []cmapi.CertificateCondition, onTrigger func()) reissueFixture {
	t.Helper()
	oldCA, _ := mustCA(t, start, time.Hour)
	newCA, _ := mustCA(t, start, time.Hour)
	leaf := mustLeaf(t, oldCA, []string{"mg.mg.svc"}, start, time.Hour)
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name string, kp pki.KeyPair) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace},
			Data: map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM}}
	}
	cs := kubefake.NewClientset(secret(o.caSecretName(), newCA), secret(o.servingSecretName(), leaf))
	scheme, err := newCMScheme()
	if err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: o.servingCertificateName(), Namespace: o.Namespace},
		Status: cmapi.CertificateStatus{Conditions: conditions}}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(crt).WithStatusSubresource(crt).
		WithInterceptorFuncs(interceptor.Funcs{SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
			onTrigger()
			return nil
		}}).Build()
	s := &cmSource{store: newStore(ModeCertManager), o: o, log: logr.Discard(), cl: cl, cs: cs, kick: newKicker()}
	if s.watch, err = newSecretWatch(cs, o.Namespace, []string{o.caSecretName(), o.servingSecretName()}, func() {}); err != nil {
		t.Fatal(err)
	}
	return reissueFixture{o: o, oldCA: oldCA, newCA: newCA, cs: cs, s: s}
}
