// Package webhook adapts meshguard's pure decision packages (injector,
// validation) to Kubernetes admission: it registers their handlers on
// controller-runtime's webhook server and builds the webhook configurations
// the API server uses to call them.
package webhook

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/meshguard/meshguard/webhookconfig"
)

// Paths served on the webhook server.
const (
	InjectPath   = webhookconfig.InjectPath
	ValidatePath = webhookconfig.ValidatePath
)

// ClientConfig says how the API server reaches meshguard's webhooks. It is
// shared by the mutating and validating configurations so that `meshguard
// dev`, the tests and the deploy manifests describe the same endpoints.
type ClientConfig struct {
	// BaseURL, when set, makes the configurations use a URL clientConfig
	// (e.g. https://127.0.0.1:9443 for local runs and tests) instead of a Service.
	BaseURL string
	// Service that fronts meshguard in a cluster (used when BaseURL is empty).
	ServiceName      string
	ServiceNamespace string
	ServicePort      int32
	// CABundle verifies meshguard's serving certificate. Empty when cert-manager's
	// CA injector fills it in (see CAInjectFrom).
	CABundle []byte
	// CAInjectFrom, when set, is written as the cert-manager.io/inject-ca-from
	// annotation ("<namespace>/<certificate>").
	CAInjectFrom string
	// OwnNamespace is never selected by the webhooks, so meshguard cannot block
	// its own pods.
	OwnNamespace string
	// Revision is the istio.io/rev this instance serves ("" or "default" for the default revision).
	Revision string
	// TimeoutSeconds bounds each admission call (Istio ships 10).
	TimeoutSeconds int32
}

// For returns the clientConfig for one of meshguard's webhook paths.
func (c ClientConfig) For(path string) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: c.CABundle}
	if c.BaseURL != "" {
		url := c.BaseURL + path
		cc.URL = &url
		return cc
	}
	port := c.ServicePort
	if port == 0 {
		port = 443
	}
	cc.Service = &admissionregistrationv1.ServiceReference{
		Name:      c.ServiceName,
		Namespace: c.ServiceNamespace,
		Path:      &path,
		Port:      &port,
	}
	return cc
}

// annotations returns the metadata annotations shared by both configurations.
func (c ClientConfig) annotations() map[string]string {
	if c.CAInjectFrom == "" {
		return nil
	}
	return map[string]string{"cert-manager.io/inject-ca-from": c.CAInjectFrom}
}

// The configuration names and paths live in the leaf package webhookconfig
// (certs needs them without linking the admission adapters); these forward.
const (
	MutatingConfigName   = webhookconfig.MutatingConfigName
	ValidatingConfigName = webhookconfig.ValidatingConfigName
)

// IsDefaultRevision says whether rev names the default revision.
func IsDefaultRevision(rev string) bool { return webhookconfig.IsDefaultRevision(rev) }

// MutatingConfigNameFor is the mutating configuration's name for a revision.
func MutatingConfigNameFor(rev string) string { return webhookconfig.MutatingConfigNameFor(rev) }

// ValidatingConfigNameFor is the validating configuration's name for a revision.
func ValidatingConfigNameFor(rev string) string { return webhookconfig.ValidatingConfigNameFor(rev) }
