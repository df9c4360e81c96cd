// Package certs provides meshguard's serving certificate: one Source behind
// --cert-mode=cert-manager|self|files that both the webhook HTTPS server and
// the ext_authz gRPC server use through GetCertificate, so a rotation never
// needs a restart or a kubelet Secret mount (docs/compatibility.md "Serving certificates").
package certs

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshguard/meshguard/webhookconfig"
)

// Modes of --cert-mode.
const (
	ModeAuto        = ""             // cert-manager when its Certificate CRD exists, else self
	ModeCertManager = "cert-manager" // issued by cert-manager, caBundle injected by its cainjector
	ModeSelf        = "self"         // meshguard's own CA in a Secret, caBundle patched by meshguard
	ModeFiles       = "files"        // CA and leaf in a local directory (meshguard dev)
)

// Options configure the certificate source. Zero durations take the defaults.
type Options struct {
	Mode string
	// Dir holds ca.crt, ca.key, tls.crt and tls.key in files mode.
	Dir string
	// Namespace is meshguard's own namespace: Secrets, Issuers and Certificates
	// live there. It is shared with the pod-namespace flag of serve/dev.
	Namespace   string
	ServiceName string
	// Hosts are extra SANs (DNS names or IPs, e.g. 127.0.0.1 for a URL clientConfig).
	Hosts []string
	// ClientCAVerify asks servers built from TLSConfig to require client
	// certificates signed by a CA in the bundle (ext_authz mTLS).
	ClientCAVerify bool
	// Name prefixes every object and Secret this package creates (default "meshguard").
	Name string
	// Revision selects the mutating configuration name patched in self mode.
	Revision string
	// WebhookConfigs overrides the webhook configurations whose caBundle self
	// mode patches and both cluster modes wait for before serving a leaf from a
	// new CA. Default: meshguard's own (webhookconfig.MutatingConfigNameFor(rev), webhookconfig.ValidatingConfigNameFor(rev)).
	WebhookConfigs WebhookConfigNames

	CADuration       time.Duration // default 5 years
	CARenewBefore    time.Duration // default a third of CADuration
	LeafDuration     time.Duration // default 90 days
	LeafRenewBefore  time.Duration // default a third of LeafDuration
	CheckInterval    time.Duration // self mode: how often the leader re-checks (default 1m); files mode: reload poll (default 2s)
	PropagationDelay time.Duration // wait after a new CA reached the caBundle before serving a leaf from it (default 3s)
	CAWaitTimeout    time.Duration // self mode: how long to wait for a new CA to reach the caBundle before going ahead anyway; cert-manager mode: when to start logging that it has not (default 2m)
}

// WebhookConfigNames names admission configurations by kind.
type WebhookConfigNames struct {
	Mutating   []string
	Validating []string
}

// AddFlags registers the certificate flags. --namespace is shared with the
// pod-namespace flag: it is only added here when nobody defined it first;
// otherwise the caller copies its value into Options.Namespace.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Mode, "cert-mode", o.Mode, "serving certificate source: cert-manager, self or files (default: cert-manager when its Certificate CRD exists, else self)")
	fs.StringVar(&o.Dir, "cert-dir", o.Dir, "files mode: directory holding ca.crt, ca.key, tls.crt, tls.key (generated when absent)")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "Service fronting meshguard; its DNS names go into the serving certificate")
	if fs.Lookup("namespace") == nil {
		fs.StringVar(&o.Namespace, "namespace", o.Namespace, "meshguard's own namespace")
	}
	fs.StringSliceVar(&o.Hosts, "cert-extra-san", o.Hosts, "extra DNS names or IPs for the serving certificate (e.g. 127.0.0.1)")
	fs.BoolVar(&o.ClientCAVerify, "tls-verify-client", o.ClientCAVerify, "require TLS client certificates signed by the serving CA bundle (ext_authz)")
	fs.StringVar(&o.Name, "cert-name", o.Name, "prefix of the Certificates, Issuers and Secrets meshguard manages")
	fs.DurationVar(&o.CADuration, "cert-ca-duration", o.CADuration, "lifetime of meshguard's CA (self and cert-manager modes)")
	fs.DurationVar(&o.LeafDuration, "cert-duration", o.LeafDuration, "lifetime of the serving certificate")
	fs.DurationVar(&o.LeafRenewBefore, "cert-renew-before", o.LeafRenewBefore, "renew the serving certificate this long before expiry (default a third of its life)")
	fs.DurationVar(&o.CheckInterval, "cert-check-interval", o.CheckInterval, "self mode: how often the leader re-checks the CA, leaf and caBundles (default 1m); files mode: reload poll (default 2s)")
}

// withDefaults fills zero fields and validates.
func (o Options) withDefaults() (Options, error) {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--cert-ca-duration", o.CADuration}, {"--cert-duration", o.LeafDuration}, {"--cert-check-interval", o.CheckInterval},
		{"--cert-renew-before", o.LeafRenewBefore}, {"CA renew-before", o.CARenewBefore},
		{"propagation delay", o.PropagationDelay}, {"CA wait timeout", o.CAWaitTimeout}} {
		if d.v < 0 {
			return o, fmt.Errorf("%s %s: must not be negative", d.flag, d.v)
		}
	}
	if o.Name == "" {
		o.Name = "meshguard"
	}
	if o.ServiceName == "" {
		o.ServiceName = "meshguard"
	}
	if o.CADuration == 0 {
		o.CADuration = 5 * 365 * 24 * time.Hour
	}
	if o.LeafDuration == 0 {
		o.LeafDuration = 90 * 24 * time.Hour
	}
	if o.CheckInterval == 0 {
		if o.Mode == ModeFiles {
			o.CheckInterval = 2 * time.Second
		} else {
			o.CheckInterval = time.Minute
		}
	}
	if o.PropagationDelay == 0 {
		o.PropagationDelay = 3 * time.Second
	}
	if o.CAWaitTimeout == 0 {
		o.CAWaitTimeout = 2 * time.Minute
	}
	if len(o.WebhookConfigs.Mutating) == 0 && len(o.WebhookConfigs.Validating) == 0 {
		o.WebhookConfigs = WebhookConfigNames{
			Mutating:   []string{webhookconfig.MutatingConfigNameFor(o.Revision)},
			Validating: []string{webhookconfig.ValidatingConfigNameFor(o.Revision)},
		}
	}
	switch o.Mode {
	case ModeAuto, ModeCertManager, ModeSelf, ModeFiles:
	default:
		return o, fmt.Errorf("--cert-mode %q: want one of cert-manager, self, files", o.Mode)
	}
	if o.Mode == ModeFiles && o.Dir == "" {
		return o, fmt.Errorf("--cert-dir is required with --cert-mode=files")
	}
	if o.Mode != ModeFiles && o.Namespace == "" {
		return o, fmt.Errorf("--namespace is required with --cert-mode=%s", modeName(o.Mode))
	}
	if o.LeafRenewBefore >= o.LeafDuration {
		return o, fmt.Errorf("--cert-renew-before %s must be shorter than --cert-duration %s", o.LeafRenewBefore, o.LeafDuration)
	}
	if o.CARenewBefore >= o.CADuration {
		return o, fmt.Errorf("CA renew-before %s must be shorter than --cert-ca-duration %s", o.CARenewBefore, o.CADuration)
	}
	return o, nil
}

func modeName(m string) string {
	if m == ModeAuto {
		return "auto"
	}
	return m
}

// DNSNames are the Service names the serving certificate carries, then the extra hosts.
func (o Options) DNSNames() []string {
	var names []string
	if o.ServiceName != "" && o.Namespace != "" {
		names = append(names,
			o.ServiceName+"."+o.Namespace+".svc",
			o.ServiceName+"."+o.Namespace+".svc.cluster.local")
	}
	for _, h := range o.Hosts {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	return names
}

// Object names used in cert-manager mode.
func (o Options) selfSignedIssuerName() string { return o.base() + "-selfsigned" }
func (o Options) caCertificateName() string    { return o.base() + "-ca" }
func (o Options) caSecretName() string         { return o.base() + "-ca" }
func (o Options) caIssuerName() string         { return o.base() + "-ca" }
func (o Options) servingCertificateName() string {
	return o.base() + "-serving"
}
func (o Options) servingSecretName() string { return o.base() + "-serving-tls" }

// Secret names used in self mode (distinct from cert-manager's so switching
// modes never fights over one Secret).
func (o Options) selfCASecretName() string   { return o.base() + "-self-ca" }
func (o Options) selfLeafSecretName() string { return o.base() + "-self-tls" }

func (o Options) base() string {
	if o.Name == "" {
		return "meshguard"
	}
	return o.Name
}

// InjectCAFrom is the cert-manager.io/inject-ca-from value for meshguard's
// webhook configurations in cert-manager mode (webhook.ClientConfig.CAInjectFrom).
// It names the CA Certificate, not the serving one: cainjector then merges a
// renewed CA into caBundle before meshguard re-issues the leaf from it, so the
// API server always trusts the leaf being served (docs/compatibility.md).
func InjectCAFrom(o Options) string {
	return o.Namespace + "/" + o.caCertificateName()
}
