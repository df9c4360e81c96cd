package analysis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// TestDuplicateGatewayCertificates: IST0138 cases Istio's
// gateway-duplicate-certificate.yaml does not cover (Istio:
// pkg/config/analysis/analyzers/gateway/certificate.go at 0a617ca985f9,
// haveSameCertificate, getGatewaysWithSelector): file certificates,
// credentialName against files, missing private keys, empty selectors,
// several matching servers (one message per pair of Gateways), and a
// Gateway given twice.
func TestDuplicateGatewayCertificates(t *testing.T) {
	cred := func(name string) *networking.Server {
		return &networking.Server{Hosts: []string{"*"}, Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, CredentialName: name}}
	}
	files := func(cert, key string) *networking.Server {
		return &networking.Server{Hosts: []string{"*"}, Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, ServerCertificate: cert, PrivateKey: key}}
	}
	sel := map[string]string{"istio": "ingressgateway"}
	gw := func(ns, name string, selector map[string]string, servers ...*networking.Server) Object {
		return Object{Kind: "Gateway", Namespace: ns, Name: name, Spec: &networking.Gateway{Selector: selector, Servers: servers}}
	}
	for _, tc := range []struct {
		name    string
		objects []Object
		want    []string // "ns/name: text's gateways"
	}{
		{"same files", []Object{gw("a", "g1", sel, files("/c.pem", "/k.pem")), gw("a", "g2", sel, files("/c.pem", "/k.pem"))},
			[]string{"a/g1 [a/g1 a/g2]", "a/g2 [a/g2 a/g1]"}},
		{"same certificate, other key", []Object{gw("a", "g1", sel, files("/c.pem", "/k1.pem")), gw("a", "g2", sel, files("/c.pem", "/k2.pem"))}, nil},
		{"no private keys", []Object{gw("a", "g1", sel, files("/c.pem", "")), gw("a", "g2", sel, files("/c.pem", ""))}, nil},
		// credentialName set on one side only: not compared with the files.
		{"credential against files", []Object{gw("a", "g1", sel, cred("/c.pem")),
			gw("a", "g2", sel, &networking.Server{Hosts: []string{"*"}, Tls: &networking.ServerTLSSettings{CredentialName: "", ServerCertificate: "/c.pem", PrivateKey: "/k.pem"}})}, nil},
		{"no TLS", []Object{gw("a", "g1", sel, &networking.Server{Hosts: []string{"*"}}), gw("a", "g2", sel, &networking.Server{Hosts: []string{"*"}})}, nil},
		// An empty selector selects every Gateway; the other's is no
		// subset of the empty one.
		{"empty selector", []Object{gw("a", "g1", nil, cred("c")), gw("b", "g2", sel, cred("c"))}, []string{"a/g1 [a/g1 b/g2]"}},
		// Other label values: neither is a subset.
		{"disjoint selectors", []Object{gw("a", "g1", sel, cred("c")), gw("a", "g2", map[string]string{"istio": "egressgateway"}, cred("c"))}, nil},
		// Several servers sharing the credential: one message per pair.
		{"several servers", []Object{gw("a", "g1", sel, cred("c"), cred("c"), cred("d")), gw("a", "g2", sel, cred("d"), cred("c"))},
			[]string{"a/g1 [a/g1 a/g2]", "a/g2 [a/g2 a/g1]"}},
		// One Gateway given twice is not its own duplicate.
		{"same gateway twice", []Object{gw("a", "g1", sel, cred("c")), gw("a", "g1", sel, cred("c"))}, nil},
		{"three gateways", []Object{gw("a", "g1", sel, cred("c")), gw("a", "g2", sel, cred("c")), gw("a", "g3", sel, cred("c"))},
			[]string{"a/g1 [a/g1 a/g2]", "a/g1 [a/g1 a/g3]", "a/g2 [a/g2 a/g1]", "a/g2 [a/g2 a/g3]", "a/g3 [a/g3 a/g1]", "a/g3 [a/g3 a/g2]"}},
	} {
		var got []string
		for _, m := range Analyze(Input{Objects: tc.objects}) {
			if m.Code != GatewayDuplicateCertificate {
				continue
			}
			if m.Level != Warning || m.Field != "metadata.name" {
				t.Errorf("%s: %+v", tc.name, m)
			}
			var gws string
			if i, j := strings.IndexByte(m.Message, '['), strings.IndexByte(m.Message, ']'); i >= 0 && j > i {
				gws = m.Message[i : j+1]
			}
			if m.Message != "Duplicate certificate in multiple gateways "+gws+" may cause 404s if clients re-use HTTP2 connections." {
				t.Errorf("%s: text %q", tc.name, m.Message)
			}
			got = append(got, m.Namespace+"/"+m.Object+" "+gws)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// A certificate shared by many Gateways: each is reported with at most
// maxCertificatePeers others, not n-1 (n*(n-1) messages in Istio).
func TestDuplicateGatewayCertificatesBounded(t *testing.T) {
	var in Input
	const n = 3 * maxCertificatePeers
	for i := range n {
		in.Objects = append(in.Objects, Object{Kind: "Gateway", Namespace: "shop", Name: fmt.Sprintf("gw-%03d", i), Spec: &networking.Gateway{
			Servers: []*networking.Server{{Port: &networking.Port{Number: 443, Name: "https", Protocol: "HTTPS"}, Hosts: []string{"*"},
				Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, CredentialName: "wildcard"}}}}})
	}
	msgs := duplicateGatewayCertificates(&in)
	per := map[string]int{}
	for _, m := range msgs {
		per[m.Object]++
	}
	if len(msgs) != n*maxCertificatePeers || len(per) != n {
		t.Fatalf("%d messages about %d Gateways, want %d about %d", len(msgs), len(per), n*maxCertificatePeers, n)
	}
	for name, k := range per {
		if k != maxCertificatePeers {
			t.Errorf("%s: %d messages, want %d", name, k, maxCertificatePeers)
		}
	}
}

// Gateways sharing one credentialName whose selectors are disjoint (or
// contain one another only through a shared label): the label index finds
// each Gateway's candidates without comparing it with every other, so
// 20,000 of them take no comparison at all (pairwise, a minute).
func TestDuplicateGatewayCertificatesManySelectors(t *testing.T) {
	const n = 20000
	gateways := func(sel func(i int) map[string]string) Input {
		var in Input
		for i := range n {
			in.Objects = append(in.Objects, Object{Kind: "Gateway", Namespace: "ns", Name: fmt.Sprintf("gw-%05d", i),
				Spec: &networking.Gateway{Selector: sel(i),
					Servers: []*networking.Server{{Tls: &networking.ServerTLSSettings{CredentialName: "wildcard"}}}}})
		}
		return in
	}
	in := gateways(func(i int) map[string]string { return map[string]string{"app": fmt.Sprintf("gw-%d", i)} })
	if msgs, used := gatewayCertificateDuplicates(&in, maxCertificateLabelChecks); len(msgs) != 0 || used != 0 {
		t.Errorf("disjoint selectors: %d messages, %d label lookups; want none", len(msgs), used)
	}
	// A shared label too, and one Gateway selecting by it alone: its
	// selector is in every other's, so it is reported with the first
	// maxCertificatePeers of them in input order; theirs are in no other.
	in = gateways(func(i int) map[string]string {
		if i == n/2 {
			return map[string]string{"istio": "ingressgateway"}
		}
		return map[string]string{"istio": "ingressgateway", "app": fmt.Sprintf("gw-%d", i)}
	})
	msgs, used := gatewayCertificateDuplicates(&in, maxCertificateLabelChecks)
	var want []string
	for i := range maxCertificatePeers {
		want = append(want, fmt.Sprintf("ns/gw-%05d [ns/gw-%05d ns/gw-%05d]", n/2, n/2, i))
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Namespace+"/"+m.Object+" "+m.Message[strings.IndexByte(m.Message, '['):strings.IndexByte(m.Message, ']')+1])
	}
	if !slices.Equal(got, want) || used > 3*(maxCertificatePeers+1) {
		t.Errorf("one wide selector: %d label lookups\ngot  %q\nwant %q", used, got, want)
	}
}

// Selectors no index separates (each Gateway one of 64 values of six binary
// labels: every label is in half of them, no selector contains another):
// each is compared with the 31 others of its rarest label at 1+6 lookups.
// Under a smaller budget the comparison stops at the fifth Gateway with one
// IST0138 at its credentialName naming the bound, and one for the other
// certificate, for which no budget is left.
func TestDuplicateGatewayCertificatesBudget(t *testing.T) {
	var in Input
	for i := range 64 {
		sel := map[string]string{}
		for b := range 6 {
			sel[fmt.Sprintf("b%d", b)] = fmt.Sprint(i >> b & 1)
		}
		in.Objects = append(in.Objects, Object{Kind: "Gateway", Namespace: "ns", Name: fmt.Sprintf("gw-%02d", i),
			Spec: &networking.Gateway{Selector: sel, Servers: []*networking.Server{
				{Tls: &networking.ServerTLSSettings{ServerCertificate: "/c.pem", PrivateKey: "/k.pem"}},
				{Tls: &networking.ServerTLSSettings{CredentialName: "wildcard"}}}}})
	}
	// Two certificates (the files, the credential), 64 Gateways, 31 others each.
	if msgs, used := gatewayCertificateDuplicates(&in, maxCertificateLabelChecks); len(msgs) != 0 || used != 2*64*31*7 {
		t.Errorf("full budget: %v, %d label lookups, want none and %d", msgs, used, 2*64*31*7)
	}
	msgs, used := gatewayCertificateDuplicates(&in, 1000)
	// The credential sorts first: gw-00..gw-03 take 4*217 = 868 lookups,
	// gw-04 stops after 18 of its 31 others; nothing is left for the
	// files, whose first Gateway is compared with no other.
	const text = "Duplicate certificate check incomplete: comparing the selectors of the 64 Gateways sharing this certificate takes more than 1000 label lookups, meshguard's bound; Gateways sharing it may go unreported."
	want := []string{
		"IST0138 Warning ns/gw-04 spec.servers[1].tls.credentialName " + text,
		"IST0138 Warning ns/gw-00 spec.servers[0].tls.serverCertificate " + text,
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Code+" "+m.Level.String()+" "+m.Namespace+"/"+m.Object+" "+m.Field+" "+m.Message)
	}
	if used != 994 || !slices.Equal(got, want) {
		t.Errorf("budget 1000: %d label lookups, want 994\ngot  %q\nwant %q", used, got, want)
	}
}

// Random Gateways of a few labels and certificates against Istio's rule
// written out pairwise (certificate.go analyzeDuplicateCertificate,
// haveSameCertificate, getGatewaysWithSelector with selectorSubset): the
// index finds the same pairs (fewer Gateways than maxCertificatePeers).
func TestDuplicateGatewayCertificatesPairwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 94))
	tlsOf := []*networking.ServerTLSSettings{nil, {CredentialName: "a"}, {CredentialName: "b"},
		{ServerCertificate: "/c.pem", PrivateKey: "/k.pem"}, {ServerCertificate: "/c.pem", PrivateKey: "/k2.pem"}, {ServerCertificate: "/c.pem"}}
	sameCert := func(x, y *networking.ServerTLSSettings) bool {
		switch {
		case x.CredentialName != "" && y.CredentialName != "":
			return x.CredentialName == y.CredentialName
		case x.CredentialName == "" && y.CredentialName == "" && x.ServerCertificate != "" && x.ServerCertificate == y.ServerCertificate:
			return x.PrivateKey != "" && y.PrivateKey != "" && x.PrivateKey == y.PrivateKey
		}
		return false
	}
	subset := func(x, y map[string]string) bool {
		for k, v := range x {
			if w, ok := y[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	for iter := range 500 {
		var in Input
		var gws []*networking.Gateway
		for i := range 2 + rng.IntN(12) {
			sel := map[string]string{}
			for _, k := range []string{"a", "b", "c"} {
				if rng.IntN(2) == 0 {
					sel[k] = fmt.Sprint(rng.IntN(2))
				}
			}
			gw := &networking.Gateway{Selector: sel}
			for range 1 + rng.IntN(2) {
				gw.Servers = append(gw.Servers, &networking.Server{Tls: tlsOf[rng.IntN(len(tlsOf))]})
			}
			gws = append(gws, gw)
			in.Objects = append(in.Objects, Object{Kind: "Gateway", Namespace: fmt.Sprint("ns", rng.IntN(2)), Name: fmt.Sprint("g", i), Spec: gw})
		}
		var want []string
		for i, x := range gws {
			for j, y := range gws {
				if i == j || !subset(x.Selector, y.Selector) {
					continue
				}
				if slices.ContainsFunc(x.Servers, func(sx *networking.Server) bool {
					return slices.ContainsFunc(y.Servers, func(sy *networking.Server) bool {
						return sx.Tls != nil && sy.Tls != nil && sameCert(sx.Tls, sy.Tls)
					})
				}) {
					a, b := in.Objects[i], in.Objects[j]
					want = append(want, fmt.Sprintf("%s/%s [%s/%s %s/%s]", a.Namespace, a.Name, a.Namespace, a.Name, b.Namespace, b.Name))
				}
			}
		}
		msgs, _ := gatewayCertificateDuplicates(&in, maxCertificateLabelChecks)
		var got []string
		for _, m := range msgs {
			got = append(got, m.Namespace+"/"+m.Object+" "+m.Message[strings.IndexByte(m.Message, '['):strings.IndexByte(m.Message, ']')+1])
		}
		if slices.Sort(got); !slices.Equal(got, sorted(want...)) {
			t.Fatalf("iteration %d:\ngot  %q\nwant %q", iter, got, sorted(want...))
		}
	}
}
