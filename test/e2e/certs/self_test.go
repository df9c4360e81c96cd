package certs_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/certs/pki"
	"github.com/meshguard/meshguard/test/cluster"
)

// TestSelfMode runs self mode with lifetimes of seconds so that, under
// continuous admission load, the leaf renews several times, the CA renews
// once (the bundle then holds both CAs) and the old CA is pruned when it
// expires, all without a failed request.
func TestSelfMode(t *testing.T) {
	const ns, cfgName = "mg-self", "certs-e2e-self"
	cluster.CreateNamespace(t, kube, ns, map[string]string{"certs-e2e": ns})
	ctx := context.Background()

	// The configuration exists first (as the deploy manifests install it),
	// without caBundle; self mode fills it in. Its URL is known before the
	// server starts because the port is picked up front.
	o := certs.Options{
		Mode: certs.ModeSelf, Namespace: ns, ServiceName: "meshguard", Hosts: []string{"127.0.0.1"},
		WebhookConfigs: certs.WebhookConfigNames{Validating: []string{cfgName}},
		CADuration:     20 * time.Second, LeafDuration: 6 * time.Second,
		CheckInterval: 200 * time.Millisecond, PropagationDelay: time.Second,
	}
	var src certs.Source
	startManager(t, func(mgr manager.Manager) {
		var err error
		if src, err = certs.Setup(ctx, mgr, o, testLogger("certs-self")); err != nil {
			t.Fatal(err)
		}
	})
	if err := cluster.Eventually(30*time.Second, func() error { return src.Ready(nil) }); err != nil {
		t.Fatalf("source never ready: %v", err)
	}
	url, calls := serveWebhook(t, src)
	vwc := webhookConfig(cfgName, ns, url, nil)
	if err := kube.Client.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Client.Delete(context.Background(), vwc) })

	// caBundle is set by an update under meshguard's field manager (not a
	// server-side apply, which would co-own the webhook entries).
	if err := cluster.Eventually(30*time.Second, func() error {
		bundle, err := caBundle(ctx, cfgName)
		if err != nil {
			return err
		}
		return pki.VerifyLeaf(servedLeaf(src), bundle, "127.0.0.1", time.Now())
	}); err != nil {
		t.Fatalf("caBundle: %v", err)
	}
	var got admissionregistrationv1.ValidatingWebhookConfiguration
	if err := kube.Client.Get(ctx, client.ObjectKey{Name: cfgName}, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == certs.FieldManager && m.Operation == metav1.ManagedFieldsOperationUpdate
	}) {
		t.Errorf("no update entry of field manager %q in %+v", certs.FieldManager, got.ManagedFields)
	}

	firstCA := caSecretCA(t, ns)
	l := startLoad(ns)
	progress(t, calls, 20)

	// Watch until the leaf has come from a second CA and the first CA has
	// expired out of the bundle, recording what was served on the way.
	serials := map[string]bool{}
	sawOverlap := false
	deadline := time.Now().Add(60 * time.Second)
	for {
		leaf := servedLeaf(src)
		serials[leaf.SerialNumber.String()] = true
		bundle, err := caBundle(ctx, cfgName)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.VerifyLeaf(leaf, bundle, "127.0.0.1", time.Now()); err != nil {
			t.Fatalf("served leaf does not verify against the injected caBundle: %v", err)
		}
		cas, _ := pki.ParseCerts(bundle)
		firstIn := pki.BundleContains(bundle, firstCA)
		if len(cas) == 2 && firstIn && !pki.SignedByPEM(leaf, firstCA) {
			sawOverlap = true // leaf from the new CA while the old one is still trusted
		}
		if sawOverlap && !firstIn && len(cas) == 1 {
			break // old CA expired and pruned
		}
		if time.Now().After(deadline) {
			t.Fatalf("no full CA rotation within 60s: overlap seen=%v, bundle has %d CAs, first CA present=%v", sawOverlap, len(cas), firstIn)
		}
		time.Sleep(100 * time.Millisecond)
	}
	progress(t, calls, 20)
	l.finish(t, 100)
	if len(serials) < 4 {
		t.Errorf("served %d distinct leaves, want >= 4 (renewal at 2/3 of 6s over ~20s)", len(serials))
	}
	if !pki.BundleContains(src.CABundle(), caSecretCA(t, ns)) || pki.BundleContains(src.CABundle(), firstCA) {
		t.Errorf("Source.CABundle does not follow the rotation")
	}
}

// TestSelfModeWatchesConfigs: caBundle is filled in as soon as the
// configuration appears, and a re-apply that wipes it (GitOps, istio #5828)
// is repaired at once. The periodic check is a minute, longer than the
// test waits, so this proves the watch.
func TestSelfModeWatchesConfigs(t *testing.T) {
	const ns, cfgName = "mg-self-watch", "certs-e2e-self-watch"
	ctx := context.Background()
	src := startSelf(t, cfgName, certs.Options{Namespace: ns, CheckInterval: time.Minute})
	if err := cluster.Eventually(30*time.Second, func() error { return src.Ready(nil) }); err != nil {
		t.Fatalf("source never ready: %v", err)
	}
	verified := func() error {
		bundle, err := caBundle(ctx, cfgName)
		if err != nil {
			return err
		}
		return pki.VerifyLeaf(servedLeaf(src), bundle, "127.0.0.1", time.Now())
	}
	vwc := webhookConfig(cfgName, ns, "https://127.0.0.1:1/validate", nil)
	if err := kube.Client.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Client.Delete(context.Background(), vwc) })
	if err := cluster.Eventually(10*time.Second, verified); err != nil {
		t.Fatalf("caBundle not filled in on creation: %v", err)
	}
	// Wipe it as a client-side re-apply of the manifest would.
	var cur admissionregistrationv1.ValidatingWebhookConfiguration
	if err := kube.Client.Get(ctx, client.ObjectKey{Name: cfgName}, &cur); err != nil {
		t.Fatal(err)
	}
	cur.Webhooks[0].ClientConfig.CABundle = nil
	if err := kube.Client.Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	if _, err := caBundle(ctx, cfgName); err == nil {
		t.Log("caBundle already restored when read back")
	}
	if err := cluster.Eventually(10*time.Second, verified); err != nil {
		t.Fatalf("caBundle not restored: %v", err)
	}
}

// TestSelfModeCASecretDeleted: deleting the CA Secret (to force a new CA)
// makes a new CA, and the caBundle keeps trusting the served leaf of the old
// CA until a leaf of the new one is served: at no point does the API server
// stop trusting what meshguard serves.
func TestSelfModeCASecretDeleted(t *testing.T) {
	const ns, cfgName = "mg-self-ca-deleted", "certs-e2e-self-ca-deleted"
	ctx := context.Background()
	src := startSelf(t, cfgName, certs.Options{Namespace: ns, CheckInterval: 200 * time.Millisecond, PropagationDelay: time.Second})
	vwc := webhookConfig(cfgName, ns, "https://127.0.0.1:1/validate", nil)
	if err := kube.Client.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Client.Delete(context.Background(), vwc) })
	trusted := func() error {
		if err := src.Ready(nil); err != nil {
			return err
		}
		bundle, err := caBundle(ctx, cfgName)
		if err != nil {
			return err
		}
		return pki.VerifyLeaf(servedLeaf(src), bundle, "127.0.0.1", time.Now())
	}
	if err := cluster.Eventually(30*time.Second, trusted); err != nil {
		t.Fatalf("caBundle never trusted the served leaf: %v", err)
	}
	firstCA := caSecretCA(t, ns)
	if err := kube.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meshguard-self-ca"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for pki.SignedByPEM(servedLeaf(src), firstCA) {
		if err := trusted(); err != nil {
			t.Fatalf("after the CA Secret was deleted: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no leaf of a new CA served within 30s of deleting the CA Secret")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cluster.Eventually(10*time.Second, trusted); err != nil {
		t.Fatalf("the new CA's leaf: %v", err)
	}
	if newCA := caSecretCA(t, ns); !pki.SignedByPEM(servedLeaf(src), newCA) {
		t.Error("the served leaf is not signed by the CA in the re-created CA Secret")
	}
}

// startSelf runs self mode for the configuration cfgName in o.Namespace
// (created here), serving 127.0.0.1.
func startSelf(t *testing.T, cfgName string, o certs.Options) certs.Source {
	t.Helper()
	cluster.CreateNamespace(t, kube, o.Namespace, map[string]string{"certs-e2e": o.Namespace})
	o.Mode, o.Hosts = certs.ModeSelf, []string{"127.0.0.1"}
	o.WebhookConfigs = certs.WebhookConfigNames{Validating: []string{cfgName}}
	var src certs.Source
	startManager(t, func(mgr manager.Manager) {
		var err error
		if src, err = certs.Setup(context.Background(), mgr, o, testLogger(o.Namespace)); err != nil {
			t.Fatal(err)
		}
	})
	return src
}

func caSecretCA(t *testing.T, ns string) []byte {
	t.Helper()
	var s corev1.Secret
	if err := kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "meshguard-self-ca"}, &s); err != nil {
		t.Fatalf("get CA Secret: %v", err)
	}
	if len(s.Data[corev1.TLSCertKey]) == 0 {
		t.Fatal(fmt.Errorf("CA Secret %s/meshguard-self-ca has no tls.crt", ns))
	}
	return s.Data[corev1.TLSCertKey]
}
