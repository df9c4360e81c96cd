package certs

import (
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
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
