package certs

import (
	"bytes"
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/certs/pki"
)

// FieldManager owns caBundle on meshguard's webhook configurations in self
// mode, so GitOps tools can be told to ignore exactly that field. It writes
// by update, as Istio's WebhookCertPatcher does, not by server-side apply:
// an apply would co-own every webhook entry it names, and the configuration's
// owner could then no longer drop a webhook by server-side apply (the entry
// stays, reduced to name and caBundle, and is refused as invalid).
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
	// update sets caBundle on every webhook where it differs, by an update
	// under FieldManager on the resourceVersion read, and reports whether it wrote.
	update func(ctx context.Context, bundle []byte) (bool, error)
}

// webhookCAs lists the name and caBundle of each webhook of a configuration.
func webhookCAs[W any](webhooks []W, of func(W) (string, []byte)) []webhookCA {
	out := make([]webhookCA, len(webhooks))
	for i, w := range webhooks {
		out[i].name, out[i].caBundle = of(w)
	}
	return out
}

// setCABundles sets bundle as the caBundle of each webhook and reports
// whether any differed.
func setCABundles[W any](webhooks []W, clientConfig func(*W) *admissionv1.WebhookClientConfig, bundle []byte) bool {
	changed := false
	for i := range webhooks {
		if cc := clientConfig(&webhooks[i]); !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle = append([]byte(nil), bundle...)
			changed = true
		}
	}
	return changed
}

// webhookConfigs lists the named configurations, mutating first.
func webhookConfigs(cs kubernetes.Interface, names WebhookConfigNames) []webhookConfig {
	opts := metav1.UpdateOptions{FieldManager: FieldManager}
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
			update: func(ctx context.Context, bundle []byte) (bool, error) {
				cfg, err := mutating.Get(ctx, n, metav1.GetOptions{})
				if err != nil || !setCABundles(cfg.Webhooks, func(w *admissionv1.MutatingWebhook) *admissionv1.WebhookClientConfig { return &w.ClientConfig }, bundle) {
					return false, err
				}
				_, err = mutating.Update(ctx, cfg, opts)
				return err == nil, err
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
			update: func(ctx context.Context, bundle []byte) (bool, error) {
				cfg, err := validating.Get(ctx, n, metav1.GetOptions{})
				if err != nil || !setCABundles(cfg.Webhooks, func(w *admissionv1.ValidatingWebhook) *admissionv1.WebhookClientConfig { return &w.ClientConfig }, bundle) {
					return false, err
				}
				_, err = validating.Update(ctx, cfg, opts)
				return err == nil, err
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
// exist, by an update under FieldManager, and only where it differs (a
// conflict is an error: the caller's next pass re-reads). It reports whether
// anything was written.
func applyBundles(ctx context.Context, cs kubernetes.Interface, names WebhookConfigNames, bundle []byte) (bool, error) {
	wrote := false
	for _, c := range webhookConfigs(cs, names) {
		w, err := c.update(ctx, bundle)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return wrote, fmt.Errorf("update caBundle of %s %s: %w", c.kind, c.name, err)
		}
		wrote = wrote || w
	}
	return wrote, nil
}
