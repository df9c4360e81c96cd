package analysis

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshguard/meshguard/internal/submap"
	"github.com/meshguard/meshguard/validation/crossref"
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

// maxCertificateLabelChecks bounds the selector comparisons of one
// duplicateGatewayCertificates run, in labels looked up (a comparison of a
// selector of k labels costs 1+k): the Gateways sharing a certificate are
// compared through an index of their selectors' labels, which finds the few
// candidates of real selectors at once, but no index answers "which
// selectors contain this one" for every input (20,000 Gateways of one
// credentialName took a minute compared pairwise). A few million lookups
// are well under a second; past them the comparison stops with a message.
const maxCertificateLabelChecks = 1 << 22

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
// submap.Contains), so B is reported about A only when the converse holds too:
// "Duplicate certificate in multiple gateways [nsA/A nsB/B] may cause 404s
// if clients re-use HTTP2 connections." at metadata.name. Istio reports once per
// matching server pair, messages that print alike, of which istioctl keeps
// one. Two Gateway objects of one namespace and name (files may hold them)
// are one Gateway for Istio and are not compared; as B only the first of
// them (in input order) is taken, as messages naming either print alike.
//
// Istio compares every Gateway with every other; here only the Gateways
// sharing a certificate are paired, and a Gateway is reported with at most
// maxCertificatePeers others (the first found: certificates in sorted order,
// then Gateways in input order): a wildcard certificate shared by n
// Gateways is n*(n-1) messages in Istio, which would bound neither the
// audit's memory nor its reports. The selector comparisons are bounded by
// maxCertificateLabelChecks (gatewayCertificateDuplicates).
func duplicateGatewayCertificates(in *Input) []Message {
	out, _ := gatewayCertificateDuplicates(in, maxCertificateLabelChecks)
	return out
}

// gatewayCertificateDuplicates is duplicateGatewayCertificates with budget
// label lookups for the selector comparisons; used says how many it took.
//
// The Gateways of one certificate are grouped by selector
// (crossref.SelectorKey); the Gateways of one group are each other's
// candidates, and those of another group are A's when that group's
// selector contains A's. An empty selector is contained in every one; else
// the groups containing it are among those having its label of fewest
// groups (index byLabel), each compared with containsAll at the cost of
// 1+len(selector). A group's candidates are gathered once, the first
// maxCertificatePeers+1 of them in input order (enough for each of its
// Gateways: at most one of them has its name, and the ones paired under an
// earlier certificate count to its bound); the scan stops when no later
// group can give an earlier one. When the budget runs out, the
// certificate's first Gateway of a group whose candidates were not all
// compared gets one IST0138 (meshguard's text: "Duplicate certificate check
// incomplete: ...") at the server's tls field, and the pairs found are kept.
func gatewayCertificateDuplicates(in *Input, budget int) (out []Message, used int) {
	type gateway struct {
		o        Object
		selector map[string]string
		field    map[string]string // certificate → the field of its first server
	}
	var gateways []gateway
	byCert := map[string][]int{} // certificate → indexes in gateways, each once
	for _, o := range in.Objects {
		gw, ok := o.Spec.(*networking.Gateway)
		if !ok {
			continue
		}
		i := len(gateways)
		gateways = append(gateways, gateway{o, gw.GetSelector(), map[string]string{}})
		for s, srv := range gw.GetServers() {
			if key, ok := certificateKey(srv.GetTls()); ok && gateways[i].field[key] == "" {
				f := "serverCertificate"
				if srv.GetTls().GetCredentialName() != "" {
					f = "credentialName"
				}
				gateways[i].field[key] = fmt.Sprintf("spec.servers[%d].tls.%s", s, f)
				byCert[key] = append(byCert[key], i)
			}
		}
	}
	type pair struct{ current, other int }
	pairs := map[pair]bool{}
	peers := map[int]int{} // current → others paired with it
	sameName := func(i, j int) bool {
		return gateways[i].o.Namespace == gateways[j].o.Namespace && gateways[i].o.Name == gateways[j].o.Name
	}
	for _, key := range slices.Sorted(maps.Keys(byCert)) {
		type group struct {
			selector map[string]string
			members  []int // its Gateways, in input order
			others   []int // those that are the first of their namespace/name
		}
		var groups []*group
		bySelector := map[string]int{}
		byLabel := map[string][]int{} // "key\x00value" → the groups whose selector has it, in order
		named := map[[2]string]bool{}
		for _, i := range byCert[key] {
			gw := gateways[i]
			sk := crossref.SelectorKey(gw.selector)
			g, ok := bySelector[sk]
			if !ok {
				g = len(groups)
				bySelector[sk] = g
				groups = append(groups, &group{selector: gw.selector})
				for k, v := range gw.selector {
					byLabel[k+"\x00"+v] = append(byLabel[k+"\x00"+v], g)
				}
			}
			groups[g].members = append(groups[g].members, i)
			if n := [2]string{gw.o.Namespace, gw.o.Name}; !named[n] {
				named[n] = true
				groups[g].others = append(groups[g].others, i)
			}
		}
		incomplete := -1 // the first group whose candidates were not all compared
		for g, grp := range groups {
			var scan []int // the groups that may contain grp's selector, in order
			if len(grp.selector) == 0 {
				scan = make([]int, len(groups))
				for h := range scan {
					scan[h] = h
				}
			} else {
				for _, k := range slices.Sorted(maps.Keys(grp.selector)) { // sorted: the same label each run
					if l := byLabel[k+"\x00"+grp.selector[k]]; scan == nil || len(l) < len(scan) {
						scan = l
					}
				}
			}
			var candidates []int // sorted, at most maxCertificatePeers+1
			for _, h := range scan {
				hg := groups[h]
				if len(candidates) > maxCertificatePeers && hg.members[0] > candidates[len(candidates)-1] {
					break // hg's Gateways and every later group's come after the last candidate
				}
				if h != g {
					cost := 1 + len(grp.selector)
					if used+cost > budget {
						if incomplete < 0 {
							incomplete = g
						}
						break
					}
					used += cost
					if !submap.Contains(hg.selector, grp.selector) {
						continue
					}
				}
				candidates = append(candidates, hg.others[:min(len(hg.others), maxCertificatePeers+1)]...)
				slices.Sort(candidates)
				candidates = candidates[:min(len(candidates), maxCertificatePeers+1)]
			}
			for _, i := range grp.members {
				for _, j := range candidates {
					if peers[i] >= maxCertificatePeers {
						break
					}
					if p := (pair{i, j}); !sameName(i, j) && !pairs[p] {
						pairs[p] = true
						peers[i]++
					}
				}
			}
		}
		if incomplete >= 0 {
			gw := gateways[groups[incomplete].members[0]]
			out = append(out, newMessage(gw.o, GatewayDuplicateCertificate, gw.field[key],
				fmt.Sprintf("Duplicate certificate check incomplete: comparing the selectors of the %d Gateways sharing this certificate takes more than %d label lookups, meshguard's bound; Gateways sharing it may go unreported.",
					len(byCert[key]), budget)))
		}
	}
	for _, p := range slices.SortedFunc(maps.Keys(pairs), func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.current, b.current), cmp.Compare(a.other, b.other))
	}) {
		cur, other := gateways[p.current].o, gateways[p.other].o
		out = append(out, newMessage(cur, GatewayDuplicateCertificate, "metadata.name",
			fmt.Sprintf("Duplicate certificate in multiple gateways %v may cause 404s if clients re-use HTTP2 connections.",
				[]string{cur.Namespace + "/" + cur.Name, other.Namespace + "/" + other.Name})))
	}
	return out, used
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
