package analysis

import (
	"fmt"
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
