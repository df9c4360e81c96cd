package validation

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Unreachable rules and ineffective matches of a VirtualService: warnings
// with Istio's analyzer codes IST0130/IST0131, computed as Istio's
// pkg/config/validation/validation.go ValidateVirtualService does with
// analyzeUnreachableHTTPRules, analyzeUnreachableTCPRules and
// analyzeUnreachableTLSRules (quirks included: a method-less prefix match
// counts as method "GET" in the prefix-overlap check, exact URIs are not
// compared with prefixes, and TCP/TLS matches are compared whole).

// Istio's analyzer message codes for these warnings
// (pkg/config/analysis/msg/messages.yaml).
const (
	CodeVirtualServiceUnreachableRule  Code = "IST0130"
	CodeVirtualServiceIneffectiveMatch Code = "IST0131"
)

// Prefixes of the method/authority/header strings compared by the
// prefix-overlap check (Istio's matchExact and matchPrefix).
const (
	overlapExact  = "exact:"
	overlapPrefix = "prefix:"
)

func warnUnreachableRules(p *field.Path, vs *networking.VirtualService, f *Findings) {
	warnUnreachableHTTP(p.Child("http"), vs.GetHttp(), f)
	warnUnreachableL4(p.Child("tcp"), l4Routes(vs.GetTcp()), f)
	warnUnreachableL4(p.Child("tls"), l4Routes(vs.GetTls()), f)
}

// warnUnused is Istio's warnUnused: rule ruleName is never used.
func warnUnused(path *field.Path, ruleName, reason string, f *Findings) {
	f.WarnCode(path, CodeVirtualServiceUnreachableRule, []string{ruleName, reason},
		fmt.Sprintf("virtualService rule %s not used (%s)", ruleName, reason))
}

// warnIneffective is Istio's warnIneffective: match matchName of rule
// ruleName is covered by dupName.
func warnIneffective(path *field.Path, ruleName, matchName, dupName string, f *Findings) {
	f.WarnCode(path, CodeVirtualServiceIneffectiveMatch, []string{ruleName, matchName, dupName},
		fmt.Sprintf("virtualService rule %s match %s is not used (duplicate/overlapping match in rule %s)", ruleName, matchName, dupName))
}

// routeName is Istio's routeName: the quoted route name, or #index.
func routeName(name string, i int) string {
	if name != "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("#%d", i)
}

// prefixRoute is Istio's OverlappingMatchValidationForHTTPRoute: one HTTP
// match with a URI prefix, reduced to what the overlap check compares.
type prefixRoute struct {
	path                 *field.Path
	routeStr, matchStr   string
	prefix               string
	port                 uint32
	method, authority    string
	headers, queryParams map[string]string
	withoutHeaders       map[string]string
}

func warnUnreachableHTTP(p *field.Path, routes []*networking.HTTPRoute, f *Findings) {
	seen := map[string]int{}
	emptyMatch := -1
	var prefixes []prefixRoute
	for i, r := range routes {
		if r == nil {
			continue
		}
		rname := routeName(r.GetName(), i)
		if len(r.GetMatch()) == 0 {
			if emptyMatch >= 0 {
				warnUnused(p.Index(i), rname, "only the last rule can have no matches", f)
			}
			emptyMatch = i
			continue
		}
		duplicates := 0
		for j, m := range r.GetMatch() {
			mp := p.Index(i).Child("match").Index(j)
			if emptyMatch >= 0 {
				warnUnused(mp, rname, "route without matches defined before", f)
				continue
			}
			key := httpMatchKey(m)
			if prev, ok := seen[key]; ok {
				warnIneffective(mp, rname, routeName(m.GetName(), j), routeName(routes[prev].GetName(), prev), f)
				duplicates++
				continue
			}
			seen[key] = i
			if pr, ok := newPrefixRoute(mp, rname, m, j); ok {
				prefixes = append(prefixes, pr)
			}
		}
		if duplicates == len(r.GetMatch()) {
			warnUnused(p.Index(i), rname, "all matches used by prior rules", f)
		}
	}
	for _, pr := range coveredPrefixes(prefixes, p, f) {
		pa, pb := &prefixes[pr[0]], &prefixes[pr[1]]
		warnIneffective(pb.path, pb.routeStr, pb.matchStr+" of prefix "+pb.prefix,
			pa.matchStr+" of prefix "+pa.prefix+" on "+pa.routeStr, f)
	}
}

// maxPrefixComparisons bounds the prefix-overlap check of one VirtualService
// (a 3 MiB object can hold ~75,000 prefix matches).
const maxPrefixComparisons = 5_000_000

// coveredPrefixes returns the pairs (a, b), a before b, where Istio's
// analyzeUnreachableHTTPRules reports b as covered by a, in Istio's order
// (by a, then b). Istio compares every pair; here only the pairs where a's
// prefix is a proper prefix of b's are compared (the others are never
// covered), found through the prefixes sorted as strings, so the work follows
// the number of such pairs. Past maxPrefixComparisons the check stops with
// a warning saying so.
func coveredPrefixes(prefixes []prefixRoute, p *field.Path, f *Findings) [][2]int {
	order := make([]int, len(prefixes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return strings.Compare(prefixes[x].prefix, prefixes[y].prefix) })
	var pairs [][2]int
	comparisons := 0
	for k, a := range order {
		pa := &prefixes[a]
		// The strings having pa.prefix as a proper prefix follow it in
		// sorted order, after the ones equal to it.
		first := k + 1
		for first < len(order) && prefixes[order[first]].prefix == pa.prefix {
			first++
		}
		for _, b := range order[first:] {
			pb := &prefixes[b]
			if !strings.HasPrefix(pb.prefix, pa.prefix) {
				break
			}
			if comparisons++; comparisons > maxPrefixComparisons {
				f.Warn(p, nil, fmt.Sprintf("prefix-overlap check stopped after %d comparisons; later overlapping prefix matches are not reported", maxPrefixComparisons))
				return sortPairs(pairs)
			}
			if b > a && prefixCovers(pa, pb) {
				pairs = append(pairs, [2]int{a, b})
			}
		}
	}
	return sortPairs(pairs)
}

func sortPairs(pairs [][2]int) [][2]int {
	slices.SortFunc(pairs, func(x, y [2]int) int {
		if x[0] != y[0] {
			return x[0] - y[0]
		}
		return x[1] - y[1]
	})
	return pairs
}

// newPrefixRoute is Istio's genMatchHTTPRoutes: only matches with a
// non-empty URI prefix take part in the overlap check.
func newPrefixRoute(path *field.Path, rname string, m *networking.HTTPMatchRequest, j int) (prefixRoute, bool) {
	prefix := m.GetUri().GetPrefix()
	if prefix == "" {
		return prefixRoute{}, false
	}
	method := exactOrPrefix(m.GetMethod())
	if method == "" {
		method = overlapExact + "GET"
	}
	conds := func(ms map[string]*networking.StringMatch) map[string]string {
		out := make(map[string]string, len(ms))
		for k, v := range ms {
			out[k] = exactOrPrefix(v)
		}
		return out
	}
	return prefixRoute{
		path: path, routeStr: rname, matchStr: routeName(m.GetName(), j), prefix: prefix, port: m.GetPort(),
		method: method, authority: exactOrPrefix(m.GetAuthority()),
		headers: conds(m.GetHeaders()), queryParams: conds(m.GetQueryParams()), withoutHeaders: conds(m.GetWithoutHeaders()),
	}, true
}

// exactOrPrefix is Istio's assignExactOrPrefix: regex matches count as empty.
func exactOrPrefix(m *networking.StringMatch) string {
	if e := m.GetExact(); e != "" {
		return overlapExact + e
	}
	if pr := m.GetPrefix(); pr != "" {
		return overlapPrefix + pr
	}
	return ""
}

// prefixCovers is Istio's coveredValidation: a's prefix is a prefix of b's,
// the ports are equal, and each of a's other conditions equals b's or has
// b's as a string prefix (on the "exact:"/"prefix:" forms), with the same
// header, query and withoutHeaders keys.
func prefixCovers(a, b *prefixRoute) bool {
	if !strings.HasPrefix(b.prefix, a.prefix) || a.port != b.port {
		return false
	}
	if !strings.HasPrefix(a.method, b.method) || !strings.HasPrefix(a.authority, b.authority) {
		return false
	}
	return mapCovers(a.headers, b.headers) && mapCovers(a.queryParams, b.queryParams) && mapCovers(a.withoutHeaders, b.withoutHeaders)
}

func mapCovers(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !strings.HasPrefix(va, vb) {
			return false
		}
	}
	return true
}

// l4Route is what TCP and TLS routes share for the duplicate check.
type l4Route struct {
	isNil   bool
	matches []proto.Message
}

func l4Routes[R interface {
	comparable
	GetMatch() []M
}, M proto.Message](routes []R) []l4Route {
	var zero R
	out := make([]l4Route, len(routes))
	for i, r := range routes {
		if r == zero {
			out[i].isNil = true
			continue
		}
		for _, m := range r.GetMatch() {
			out[i].matches = append(out[i].matches, m)
		}
	}
	return out
}

// warnUnreachableL4 is Istio's analyzeUnreachableTCPRules /
// analyzeUnreachableTLSRules: TCP and TLS routes and matches have no names.
func warnUnreachableL4(p *field.Path, routes []l4Route, f *Findings) {
	seen := map[string]int{}
	emptyMatch := -1
	for i, r := range routes {
		if r.isNil {
			continue
		}
		rname := routeName("", i)
		if len(r.matches) == 0 {
			if emptyMatch >= 0 {
				warnUnused(p.Index(i), rname, "only the last rule can have no matches", f)
			}
			emptyMatch = i
			continue
		}
		duplicates := 0
		for j, m := range r.matches {
			mp := p.Index(i).Child("match").Index(j)
			if emptyMatch >= 0 {
				warnUnused(mp, rname, "route without matches defined before", f)
				continue
			}
			key := messageKey(m)
			if prev, ok := seen[key]; ok {
				warnIneffective(mp, rname, routeName("", j), routeName("", prev), f)
				duplicates++
				continue
			}
			seen[key] = i
		}
		if duplicates == len(r.matches) {
			warnUnused(p.Index(i), rname, "all matches used by prior rules", f)
		}
	}
}

// httpMatchKey is a match's identity ignoring its name (Istio's asJSON
// clears the name before comparing).
//
// The name is blanked in place and restored instead of cloning the match (a
// clone per match was a visible cost for large VirtualServices). The message
// is the one ValidateObject decoded for this call, not shared with another
// goroutine.
func httpMatchKey(m *networking.HTTPMatchRequest) string {
	if m == nil {
		return "<nil>"
	}
	name := m.Name
	m.Name = ""
	key := messageKey(m)
	m.Name = name
	return key
}

// messageKey is a deterministic serialisation used only for equality.
func messageKey(m proto.Message) string {
	if m == nil || !m.ProtoReflect().IsValid() {
		return "<nil>"
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return "m" + string(b)
}
