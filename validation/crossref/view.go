package crossref

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// view is what the checks look objects up by, derived from the index's maps
// once per change instead of once per check: without it, checking every
// VirtualService of a whole cluster (the audit, analyze) sorted and scanned
// every other VirtualService and DestinationRule per host, quadratic in the
// number of objects.
type view struct {
	gateways []Key // sorted
	// gwServers: the Gateways by workload selector, server port, bind and
	// server host as written (IST0145), sorted, each once.
	gwServers map[gatewayServer][]Key
	drByHost  map[string][]Key // FQDN host without a wildcard → DestinationRules, sorted
	drWild    hostSet[Key]     // DestinationRules whose host has a wildcard, by host, sorted

	// hosts and wildHosts: the Services and ServiceEntries by scoped host (hosts.go).
	hosts     map[string]*hostEntry
	wildHosts []scopedHost
	// wildIndex: the indices of wildHosts by host, ascending.
	wildIndex hostSet[int]
	// seHosts: the ServiceEntries by host (a short one as its FQDN in the
	// entry's namespace), in no order.
	seHosts hostSet[Key]
	// drSubsets: DestinationRules by the object their host names (Index.subsetKey), sorted.
	drSubsets map[Key][]Key
	// subsetNames: the subsets those DestinationRules define, by the same key.
	subsetNames map[Key]map[string]bool
	// meshHosts: the mesh VirtualServices by scoped host (meshhosts.go).
	meshHosts meshHosts
}

// gatewayServer is what makes two Gateway servers duplicates (IST0145):
// the Gateways' workload selector (SelectorKey), the port number, the bind
// and a host as written.
type gatewayServer struct {
	selector   string
	port       uint32
	bind, host string
}

// current returns the view of the index's present contents. The caller holds
// ix.mu (read or write); writers drop the view (setOrDelete).
func (ix *Index) current() *view {
	if v := ix.view.Load(); v != nil {
		return v
	}
	ix.viewMu.Lock()
	defer ix.viewMu.Unlock()
	if v := ix.view.Load(); v != nil {
		return v
	}
	v := &view{gateways: sortedKeys(ix.gateways), drByHost: map[string][]Key{}, drSubsets: map[Key][]Key{},
		subsetNames: map[Key]map[string]bool{}}
	v.gwServers = map[gatewayServer][]Key{}
	for _, k := range v.gateways {
		gw := ix.gateways[k]
		sk := SelectorKey(gw.GetSelector())
		for _, srv := range gw.GetServers() {
			for _, h := range srv.GetHosts() {
				gs := gatewayServer{sk, srv.GetPort().GetNumber(), srv.GetBind(), h}
				if ks := v.gwServers[gs]; len(ks) == 0 || ks[len(ks)-1] != k {
					v.gwServers[gs] = append(ks, k)
				}
			}
		}
	}
	v.hosts, v.wildHosts = ix.buildHosts()
	for i, w := range v.wildHosts {
		v.wildIndex.add(w.host, i)
	}
	for k, se := range ix.serviceEntries {
		for _, h := range se.GetHosts() {
			v.seHosts.add(ix.fqdn(h, k.Namespace), k) // as buildHosts keys it
		}
	}
	v.meshHosts = ix.buildMeshHosts()
	for _, k := range sortedKeys(ix.destinationRules) {
		sk := ix.subsetKey(k.Namespace, ix.destinationRules[k].GetHost())
		v.drSubsets[sk] = append(v.drSubsets[sk], k)
		for _, sub := range ix.destinationRules[k].GetSubsets() {
			if v.subsetNames[sk] == nil {
				v.subsetNames[sk] = map[string]bool{}
			}
			v.subsetNames[sk][sub.GetName()] = true
		}
		dh := ix.fqdn(ix.destinationRules[k].GetHost(), k.Namespace)
		if strings.Contains(dh, "*") {
			v.drWild.add(dh, k)
		} else {
			v.drByHost[dh] = append(v.drByHost[dh], k)
		}
	}
	ix.view.Store(v)
	return v
}

// firstDestinationRulesFor returns the first n (sorted) of the
// DestinationRules whose host is host or covers it (a wildcard host), and
// how many there are, merged from the view's sorted lists instead of
// sorting them all: a message names only the first few, once per
// destination of a VirtualService.
func (ix *Index) firstDestinationRulesFor(host string, n int, w *work) ([]Key, int) {
	v := ix.current()
	lists := [][]Key{v.drByHost[host]}
	w.n++
	v.drWild.coveringLists(host, w, func(l []Key) { lists = append(lists, l) })
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	var out []Key
	for len(out) < n {
		next := -1
		w.n += len(lists)
		for i, l := range lists {
			if len(l) > 0 && (next < 0 || compareKeys(l[0], lists[next][0]) < 0) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		out = append(out, lists[next][0])
		lists[next] = lists[next][1:]
	}
	return out, total
}

// SelectorKey is the same string for equal selectors (or label sets) only:
// its labels in key order, each part prefixed by its length. The analysis
// package groups Gateway selectors and workload labels by it too.
func SelectorKey(sel map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		fmt.Fprintf(&b, "%d:%s%d:%s", len(k), k, len(sel[k]), sel[k])
	}
	return b.String()
}

// hostSet finds the values of the hosts (wildcards included) that cover a
// host, as hostname.SubsetOf(host, h) does, without scanning them all: exact
// hosts by host, wildcard ones by the suffix after the "*", looked up for
// each suffix length present. A check of a VirtualService of a few MiB has
// tens of thousands of destinations, and a cluster tens of thousands of
// ServiceEntry hosts: a scan per destination took seconds under the
// index's read lock.
type hostSet[T any] struct {
	exact map[string][]T
	wild  map[string][]T // "*suffix" by suffix
	lens  []int          // the suffix lengths of wild, ascending
}

func (s *hostSet[T]) add(h string, v T) {
	if !strings.HasPrefix(h, "*") {
		if s.exact == nil {
			s.exact = map[string][]T{}
		}
		s.exact[h] = append(s.exact[h], v)
		return
	}
	if s.wild == nil {
		s.wild = map[string][]T{}
	}
	suffix := h[1:]
	if _, ok := s.wild[suffix]; !ok {
		if i, found := slices.BinarySearch(s.lens, len(suffix)); !found {
			s.lens = slices.Insert(s.lens, i, len(suffix))
		}
	}
	s.wild[suffix] = append(s.wild[suffix], v)
}

// newHostSet is the set of hosts, each once.
func newHostSet(hosts []string) *hostSet[struct{}] {
	s := &hostSet[struct{}]{}
	seen := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			s.add(h, struct{}{})
		}
	}
	return s
}

// matchesAny reports whether a host of s and a host of o match
// (hostname.Matches: equal, or one covers the other), looking each host of
// one set up in the other instead of comparing every pair.
func (s *hostSet[T]) matchesAny(o *hostSet[T], w *work) bool {
	return s.coversAny(o, w) || o.coversAny(s, w)
}

// coversAny reports whether a host of s covers (hostname.SubsetOf) a host of o.
func (s *hostSet[T]) coversAny(o *hostSet[T], w *work) bool {
	found := false
	check := func(h string) bool {
		s.covering(h, w, func(T) { found = true })
		return found
	}
	for h := range o.exact {
		if check(h) {
			return true
		}
	}
	for suffix := range o.wild {
		if check("*" + suffix) {
			return true
		}
	}
	return false
}

// covering calls fn, in the order added for each host and exact hosts
// first, with the value of every host h for which hostname.SubsetOf(n, h).
func (s *hostSet[T]) covering(n string, w *work, fn func(T)) {
	s.coveringLists(n, w, func(l []T) {
		w.n += len(l)
		for _, v := range l {
			fn(v)
		}
	})
}

// coveringLists calls fn with the values of each host covering n, as
// covering does, a host's values as one list.
func (s *hostSet[T]) coveringLists(n string, w *work, fn func([]T)) {
	w.n++
	if !strings.HasPrefix(n, "*") {
		if l := s.exact[n]; len(l) > 0 {
			fn(l)
		}
	} else {
		n = n[1:] // a wildcard is covered by a wildcard whose suffix ends it
	}
	for _, l := range s.lens {
		if l > len(n) {
			break
		}
		w.n++
		if vs := s.wild[n[len(n)-l:]]; len(vs) > 0 {
			fn(vs)
		}
	}
}
