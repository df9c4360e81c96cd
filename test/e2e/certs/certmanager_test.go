package certs_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/certs/pki"
	"github.com/meshguard/meshguard/test/cluster"
)

func TestDetectModeFindsCertManager(t *testing.T) {
	mode, err := certs.DetectMode(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	if mode != certs.ModeCertManager {
		t.Fatalf("DetectMode = %q with cert-manager CRDs installed, want %q", mode, certs.ModeCertManager)
	}
}

func TestCertManagerMode(t *testing.T) {
	const ns, cfgName = "mg-cm", "certs-e2e-cm"
	cluster.CreateNamespace(t, kube, ns, map[string]string{"certs-e2e": ns})
	o := certs.Options{
		Mode: certs.ModeCertManager, Namespace: ns, ServiceName: "meshguard", Hosts: []string{"127.0.0.1"},
		WebhookConfigs:   certs.WebhookConfigNames{Validating: []string{cfgName}},
		PropagationDelay: time.Second,
	}
	var src certs.Source
	startManager(t, func(mgr manager.Manager) {
		var err error
		if src, err = certs.Setup(context.Background(), mgr, o, testLogger("certs-cm")); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()

	// The chain becomes Ready and the leaf is served with the right SANs.
	for _, name := range []string{"meshguard-ca", "meshguard-serving"} {
		if err := cluster.Eventually(60*time.Second, func() error { return certificateReady(ctx, ns, name) }); err != nil {
			t.Fatalf("Certificate %s/%s: %v", ns, name, err)
		}
	}
	if err := cluster.Eventually(30*time.Second, func() error { return src.Ready(nil) }); err != nil {
		t.Fatalf("source never ready: %v", err)
	}
	if got := certs.ModeOf(src); got != certs.ModeCertManager {
		t.Fatalf("ModeOf = %q", got)
	}
	url, calls := serveWebhook(t, src)
	leaf := servedLeaf(src)
	wantDNS := []string{"meshguard.mg-cm.svc", "meshguard.mg-cm.svc.cluster.local"}
	if !slices.Equal(leaf.DNSNames, wantDNS) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("leaf SANs DNS=%v IP=%v, want %v and 127.0.0.1", leaf.DNSNames, leaf.IPAddresses, wantDNS)
	}

	// cainjector fills caBundle from the CA Certificate; it verifies the served leaf.
	vwc := webhookConfig(cfgName, ns, url, map[string]string{cmapi.WantInjectAnnotation: certs.InjectCAFrom(o)})
	if err := kube.Client.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Client.Delete(context.Background(), vwc) })
	if err := cluster.Eventually(30*time.Second, func() error {
		bundle, err := caBundle(ctx, cfgName)
		if err != nil {
			return err
		}
		for _, host := range []string{"127.0.0.1", "meshguard.mg-cm.svc"} {
			if err := pki.VerifyLeaf(servedLeaf(src), bundle, host, time.Now()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("caBundle: %v", err)
	}
	// The API server calls the webhook over it.
	if err := cluster.Eventually(30*time.Second, func() error {
		return kube.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "first-", Namespace: ns}}, client.DryRunAll)
	}); err != nil {
		t.Fatalf("admission through the webhook: %v", err)
	}
	if calls.Load() == 0 {
		t.Fatal("admission succeeded without calling the webhook")
	}

	l := startLoad(ns)
	progress(t, calls, 20)

	// Forced leaf renewal: new leaf, same CA, no failures.
	oldLeaf := servedLeaf(src)
	triggerIssuing(t, ns, "meshguard-serving")
	if err := cluster.Eventually(30*time.Second, func() error {
		if cur := servedLeaf(src); cur.SerialNumber.Cmp(oldLeaf.SerialNumber) == 0 {
			return fmt.Errorf("still serving serial %s", cur.SerialNumber)
		}
		return nil
	}); err != nil {
		t.Fatalf("leaf renewal: %v", err)
	}
	progress(t, calls, 20)

	// Forced CA renewal: meshguard re-issues the leaf from the new CA once
	// cainjector has merged it into caBundle; the old CA stays in the bundle.
	oldCA := secretCert(t, ns, "meshguard-ca")
	triggerIssuing(t, ns, "meshguard-ca")
	var newCA []byte
	if err := cluster.Eventually(60*time.Second, func() error {
		newCA = secretCert(t, ns, "meshguard-ca")
		if string(newCA) == string(oldCA) {
			return fmt.Errorf("CA not renewed yet")
		}
		cas, _ := pki.ParseCerts(newCA)
		if !pki.SignedBy(servedLeaf(src), cas[0]) {
			return fmt.Errorf("served leaf not yet signed by the new CA")
		}
		return nil
	}); err != nil {
		t.Fatalf("CA renewal: %v", err)
	}
	progress(t, calls, 20)
	l.finish(t, 60)

	bundle, err := caBundle(ctx, cfgName)
	if err != nil {
		t.Fatal(err)
	}
	if !pki.BundleContains(bundle, oldCA) || !pki.BundleContains(bundle, newCA) {
		t.Errorf("caBundle after CA rotation lacks the old or new CA")
	}
	// The Source trusts what the Secrets name now: once the leaf of the new
	// CA is served, the old CA is in neither Secret (caBundle keeps it).
	if !pki.BundleContains(src.CABundle(), newCA) || pki.BundleContains(src.CABundle(), oldCA) {
		t.Errorf("Source.CABundle after CA rotation: holds the new CA %v (want true), the old one %v (want false)",
			pki.BundleContains(src.CABundle(), newCA), pki.BundleContains(src.CABundle(), oldCA))
	}
}

func certificateReady(ctx context.Context, ns, name string) error {
	var crt cmapi.Certificate
	if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &crt); err != nil {
		return err
	}
	for _, c := range crt.Status.Conditions {
		if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("not Ready: %+v", crt.Status.Conditions)
}

func triggerIssuing(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := cluster.Eventually(20*time.Second, func() error {
		var crt cmapi.Certificate
		if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &crt); err != nil {
			return err
		}
		triggered, err := certs.TriggerIssuing(ctx, kube.Client, &crt, "ManuallyTriggered", "e2e test")
		if err == nil && !triggered {
			return fmt.Errorf("Certificate %s/%s is already issuing", ns, name)
		}
		return err
	}); err != nil {
		t.Fatalf("trigger issuing of %s/%s: %v", ns, name, err)
	}
}

func secretCert(t *testing.T, ns, name string) []byte {
	t.Helper()
	var s corev1.Secret
	if err := kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatalf("get Secret %s/%s: %v", ns, name, err)
	}
	return s.Data[corev1.TLSCertKey]
}

func caBundle(ctx context.Context, name string) ([]byte, error) {
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := kube.Client.Get(ctx, client.ObjectKey{Name: name}, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Webhooks) == 0 || len(cfg.Webhooks[0].ClientConfig.CABundle) == 0 {
		return nil, fmt.Errorf("ValidatingWebhookConfiguration %s has no caBundle yet", name)
	}
	return cfg.Webhooks[0].ClientConfig.CABundle, nil
}

// TestCertManagerModeAppliesChangedSettings: a leader started with another
// --service-name and --cert-duration applies them to the existing serving
// Certificate (server-side apply under certs.FieldManager), cert-manager
// re-issues it and the new leaf is served; fields meshguard does not set
// (a label, subject) stay with the manager that wrote them.
func TestCertManagerModeAppliesChangedSettings(t *testing.T) {
	const ns = "mg-cm-apply"
	cluster.CreateNamespace(t, kube, ns, nil)
	ctx := context.Background()
	o := certs.Options{Mode: certs.ModeCertManager, Namespace: ns, ServiceName: "old",
		WebhookConfigs: certs.WebhookConfigNames{Validating: []string{"certs-e2e-apply-unused"}}}
	run := func(t *testing.T, o certs.Options, wantDNS []string) certs.Source {
		var src certs.Source
		startManager(t, func(mgr manager.Manager) {
			var err error
			if src, err = certs.Setup(ctx, mgr, o, testLogger("certs-cm-apply")); err != nil {
				t.Fatal(err)
			}
		})
		if err := cluster.Eventually(90*time.Second, func() error {
			if leaf := servedLeaf(src); leaf == nil || !slices.Equal(leaf.DNSNames, wantDNS) {
				return fmt.Errorf("not serving a leaf for %v yet", wantDNS)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return src
	}
	t.Run("first leader", func(t *testing.T) {
		run(t, o, []string{"old.mg-cm-apply.svc", "old.mg-cm-apply.svc.cluster.local"})
	})
	// Another manager (a chart, a user) adds fields meshguard does not set.
	var crt cmapi.Certificate
	key := client.ObjectKey{Namespace: ns, Name: "meshguard-serving"}
	if err := cluster.Eventually(20*time.Second, func() error {
		if err := kube.Client.Get(ctx, key, &crt); err != nil {
			return err
		}
		crt.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
		crt.Spec.Subject = &cmapi.X509Subject{Organizations: []string{"example"}}
		return kube.Client.Update(ctx, &crt, client.FieldOwner("helm"))
	}); err != nil {
		t.Fatal(err)
	}

	o.ServiceName, o.LeafDuration = "new", 48*time.Hour
	t.Run("new leader", func(t *testing.T) {
		src := run(t, o, []string{"new.mg-cm-apply.svc", "new.mg-cm-apply.svc.cluster.local"})
		if leaf := servedLeaf(src); !slices.Equal(leaf.Subject.Organization, []string{"example"}) || leaf.NotAfter.Sub(leaf.NotBefore) != 48*time.Hour {
			t.Errorf("served leaf: organization %v, lifetime %s; want [example], 48h", leaf.Subject.Organization, leaf.NotAfter.Sub(leaf.NotBefore))
		}
	})
	if err := kube.Client.Get(ctx, key, &crt); err != nil {
		t.Fatal(err)
	}
	if crt.Labels["app.kubernetes.io/managed-by"] != "Helm" || crt.Spec.Subject == nil || !slices.Equal(crt.Spec.Subject.Organizations, []string{"example"}) {
		t.Errorf("fields of another manager changed: labels %v, subject %+v", crt.Labels, crt.Spec.Subject)
	}
	owned := false
	for _, mf := range crt.ManagedFields {
		owned = owned || (mf.Manager == certs.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply)
	}
	if !owned {
		t.Errorf("no Apply entry of %s in managedFields: %+v", certs.FieldManager, crt.ManagedFields)
	}
}
