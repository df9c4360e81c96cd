package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/certs/pki"
)

// TriggerReason is the Issuing condition reason meshguard sets on the serving
// Certificate when the CA changed under it (cert-manager #2478: a CA renewal
// does not re-issue its leaves).
const TriggerReason = "MeshguardCAChanged"

// cmSource serves the leaf cert-manager wrote into the serving Secret.
type cmSource struct {
	*store
	o     Options
	log   logr.Logger
	cl    client.Client
	cs    kubernetes.Interface
	watch *secretWatch
	kick  kicker

	loadMu sync.Mutex
}

func newCMScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := cmapi.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

func setupCertManager(ctx context.Context, cfg *rest.Config, o Options, log logr.Logger) (*cmSource, error) {
	scheme, err := newCMScheme()
	if err != nil {
		return nil, fmt.Errorf("cert-manager scheme: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("cert-manager client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	s := &cmSource{store: newStore(ModeCertManager), o: o, log: log, cl: cl, cs: cs, kick: newKicker()}
	s.watch, err = newSecretWatch(cs, o.Namespace, []string{o.caSecretName(), o.servingSecretName()}, func() {
		s.load()
		s.kick.kick()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// serve runs on every replica: it keeps the served pair in step with the Secret.
func (s *cmSource) serve(ctx context.Context) error {
	if err := s.watch.run(ctx); err != nil {
		return err
	}
	s.load()
	<-ctx.Done()
	return nil
}

// load installs the serving Secret's pair with the bundle the Secrets name
// now (cmBundle).
func (s *cmSource) load() {
	// Serialised: read-then-set from two goroutines could install an older pair last.
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	serving := s.watch.get(s.o.servingSecretName())
	if serving == nil || len(serving.Data[corev1.TLSCertKey]) == 0 {
		return
	}
	bundle, err := s.cmBundle(serving)
	if err != nil {
		s.log.Error(err, "merge CA bundle")
		return
	}
	kp := pki.KeyPair{CertPEM: serving.Data[corev1.TLSCertKey], KeyPEM: serving.Data[corev1.TLSPrivateKeyKey]}
	if s.unchanged(kp, bundle) { // also drops a pair pending that the Secret no longer holds
		return
	}
	secret := s.o.Namespace + "/" + s.o.servingSecretName()
	dns, ips := pki.SplitHosts(s.o.DNSNames())
	if err := s.losesNames(kp, dns, ips); err != nil {
		s.log.Error(err, "load serving certificate: serving the previous one", "secret", secret)
		return
	}
	if err := s.set(kp, bundle); err != nil {
		s.log.Error(err, "load serving certificate", "secret", secret)
		return
	}
	leaf := s.current().Leaf
	s.log.Info("serving certificate loaded", "secret", secret,
		"serial", leaf.SerialNumber.String(), "notAfter", leaf.NotAfter, "issuer", leaf.Issuer.CommonName)
	// The leader applies the names to the Certificate (ApplyCertManagerChain)
	// once per term; until cert-manager re-issued (or while the leader still
	// runs with older flags) a name meshguard serves under that the leaf lacks
	// shows only as failing TLS handshakes: say so where the operator looks.
	if !pki.CoversNames(leaf, dns, ips) {
		s.log.Error(errors.New("serving certificate does not cover every name meshguard serves under"),
			"waiting for the leader to apply them to the Certificate and cert-manager to re-issue it",
			"certificate", s.o.Namespace+"/"+s.o.servingCertificateName(), "want", s.o.DNSNames(),
			"dnsNames", leaf.DNSNames, "ipAddresses", leaf.IPAddresses)
	}
}

// cmBundle is the bundle served and trusted for client certificates: every
// unexpired CA the CA Secret (tls.crt, ca.crt) and the serving Secret
// (ca.crt: the CA that signed the leaf) name now. Computed from the objects
// alone, so every replica, whenever it started, trusts the same CAs, and a
// CA that left both Secrets stops being trusted. Both CAs are in it from the
// CA renewal until the leaf of the new CA is loaded, when cert-manager has
// replaced the serving Secret's ca.crt.
func (s *cmSource) cmBundle(serving *corev1.Secret) ([]byte, error) {
	var caCert, caCA []byte
	if ca := s.watch.get(s.o.caSecretName()); ca != nil {
		caCert, caCA = ca.Data[corev1.TLSCertKey], ca.Data[cmmeta.TLSCAKey]
	}
	// The error names the part (a corrupt CA Secret is as likely as a
	// corrupt serving one).
	return mergeBundle(s.now(),
		bundlePart{secretKey(s.o.Namespace, s.o.servingSecretName(), cmmeta.TLSCAKey), serving.Data[cmmeta.TLSCAKey]},
		bundlePart{secretKey(s.o.Namespace, s.o.caSecretName(), corev1.TLSCertKey), caCert},
		bundlePart{secretKey(s.o.Namespace, s.o.caSecretName(), cmmeta.TLSCAKey), caCA})
}

// losesNames refuses a pair whose leaf lacks a name meshguard serves under
// while the served leaf, still valid, has them all: swapping would fail the
// handshakes that work now. Without such a served leaf (the first load, or
// names added by flags since) the pair is loaded and the gap logged.
func (s *cmSource) losesNames(kp pki.KeyPair, dns []string, ips []net.IP) error {
	cur := s.current()
	if cur == nil || !validAt(cur, s.now()) || !pki.CoversNames(cur.Leaf, dns, ips) {
		return nil
	}
	c, err := kp.Parsed()
	if err != nil {
		return nil // set refuses it, naming the part
	}
	if !pki.CoversNames(c.Leaf, dns, ips) {
		return fmt.Errorf("certificate %q covers DNS names %v and IPs %v, not every name meshguard serves under (%v), which the served one covers",
			c.Leaf.Subject.CommonName, c.Leaf.DNSNames, c.Leaf.IPAddresses, s.o.DNSNames())
	}
	return nil
}

// reissue runs on the leader: it applies the cert-manager objects
// (ApplyCertManagerChain), and when the CA Secret holds a CA that did not sign
// the served leaf, it waits until every webhook configuration has trusted the
// new CA (cainjector merges it in) for PropagationDelay without a break, for
// the API server's watch (caHandover.trusted), then asks cert-manager to
// re-issue the leaf: once, and again at most every CheckInterval while the
// leaf stays on the old CA (a failed issuance leaves Issuing=False;
// re-setting it at once would retry in a hot loop past cert-manager's
// backoff). It never asks before every caBundle holds the new CA: cainjector,
// not meshguard, writes them here, and a leaf no caBundle trusts fails every
// call. Past CAWaitTimeout it says so as an error every CheckInterval and
// looks every PropagationDelay instead of every 250 ms.
func (s *cmSource) reissue(ctx context.Context) error {
	if err := s.watch.wait(ctx); err != nil {
		return err
	}
	// A term starts here (leaderGroup runs the leader-only work anew each
	// term): the hand-over state is this term's alone.
	var handover caHandover
	var triedAt, chainTriedAt, warnedAt time.Time
	chainApplied := false
	for {
		wait := s.o.CheckInterval
		// Once per term (a new leader may run with new flags), retried every
		// CheckInterval without holding up re-issuing after a CA rotation.
		if !chainApplied && (chainTriedAt.IsZero() || s.now().Sub(chainTriedAt) >= s.o.CheckInterval) {
			chainTriedAt = s.now()
			if err := ApplyCertManagerChain(ctx, s.cl, s.o); err != nil {
				s.log.Error(err, "apply cert-manager objects; retrying", "in", s.o.CheckInterval)
			} else {
				chainApplied = true
			}
		}
		caCert, leaf := s.caAndLeaf()
		switch {
		case caCert == nil || leaf == nil || pki.SignedBy(leaf, caCert):
			handover.reset()
			warnedAt = time.Time{}
		default:
			now := s.now()
			if handover.see(pki.Fingerprint(caCert), now) {
				triedAt, warnedAt = time.Time{}, time.Time{}
			}
			wait = 250 * time.Millisecond
			ok, err := bundlesContain(ctx, s.cs, s.o.WebhookConfigs, pki.EncodeCerts([]*x509.Certificate{caCert}))
			if err != nil {
				s.log.Error(err, "check webhook caBundles")
			} else {
				handover.bundles(ok, now)
			}
			trusted := handover.trusted(ok, now, s.o.PropagationDelay)
			if !trusted && handover.waited(now, s.o.CAWaitTimeout) {
				wait = s.o.PropagationDelay
				if warnedAt.IsZero() || now.Sub(warnedAt) >= s.o.CheckInterval {
					warnedAt = now
					s.log.Error(errors.New("new CA not in every webhook caBundle"),
						"not re-issuing the serving certificate from it until cainjector puts it there: check that cainjector runs and that the webhook configurations keep their cert-manager.io/inject-ca-from annotation",
						"caSecret", s.o.Namespace+"/"+s.o.caSecretName(), "ca", caCert.Subject.CommonName, "caNotBefore", caCert.NotBefore,
						"webhookConfigurations", s.o.WebhookConfigs, "waited", now.Sub(handover.caSeenSince).Round(time.Second))
				}
			}
			due := triedAt.IsZero() || now.Sub(triedAt) >= s.o.CheckInterval
			if due && trusted {
				tried, err := s.triggerIssuing(ctx)
				if err != nil {
					s.log.Error(err, "re-issue serving certificate")
				}
				if tried || err != nil {
					triedAt = now
				}
			}
			if !triedAt.IsZero() {
				// Asked: the new leaf arrives as a Secret event (kick);
				// polling at 250 ms would only re-read the configurations.
				wait = s.o.CheckInterval
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-time.After(wait):
		}
	}
}

func (s *cmSource) caAndLeaf() (ca, leaf *x509.Certificate) {
	if sec := s.watch.get(s.o.caSecretName()); sec != nil {
		if cs, err := pki.ParseCerts(sec.Data[corev1.TLSCertKey]); err == nil && len(cs) > 0 {
			ca = cs[0]
		}
	}
	if sec := s.watch.get(s.o.servingSecretName()); sec != nil {
		if cs, err := pki.ParseCerts(sec.Data[corev1.TLSCertKey]); err == nil && len(cs) > 0 {
			leaf = cs[0]
		}
	}
	return ca, leaf
}

// triggerIssuing sets Issuing=True on the serving Certificate (what `cmctl
// renew` does) unless an issuance is already under way; it reports whether
// it set it.
func (s *cmSource) triggerIssuing(ctx context.Context) (bool, error) {
	var crt cmapi.Certificate
	key := client.ObjectKey{Namespace: s.o.Namespace, Name: s.o.servingCertificateName()}
	if err := s.cl.Get(ctx, key, &crt); err != nil {
		return false, fmt.Errorf("get Certificate %s: %w", key, err)
	}
	triggered, err := TriggerIssuing(ctx, s.cl, &crt, TriggerReason, "the CA changed; re-issuing so the leaf chains to the current CA")
	if err != nil || !triggered {
		return false, err
	}
	s.log.Info("CA changed: re-issuing serving certificate", "certificate", key.String())
	return true, nil
}

// TriggerIssuing asks cert-manager to re-issue crt now by adding the Issuing
// condition through the status subresource. It is a no-op (false) while
// Issuing is already True.
func TriggerIssuing(ctx context.Context, cl client.Client, crt *cmapi.Certificate, reason, message string) (bool, error) {
	for _, c := range crt.Status.Conditions {
		if c.Type == cmapi.CertificateConditionIssuing && c.Status == cmmeta.ConditionTrue {
			return false, nil
		}
	}
	now := metav1.Now()
	issuing := cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue,
		Reason: reason, Message: message, LastTransitionTime: &now, ObservedGeneration: crt.Generation,
	}
	// Replace an Issuing=False (a failed issuance leaves one) as cmctl renew's
	// apiutil.SetCertificateCondition does: conditions is a list map keyed by
	// type, so a second Issuing entry is refused as a duplicate.
	i := slices.IndexFunc(crt.Status.Conditions, func(c cmapi.CertificateCondition) bool {
		return c.Type == cmapi.CertificateConditionIssuing
	})
	if i >= 0 {
		crt.Status.Conditions[i] = issuing
	} else {
		crt.Status.Conditions = append(crt.Status.Conditions, issuing)
	}
	if err := cl.Status().Update(ctx, crt); err != nil {
		return false, fmt.Errorf("set Issuing on Certificate %s/%s: %w", crt.Namespace, crt.Name, err)
	}
	return true, nil
}

// ApplyCertManagerChain server-side applies the chain cert-manager documents
// for webhooks (selfSigned Issuer → CA Certificate (isCA) → CA Issuer →
// serving Certificate) under FieldManager, forcing ownership of the fields
// CertManagerObjects sets (as cert-manager's own controllers apply what they
// own, design/20220118.server-side-apply.md): a changed --service-name,
// namespace, --cert-extra-san or duration then reaches an existing
// Certificate, which cert-manager re-issues once its spec no longer matches
// the last request (policies.CurrentCertificateRequestMismatchesSpec), where
// creating only missing objects kept serving a leaf for names the API server
// no longer calls. Fields meshguard does not set (subject, secretTemplate, a
// CA renewBefore, labels, ...) stay with whoever wrote them.
func ApplyCertManagerChain(ctx context.Context, cl client.Client, o Options) error {
	for _, obj := range CertManagerObjects(o) {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", kind, o.Namespace, obj.GetName(), err)
		}
		// A typed object converts with status: {} and creationTimestamp: null,
		// which an apply would claim.
		delete(u, "status")
		unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
		ac := &unstructured.Unstructured{Object: u}
		ac.SetGroupVersionKind(cmapi.SchemeGroupVersion.WithKind(kind))
		if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(ac), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", kind, o.Namespace, obj.GetName(), err)
		}
	}
	return nil
}

// CertManagerObjects are the four cert-manager objects of cert-manager mode
// (also what the deploy manifests must match).
func CertManagerObjects(o Options) []client.Object {
	// No labels: applied, they would take app.kubernetes.io/managed-by from
	// the chart that ships these objects; managedFields name the owner.
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: o.Namespace}
	}
	ref := func(name string) cmmeta.IssuerReference {
		return cmmeta.IssuerReference{Name: name, Kind: cmapi.IssuerKind, Group: "cert-manager.io"}
	}
	key := &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways}
	dur := func(d time.Duration) *metav1.Duration {
		if d == 0 {
			return nil
		}
		return &metav1.Duration{Duration: d}
	}
	dns, ips := pki.SplitHosts(o.DNSNames())
	ipStrings := make([]string, 0, len(ips))
	for _, ip := range ips {
		ipStrings = append(ipStrings, ip.String())
	}
	return []client.Object{
		&cmapi.Issuer{ObjectMeta: meta(o.selfSignedIssuerName()),
			Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}}},
		&cmapi.Certificate{ObjectMeta: meta(o.caCertificateName()), Spec: cmapi.CertificateSpec{
			IsCA: true, CommonName: o.base() + "-ca", SecretName: o.caSecretName(),
			Duration: dur(o.CADuration), RenewBefore: dur(o.CARenewBefore),
			PrivateKey: key, IssuerRef: ref(o.selfSignedIssuerName()),
		}},
		&cmapi.Issuer{ObjectMeta: meta(o.caIssuerName()),
			Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: o.caSecretName()}}}},
		&cmapi.Certificate{ObjectMeta: meta(o.servingCertificateName()), Spec: cmapi.CertificateSpec{
			// No commonName: SANs are what clients check, and a CN is capped at 64 bytes.
			DNSNames: dns, IPAddresses: ipStrings,
			SecretName: o.servingSecretName(),
			Duration:   dur(o.LeafDuration), RenewBefore: dur(o.LeafRenewBefore),
			Usages:     []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth},
			PrivateKey: key, IssuerRef: ref(o.caIssuerName()),
		}},
	}
}

func firstDER(certPEM []byte) []byte {
	cs, err := pki.ParseCerts(certPEM)
	if err != nil || len(cs) == 0 {
		return nil
	}
	return cs[0].Raw
}
