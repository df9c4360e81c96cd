package certs

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/certs/pki"
)

// FieldManager owns caBundle on meshguard's webhook configurations in self
// mode, so GitOps tools can be told to ignore exactly that field.
const FieldManager = "meshguard-certs"

// webhookCA is one webhook entry of a configuration and the CA bundle it trusts.
type webhookCA struct {
	name     string
	caBundle []byte
}

// webhookConfig is one named admission configuration. Mutating and validating
// configurations differ only in their typed client calls, so those are the
// two functions here and everything else is written once.
type webhookConfig struct {
	kind, name string
	// get returns the configuration's webhooks (a NotFound error when it does not exist).
	get func(ctx context.Context) ([]webhookCA, error)
	// apply sets caBundle on the named webhooks by server-side apply under FieldManager.
	apply func(ctx context.Context, webhooks []string, bundle []byte) error
}

// webhookCAs lists the name and caBundle of each webhook of a configuration.
func webhookCAs[W any](webhooks []W, of func(W) (string, []byte)) []webhookCA {
	out := make([]webhookCA, len(webhooks))
	for i, w := range webhooks {
		out[i].name, out[i].caBundle = of(w)
	}
	return out
}

// webhookConfigs lists the named configurations, mutating first.
func webhookConfigs(cs kubernetes.Interface, names WebhookConfigNames) []webhookConfig {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	mutating := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	validating := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	var out []webhookConfig
	for _, n := range names.Mutating {
		out = append(out, webhookConfig{
			kind: "MutatingWebhookConfiguration", name: n,
			get: func(ctx context.Context) ([]webhookCA, error) {
				cfg, err := mutating.Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				return webhookCAs(cfg.Webhooks, func(w admissionv1.MutatingWebhook) (string, []byte) { return w.Name, w.ClientConfig.CABundle }), nil
			},
			apply: func(ctx context.Context, webhooks []string, bundle []byte) error {
				ac := admissionv1ac.MutatingWebhookConfiguration(n)
				for _, w := range webhooks {
					ac.WithWebhooks(admissionv1ac.MutatingWebhook().WithName(w).
						WithClientConfig(admissionv1ac.WebhookClientConfig().WithCABundle(bundle...)))
				}
				_, err := mutating.Apply(ctx, ac, opts)
				return err
			},
		})
	}
	for _, n := range names.Validating {
		out = append(out, webhookConfig{
			kind: "ValidatingWebhookConfiguration", name: n,
			get: func(ctx context.Context) ([]webhookCA, error) {
				cfg, err := validating.Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				return webhookCAs(cfg.Webhooks, func(w admissionv1.ValidatingWebhook) (string, []byte) { return w.Name, w.ClientConfig.CABundle }), nil
			},
			apply: func(ctx context.Context, webhooks []string, bundle []byte) error {
				ac := admissionv1ac.ValidatingWebhookConfiguration(n)
				for _, w := range webhooks {
					ac.WithWebhooks(admissionv1ac.ValidatingWebhook().WithName(w).
						WithClientConfig(admissionv1ac.WebhookClientConfig().WithCABundle(bundle...)))
				}
				_, err := validating.Apply(ctx, ac, opts)
				return err
			},
		})
	}
	return out
}

// bundlesContain reports whether every webhook of every named configuration
// that exists trusts ca. Absent configurations count as satisfied: nothing
// calls through them yet.
func bundlesContain(ctx context.Context, cs kubernetes.Interface, names WebhookConfigNames, ca []byte) (bool, error) {
	for _, c := range webhookConfigs(cs, names) {
		hooks, err := c.get(ctx)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("get %s %s: %w", c.kind, c.name, err)
		}
		for _, w := range hooks {
			if !pki.BundleContains(w.caBundle, ca) {
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
	for _, c := range webhookConfigs(cs, names) {
		hooks, err := c.get(ctx)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return wrote, fmt.Errorf("get %s %s: %w", c.kind, c.name, err)
		}
		differs := false
		webhooks := make([]string, len(hooks))
		for i, w := range hooks {
			differs = differs || string(w.caBundle) != string(bundle)
			webhooks[i] = w.name
		}
		if !differs {
			continue
		}
		if err := c.apply(ctx, webhooks, bundle); err != nil {
			return wrote, fmt.Errorf("apply caBundle to %s %s: %w", c.kind, c.name, err)
		}
		wrote = true
	}
	return wrote, nil
}
