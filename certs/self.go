package certs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/certs/pki"
)

// selfSource is the fallback without cert-manager (docs/compatibility.md "Serving certificates"):
// the leader keeps a CA and its bundle in one Secret and the leaf in another;
// every replica serves the leaf Secret through an informer.
type selfSource struct {
	*store
	o     Options
	log   logr.Logger
	cs    kubernetes.Interface
	watch *secretWatch
	kick  kicker

	loadMu sync.Mutex
	// startConfigWatch starts informers on the webhook configurations (serve).
	startConfigWatch func(context.Context)

	// leader-only state, reset at the start of each term (rotate): when a
	// leaf of a new CA may be written, and since when one is served.
	handover caHandover
	newLeaf  leafServed
}

// leafServed is since when (in one unbroken run this term) both the leaf
// Secret and the leader serve a leaf of the CA of fingerprint fp, and, when
// not zero, how soon the last pass wanted to look again to drop the CAs
// kept only for the old leaf.
type leafServed struct {
	fp    string
	since time.Time
	wait  time.Duration
}

func setupSelf(cfg *rest.Config, o Options, log logr.Logger) (*selfSource, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	s := &selfSource{store: newStore(ModeSelf), o: o, log: log, cs: cs, kick: newKicker()}
	s.watch, err = newSecretWatch(cs, o.Namespace, []string{o.selfCASecretName(), o.selfLeafSecretName()}, func() {
		s.load()
		s.kick.kick()
	})
	if err != nil {
		return nil, err
	}
	if s.startConfigWatch, err = watchWebhookConfigs(cs, o.WebhookConfigs, s.kick.kick); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *selfSource) serve(ctx context.Context) error {
	if err := s.watch.run(ctx); err != nil {
		return err
	}
	// Started here, for the process, not by rotate: a replica may lead
	// several terms, and a stopped informer is never started again.
	s.startConfigWatch(ctx)
	s.load()
	<-ctx.Done()
	return nil
}

func (s *selfSource) load() {
	// Serialised: read-then-set from two goroutines could install an older pair last.
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	sec := s.watch.get(s.o.selfLeafSecretName())
	if sec == nil {
		return
	}
	kp := pki.KeyPair{CertPEM: sec.Data[corev1.TLSCertKey], KeyPEM: sec.Data[corev1.TLSPrivateKeyKey]}
	bundle := sec.Data["ca.crt"]
	if s.unchanged(kp, bundle) { // also drops a pair pending that the Secret no longer holds
		return
	}
	if err := s.set(kp, bundle); err != nil {
		s.log.Error(err, "load serving certificate", "secret", s.o.Namespace+"/"+s.o.selfLeafSecretName())
		return
	}
	leaf := s.current().Leaf
	s.log.Info("serving certificate loaded", "secret", s.o.Namespace+"/"+s.o.selfLeafSecretName(),
		"serial", leaf.SerialNumber.String(), "notAfter", leaf.NotAfter, "issuer", leaf.Issuer.CommonName)
}

// carriedAnnotation, on the CA Secret, lists (comma-separated SHA-256
// fingerprints) the CAs its ca.crt keeps only because a leaf of them was
// being served when the CA Secret was lost (deleted, or its ca.crt
// unreadable): they leave once a leaf of the current CA is served, not when
// they expire. On the Secret, so that a new leader finishes the job.
const carriedAnnotation = "meshguard.io/carried-until-new-leaf"

// rotate is the leader's loop.
func (s *selfSource) rotate(ctx context.Context) error {
	// A term starts here (leaderGroup runs the leader-only work anew each
	// term): what an earlier term saw of the caBundles is not trusted.
	s.handover.reset()
	s.newLeaf = leafServed{}
	if err := s.watch.wait(ctx); err != nil {
		return err
	}
	for {
		next, err := s.reconcile(ctx)
		if err != nil {
			s.log.Error(err, "self-managed certificates")
			next = time.Second
		}
		if next <= 0 || next > s.o.CheckInterval {
			next = s.o.CheckInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-time.After(next):
		}
	}
}

// reconcile brings the CA Secret, the webhook caBundles and the leaf Secret in
// line and returns how soon it wants to run again.
func (s *selfSource) reconcile(ctx context.Context) (time.Duration, error) {
	now := s.now()
	ca, bundle, err := s.ensureCA(ctx, now)
	if err != nil {
		return 0, err
	}
	caCert, err := ca.Parsed()
	if err != nil {
		return 0, fmt.Errorf("CA in Secret %s/%s: %w", s.o.Namespace, s.o.selfCASecretName(), err)
	}
	if _, err := applyBundles(ctx, s.cs, s.o.WebhookConfigs, bundle); err != nil {
		return 0, err
	}
	s.handover.see(pki.Fingerprint(caCert.Leaf), now)
	ok, err := bundlesContain(ctx, s.cs, s.o.WebhookConfigs, ca.CertPEM)
	if err != nil {
		return 0, err
	}
	s.handover.bundles(ok, now)

	dns, ips := pki.SplitHosts(s.o.DNSNames())
	leafSec, err := s.getSecret(ctx, s.o.selfLeafSecretName())
	if err != nil {
		return 0, err
	}
	decision := decideLeaf(leafState(leafSec), caCert.Leaf, bundle, dns, ips, s.o.LeafDuration, s.o.LeafRenewBefore, now)
	if cur := s.current(); decision.action == leafReissue && cur != nil && validAt(cur, now) && !pki.SignedBy(cur.Leaf, caCert.Leaf) {
		// The leaf Secret is gone or unreadable but a leaf of an earlier CA
		// is served: its replacement waits for the new CA to be trusted, as
		// after a rotation.
		decision = leafDecision{action: leafReissueNewCA, reason: decision.reason + ", CA changed"}
	}
	switch decision.action {
	case leafKeep:
		next := decision.renewAt.Sub(now)
		if w := s.newLeaf.wait; w > 0 && w < next {
			next = w
		}
		return next, nil
	case leafUpdateBundle:
		return s.o.CheckInterval, s.writeLeaf(ctx, leafSec, pki.KeyPair{CertPEM: leafSec.Data[corev1.TLSCertKey], KeyPEM: leafSec.Data[corev1.TLSPrivateKeyKey]}, bundle)
	case leafReissueNewCA:
		// Serve a leaf from a new CA only once the API server trusts that CA.
		if !s.handover.trusted(ok, now, s.o.PropagationDelay) && !s.handover.waited(now, s.o.CAWaitTimeout) {
			return 250 * time.Millisecond, nil
		}
	}
	leaf, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: s.o.LeafDuration}, now)
	if err != nil {
		return 0, err
	}
	if err := s.writeLeaf(ctx, leafSec, leaf, bundle); err != nil {
		return 0, err
	}
	s.log.Info("issued serving certificate", "reason", decision.reason, "secret", s.o.Namespace+"/"+s.o.selfLeafSecretName())
	return s.o.CheckInterval, nil
}

// ensureCA returns the current CA and the pruned bundle, creating or rotating
// the CA at 2/3 of its life (or CARenewBefore) and keeping the old CA in the
// bundle until it expires (Kyverno's rule), but for a CA kept only for the
// served leaf (carriedAnnotation): that one leaves once a leaf of the current
// CA is served (s.newLeaf.wait says how soon to look again for that).
func (s *selfSource) ensureCA(ctx context.Context, now time.Time) (ca pki.KeyPair, bundle []byte, err error) {
	s.newLeaf.wait = 0
	sec, err := s.getSecret(ctx, s.o.selfCASecretName())
	if err != nil {
		return pki.KeyPair{}, nil, err
	}
	var oldBundle []byte
	need := "absent"
	var keep []bundlePart // the bundles whose CAs stay trusted
	caName := "the new CA"
	carried := map[string]bool{}
	if sec != nil {
		ca = pki.KeyPair{CertPEM: sec.Data[corev1.TLSCertKey], KeyPEM: sec.Data[corev1.TLSPrivateKeyKey]}
		oldBundle = sec.Data["ca.crt"]
		keep = append(keep, bundlePart{secretKey(s.o.Namespace, s.o.selfCASecretName(), "ca.crt"), oldBundle})
		need = caRenewalReason(ca, s.o.CADuration, s.o.CARenewBefore, now)
		if need == "" {
			caName = secretKey(s.o.Namespace, s.o.selfCASecretName(), corev1.TLSCertKey)
		}
		carried = s.carriedCAs(sec)
	} else {
		// The CA Secret was deleted (to force a new CA, say) while a leaf of
		// the old CA is served: the bundle keeps the CAs that leaf was served
		// with (from the leaf Secret, or, deleted too, from what is served
		// here), or the API server would stop trusting the served leaf before
		// one of the new CA replaces it.
		leaf, err := s.getSecret(ctx, s.o.selfLeafSecretName())
		if err != nil {
			return pki.KeyPair{}, nil, err
		}
		if leaf != nil {
			keep = append(keep, bundlePart{secretKey(s.o.Namespace, s.o.selfLeafSecretName(), "ca.crt"), leaf.Data["ca.crt"]})
		}
	}
	if need != "" {
		// Whatever the CA Secret held (nothing, garbage, an old CA), the CAs
		// of the served leaf stay trusted until a leaf of the new CA replaces it.
		keep = append(keep, bundlePart{"the CA bundle served", s.CABundle()})
		ca, err = pki.NewCA(s.o.base()+"-ca", now, s.o.CADuration)
		if err != nil {
			return ca, nil, err
		}
		s.log.Info("new self-managed CA", "reason", need, "secret", s.o.Namespace+"/"+s.o.selfCASecretName())
	}
	bundle, err = mergeBundle(now, append(keep, bundlePart{caName, ca.CertPEM})...)
	if err != nil {
		// A corrupt bundle must not block rotation: start over from the CA
		// and the CAs of the served leaf. The error names the Secret and
		// key that could not be read (the CA Secret's, or the leaf
		// Secret's when the CA Secret is gone).
		s.log.Error(err, "CA bundle unreadable; resetting it")
		if bundle, err = pki.MergeBundle(now, s.CABundle(), ca.CertPEM); err != nil {
			bundle = ca.CertPEM
		}
	}
	caCert, err := ca.Parsed()
	if err != nil {
		return ca, nil, fmt.Errorf("CA in Secret %s/%s: %w", s.o.Namespace, s.o.selfCASecretName(), err)
	}
	certs, err := pki.ParseCerts(bundle)
	if err != nil {
		return ca, nil, fmt.Errorf("CA bundle for Secret %s/%s: %w", s.o.Namespace, s.o.selfCASecretName(), err)
	}
	if need != "" {
		// A CA the CA Secret's ca.crt listed stays until it expires, as at a
		// scheduled rotation; any other (every one, the Secret deleted) is
		// here only for the served leaf.
		listed := fingerprints(oldBundle)
		for _, c := range certs {
			if fp := pki.Fingerprint(c); fp != pki.Fingerprint(caCert.Leaf) && !listed[fp] && !carried[fp] {
				carried[fp] = true
				s.log.Info("CA kept only until a leaf of the new CA is served", "fingerprint", fp, "subject", c.Subject.String(),
					"notAfter", c.NotAfter, "secret", s.o.Namespace+"/"+s.o.selfCASecretName())
			}
		}
	}
	inBundle := map[string]bool{}
	for _, c := range certs {
		inBundle[pki.Fingerprint(c)] = true
	}
	for fp := range carried {
		if !inBundle[fp] { // expired, or gone from ca.crt
			delete(carried, fp)
		}
	}
	if need == "" && len(carried) > 0 {
		leafSec, err := s.getSecret(ctx, s.o.selfLeafSecretName())
		if err != nil {
			return ca, nil, err
		}
		if served, wait := s.leafOfCAServed(caCert.Leaf, leafSec, now); !served {
			s.newLeaf.wait = wait
		} else {
			var kept []*x509.Certificate
			for _, c := range certs {
				if !carried[pki.Fingerprint(c)] {
					kept = append(kept, c)
				}
			}
			bundle = pki.EncodeCerts(kept)
			s.log.Info("a leaf of the current CA is served: dropped the CAs kept only for the old leaf", "fingerprints", sortedKeys(carried),
				"secret", s.o.Namespace+"/"+s.o.selfCASecretName())
			carried = nil
		}
	}
	mark := strings.Join(sortedKeys(carried), ",")
	if need == "" && string(bundle) == string(oldBundle) && mark == sec.Annotations[carriedAnnotation] {
		return ca, bundle, nil
	}
	data := map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: ca.KeyPEM, "ca.crt": bundle}
	if err := s.writeSecret(ctx, sec, s.o.selfCASecretName(), data, map[string]string{carriedAnnotation: mark}); err != nil {
		return ca, nil, err
	}
	return ca, bundle, nil
}

// carriedCAs reads the CA Secret's carriedAnnotation. An entry that is not a
// fingerprint is reported and left out (the next write drops it): the CA it
// meant, if any, stays until it expires.
func (s *selfSource) carriedCAs(sec *corev1.Secret) map[string]bool {
	out := map[string]bool{}
	for _, f := range strings.Split(sec.Annotations[carriedAnnotation], ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if b, err := hex.DecodeString(f); err != nil || len(b) != sha256.Size {
			s.log.Error(fmt.Errorf("annotation %s on Secret %s/%s: entry %q is not a SHA-256 certificate fingerprint (64 hex digits)",
				carriedAnnotation, sec.Namespace, sec.Name, f), "ignoring the entry")
			continue
		}
		out[f] = true
	}
	return out
}

// leafOfCAServed reports whether a leaf of ca has been served for
// PropagationDelay without a break this term, by the leaf Secret (so by every
// replica, through its informer, allowing it the lag caHandover allows the
// API server's watch) and by the leader itself; if not, how much longer to
// wait once served (0: not served yet).
func (s *selfSource) leafOfCAServed(ca *x509.Certificate, leafSec *corev1.Secret, now time.Time) (bool, time.Duration) {
	l, cur := leafState(leafSec), s.current()
	if l == nil || !pki.SignedBy(l.leaf, ca) || cur == nil || !pki.SignedBy(cur.Leaf, ca) {
		s.newLeaf = leafServed{}
		return false, 0
	}
	if fp := pki.Fingerprint(ca); s.newLeaf.fp != fp {
		s.newLeaf = leafServed{fp: fp, since: now}
	}
	if wait := s.o.PropagationDelay - now.Sub(s.newLeaf.since); wait > 0 {
		return false, wait
	}
	return true, 0
}

// fingerprints is the set of the CAs in a PEM bundle; an unreadable one
// lists none.
func fingerprints(bundle []byte) map[string]bool {
	out := map[string]bool{}
	certs, err := pki.ParseCerts(bundle)
	if err != nil {
		return out
	}
	for _, c := range certs {
		out[pki.Fingerprint(c)] = true
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// getSecret reads from the API, not the informer: the leader must see its
// own last write or it would rotate twice.
func (s *selfSource) getSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	sec, err := s.cs.CoreV1().Secrets(s.o.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", s.o.Namespace, name, err)
	}
	return sec, nil
}

// caRenewalReason says why the CA must be replaced, or "". A CA outliving one
// issued now (a lowered --cert-ca-duration) is replaced like a leaf is;
// ensureCA keeps the old CA in the bundle until it expires.
func caRenewalReason(ca pki.KeyPair, lifetime, renewBefore time.Duration, now time.Time) string {
	c, err := ca.Parsed()
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case !c.Leaf.IsCA:
		return "not a CA"
	case outlives(c.Leaf, lifetime, now):
		return "duration shortened"
	case !now.Before(pki.RenewalTime(c.Leaf.NotBefore, c.Leaf.NotAfter, renewBefore)):
		return "due for renewal"
	}
	return ""
}

func (s *selfSource) writeLeaf(ctx context.Context, existing *corev1.Secret, kp pki.KeyPair, bundle []byte) error {
	data := map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, "ca.crt": bundle}
	return s.writeSecret(ctx, existing, s.o.selfLeafSecretName(), data, nil)
}

// writeSecret creates or updates (optimistically, on the cached
// resourceVersion) a kubernetes.io/tls Secret; a conflict means another
// writer won and the next pass re-reads. annotations are set, or removed
// where the value is empty; others are left alone.
func (s *selfSource) writeSecret(ctx context.Context, existing *corev1.Secret, name string, data map[string][]byte, annotations map[string]string) error {
	secrets := s.cs.CoreV1().Secrets(s.o.Namespace)
	setAnnotations := func(m *metav1.ObjectMeta) {
		for k, v := range annotations {
			switch {
			case v != "" && m.Annotations == nil:
				m.Annotations = map[string]string{k: v}
			case v != "":
				m.Annotations[k] = v
			default:
				delete(m.Annotations, k)
			}
		}
	}
	if existing == nil {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.o.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "meshguard"}},
			Type: corev1.SecretTypeTLS, Data: data,
		}
		setAnnotations(&sec.ObjectMeta)
		_, err := secrets.Create(ctx, sec, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s/%s: raced with another writer: %w", s.o.Namespace, name, err)
		}
		if err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", s.o.Namespace, name, err)
		}
		return nil
	}
	sec := existing.DeepCopy()
	sec.Data = data
	setAnnotations(&sec.ObjectMeta)
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", s.o.Namespace, name, err)
	}
	return nil
}

// leafInfo is what decideLeaf needs from the leaf Secret.
type leafInfo struct {
	leaf   *x509.Certificate
	keyOK  bool
	bundle []byte
}

func leafState(sec *corev1.Secret) *leafInfo {
	if sec == nil {
		return nil
	}
	kp := pki.KeyPair{CertPEM: sec.Data[corev1.TLSCertKey], KeyPEM: sec.Data[corev1.TLSPrivateKeyKey]}
	c, err := kp.Parsed()
	if err != nil {
		return &leafInfo{}
	}
	return &leafInfo{leaf: c.Leaf, keyOK: true, bundle: sec.Data["ca.crt"]}
}

type leafAction int

const (
	leafKeep leafAction = iota
	leafUpdateBundle
	leafReissue      // now
	leafReissueNewCA // once the new CA is trusted
)

type leafDecision struct {
	action  leafAction
	reason  string
	renewAt time.Time
}

// decideLeaf is the pure renewal rule for self mode's leaf.
func decideLeaf(l *leafInfo, ca *x509.Certificate, bundle []byte, dns []string, ips []net.IP, lifetime, renewBefore time.Duration, now time.Time) leafDecision {
	switch {
	case l == nil:
		return leafDecision{action: leafReissue, reason: "absent"}
	case !l.keyOK || l.leaf == nil:
		return leafDecision{action: leafReissue, reason: "unreadable"}
	case !now.Before(l.leaf.NotAfter):
		return leafDecision{action: leafReissue, reason: "expired"}
	case !pki.SignedBy(l.leaf, ca):
		// Before the names: whatever else changed, the replacement comes
		// from the new CA and must wait until it is trusted.
		return leafDecision{action: leafReissueNewCA, reason: "CA rotated"}
	case !pki.MatchesNames(l.leaf, dns, ips):
		return leafDecision{action: leafReissue, reason: "names changed"}
	case outlives(l.leaf, lifetime, now):
		return leafDecision{action: leafReissue, reason: "duration shortened"}
	}
	renewAt := pki.RenewalTime(l.leaf.NotBefore, l.leaf.NotAfter, renewBefore)
	if !now.Before(renewAt) {
		return leafDecision{action: leafReissue, reason: "due for renewal"}
	}
	if string(l.bundle) != string(bundle) {
		return leafDecision{action: leafUpdateBundle, reason: "bundle changed", renewAt: renewAt}
	}
	return leafDecision{action: leafKeep, renewAt: renewAt}
}

// outlives reports whether c ends later than one issued now for lifetime
// would (the duration flag was lowered): cert-manager re-issues a Certificate
// whose duration changed too (CurrentCertificateRequestMismatchesSpec). A
// tenth of slack for clock skew between leaders; a leaf capped at its CA's
// NotAfter never triggers it.
func outlives(c *x509.Certificate, lifetime time.Duration, now time.Time) bool {
	return c.NotAfter.After(now.Add(lifetime + lifetime/10))
}
