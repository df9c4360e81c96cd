package analysis

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	networking "istio.io/api/networking/v1alpha3"
)

// GatewayDuplicateCertificate is the code of Istio's gateway certificate
// analyzer (pkg/config/analysis/analyzers/gateway/certificate.go
// CertificateAnalyzer, istio/istio 0a617ca985f9, the same rule as at
// 29bcc3ca14c0; level and text from pkg/config/analysis/msg/messages.gen.go
// NewGatewayDuplicateCertificate at 570ecd1c7977).
const GatewayDuplicateCertificate = "IST0138"

// maxCertificatePeers bounds the other Gateways one Gateway's IST0138
// messages name (duplicateGatewayCertificates).
const maxCertificatePeers = 20

func init() {
	Types[GatewayDuplicateCertificate] = MessageType{GatewayDuplicateCertificate, "GatewayDuplicateCertificate", Warning}
}

// duplicateGatewayCertificates is Istio's CertificateAnalyzer.Analyze over
// the Gateways of in.Objects; it reads no Secret, only the names the servers
// give. Two servers have the same certificate (Istio: haveSameCertificate)
// when both tls.credentialName are set and equal, or neither is set and
// both tls.serverCertificate and both tls.privateKey are set and equal
// (certificateKey). Gateway A is reported once for each other Gateway B
// (another namespace included: Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE is
// off by default) with a server of the same certificate as one of A's, when
// A's selector is empty or each of its labels is in B's selector with the
// same value (Istio: getGatewaysWithSelector, selectorSubset; here
// containsAll), so B is reported about A only when the converse holds too:
// "Duplicate certificate in multiple gateways [nsA/A nsB/B] may cause 404s
// if clients re-use HTTP2 connections." at metadata.name. Istio reports once per
// matching server pair, messages that print alike, of which istioctl keeps
// one. Two Gateway objects of one namespace and name (files may hold them)
// are one Gateway for Istio and are not compared.
//
// Istio compares every Gateway with every other; here only the Gateways
// sharing a certificate are paired, and a Gateway is reported with at most
// maxCertificatePeers others (the first found: certificates in sorted order,
// then Gateways in input order): a wildcard
// certificate shared by n Gateways is n*(n-1) messages in Istio, which
// would bound neither the audit's memory nor its reports.
func duplicateGatewayCertificates(in *Input) []Message {
	type gateway struct {
		o        Object
		selector map[string]string
	}
	var gateways []gateway
	byCert := map[string][]int{} // certificate → indexes in gateways, each once
	for _, o := range in.Objects {
		gw, ok := o.Spec.(*networking.Gateway)
		if !ok {
			continue
		}
		i := len(gateways)
		gateways = append(gateways, gateway{o, gw.GetSelector()})
		seen := map[string]bool{}
		for _, s := range gw.GetServers() {
			if key, ok := certificateKey(s.GetTls()); ok && !seen[key] {
				seen[key] = true
				byCert[key] = append(byCert[key], i)
			}
		}
	}
	type pair struct{ current, other int }
	pairs := map[pair]bool{}
	peers := map[int]int{} // current → others paired with it
	for _, key := range slices.Sorted(maps.Keys(byCert)) {
		idx := byCert[key]
		for _, i := range idx {
			for _, j := range idx {
				if peers[i] >= maxCertificatePeers {
					break
				}
				cur, other := gateways[i], gateways[j]
				if i == j || cur.o.Namespace == other.o.Namespace && cur.o.Name == other.o.Name {
					continue
				}
				if p := (pair{i, j}); !pairs[p] && (len(cur.selector) == 0 || containsAll(other.selector, cur.selector)) {
					pairs[p] = true
					peers[i]++
				}
			}
		}
	}
	var out []Message
	for _, p := range slices.SortedFunc(maps.Keys(pairs), func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.current, b.current), cmp.Compare(a.other, b.other))
	}) {
		cur, other := gateways[p.current].o, gateways[p.other].o
		out = append(out, newMessage(cur, GatewayDuplicateCertificate, "metadata.name",
			fmt.Sprintf("Duplicate certificate in multiple gateways %v may cause 404s if clients re-use HTTP2 connections.",
				[]string{cur.Namespace + "/" + cur.Name, other.Namespace + "/" + other.Name})))
	}
	return out
}

// certificateKey names the certificate a server's TLS settings use, as
// Istio's haveSameCertificate compares them: its credentialName, else its
// serverCertificate and privateKey when both are set; ok is false when
// there is none to compare.
func certificateKey(tls *networking.ServerTLSSettings) (key string, ok bool) {
	switch {
	case tls == nil:
		return "", false
	case tls.GetCredentialName() != "":
		return "credential\x00" + tls.GetCredentialName(), true
	case tls.GetServerCertificate() != "" && tls.GetPrivateKey() != "":
		return "files\x00" + tls.GetServerCertificate() + "\x00" + tls.GetPrivateKey(), true
	}
	return "", false
}
