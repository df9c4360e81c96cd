package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

// fuzzNow is the fixed instant the fuzz targets merge and verify at (the
// seeds' certificates are minted around it).
var fuzzNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// FuzzParseCerts reads arbitrary bytes as a PEM bundle the way every
// caller does (ParseCerts, MergeBundle of two inputs, BundleContains,
// VerifyLeaf): no panic; what parses encodes back to the same
// certificates; MergeBundle fails exactly when an input does not parse,
// naming that input, and otherwise returns certificates of its inputs
// valid at now, without duplicates, oldest NotBefore first.
func FuzzParseCerts(f *testing.F) {
	ca, err := NewCA("fuzz-ca", fuzzNow, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := NewLeaf(ca, LeafSpec{DNSNames: []string{"svc.ns.svc"}, Lifetime: time.Hour}, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	expired, err := NewCA("expired", fuzzNow.Add(-2*time.Hour), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.CertPEM, leaf.CertPEM)
	f.Add(append(append([]byte("# comment line\n"), leaf.CertPEM...), ca.CertPEM...), expired.CertPEM)
	f.Add(ca.KeyPEM, []byte(" \n\t"))
	f.Add(ca.CertPEM[:len(ca.CertPEM)/2], ca.CertPEM)                                         // cut off
	f.Add(append(append([]byte{}, ca.CertPEM...), "trailing"...), []byte{})                   // junk after the last block
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte{}) // not DER
	f.Fuzz(func(t *testing.T, a, b []byte) {
		certsA, errA := ParseCerts(a)
		certsB, errB := ParseCerts(b)
		if errA == nil {
			again, err := ParseCerts(EncodeCerts(certsA))
			if err != nil || len(again) != len(certsA) {
				t.Fatalf("encoded certificates do not parse back: %d of %d, %v", len(again), len(certsA), err)
			}
			for i := range again {
				if Fingerprint(again[i]) != Fingerprint(certsA[i]) {
					t.Fatalf("certificate %d changed in the round trip", i)
				}
			}
		}
		merged, err := MergeBundle(fuzzNow, a, b)
		switch {
		case errA != nil || errB != nil:
			var be *BundleError
			if err == nil || !errors.As(err, &be) {
				t.Fatalf("MergeBundle of an unreadable input: %v (inputs: %v, %v)", err, errA, errB)
			}
			want := 1 // the first input that does not parse
			if errA != nil {
				want = 0
			}
			if be.Index != want {
				t.Fatalf("MergeBundle names input %d, want %d: %v", be.Index, want, err)
			}
			return
		case err != nil:
			t.Fatalf("MergeBundle of readable inputs: %v", err)
		}
		out, err := ParseCerts(merged)
		if err != nil {
			t.Fatalf("merged bundle does not parse: %v", err)
		}
		inputs := map[string]bool{}
		for _, c := range append(append([]*x509.Certificate{}, certsA...), certsB...) {
			inputs[Fingerprint(c)] = true
		}
		seen := map[string]bool{}
		for i, c := range out {
			fp := Fingerprint(c)
			switch {
			case !inputs[fp]:
				t.Fatalf("merged certificate %d is in neither input", i)
			case seen[fp]:
				t.Fatalf("merged certificate %d is a duplicate", i)
			case !fuzzNow.Before(c.NotAfter):
				t.Fatalf("merged certificate %d expired at %v", i, c.NotAfter)
			case i > 0 && c.NotBefore.Before(out[i-1].NotBefore):
				t.Fatalf("merged certificate %d is older than the one before it", i)
			}
			seen[fp] = true
		}
		if len(certsA) > 0 && !BundleContains(a, a) {
			t.Fatal("a bundle does not contain itself")
		}
		if len(certsB) > 0 {
			// b's certificates as leaves against a's as CAs: an error or
			// nil, never a panic.
			_ = VerifyLeaf(certsB[0], a, "svc.ns.svc", fuzzNow)
			_ = SignedByPEM(certsB[0], a)
		}
	})
}

// FuzzKeyPairParsed reads arbitrary certificate and key PEM as a stored
// serving certificate or CA is read back (KeyPair.Parsed, then NewLeaf
// signing with it): no panic, and a parsed pair always has its leaf.
func FuzzKeyPairParsed(f *testing.F) {
	ca, err := NewCA("fuzz-ca", fuzzNow, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	other, err := NewCA("other", fuzzNow, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.CertPEM, ca.KeyPEM)
	f.Add(ca.CertPEM, other.KeyPEM) // mismatched key
	f.Add(ca.KeyPEM, ca.CertPEM)
	f.Add(bytes.ToUpper(ca.CertPEM), ca.KeyPEM)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		kp := KeyPair{CertPEM: certPEM, KeyPEM: keyPEM}
		c, err := kp.Parsed()
		if err != nil {
			if _, err := NewLeaf(kp, LeafSpec{DNSNames: []string{"a"}, Lifetime: time.Minute}, fuzzNow); err == nil {
				t.Fatal("NewLeaf signed with a CA that does not parse")
			}
			return
		}
		if c.Leaf == nil {
			t.Fatal("parsed key pair without its leaf")
		}
		if _, err := NewLeaf(kp, LeafSpec{DNSNames: []string{"a"}, Lifetime: time.Minute}, fuzzNow); err != nil && err.Error() == "" {
			t.Fatal("NewLeaf error without a message")
		}
	})
}
