// Package pki holds the pure certificate logic behind meshguard's serving
// certificates: minting a CA and a leaf, merging and pruning CA bundles, the
// renewal time and chain checks. It does no I/O so every rule is table-tested.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sort"
	"time"
)

// KeyPair is a PEM certificate (chain) and its PEM private key.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// Parsed returns the tls.Certificate with Leaf set.
func (k KeyPair) Parsed() (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(k.CertPEM, k.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse key pair: %w", err)
	}
	if c.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("parse leaf: %w", err)
		}
		c.Leaf = leaf
	}
	return &c, nil
}

// backdate absorbs clock skew between meshguard and the API server: 5
// minutes, or a tenth of a short lifetime so renewal at 2/3 still means
// something for the seconds-long certificates tests use.
func backdate(lifetime time.Duration) time.Duration {
	return min(5*time.Minute, lifetime/10)
}

// NewCA mints a self-signed ECDSA P-256 CA valid from now-backdate to
// now+lifetime. It may sign leaves only (path length 0): every CA meshguard
// mints (self mode's, files mode's local CA, meshguard dev's) signs its
// serving certificates directly, so its key, kept in a Secret or a local
// file, cannot mint an intermediate that signs for anything.
func NewCA(commonName string, now time.Time, lifetime time.Duration) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return KeyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"meshguard"}},
		NotBefore:             now.Add(-backdate(lifetime)),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("sign CA: %w", err)
	}
	return encode(der, key)
}

// LeafSpec is what a serving certificate must cover.
type LeafSpec struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Lifetime   time.Duration
}

// NewLeaf mints a serving certificate signed by ca. Its NotAfter never passes
// the CA's, so a leaf cannot outlive the anchor clients verify it with.
func NewLeaf(ca KeyPair, spec LeafSpec, now time.Time) (KeyPair, error) {
	caCert, err := ca.Parsed()
	if err != nil {
		return KeyPair{}, fmt.Errorf("CA: %w", err)
	}
	signer, ok := caCert.PrivateKey.(crypto.Signer)
	if !ok {
		return KeyPair{}, errors.New("CA key is not a crypto.Signer")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate leaf key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return KeyPair{}, err
	}
	notAfter := now.Add(spec.Lifetime)
	if notAfter.After(caCert.Leaf.NotAfter) {
		notAfter = caCert.Leaf.NotAfter
	}
	cn := spec.CommonName
	// RFC 5280's ub-common-name, which cert-manager's Certificate validation
	// enforces: a longer name (a Service in a long namespace) stays a SAN only.
	if cn == "" && len(spec.DNSNames) > 0 && len(spec.DNSNames[0]) <= 64 {
		cn = spec.DNSNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: cn},
		NotBefore:      now.Add(-backdate(spec.Lifetime)),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:       spec.DNSNames,
		IPAddresses:    spec.IPs,
		AuthorityKeyId: caCert.Leaf.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert.Leaf, &key.PublicKey, signer)
	if err != nil {
		return KeyPair{}, fmt.Errorf("sign leaf: %w", err)
	}
	return encode(der, key)
}

// ParseCerts decodes every CERTIFICATE block in PEM data. Text before a
// block is skipped (pem.Decode's rule: a bundle's comment lines); anything
// but white space after the last block (no PEM at all, a cut-off block) is
// an error, not fewer certificates.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(bytes.TrimSpace(data)) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("no PEM block in the data after certificate %d", len(out))
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	return out, nil
}

// EncodeCerts PEM-encodes certificates in order.
func EncodeCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// MergeBundle returns one PEM bundle holding every certificate of the inputs
// that is still valid at now, without duplicates, oldest NotBefore first. This
// is the overlap rule of a rotation: a new CA is added next to the old ones and
// an old CA leaves only when it expires (as Kyverno and cert-manager's
// cainjector merging do). Unparseable input is an error
// so a corrupt Secret is never silently replaced by a smaller bundle.
func MergeBundle(now time.Time, bundles ...[]byte) ([]byte, error) {
	seen := map[string]bool{}
	var all []*x509.Certificate
	for i, b := range bundles {
		certs, err := ParseCerts(b)
		if err != nil {
			return nil, &BundleError{Index: i, Err: err}
		}
		for _, c := range certs {
			fp := Fingerprint(c)
			if seen[fp] || !now.Before(c.NotAfter) {
				continue
			}
			seen[fp] = true
			all = append(all, c)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].NotBefore.Before(all[j].NotBefore) })
	return EncodeCerts(all), nil
}

// BundleError is MergeBundle's error for an input it cannot read. Index is
// the input's position among the arguments, for the caller to name it (the
// Secret and key it came from).
type BundleError struct {
	Index int
	Err   error
}

func (e *BundleError) Error() string { return fmt.Sprintf("bundle %d: %v", e.Index, e.Err) }
func (e *BundleError) Unwrap() error { return e.Err }

// BundleContains reports whether every certificate in want is in bundle.
func BundleContains(bundle, want []byte) bool {
	have, err := ParseCerts(bundle)
	if err != nil {
		return false
	}
	wanted, err := ParseCerts(want)
	if err != nil || len(wanted) == 0 {
		return false
	}
	set := map[string]bool{}
	for _, c := range have {
		set[Fingerprint(c)] = true
	}
	for _, c := range wanted {
		if !set[Fingerprint(c)] {
			return false
		}
	}
	return true
}

// RenewalTime is when a certificate valid from notBefore to notAfter should be
// replaced: renewBefore ahead of expiry, or at two thirds of its life when
// renewBefore is zero or not shorter than the lifetime (cert-manager's default).
func RenewalTime(notBefore, notAfter time.Time, renewBefore time.Duration) time.Time {
	life := notAfter.Sub(notBefore)
	if renewBefore <= 0 || renewBefore >= life {
		renewBefore = life / 3
	}
	return notAfter.Add(-renewBefore)
}

// VerifyLeaf checks that leaf chains to one of the CAs in bundle at now and is
// valid for host (a DNS name or an IP; empty skips the name check).
func VerifyLeaf(leaf *x509.Certificate, bundle []byte, host string, now time.Time) error {
	if leaf == nil {
		return errors.New("no leaf certificate")
	}
	pool, err := BundlePool(bundle)
	if err != nil {
		return err
	}
	if err := VerifyServing(leaf, nil, pool, host, now); err != nil {
		return fmt.Errorf("leaf %q (serial %s): %w", leaf.Subject.CommonName, leaf.SerialNumber, err)
	}
	return nil
}

// VerifyServing is the one rule a serving certificate passes: it chains to
// roots (through intermediates, which may be nil) at now, is valid for host
// (empty skips the name check), and may authenticate a TLS server. The
// extended key usage is checked as every Go TLS client (the API server
// calling a webhook) checks it: a leaf with only clientAuth fails their
// handshake with "incompatible key usage". Istio's serving certificates
// carry serverAuth (security/pkg/pki/util/generate_cert.go
// genCertTemplateFromOptions).
func VerifyServing(leaf *x509.Certificate, intermediates, roots *x509.CertPool, host string, now time.Time) error {
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// SignedBy reports whether leaf's signature verifies with ca's key.
func SignedBy(leaf, ca *x509.Certificate) bool {
	return leaf != nil && ca != nil && leaf.CheckSignatureFrom(ca) == nil
}

// CoversNames reports whether leaf holds every DNS name and IP wanted.
func CoversNames(leaf *x509.Certificate, dnsNames []string, ips []net.IP) bool {
	for _, n := range dnsNames {
		if !containsString(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !containsIP(leaf.IPAddresses, ip) {
			return false
		}
	}
	return true
}

// MatchesNames reports whether leaf holds exactly the DNS names and IPs
// wanted (in any order): a name no longer wanted triggers re-issuance too, as
// cert-manager's FuzzyX509AltNamesMatchSpec compares both ways.
func MatchesNames(leaf *x509.Certificate, dnsNames []string, ips []net.IP) bool {
	if !CoversNames(leaf, dnsNames, ips) {
		return false
	}
	for _, n := range leaf.DNSNames {
		if !containsString(dnsNames, n) {
			return false
		}
	}
	for _, ip := range leaf.IPAddresses {
		if !containsIP(ips, ip) {
			return false
		}
	}
	return true
}

func containsIP(list []net.IP, ip net.IP) bool {
	for _, have := range list {
		if have.Equal(ip) {
			return true
		}
	}
	return false
}

// ErrEmptyBundle: a CA bundle that holds no certificate verifies nothing.
var ErrEmptyBundle = errors.New("CA bundle is empty: it holds no certificate")

// BundlePool is a PEM CA bundle as the pool a leaf is verified against; a
// bundle without a certificate is ErrEmptyBundle.
func BundlePool(bundle []byte) (*x509.CertPool, error) {
	cas, err := ParseCerts(bundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	if len(cas) == 0 {
		return nil, ErrEmptyBundle
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return pool, nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// SplitHosts separates SANs into DNS names and IP addresses.
func SplitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if h != "" && !containsString(dns, h) {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return sum[:20]
}

func encode(der []byte, key *ecdsa.PrivateKey) (KeyPair, error) {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal key: %w", err)
	}
	return KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// SignedByPEM reports whether leaf was signed by the first certificate in caPEM.
func SignedByPEM(leaf *x509.Certificate, caPEM []byte) bool {
	cas, err := ParseCerts(caPEM)
	return err == nil && len(cas) > 0 && SignedBy(leaf, cas[0])
}
