package crossref

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/internal/hostname"
)

// This file is IST0109 as Istio's
// pkg/config/analysis/analyzers/virtualservice/conflictingmeshgatewayhosts.go
// reports it: every host of a VirtualService bound to the mesh gateway is
// keyed by scope ("*" when the VirtualService is exported everywhere, else
// each namespace of its exportTo) and FQDN; the VirtualServices of one
// scoped host conflict, and those of a namespace scope also conflict with
// the ones exported everywhere whose host matches (wildcards included).
// Each VirtualService gets one message, naming the group of the first
// scoped host (in sorted order) it conflicts on.

// meshEntry is one scoped host of a mesh VirtualService: spec.hosts[index]
// as an FQDN (host), in scope.
type meshEntry struct {
	scope, host string
	vs          Key
	index       int
}

// meshHosts indexes the scoped hosts of every mesh VirtualService of the
// index. Entries are split by scope kind, "*" or a namespace, because a
// check looks for the other kind only. Matching hosts are found by lookups
// (by host, by wildcard suffix, by reversed host), not by a scan of every
// entry per host: that made a VirtualService of thousands of hosts take
// seconds in a cluster of thousands.
type meshHosts struct {
	byScoped map[string][]Key // scoped host → VirtualServices, sorted, each once
	// Indexed by whether the scope is "*".
	byHost [2]map[string][]meshEntry // FQDN → entries
	wild   [2]hostSet[meshEntry]     // entries whose host starts with "*", by suffix
	// rev: every entry by its host's bytes reversed, "*" left out, sorted,
	// so that those ending with a suffix are a range.
	rev [2][]revEntry
}

type revEntry struct {
	reversed string
	meshEntry
}

func reverse(s string) string {
	b := make([]byte, len(s))
	for i := range len(s) {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}

func starIndex(scope string) int {
	if scope == "*" {
		return 1
	}
	return 0
}

// meshEntries lists the scoped hosts of VirtualService k; none unless it is
// bound to the mesh gateway.
func (ix *Index) meshEntries(k Key, vs *networking.VirtualService) []meshEntry {
	if !meshBound(vs.GetGateways()) {
		return nil
	}
	scopes := ExportScopes(vs.GetExportTo(), k.Namespace)
	out := make([]meshEntry, 0, len(scopes)*len(vs.GetHosts()))
	for _, s := range scopes {
		for i, h := range vs.GetHosts() {
			out = append(out, meshEntry{s, ix.fqdn(h, k.Namespace), k, i})
		}
	}
	return out
}

func (ix *Index) buildMeshHosts() meshHosts {
	m := meshHosts{byScoped: map[string][]Key{}, byHost: [2]map[string][]meshEntry{{}, {}}}
	for _, k := range sortedKeys(ix.virtualServices) {
		for _, e := range ix.meshEntries(k, ix.virtualServices[k]) {
			sk := scoped(e.scope, e.host)
			if keys := m.byScoped[sk]; len(keys) == 0 || keys[len(keys)-1] != k {
				m.byScoped[sk] = append(keys, k)
			}
			s := starIndex(e.scope)
			m.byHost[s][e.host] = append(m.byHost[s][e.host], e)
			if strings.HasPrefix(e.host, "*") {
				m.wild[s].add(e.host, e)
			}
			m.rev[s] = append(m.rev[s], revEntry{reverse(strings.TrimPrefix(e.host, "*")), e})
		}
	}
	for s := range m.rev {
		slices.SortFunc(m.rev[s], func(a, b revEntry) int { return strings.Compare(a.reversed, b.reversed) })
	}
	// The lists matchingLists hands out share their host: sorted by scope.
	byScope := func(a, b meshEntry) int { return compareKeys(Key{a.scope, a.host}, Key{b.scope, b.host}) }
	for s := range m.byHost {
		for _, l := range m.byHost[s] {
			slices.SortStableFunc(l, byScope)
		}
		for _, l := range m.wild[s].wild {
			slices.SortStableFunc(l, byScope)
		}
	}
	return m
}

// matchingLists calls fn with lists of the stored entries of scope "*"
// (star) or of a namespace scope (!star) whose host matches host
// (hostname.Matches); together they are every such entry, once. The entries
// of one list share their host and are sorted by scope (buildMeshHosts).
func (m meshHosts) matchingLists(host string, star bool, w *work, fn func([]meshEntry)) {
	s := 0
	if star {
		s = 1
	}
	if !strings.HasPrefix(host, "*") {
		// An exact host matches itself and the wildcards covering it.
		w.n++
		fn(m.byHost[s][host])
		m.wild[s].coveringLists(host, w, fn)
		return
	}
	// "*X" matches the wildcards "*Y" with Y ending X (the covering ones),
	// and the hosts that end with X but for a wildcard no longer than "*X".
	m.wild[s].coveringLists(host, w, fn)
	x := reverse(host[1:])
	i, _ := slices.BinarySearchFunc(m.rev[s], x, func(r revEntry, x string) int { return strings.Compare(r.reversed, x) })
	for _, r := range m.rev[s][i:] {
		w.n++
		if !strings.HasPrefix(r.reversed, x) {
			break
		}
		if !strings.HasPrefix(r.host, "*") || len(r.host) > len(host) {
			fn([]meshEntry{r.meshEntry})
		}
	}
}

// matching lists the entries of matchingLists.
func (m meshHosts) matching(host string, star bool, w *work) []meshEntry {
	var out []meshEntry
	m.matchingLists(host, star, w, func(l []meshEntry) { w.n += len(l); out = append(out, l...) })
	return out
}

// firstMatching is the first, by scope then host, of the entries of a
// namespace scope whose host matches host, VirtualService k's left out.
// Each list of matchingLists is sorted that way, so only its first entry not
// of k is compared: a host matched by the entries of thousands of
// VirtualServices does not visit them all.
func (m meshHosts) firstMatching(host string, k Key, w *work) (meshEntry, bool) {
	var first meshEntry
	found := false
	m.matchingLists(host, false, w, func(l []meshEntry) {
		for _, e := range l {
			w.n++
			if e.vs == k {
				continue
			}
			if !found || compareKeys(Key{e.scope, e.host}, Key{first.scope, first.host}) < 0 {
				first, found = e, true
			}
			return
		}
	})
	return first, found
}

// checkMeshHosts reports IST0109 for VirtualService k (spec vs, which
// replaces the stored version of k): once, for the first scoped host (in
// sorted order) whose group holds k and another VirtualService.
func (ix *Index) checkMeshHosts(k Key, vs *networking.VirtualService, w *work) []Finding {
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
		w.n += 1 + len(m.byScoped[scoped(scope, host)])
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
		for _, e := range m.matching(host, true, w) {
			if e.vs != k {
				all = append(all, e.vs)
			}
		}
		for _, e := range ownStar {
			w.n++
			if hostname.Matches(host, e.host) {
				all = append(all, k)
				break
			}
		}
		slices.SortFunc(all, compareKeys)
		for _, a := range slices.Compact(all) {
			w.n += len(g)
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
		// VirtualServices' namespace-scoped hosts that its host matches: k
		// and their VirtualService are in each, so the first (sorted) of
		// them is the only one that can be reported.
		if o, ok := m.firstMatching(e.host, k, w); ok {
			consider(o.scope, o.host, e.index)
		}
	}
	if best.group == nil {
		return nil
	}
	return []Finding{{Field: field.NewPath("spec", "hosts").Index(best.index).String(), Message: fmt.Sprintf(
		"The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
		joinKeys(best.group, ","), best.scopedHost), Code: CodeConflictingMeshGatewayVirtualServiceHosts}}
}

// compareKeys orders keys as strings.Compare(a.String(), b.String()) does,
// without building the strings: sorting every object of a large cluster
// when the view is rebuilt (after each change, under the read lock) spent
// most of its time allocating them.
func compareKeys(a, b Key) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	n := min(len(a.Namespace), len(b.Namespace))
	if c := strings.Compare(a.Namespace[:n], b.Namespace[:n]); c != 0 {
		return c
	}
	// One namespace starts the other: the shorter goes on with "/".
	var c int
	if len(a.Namespace) < len(b.Namespace) {
		c = cmp.Compare('/', b.Namespace[n])
	} else {
		c = cmp.Compare(a.Namespace[n], '/')
	}
	if c != 0 {
		return c
	}
	return strings.Compare(a.String(), b.String()) // a "/" in a namespace
}
