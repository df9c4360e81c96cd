package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, now time.Time, life time.Duration) KeyPair {
	t.Helper()
	ca, err := NewCA("test-ca", now, life)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustCert(t *testing.T, kp KeyPair) *x509.Certificate {
	t.Helper()
	c, err := kp.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestRenewalTime(t *testing.T) {
	nb := t0
	na := t0.Add(90 * time.Hour)
	cases := []struct {
		name        string
		renewBefore time.Duration
		want        time.Time
	}{
		{"default two thirds", 0, t0.Add(60 * time.Hour)},
		{"explicit", 10 * time.Hour, t0.Add(80 * time.Hour)},
		{"longer than life falls back", 100 * time.Hour, t0.Add(60 * time.Hour)},
		// cert-manager's RenewalTime honours renewBefore only when it is
		// shorter than the duration: equal falls back to a third too.
		{"equal to life falls back", 90 * time.Hour, t0.Add(60 * time.Hour)},
		{"negative falls back", -time.Hour, t0.Add(60 * time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RenewalTime(nb, na, c.renewBefore); !got.Equal(c.want) {
				t.Fatalf("RenewalTime = %s, want %s", got, c.want)
			}
		})
	}
}

func TestMergeBundle(t *testing.T) {
	old := mustCA(t, t0, 10*time.Hour) // valid to t0+10h
	cur := mustCA(t, t0.Add(5*time.Hour), 100*time.Hour)
	expired := mustCA(t, t0.Add(-10*time.Hour), time.Hour)
	cases := []struct {
		name    string
		now     time.Time
		in      [][]byte
		want    []KeyPair
		wantErr string
	}{
		{"keeps both during overlap, oldest first", t0.Add(6 * time.Hour), [][]byte{cur.CertPEM, old.CertPEM}, []KeyPair{old, cur}, ""},
		{"dedupes", t0.Add(6 * time.Hour), [][]byte{old.CertPEM, append(append([]byte{}, old.CertPEM...), cur.CertPEM...), cur.CertPEM}, []KeyPair{old, cur}, ""},
		{"prunes expired", t0.Add(11 * time.Hour), [][]byte{append(append([]byte{}, old.CertPEM...), cur.CertPEM...)}, []KeyPair{cur}, ""},
		{"prunes long expired", t0, [][]byte{expired.CertPEM, old.CertPEM}, []KeyPair{old}, ""},
		{"empty", t0, nil, nil, ""},
		{"corrupt is an error", t0, [][]byte{[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, nil, "bundle 0"},
		{"no PEM is an error", t0, [][]byte{old.CertPEM, []byte("not pem at all")}, nil, "bundle 1"},
		{"cut-off block is an error", t0, [][]byte{append(append([]byte{}, old.CertPEM...), cur.CertPEM[:len(cur.CertPEM)/2]...)}, nil, "after certificate 1"},
		{"comments before blocks and trailing space", t0.Add(6 * time.Hour), [][]byte{append(append([]byte("# old CA\n"), old.CertPEM...), "\n\n"...)}, []KeyPair{old}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := MergeBundle(c.now, c.in...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, kp := range c.want {
				want = append(want, kp.CertPEM...)
			}
			if !bytes.Equal(got, want) {
				certs, _ := ParseCerts(got)
				t.Fatalf("got %d certs, want %d", len(certs), len(c.want))
			}
		})
	}
}

func TestBundleContains(t *testing.T) {
	a := mustCA(t, t0, time.Hour)
	b := mustCA(t, t0, time.Hour)
	both := append(append([]byte{}, a.CertPEM...), b.CertPEM...)
	cases := []struct {
		name         string
		bundle, want []byte
		ok           bool
	}{
		{"present", both, b.CertPEM, true},
		{"absent", a.CertPEM, b.CertPEM, false},
		{"empty want", both, nil, false},
		{"empty bundle", nil, a.CertPEM, false},
	}
	for _, c := range cases {
		if got := BundleContains(c.bundle, c.want); got != c.ok {
			t.Errorf("%s: got %v want %v", c.name, got, c.ok)
		}
	}
}

func TestLeafChainAndNames(t *testing.T) {
	ca := mustCA(t, t0, 10*time.Hour)
	other := mustCA(t, t0, 10*time.Hour)
	leafKP, err := NewLeaf(ca, LeafSpec{DNSNames: []string{"svc.ns.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Lifetime: 20 * time.Hour}, t0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustCert(t, leafKP)
	if !leaf.NotAfter.Equal(mustCert(t, ca).NotAfter) {
		t.Errorf("leaf NotAfter %s not clamped to CA's %s", leaf.NotAfter, mustCert(t, ca).NotAfter)
	}
	if !SignedBy(leaf, mustCert(t, ca)) || SignedBy(leaf, mustCert(t, other)) {
		t.Error("SignedBy wrong")
	}
	both := append(append([]byte{}, other.CertPEM...), ca.CertPEM...)
	cases := []struct {
		name, host string
		bundle     []byte
		now        time.Time
		wantErr    string
	}{
		{"dns ok", "svc.ns.svc", ca.CertPEM, t0.Add(time.Hour), ""},
		{"ip ok", "127.0.0.1", ca.CertPEM, t0.Add(time.Hour), ""},
		{"bundle with two CAs", "svc.ns.svc", both, t0.Add(time.Hour), ""},
		{"wrong name", "other.ns.svc", ca.CertPEM, t0.Add(time.Hour), "certificate is valid for"},
		{"wrong CA", "svc.ns.svc", other.CertPEM, t0.Add(time.Hour), "unknown authority"},
		{"expired", "svc.ns.svc", ca.CertPEM, t0.Add(11 * time.Hour), "expired"},
		{"empty bundle", "svc.ns.svc", nil, t0, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyLeaf(leaf, c.bundle, c.host, c.now)
			if c.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
		})
	}
	if !CoversNames(leaf, []string{"svc.ns.svc"}, []net.IP{net.ParseIP("127.0.0.1")}) {
		t.Error("CoversNames: want true")
	}
	if CoversNames(leaf, []string{"svc.ns.svc", "x"}, nil) || CoversNames(leaf, nil, []net.IP{net.ParseIP("10.0.0.1")}) {
		t.Error("CoversNames: want false for missing names")
	}
	if !MatchesNames(leaf, []string{"svc.ns.svc"}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.1")}) {
		t.Error("MatchesNames: want true for the same names")
	}
	if MatchesNames(leaf, []string{"svc.ns.svc"}, nil) || MatchesNames(leaf, nil, []net.IP{net.ParseIP("127.0.0.1")}) ||
		MatchesNames(leaf, []string{"svc.ns.svc", "x"}, []net.IP{net.ParseIP("127.0.0.1")}) {
		t.Error("MatchesNames: want false for a name too many or missing")
	}
}

func TestSplitHosts(t *testing.T) {
	dns, ips := SplitHosts([]string{"a", "127.0.0.1", "", "a", "::1", "b.c"})
	if strings.Join(dns, ",") != "a,b.c" || len(ips) != 2 || !ips[1].Equal(net.ParseIP("::1")) {
		t.Fatalf("got %v %v", dns, ips)
	}
}

func TestParsedRejectsMismatch(t *testing.T) {
	a := mustCA(t, t0, time.Hour)
	b := mustCA(t, t0, time.Hour)
	if _, err := (KeyPair{CertPEM: a.CertPEM, KeyPEM: b.KeyPEM}).Parsed(); err == nil {
		t.Fatal("mismatched key accepted")
	}
}

// TestLeafCommonNameBound: the CN defaults to the first DNS name only when
// that fits RFC 5280's ub-common-name (64), the limit cert-manager's
// Certificate validation enforces; a Service name in a long namespace
// (svc.<63 characters>.svc) is carried by the SAN alone.
func TestLeafCommonNameBound(t *testing.T) {
	ca := mustCA(t, t0, 10*time.Hour)
	long := "meshguard." + strings.Repeat("n", 63) + ".svc"
	for _, c := range []struct{ dns, wantCN string }{
		{"meshguard.mg.svc", "meshguard.mg.svc"},
		// ub-common-name is 64: a name of exactly 64 bytes is still a CN.
		{"meshguard." + strings.Repeat("n", 50) + ".svc", "meshguard." + strings.Repeat("n", 50) + ".svc"},
		{long, ""},
	} {
		kp, err := NewLeaf(ca, LeafSpec{DNSNames: []string{c.dns}, Lifetime: time.Hour}, t0)
		if err != nil {
			t.Fatal(err)
		}
		leaf := mustCert(t, kp)
		if leaf.Subject.CommonName != c.wantCN || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != c.dns {
			t.Errorf("DNS name %q: CN %q (want %q), SANs %v", c.dns, leaf.Subject.CommonName, c.wantCN, leaf.DNSNames)
		}
	}
}

// TestBackdate: certificates start 5 minutes early for clock skew, or a
// tenth of a short lifetime, so renewal at 2/3 still falls inside a
// seconds-long test certificate's life.
func TestBackdate(t *testing.T) {
	for _, c := range []struct{ life, want time.Duration }{
		{90 * time.Hour, 5 * time.Minute},
		{50 * time.Minute, 5 * time.Minute},
		{10 * time.Second, time.Second},
	} {
		ca := mustCA(t, t0, c.life)
		leaf, err := NewLeaf(ca, LeafSpec{DNSNames: []string{"mg.ns.svc"}, Lifetime: c.life}, t0)
		if err != nil {
			t.Fatal(err)
		}
		for what, got := range map[string]time.Time{"CA": mustCert(t, ca).NotBefore, "leaf": mustCert(t, leaf).NotBefore} {
			if want := t0.Add(-c.want); !got.Equal(want) {
				t.Errorf("lifetime %s: %s NotBefore %s, want %s", c.life, what, got, want)
			}
		}
	}
}

// TestCACannotSignIntermediate: every CA meshguard mints (self mode's, the
// local CA of files mode and dev) signs leaves only. An intermediate made
// with its key, here with crypto/x509 directly, does not chain: Go's
// verifier (as the API server's) refuses the path, so a stolen CA key cannot
// hand out a CA of its own.
func TestCACannotSignIntermediate(t *testing.T) {
	ca := mustCA(t, t0, 10*time.Hour)
	parsed, err := ca.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	if c := parsed.Leaf; !c.IsCA || !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Fatalf("CA isCA %v maxPathLen %d (zero %v), want path length 0", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "intermediate"},
		NotBefore: t0, NotAfter: t0.Add(5 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, parsed.Leaf, &interKey.PublicKey, parsed.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), DNSNames: []string{"svc.ns.svc"},
		NotBefore: t0, NotAfter: t0.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsed.Leaf)
	intermediates := x509.NewCertPool()
	intermediates.AddCert(inter)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: "svc.ns.svc", CurrentTime: t0.Add(time.Minute)})
	if err == nil {
		t.Fatal("a leaf under an intermediate the CA signed verified: the CA has no path-length limit")
	}
}
