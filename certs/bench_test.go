package certs

import (
	"testing"
	"time"

	"github.com/meshguard/meshguard/certs/pki"
)

func BenchmarkGetCertificate(b *testing.B) {
	st := newStore("bench")
	now := time.Now()
	ca, _ := pki.NewCA("ca", now, time.Hour)
	leaf, _ := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: []string{"x"}, Lifetime: time.Hour}, now)
	if err := st.set(leaf, ca.CertPEM); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c, err := st.GetCertificate(nil); err != nil || c == nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMergeBundle(b *testing.B) {
	now := time.Now()
	var bundles [][]byte
	for i := 0; i < 3; i++ {
		ca, _ := pki.NewCA("ca", now, time.Hour)
		bundles = append(bundles, ca.CertPEM)
	}
	for b.Loop() {
		if _, err := pki.MergeBundle(now, bundles...); err != nil {
			b.Fatal(err)
		}
	}
}
