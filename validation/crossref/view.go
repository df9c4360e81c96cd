package crossref

import (
	"slices"
	"strings"

	"github.com/meshguard/meshguard/internal/hostname"
)

// view is what the checks look objects up by, derived from the index's maps
// once per change instead of once per check: without it, checking every
// VirtualService of a whole cluster (the audit, analyze) sorted and scanned
// every other VirtualService and DestinationRule per host, quadratic in the
// number of objects.
type view struct {
	gateways []Key            // sorted
	drByHost map[string][]Key // FQDN host without a wildcard → DestinationRules, sorted
	drWild   []Key            // DestinationRules whose host has a wildcard, sorted

	// hosts and wildHosts: the Services and ServiceEntries by scoped host (hosts.go).
	hosts     map[string]*hostEntry
	wildHosts []scopedHost
	// drSubsets: DestinationRules by the object their host names (Index.subsetKey), sorted.
	drSubsets map[Key][]Key
	// meshHosts: the mesh VirtualServices by scoped host (meshhosts.go).
	meshHosts meshHosts
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
	v := &view{gateways: sortedKeys(ix.gateways), drByHost: map[string][]Key{}, drSubsets: map[Key][]Key{}}
	v.hosts, v.wildHosts = ix.buildHosts()
	v.meshHosts = ix.buildMeshHosts()
	for _, k := range sortedKeys(ix.destinationRules) {
		sk := ix.subsetKey(k.Namespace, ix.destinationRules[k].GetHost())
		v.drSubsets[sk] = append(v.drSubsets[sk], k)
		dh := ix.fqdn(ix.destinationRules[k].GetHost(), k.Namespace)
		if strings.Contains(dh, "*") {
			v.drWild = append(v.drWild, k)
		} else {
			v.drByHost[dh] = append(v.drByHost[dh], k)
		}
	}
	ix.view.Store(v)
	return v
}

// destinationRulesFor lists, sorted, the DestinationRules whose host is host
// or covers it (a wildcard host).
func (ix *Index) destinationRulesFor(host string) []Key {
	v := ix.current()
	exact := v.drByHost[host]
	var wild []Key
	for _, k := range v.drWild {
		if hostname.SubsetOf(host, ix.fqdn(ix.destinationRules[k].GetHost(), k.Namespace)) {
			wild = append(wild, k)
		}
	}
	if len(wild) == 0 {
		return exact
	}
	out := append(slices.Clone(exact), wild...)
	slices.SortFunc(out, func(a, b Key) int { return strings.Compare(a.String(), b.String()) })
	return out
}
