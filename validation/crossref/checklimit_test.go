package crossref

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// allocated is the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// longHosts are 20 hosts of ~200 bytes: an IST0132 message lists them all.
func longHosts() []string {
	var hosts []string
	for i := range 20 {
		hosts = append(hosts, fmt.Sprintf("%02d%s.example.com", i, strings.Repeat("a", 61)+"."+strings.Repeat("b", 61)+"."+strings.Repeat("c", 61)))
	}
	return hosts
}

// CheckLimit builds at most limit findings and counts the rest, whatever
// repeats them: a gateway reference (IST0101 + IST0132 each), a destination
// with a missing subset, a conflicting Gateway server. The findings it builds
// are Check's first ones, and Check (analyze, audit) still reports every one,
// one per reference as Istio's virtualservice/gateways.go
// GatewayAnalyzer.analyzeVirtualService does (istio/istio 0a617ca985f9).
func TestCheckLimitBoundsRepeatedReferences(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	ns := strings.Repeat("n", 63)
	for i := range 21 {
		ix.SetDestinationRule(Key{ns, fmt.Sprintf("%02d%s", i, strings.Repeat("d", 250))}, &networking.DestinationRule{Host: "*"})
	}
	sel := map[string]string{"istio": "ingressgateway"}
	ix.SetGateway(Key{"istio-system", "other"}, &networking.Gateway{Selector: sel, Servers: []*networking.Server{{Port: &networking.Port{Number: 80}, Hosts: []string{"a.example.com"}}}})

	const refs = 5000
	gws := make([]string, refs)
	for i := range gws {
		gws[i] = "x"
	}
	route := &networking.HTTPRoute{}
	for range refs {
		route.Route = append(route.Route, &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "a", Subset: "b"}})
	}
	gw := &networking.Gateway{Selector: sel}
	for range refs {
		gw.Servers = append(gw.Servers, &networking.Server{Port: &networking.Port{Number: 80}, Hosts: []string{"a.example.com"}})
	}
	cases := []struct {
		name  string
		kind  string
		spec  any
		total int
	}{
		{"repeated gateway reference", "VirtualService", &networking.VirtualService{Hosts: longHosts(), Gateways: gws}, 2 * refs},
		// "a" is also a missing host: IST0101 host and subset per destination.
		{"repeated destination with a missing subset", "VirtualService", &networking.VirtualService{Hosts: []string{"a"}, Http: []*networking.HTTPRoute{route}}, 2 * refs},
		{"repeated conflicting server", "Gateway", gw, refs},
	}
	const limit = 100
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fs []Finding
			var more map[string]int
			k := Key{"default", "vs"}
			var bytes uint64
			switch s := c.spec.(type) {
			case *networking.VirtualService:
				bytes = allocated(func() { fs, more = ix.CheckLimit(c.kind, k, s, limit) })
			case *networking.Gateway:
				bytes = allocated(func() { fs, more = ix.CheckLimit(c.kind, k, s, limit) })
			}
			if len(fs) != limit || len(fs)+Omitted(more) != c.total {
				t.Fatalf("CheckLimit built %d findings and counted %v more, want %d and %d", len(fs), more, limit, c.total-limit)
			}
			// Unbounded, this input allocated 25-75 MB; bounded, the work per
			// reference is a few lookups.
			if bytes > 8<<20 {
				t.Errorf("CheckLimit allocated %d MB for %d findings built", bytes>>20, len(fs))
			}
			var all []Finding
			switch s := c.spec.(type) {
			case *networking.VirtualService:
				all = ix.Check(c.kind, k, s)
			case *networking.Gateway:
				all = ix.Check(c.kind, k, s)
			}
			if len(all) != c.total {
				t.Fatalf("Check reported %d findings, want %d", len(all), c.total)
			}
			byCode := map[string]int{}
			for _, f := range all[limit:] {
				byCode[f.Code]++
			}
			if !maps.Equal(more, byCode) {
				t.Errorf("CheckLimit counted %v by code, want %v (Check's findings past the limit)", more, byCode)
			}
			if !slices.EqualFunc(fs, all[:limit], func(a, b Finding) bool {
				return a.Field == b.Field && a.Message == b.Message && a.Code == b.Code && slices.Equal(a.Args, b.Args)
			}) {
				t.Errorf("CheckLimit's findings are not Check's first %d:\n%s\nwant\n%s", limit, joined(fs[:3]), joined(all[:3]))
			}
		})
	}
}

// Under the limit, CheckLimit is Check: nothing counted, every finding built.
func TestCheckLimitUnderLimit(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	vs := &networking.VirtualService{Hosts: []string{"a.com"}, Gateways: []string{"missing"},
		Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "ratings", Subset: "v1"}}}}}}
	all := ix.Check("VirtualService", Key{"default", "vs"}, vs)
	fs, more := ix.CheckLimit("VirtualService", Key{"default", "vs"}, vs, 4)
	if len(all) != 4 || Omitted(more) != 0 || joined(fs) != joined(all) {
		t.Errorf("CheckLimit(4) = %d findings + %v more:\n%s\nCheck:\n%s", len(fs), more, joined(fs), joined(all))
	}
	if fs, more := ix.CheckLimit("VirtualService", Key{"default", "vs"}, vs, 0); len(fs) != 0 || Omitted(more) != 4 {
		t.Errorf("CheckLimit(0) = %d findings + %v more, want 0 + 4", len(fs), more)
	}
}
