package certs

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/certs/pki"
)

// FieldManager owns caBundle on meshguard's webhook configurations in self
// mode, so GitOps tools can be told to ignore exactly that field.
const FieldManager = "meshguard-certs"

// bundlesContain reports whether every webhook of every named configuration
// that exists trusts ca. Absent configurations count as satisfied: nothing
// calls through them yet.
func bundlesContain(ctx context.Context, cs kubernetes.Interface, names WebhookConfigNames, ca []byte) (bool, error) {
	for _, n := range names.Mutating {
		cfg, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("get MutatingWebhookConfiguration %s: %w", n, err)
		}
		for _, w := range cfg.Webhooks {
			if !pki.BundleContains(w.ClientConfig.CABundle, ca) {
				return false, nil
			}
		}
	}
	for _, n := range names.Validating {
		cfg, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("get ValidatingWebhookConfiguration %s: %w", n, err)
		}
		for _, w := range cfg.Webhooks {
			if !pki.BundleContains(w.ClientConfig.CABundle, ca) {
				return false, nil
			}
		}
	}
	return true, nil
}

// applyBundles sets caBundle on every webhook of the named configurations that
// exist, by server-side apply under FieldManager, and only where it differs.
// It reports whether anything was written.
func applyBundles(ctx context.Context, cs kubernetes.Interface, names WebhookConfigNames, bundle []byte) (bool, error) {
	wrote := false
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	for _, n := range names.Mutating {
		cfg, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return wrote, fmt.Errorf("get MutatingWebhookConfiguration %s: %w", n, err)
		}
		ac := admissionv1ac.MutatingWebhookConfiguration(n)
		differs := false
		for _, w := range cfg.Webhooks {
			differs = differs || string(w.ClientConfig.CABundle) != string(bundle)
			ac.WithWebhooks(admissionv1ac.MutatingWebhook().WithName(w.Name).
				WithClientConfig(admissionv1ac.WebhookClientConfig().WithCABundle(bundle...)))
		}
		if !differs {
			continue
		}
		if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Apply(ctx, ac, opts); err != nil {
			return wrote, fmt.Errorf("apply caBundle to MutatingWebhookConfiguration %s: %w", n, err)
		}
		wrote = true
	}
	for _, n := range names.Validating {
		cfg, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return wrote, fmt.Errorf("get ValidatingWebhookConfiguration %s: %w", n, err)
		}
		ac := admissionv1ac.ValidatingWebhookConfiguration(n)
		differs := false
		for _, w := range cfg.Webhooks {
			differs = differs || string(w.ClientConfig.CABundle) != string(bundle)
			ac.WithWebhooks(admissionv1ac.ValidatingWebhook().WithName(w.Name).
				WithClientConfig(admissionv1ac.WebhookClientConfig().WithCABundle(bundle...)))
		}
		if !differs {
			continue
		}
		if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Apply(ctx, ac, opts); err != nil {
			return wrote, fmt.Errorf("apply caBundle to ValidatingWebhookConfiguration %s: %w", n, err)
		}
		wrote = true
	}
	return wrote, nil
}
