package crossref

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/internal/hostname"
)

// The scans the view's host sets replace, kept as the reference they must agree with.

func scanHostKnown(ix *Index, fqdn string) bool {
	if _, ok := ix.services[fqdn]; ok {
		return true
	}
	for k, se := range ix.serviceEntries {
		for _, h := range se.GetHosts() {
			if hostname.SubsetOf(fqdn, ix.fqdn(h, k.Namespace)) {
				return true
			}
		}
	}
	return false
}

func scanServiceEntriesCovering(ix *Index, fqdn string) []Key {
	var out []Key
	for _, sk := range sortedKeys(ix.serviceEntries) {
		for _, h := range ix.serviceEntries[sk].GetHosts() {
			if hostname.SubsetOf(fqdn, ix.fqdn(h, sk.Namespace)) {
				out = append(out, sk)
				break
			}
		}
	}
	return out
}

func scanDestinationRulesFor(ix *Index, host string) []Key {
	v := ix.current()
	exact := v.drByHost[host]
	var wild []Key
	for _, k := range sortedKeys(ix.destinationRules) {
		dh := ix.fqdn(ix.destinationRules[k].GetHost(), k.Namespace)
		if strings.Contains(dh, "*") && hostname.SubsetOf(host, dh) {
			wild = append(wild, k)
		}
	}
	if len(wild) == 0 {
		return exact
	}
	out := append(slices.Clone(exact), wild...)
	slices.SortFunc(out, compareKeys)
	return out
}

func scanDestinationHost(ix *Index, vsNS string, exportTo []string, host string) *hostEntry {
	v := ix.current()
	fq := ix.fqdn(host, vsNS)
	if e := v.hosts[scoped("*", fq)]; e != nil {
		return e
	}
	scopes := exportTo
	if len(scopes) == 0 {
		scopes = []string{vsNS}
	}
	for _, s := range scopes {
		if s == "." {
			s = vsNS
		}
		if e := v.hosts[scoped(s, fq)]; e != nil {
			return e
		}
	}
	for _, w := range v.wildHosts {
		if (w.scope == "*" || w.scope == vsNS) && hostname.SubsetOf(host, w.host) {
			return w.entry
		}
	}
	return nil
}

// randomHost draws from a small alphabet of labels so that hosts, wildcard
// ones ("*", "*.a.com", "*a.com") included, often cover one another.
func randomHost(r *rand.Rand) string {
	labels := []string{"a", "b", "ba", "com", "svc", "ns1", "ns2", "cluster", "local"}
	var h string
	for i := range 1 + r.IntN(4) {
		if i > 0 {
			h += "."
		}
		h += labels[r.IntN(len(labels))]
	}
	switch r.IntN(6) {
	case 0:
		return "*." + h
	case 1:
		return "*" + h
	case 2:
		if r.IntN(4) == 0 {
			return "*"
		}
	case 3:
		return labels[r.IntN(len(labels))] // a short name
	case 4:
		if r.IntN(4) == 0 {
			return "b*." + h // not a wildcard: compared as written
		}
	}
	return h
}

// TestHostSetsMatchScans compares the view's lookups with the scans they
// replaced on random indexes and hosts: same answers, same order.
func TestHostSetsMatchScans(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	nss := []string{"ns1", "ns2", "a"}
	for round := range 200 {
		ix := NewIndex("")
		for i := range r.IntN(30) {
			ns := nss[r.IntN(len(nss))]
			var hosts []string
			for range 1 + r.IntN(3) {
				hosts = append(hosts, randomHost(r))
			}
			var exportTo []string
			if r.IntN(3) == 0 {
				exportTo = []string{nss[r.IntN(len(nss))]}
			}
			ix.SetServiceEntry(Key{ns, fmt.Sprintf("se%d", i)}, &networking.ServiceEntry{Hosts: hosts, ExportTo: exportTo})
			ix.SetDestinationRule(Key{ns, fmt.Sprintf("dr%d", i)}, &networking.DestinationRule{Host: randomHost(r)})
			ix.SetService(ns, []string{"a", "b", "ba"}[r.IntN(3)], true)
		}
		ix.SetReady()
		for range 50 {
			host, ns := randomHost(r), nss[r.IntN(len(nss))]
			fq := ix.fqdn(host, ns)
			if got, want := ix.hostKnown(fq, &work{}), scanHostKnown(ix, fq); got != want {
				t.Fatalf("round %d: hostKnown(%q) = %v, scan %v", round, fq, got, want)
			}
			want := scanDestinationRulesFor(ix, fq)
			if got, total := ix.firstDestinationRulesFor(fq, 100, &work{}); !slices.Equal(got, want) || total != len(want) {
				t.Fatalf("round %d: firstDestinationRulesFor(%q, 100) = %v, %d; scan %v", round, fq, got, total, want)
			}
			if first, total := ix.firstDestinationRulesFor(fq, 2, &work{}); !slices.Equal(first, want[:min(2, len(want))]) || total != len(want) {
				t.Fatalf("round %d: firstDestinationRulesFor(%q, 2) = %v, %d; scan %v", round, fq, first, total, want)
			}
			if got, want := ix.destinationHost(ns, nil, host, &work{}), scanDestinationHost(ix, ns, nil, host); got != want {
				t.Fatalf("round %d: destinationHost(%s, %q) = %v, scan %v", round, ns, host, got, want)
			}
			var got []Key
			ix.current().seHosts.covering(fq, &work{}, func(k Key) {
				if !slices.Contains(got, k) {
					got = append(got, k)
				}
			})
			slices.SortFunc(got, compareKeys)
			if want := scanServiceEntriesCovering(ix, fq); !slices.Equal(got, want) {
				t.Fatalf("round %d: ServiceEntries covering %q = %v, scan %v", round, fq, got, want)
			}
		}
	}
}

func TestCompareKeysAsStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	parts := []string{"", "a", "a-b", "a.b", "a/b", "ab", "b", "a0", "/"}
	for range 20000 {
		a := Key{parts[r.IntN(len(parts))], parts[r.IntN(len(parts))]}
		b := Key{parts[r.IntN(len(parts))], parts[r.IntN(len(parts))]}
		if got, want := compareKeys(a, b), strings.Compare(a.String(), b.String()); got != want {
			t.Fatalf("compareKeys(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
}

// TestMeshMatchingMatchesScan compares meshHosts.matching with a scan of
// every entry (hostname.Matches), as it was, on random VirtualServices,
// wildcard hosts included.
func TestMeshMatchingMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	nss := []string{"ns1", "ns2"}
	entryKey := func(e meshEntry) string { return fmt.Sprint(e) }
	for round := range 200 {
		ix := NewIndex("")
		for i := range r.IntN(30) {
			vs := &networking.VirtualService{}
			for range 1 + r.IntN(3) {
				vs.Hosts = append(vs.Hosts, randomHost(r))
			}
			if r.IntN(2) == 0 {
				vs.ExportTo = []string{nss[r.IntN(len(nss))]}
			}
			ix.SetVirtualService(Key{nss[r.IntN(len(nss))], fmt.Sprintf("vs%d", i)}, vs)
		}
		m := ix.current().meshHosts
		for range 50 {
			host, star := randomHost(r), r.IntN(2) == 0
			var want []string
			for _, e := range m.rev[starIndex(map[bool]string{true: "*", false: "ns1"}[star])] { // every entry
				if hostname.Matches(host, e.host) {
					want = append(want, entryKey(e.meshEntry))
				}
			}
			var got []string
			for _, e := range m.matching(host, star, &work{}) {
				got = append(got, entryKey(e))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: matching(%q, %v) = %v, scan %v", round, host, star, got, want)
			}
		}
	}
}

// TestSelectorKeyIsMapEquality: checkGateway's peers, once found with
// maps.Equal over every Gateway, are the Gateways of the same SelectorKey.
func TestSelectorKeyIsMapEquality(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	parts := []string{"", "a", "b", "1:a", "a1:", ":", "ab"}
	random := func() map[string]string {
		if r.IntN(5) == 0 {
			return nil
		}
		m := map[string]string{}
		for range r.IntN(3) {
			m[parts[r.IntN(len(parts))]] = parts[r.IntN(len(parts))]
		}
		return m
	}
	for range 20000 {
		a, b := random(), random()
		if got, want := SelectorKey(a) == SelectorKey(b), maps.Equal(a, b); got != want {
			t.Fatalf("SelectorKey(%v) == SelectorKey(%v): %v, maps.Equal %v", a, b, got, want)
		}
	}
}

// TestHostSetMatchesAnyMatchesScan: matchesAny (IST0132's lookup) answers as
// comparing every pair of hosts with hostname.Matches does.
func TestHostSetMatchesAnyMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 2000 {
		var a, b []string
		for range r.IntN(4) {
			a = append(a, randomHost(r))
		}
		for range r.IntN(4) {
			b = append(b, randomHost(r))
		}
		want := false
		for _, x := range a {
			for _, y := range b {
				want = want || hostname.Matches(x, y)
			}
		}
		if got := newHostSet(a).matchesAny(newHostSet(b), &work{}); got != want {
			t.Fatalf("round %d: matchesAny(%q, %q) = %v, pairwise %v", round, a, b, got, want)
		}
	}
}

// scanMeshHosts is checkMeshHosts as it was, considering every matching
// namespace-scoped entry of every VirtualService for each host exported
// everywhere (TestMeshHostsMatchScan).
func scanMeshHosts(ix *Index, k Key, vs *networking.VirtualService) []Finding {
	own := ix.meshEntries(k, vs)
	if len(own) == 0 {
		return nil
	}
	m := ix.current().meshHosts
	// k's entries by scoped host, and those exported everywhere: a loop over
	// all of them per host made a check quadratic in the number of hosts.
	ownScoped := make(map[string]bool, len(own))
	var ownStar []meshEntry
	for _, e := range own {
		ownScoped[scoped(e.scope, e.host)] = true
		if e.scope == "*" {
			ownStar = append(ownStar, e)
		}
	}
	// group is the conflicting set of scoped host (scope, host), k's own
	// entries standing for its stored ones: the VirtualServices of that
	// scoped host, then, for a namespace scope, those exported everywhere
	// whose host matches.
	group := func(scope, host string) []Key {
		var g []Key
		for _, o := range m.byScoped[scoped(scope, host)] {
			if o != k {
				g = append(g, o)
			}
		}
		if ownScoped[scoped(scope, host)] {
			g = append(g, k)
		}
		slices.SortFunc(g, compareKeys)
		if scope == "*" {
			return g
		}
		var all []Key
		for _, e := range m.matching(host, true, &work{}) {
			if e.vs != k {
				all = append(all, e.vs)
			}
		}
		for _, e := range ownStar {
			if hostname.Matches(host, e.host) {
				all = append(all, k)
			}
		}
		slices.SortFunc(all, compareKeys)
		for _, a := range slices.Compact(all) {
			if !slices.Contains(g, a) {
				g = append(g, a)
			}
		}
		return g
	}
	var best struct {
		scopedHost string
		index      int
		group      []Key
	}
	consider := func(scope, host string, index int) {
		sk := scoped(scope, host)
		if best.group != nil && sk >= best.scopedHost {
			return
		}
		if g := group(scope, host); len(g) > 1 && slices.Contains(g, k) {
			best.scopedHost, best.index, best.group = sk, index, g
		}
	}
	for _, e := range own {
		consider(e.scope, e.host, e.index)
		if e.scope != "*" {
			continue
		}
		// Exported everywhere, k also joins the groups of other
		// VirtualServices' namespace-scoped hosts that its host matches.
		for _, o := range m.matching(e.host, false, &work{}) {
			if o.vs != k {
				consider(o.scope, o.host, e.index)
			}
		}
	}
	if best.group == nil {
		return nil
	}
	return []Finding{{Field: field.NewPath("spec", "hosts").Index(best.index).String(), Message: fmt.Sprintf(
		"The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
		joinKeys(best.group, ","), best.scopedHost), Code: CodeConflictingMeshGatewayVirtualServiceHosts}}
}

// TestMeshHostsMatchScan: checkMeshHosts, which considers only the first
// (sorted) matching namespace-scoped entry per host exported everywhere,
// reports what considering every one of them did, on random VirtualServices.
func TestMeshHostsMatchScan(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	nss := []string{"ns1", "ns2", "a"}
	random := func() *networking.VirtualService {
		vs := &networking.VirtualService{}
		for range 1 + r.IntN(3) {
			vs.Hosts = append(vs.Hosts, randomHost(r))
		}
		switch r.IntN(3) {
		case 0:
			vs.ExportTo = []string{nss[r.IntN(len(nss))]}
		case 1:
			vs.ExportTo = []string{nss[r.IntN(len(nss))], nss[r.IntN(len(nss))]}
		}
		return vs
	}
	reported := 0
	for round := range 300 {
		ix := NewIndex("")
		for i := range r.IntN(30) {
			ix.SetVirtualService(Key{nss[r.IntN(len(nss))], fmt.Sprintf("vs%d", i)}, random())
		}
		ix.SetReady()
		for range 20 {
			k, vs := Key{nss[r.IntN(len(nss))], fmt.Sprintf("vs%d", r.IntN(40))}, random()
			got, want := ix.checkMeshHosts(k, vs, &work{}), scanMeshHosts(ix, k, vs)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: %v %v:\ngot  %v\nscan %v", round, k, vs, got, want)
			}
			reported += len(got)
		}
	}
	if reported < 1000 {
		t.Fatalf("only %d findings compared", reported)
	}
}
