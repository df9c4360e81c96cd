package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshguard/meshguard/certs/pki"
)

// Source serves meshguard's current certificate.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// CABundle is the PEM of every CA clients should trust now.
	CABundle() []byte
	// Ready is a healthz.Checker: nil once a valid, unexpired certificate is loaded.
	Ready(*http.Request) error
	// TLSConfig is a TLS 1.2+ server config serving the current certificate;
	// with requireClientCert, clients must present a certificate from the bundle.
	TLSConfig(requireClientCert bool) *tls.Config
}

// ExpiryMetricName is the gauge holding the served certificate's NotAfter.
const ExpiryMetricName = "meshguard_serving_certificate_expiry_timestamp_seconds"

var (
	expiryGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ExpiryMetricName,
		Help: "NotAfter of the serving certificate meshguard currently serves, as a Unix timestamp.",
	}, []string{"mode"})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		if err := ctrlmetrics.Registry.Register(expiryGauge); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(fmt.Sprintf("register %s: %v", ExpiryMetricName, err))
			}
		}
	})
}

// errNotReady is returned by GetCertificate before the first load.
var errNotReady = errors.New("no serving certificate loaded yet")

// store is the in-memory state every mode feeds: the served key pair and the
// trust bundle. Swaps are atomic under the lock; handshakes only read.
type store struct {
	mode string
	now  func() time.Time

	mu     sync.RWMutex
	cert   *tls.Certificate
	read   pki.KeyPair // the PEM cert and its key were parsed from
	bundle []byte
	pool   *x509.CertPool
	// pending: a pair set while its certificate was not yet valid and the
	// served one was; current serves it from its NotBefore on.
	pending *servedPair
}

type servedPair struct {
	cert   *tls.Certificate
	read   pki.KeyPair // as the source gave it, for unchanged
	bundle []byte
	pool   *x509.CertPool
}

func newStore(mode string) *store {
	registerMetrics()
	return &store{mode: mode, now: time.Now}
}

// set installs a new key pair and bundle. An invalid pair is refused so a bad
// write never replaces a working certificate; so is, until its NotBefore, a
// pair not valid yet (an issuer that does not backdate, clock skew) while the
// served one is valid: it is kept pending and served from then on.
func (s *store) set(kp pki.KeyPair, bundle []byte) error {
	now := s.now()
	p, err := verifyPair(kp, bundle, now)
	if err != nil {
		return err
	}
	c := p.cert
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(c.Leaf.NotBefore) && s.cert != nil && validAt(s.cert, now) {
		s.pending = p
		return fmt.Errorf("certificate %q is valid from %s: the current one is served until then", c.Leaf.Subject.CommonName,
			c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	s.install(p)
	return nil
}

// unchanged reports whether kp and bundle are, byte for byte, the pair and
// bundle served. If so, a pending pair is dropped: the source went back to
// the served pair, so the pair it held meanwhile must not be switched in at
// its NotBefore. A source skipping set for an unchanged pair asks here.
func (s *store) unchanged(kp pki.KeyPair, bundle []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil || !bytes.Equal(s.read.CertPEM, kp.CertPEM) || !bytes.Equal(s.read.KeyPEM, kp.KeyPEM) || !bytes.Equal(s.bundle, bundle) {
		return false
	}
	s.pending = nil
	return true
}

// pairPart says which input a refused pair was refused for, so that a
// caller names the file or Secret key it read that input from.
type pairPart int

const (
	partKeyPair pairPart = iota // the certificate and key as a pair
	partCert                    // the leaf certificate
	partBundle                  // the CA bundle
	partChain                   // the leaf against the bundle
)

// pairError is verifyPair's refusal.
type pairError struct {
	part pairPart
	err  error
}

func (e *pairError) Error() string { return e.err.Error() }
func (e *pairError) Unwrap() error { return e.err }

// verifyPair is the rule a pair passes before any mode serves it (set) and
// before files mode starts on a pair it did not generate: the pair parses,
// has not expired, and its leaf chains to a CA of a non-empty bundle.
func verifyPair(kp pki.KeyPair, bundle []byte, now time.Time) (*servedPair, error) {
	c, err := kp.Parsed()
	if err != nil {
		return nil, &pairError{partKeyPair, err}
	}
	if !now.Before(c.Leaf.NotAfter) {
		return nil, &pairError{partCert, fmt.Errorf("certificate %q expired at %s", c.Leaf.Subject.CommonName, c.Leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	// An empty bundle (a ca.crt read while `cp` or `>` rewrites it, a Secret
	// without ca.crt) would serve no trust anchor: pki.ErrEmptyBundle.
	pool, err := pki.BundlePool(bundle)
	if err != nil {
		return nil, &pairError{partBundle, err}
	}
	if err := chainsTo(c, pool, now); err != nil {
		return nil, &pairError{partChain, err}
	}
	read := pki.KeyPair{CertPEM: append([]byte(nil), kp.CertPEM...), KeyPEM: append([]byte(nil), kp.KeyPEM...)}
	return &servedPair{cert: c, read: read, bundle: append([]byte(nil), bundle...), pool: pool}, nil
}

// chainsTo refuses a pair whose leaf does not chain to the CA bundle served
// beside it (through the intermediates of its own chain): clients and the
// API server verify the served certificate with that bundle. A bundle
// replaced apart from the pair (a ca.crt written by hand, or read between
// the renames of a rotation) is refused until the files agree again. Checked
// when the pair becomes valid, so a pair kept pending is judged as it will
// be served. The leaf must allow serverAuth (pki.VerifyServing): one that
// does not fails every client's handshake, so it never replaces a working
// pair.
func chainsTo(c *tls.Certificate, roots *x509.CertPool, now time.Time) error {
	intermediates := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("certificate chain: %w", err)
		}
		intermediates.AddCert(ic)
	}
	at := now
	if at.Before(c.Leaf.NotBefore) {
		at = c.Leaf.NotBefore
	}
	if err := pki.VerifyServing(c.Leaf, intermediates, roots, "", at); err != nil {
		return fmt.Errorf("certificate %q does not verify against the CA bundle served with it: %w", c.Leaf.Subject.CommonName, err)
	}
	return nil
}

// install serves p; the caller holds s.mu.
func (s *store) install(p *servedPair) {
	s.cert, s.read, s.bundle, s.pool, s.pending = p.cert, p.read, p.bundle, p.pool, nil
	expiryGauge.WithLabelValues(s.mode).Set(float64(p.cert.Leaf.NotAfter.Unix()))
}

func validAt(c *tls.Certificate, now time.Time) bool {
	return !now.Before(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter)
}

// current returns the served certificate (nil before the first load),
// serving the pending pair first once it is valid.
func (s *store) current() *tls.Certificate {
	s.mu.RLock()
	c, pending := s.cert, s.pending
	s.mu.RUnlock()
	if pending == nil {
		return c
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pending; p != nil && !now.Before(p.cert.Leaf.NotBefore) {
		s.install(p)
	}
	return s.cert
}

func (s *store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.current(); c != nil {
		return c, nil
	}
	return nil, errNotReady
}

func (s *store) CABundle() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]byte(nil), s.bundle...)
}

func (s *store) Ready(*http.Request) error {
	c := s.current()
	if c == nil {
		return fmt.Errorf("%s mode: no serving certificate loaded yet", s.mode)
	}
	now := s.now()
	if now.Before(c.Leaf.NotBefore) || !now.Before(c.Leaf.NotAfter) {
		return fmt.Errorf("%s mode: serving certificate valid %s to %s, not now", s.mode,
			c.Leaf.NotBefore.UTC().Format(time.RFC3339), c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *store) TLSConfig(requireClientCert bool) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate}
	if !requireClientCert {
		return base
	}
	// Verified by hand against the current pool (not ClientCAs) so client
	// verification follows CA rotations; GetConfigForClient would drop the
	// NextProtos that gRPC adds to the config it clones. VerifyConnection,
	// not VerifyPeerCertificate: Go skips the latter when a session ticket
	// resumes, which would let a client whose CA left the bundle back in.
	base.ClientAuth = tls.RequireAnyClientCert
	base.VerifyConnection = func(cs tls.ConnectionState) error {
		s.mu.RLock()
		pool := s.pool
		s.mu.RUnlock()
		return verifyClient(cs.PeerCertificates, pool, s.now())
	}
	return base
}

func verifyClient(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	if len(certs) == 0 {
		return errors.New("client certificate required")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if roots == nil {
		return errors.New("no client CA loaded")
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("client certificate %q: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}

// bundlePart is one input of a CA bundle merge, named for the error when it
// cannot be read (the Secret and key it came from).
type bundlePart struct {
	name string
	pem  []byte
}

// secretKey names a key of a Secret for a bundlePart.
func secretKey(namespace, name, key string) string {
	return "Secret " + namespace + "/" + name + " " + key
}

// mergeBundle is pki.MergeBundle whose error names the part it could not
// read, so that a log says which Secret to repair.
func mergeBundle(now time.Time, parts ...bundlePart) ([]byte, error) {
	pems := make([][]byte, len(parts))
	for i, p := range parts {
		pems[i] = p.pem
	}
	bundle, err := pki.MergeBundle(now, pems...)
	if be := (*pki.BundleError)(nil); errors.As(err, &be) {
		return nil, fmt.Errorf("CA bundle from %s: %w", parts[be.Index].name, be.Err)
	}
	return bundle, err
}
