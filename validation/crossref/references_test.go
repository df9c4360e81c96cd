package crossref

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// References names what a VirtualService or DestinationRule refers to, with
// Istio's host resolution: short hosts in the object's namespace, "ns/name"
// and short Gateway references (a legacy "name.ns" one is a name in the
// object's namespace, as Check reads it), wildcard ServiceEntry hosts, and
// DestinationRules whose (possibly wildcard) host covers the destination.
func TestReferences(t *testing.T) {
	ix := NewIndex("")
	ix.SetService("shop", "reviews", true)
	ix.SetService("other", "reviews", true)
	ix.SetGateway(Key{"istio-system", "ingress"}, &networking.Gateway{})
	ix.SetGateway(Key{"shop", "local"}, &networking.Gateway{})
	ix.SetDestinationRule(Key{"shop", "reviews"}, &networking.DestinationRule{Host: "reviews"})
	ix.SetDestinationRule(Key{"shop", "all-shop"}, &networking.DestinationRule{Host: "*.shop.svc.cluster.local"})
	ix.SetDestinationRule(Key{"other", "reviews"}, &networking.DestinationRule{Host: "reviews"}) // reviews.other: not ours
	ix.SetServiceEntry(Key{"shop", "ext"}, &networking.ServiceEntry{Hosts: []string{"*.example.com"}})
	ix.SetServiceEntry(Key{"shop", "legacy"}, &networking.ServiceEntry{Hosts: []string{"legacy"}})
	ix.SetReady()
	route := func(host string) *networking.HTTPRoute {
		return &networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: host}}}}
	}
	ids := func(refs []Ref) []string {
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = r.Kind + " " + r.Key.String()
		}
		return out
	}
	for _, tc := range []struct {
		name string
		kind string
		spec any
		want []string
	}{
		{"short host, gateways by ns/name and short name", "VirtualService", &networking.VirtualService{
			Hosts: []string{"reviews"}, Gateways: []string{"mesh", "istio-system/ingress", "local", "local.shop.svc.cluster.local", "missing"},
			Http: []*networking.HTTPRoute{route("reviews")}},
			[]string{"DestinationRule shop/all-shop", "DestinationRule shop/reviews", "Gateway istio-system/ingress", "Gateway shop/local", "Service shop/reviews"}},
		{"FQDN of another namespace", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{route("reviews.other.svc.cluster.local")}},
			[]string{"DestinationRule other/reviews", "Service other/reviews"}},
		{"external host through a wildcard ServiceEntry, TCP route", "VirtualService", &networking.VirtualService{
			Tcp: []*networking.TCPRoute{{Route: []*networking.RouteDestination{{Destination: &networking.Destination{Host: "api.example.com"}}}}}},
			[]string{"ServiceEntry shop/ext"}},
		// A ServiceEntry's short host is its FQDN in the entry's namespace, as
		// Check resolves it (Istio's InitServiceEntryHostMap); References
		// compared the host as written and missed it.
		{"short ServiceEntry host", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{route("legacy")}},
			[]string{"DestinationRule shop/all-shop", "ServiceEntry shop/legacy"}},
		{"short ServiceEntry host by FQDN, DestinationRule", "DestinationRule", &networking.DestinationRule{Host: "legacy.shop.svc.cluster.local"},
			[]string{"ServiceEntry shop/legacy"}},
		{"missing host refers to nothing", "VirtualService", &networking.VirtualService{Http: []*networking.HTTPRoute{route("nowhere.example.org")}}, nil},
		{"DestinationRule host", "DestinationRule", &networking.DestinationRule{Host: "reviews"}, []string{"Service shop/reviews"}},
		{"other kinds refer to nothing", "Gateway", &networking.Gateway{}, nil},
	} {
		var got []Ref
		switch s := tc.spec.(type) {
		case *networking.VirtualService:
			got = ix.References(tc.kind, Key{"shop", "x"}, s)
		case *networking.DestinationRule:
			got = ix.References(tc.kind, Key{"shop", "x"}, s)
		case *networking.Gateway:
			got = ix.References(tc.kind, Key{"shop", "x"}, s)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, ids(got), tc.want)
		}
	}
}

// A referenced object renders as a Kubernetes object with its spec in JSON form.
func TestRefObject(t *testing.T) {
	obj, err := Ref{Kind: "DestinationRule", Key: Key{"shop", "reviews"}, Spec: &networking.DestinationRule{
		Host: "reviews", TrafficPolicy: &networking.TrafficPolicy{Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL}}}}.Object()
	if err != nil {
		t.Fatal(err)
	}
	spec := obj["spec"].(map[string]any)
	if obj["apiVersion"] != "networking.istio.io/v1" || spec["host"] != "reviews" ||
		spec["trafficPolicy"].(map[string]any)["tls"].(map[string]any)["mode"] != "ISTIO_MUTUAL" {
		t.Errorf("got %v", obj)
	}
	svc, _ := Ref{Kind: "Service", Key: Key{"shop", "reviews"}}.Object()
	if svc["apiVersion"] != "v1" || svc["spec"] != nil || svc["metadata"].(map[string]any)["namespace"] != "shop" {
		t.Errorf("service: got %v", svc)
	}
	// Before the index is ready nothing is referenced (as Check reports nothing).
	if refs := NewIndex("").References("DestinationRule", Key{"a", "b"}, &networking.DestinationRule{Host: "x"}); refs != nil {
		t.Errorf("unready index: got %v", refs)
	}
}

// The host view (view.go) follows every change of the index: a check after
// an update sees the new DestinationRules and VirtualServices, as the
// webhook's long-lived index must.
func TestViewFollowsChanges(t *testing.T) {
	ix := NewIndex("")
	ix.SetService("shop", "reviews", true)
	ix.SetReady()
	vsKey := Key{"shop", "reviews"}
	vs := &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "reviews", Subset: "v2"}}}}}}
	ix.SetVirtualService(vsKey, vs)
	codes := func() []string {
		var out []string
		for _, f := range ix.Check("VirtualService", vsKey, vs) {
			out = append(out, f.Code+" "+f.Message)
		}
		return out
	}
	if got := codes(); len(got) != 1 || got[0] != `IST0101 subset "v2" not found: no DestinationRule for host "reviews.shop.svc.cluster.local"` {
		t.Fatalf("no DestinationRule: %q", got)
	}
	drKey := Key{"shop", "reviews"}
	ix.SetDestinationRule(drKey, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}})
	if got := codes(); len(got) != 1 || got[0] != `IST0101 subset "v2" is not defined by DestinationRule shop/reviews for host "reviews.shop.svc.cluster.local"` {
		t.Fatalf("DestinationRule without v2: %q", got)
	}
	ix.SetDestinationRule(drKey, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}, {Name: "v2"}}})
	if got := codes(); len(got) != 0 {
		t.Fatalf("v2 defined: %q", got)
	}
	ix.SetVirtualService(Key{"shop", "reviews-copy"}, &networking.VirtualService{Hosts: []string{"reviews.shop.svc.cluster.local"}})
	if got := codes(); len(got) != 1 || got[0] != `IST0109 The VirtualServices shop/reviews,shop/reviews-copy associated with mesh gateway define the same host */reviews.shop.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.` {
		t.Fatalf("second VirtualService for the host: %q", got)
	}
	ix.SetVirtualService(Key{"shop", "reviews-copy"}, nil)
	ix.SetDestinationRule(drKey, nil)
	if got := codes(); len(got) != 1 || got[0] != `IST0101 subset "v2" not found: no DestinationRule for host "reviews.shop.svc.cluster.local"` {
		t.Fatalf("both removed: %q", got)
	}
}

// A Service update the checks cannot see (same ports and exportTo: a status
// or label change) keeps the derived view; a port or exportTo change, or a
// deletion, is seen by the next check.
func TestViewFollowsServiceChanges(t *testing.T) {
	ix := NewIndex("")
	svc := Service{Key: Key{"shop", "reviews"}, Ports: []uint32{9080}, PortsKnown: true}
	ix.SetKubeService(svc, true)
	ix.SetReady()
	vsKey := Key{"shop", "reviews"}
	vs := &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "reviews", Port: &networking.PortSelector{Number: 9080}}}}}}}
	codes := func() string {
		var out []string
		for _, f := range ix.Check("VirtualService", vsKey, vs) {
			out = append(out, f.Code)
		}
		return strings.Join(out, ",")
	}
	if got := codes(); got != "" {
		t.Fatalf("port 9080 exists: %q", got)
	}
	v := ix.view.Load()
	ix.SetKubeService(Service{Key: svc.Key, Ports: []uint32{9080}, PortsKnown: true}, true)
	if ix.view.Load() != v {
		t.Error("an update with the same ports and exportTo dropped the view")
	}
	ix.SetKubeService(Service{Key: Key{"shop", "gone"}}, false)
	if ix.view.Load() != v {
		t.Error("forgetting a Service never recorded dropped the view")
	}
	ix.SetKubeService(Service{Key: svc.Key, Ports: []uint32{8080}, PortsKnown: true}, true)
	if got := codes(); got != "IST0101" {
		t.Errorf("port changed to 8080: %q, want IST0101", got)
	}
	ix.SetKubeService(Service{Key: svc.Key, Ports: []uint32{9080}, PortsKnown: true, ExportTo: "other"}, true)
	if got := codes(); got != "IST0101" {
		t.Errorf("exported to another namespace only: %q, want IST0101", got)
	}
	ix.SetKubeService(svc, false)
	if got := codes(); got != "IST0101" {
		t.Errorf("deleted: %q, want IST0101", got)
	}
}

// An update of a mesh object with an equal spec (Istio's status writes, label
// changes) keeps the derived view; a changed spec is seen.
func TestViewKeptForEqualSpec(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	k := Key{"shop", "reviews"}
	ix.SetDestinationRule(k, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}})
	ix.SetService("shop", "reviews", true)
	vs := &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "reviews", Subset: "v1"}}}}}}
	if got := ix.Check("VirtualService", k, vs); len(got) != 0 {
		t.Fatalf("v1 defined: %v", got)
	}
	v := ix.view.Load()
	ix.SetDestinationRule(k, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}})
	ix.SetGateway(Key{"shop", "never-recorded"}, nil)
	if ix.view.Load() != v {
		t.Error("an equal spec, or forgetting an object never recorded, dropped the view")
	}
	ix.SetDestinationRule(k, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v2"}}})
	if got := ix.Check("VirtualService", k, vs); len(got) != 1 || got[0].Code != CodeReferencedResourceNotFound {
		t.Errorf("v1 no longer defined: %v, want IST0101", got)
	}
}

// TestReferencesLargeIndex: the references of a VirtualService of 20,000
// destinations that 3,000 wildcard DestinationRules and ServiceEntries
// cover are found with work linear in their numbers: each DestinationRule
// and ServiceEntry once. Every destination collected, sorted and keyed (a
// string per object) all of them again: 20 s for one admission with
// organisation rules.
func TestReferencesLargeIndex(t *testing.T) {
	assertLinearWork(t, 5000, func(n int) {
		objs := n * 3 / 20 // 3,000 of each for 20,000 destinations
		ix := NewIndex("")
		for d := range objs {
			ns := fmt.Sprintf("ns%04d", d)
			ix.SetDestinationRule(Key{ns, "all"}, &networking.DestinationRule{Host: "*.svc.cluster.local"})
			ix.SetServiceEntry(Key{ns, "all"}, &networking.ServiceEntry{Hosts: []string{"*.svc.cluster.local"}})
		}
		ix.SetReady()
		vs := &networking.VirtualService{Hosts: []string{"x"}}
		for i := range n {
			vs.Http = append(vs.Http, &networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: fmt.Sprintf("h%d.svc.cluster.local", i)}}}})
		}
		refs := ix.References("VirtualService", Key{"shop", "vs"}, vs)
		if len(refs) != 2*objs || refs[0].Kind != "DestinationRule" || refs[0].Key != (Key{"ns0000", "all"}) || refs[objs].Kind != "ServiceEntry" {
			t.Errorf("%d references, first %v", len(refs), refs[:min(len(refs), 1)])
		}
	})
}

// TestReferencesCatchAllDestinationRule: a DestinationRule for host "*"
// covers every destination host. Its host is not expanded as a short name
// would be (Istio's util.ConvertHostToFQDN leaves a host starting with "*"
// as written), so organisation rules see it referenced by an external host.
func TestReferencesCatchAllDestinationRule(t *testing.T) {
	ix := NewIndex("")
	ix.SetServiceEntry(Key{"shop", "ext"}, &networking.ServiceEntry{Hosts: []string{"api.example.com"}})
	ix.SetDestinationRule(Key{"istio-config", "all"}, &networking.DestinationRule{Host: "*"})
	ix.SetReady()
	vs := &networking.VirtualService{Hosts: []string{"x"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "api.example.com"}}}}}}
	var got []string
	for _, r := range ix.References("VirtualService", Key{"shop", "vs"}, vs) {
		got = append(got, r.Kind+" "+r.Key.String())
	}
	if want := []string{"DestinationRule istio-config/all", "ServiceEntry shop/ext"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
