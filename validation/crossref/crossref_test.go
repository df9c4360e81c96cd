package crossref

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

func canaryVS(subsets ...string) *networking.VirtualService {
	vs := &networking.VirtualService{Hosts: []string{"reviews"}}
	r := &networking.HTTPRoute{}
	for _, s := range subsets {
		r.Route = append(r.Route, &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "reviews", Subset: s}, Weight: 10})
	}
	vs.Http = []*networking.HTTPRoute{r}
	return vs
}

func joined(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Field + ": " + f.Message + "\n")
	}
	return b.String()
}

func TestVirtualServiceReferences(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	ix.SetService("default", "reviews", true)
	ix.SetDestinationRule(Key{"default", "reviews"}, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}, {Name: "v2"}}})
	ix.SetGateway(Key{"istio-system", "ingress"}, &networking.Gateway{Servers: []*networking.Server{{Hosts: []string{"*/*.com"}}, {Hosts: []string{"default/reviews.example.org"}}}})
	ix.SetGateway(Key{"default", "private"}, &networking.Gateway{Servers: []*networking.Server{{Hosts: []string{"./a.com", "other/b.com"}}}})
	ix.SetServiceEntry(Key{"default", "ext"}, &networking.ServiceEntry{Hosts: []string{"*.example.com"}})
	ix.SetGateway(Key{"default", "suffix"}, &networking.Gateway{Servers: []*networking.Server{{Hosts: []string{"./*shop.io"}}}})
	ix.SetServiceEntry(Key{"default", "suffix"}, &networking.ServiceEntry{Hosts: []string{"*api.io"}})

	cases := []struct {
		name string
		vs   *networking.VirtualService
		want []string // substrings; empty = no findings
	}{
		{"canary ok", canaryVS("v1", "v2"), nil},
		{"missing subset", canaryVS("v1", "v3"), []string{`spec.http[0].route[1].destination.subset: subset "v3" is not defined by DestinationRule default/reviews`}},
		{"missing host", &networking.VirtualService{Hosts: []string{"x"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "ratings"}}}}}},
			[]string{`spec.http[0].route[0].destination.host: host "ratings" matches no Service or ServiceEntry`}},
		{"service entry wildcard host", &networking.VirtualService{Hosts: []string{"api.example.com"}, Tcp: []*networking.TCPRoute{{Route: []*networking.RouteDestination{{Destination: &networking.Destination{Host: "api.example.com"}}}}}}, nil},
		{"subset without any DR", &networking.VirtualService{Hosts: []string{"x"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "api.example.com", Subset: "v1"}}}}}},
			[]string{`no DestinationRule for host "api.example.com"`}},
		// A missing gateway is IST0101 and IST0132 (Istio's vsHostInGateway finds no host).
		{"gateways", &networking.VirtualService{Hosts: []string{"a.com"}, Gateways: []string{"istio-system/ingress", "missing", "mesh"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}},
			[]string{"spec.gateways[1]: gateway default/missing not found", "spec.gateways[1]: one or more host [a.com] defined in VirtualService default/canary not found in Gateway default/missing"}},
		// IST0132 only when no VS host matches any Gateway host: one exposed host is enough.
		{"one host exposed by gateway", &networking.VirtualService{Hosts: []string{"a.com", "reviews.example.org", "b.com", "c.net"}, Gateways: []string{"default/private"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}}, nil},
		{"no host exposed by gateway", &networking.VirtualService{Hosts: []string{"reviews.example.org", "b.com", "c.net"}, Gateways: []string{"default/private"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}},
			[]string{`spec.gateways[0]: one or more host [reviews.example.org b.com c.net] defined in VirtualService default/canary not found in Gateway default/private`}},
		// A server host "ns/host" exposes host to VirtualServices of namespace ns
		// (Istio's vsHostInGateway: host.NamesForNamespace of the VS namespace),
		// here a Gateway of another namespace.
		{"host exposed to the VirtualService's namespace", &networking.VirtualService{Hosts: []string{"reviews.example.org"}, Gateways: []string{"istio-system/ingress"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}}, nil},
		// Matched either way round: a wildcard VS host against a Gateway's exact host.
		{"wildcard VS host", &networking.VirtualService{Hosts: []string{"*.com"}, Gateways: []string{"default/private"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}}, nil},
		// Istio's host.Name.Matches / SubsetOf (internal/hostname): "*shop.io" names "shop.io" itself.
		{"dotless wildcard gateway host", &networking.VirtualService{Hosts: []string{"shop.io"}, Gateways: []string{"default/suffix"}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "reviews"}}}}}}, nil},
		{"dotless wildcard service entry host", &networking.VirtualService{Hosts: []string{"x"}, Tcp: []*networking.TCPRoute{{Route: []*networking.RouteDestination{{Destination: &networking.Destination{Host: "api.io"}}}}}}, nil},
	}
	for _, c := range cases {
		got := joined(ix.Check("VirtualService", Key{"default", "canary"}, c.vs))
		if len(c.want) == 0 && got != "" {
			t.Errorf("%s: unexpected findings:\n%s", c.name, got)
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: want %q in:\n%s", c.name, w, got)
			}
		}
		if c.name == "gateways" && strings.Count(got, "\n") != 2 {
			t.Errorf("gateways: only the missing gateway should be reported:\n%s", got)
		}
	}
}

func TestConflictingMeshHosts(t *testing.T) {
	ix := NewIndex("cluster.local")
	ix.SetReady()
	ix.SetService("default", "reviews", true)
	ix.SetVirtualService(Key{"default", "first"}, canaryVS())
	ix.SetVirtualService(Key{"default", "gw-bound"}, &networking.VirtualService{Hosts: []string{"reviews"}, Gateways: []string{"gw"}})
	got := joined(ix.Check("VirtualService", Key{"default", "second"}, canaryVS()))
	if !strings.Contains(got, `spec.hosts[0]: The VirtualServices default/first,default/second associated with mesh gateway define the same host */reviews.default.svc.cluster.local which`) || strings.Contains(got, "gw-bound") {
		t.Errorf("findings:\n%s", got)
	}
	// Updating the object itself is not a conflict.
	if got := joined(ix.Check("VirtualService", Key{"default", "first"}, canaryVS())); got != "" {
		t.Errorf("self conflict reported:\n%s", got)
	}
	// Same short name in another namespace is another host.
	if got := joined(ix.Check("VirtualService", Key{"other", "x"}, canaryVS())); strings.Contains(got, "associated with mesh gateway") {
		t.Errorf("cross-namespace short name treated as the same host:\n%s", got)
	}
}

// TestConflictingMeshHostsHonourExportTo: two VirtualServices for one host
// only compete where both are visible.
func TestConflictingMeshHostsHonourExportTo(t *testing.T) {
	vs := func(host string, exportTo ...string) *networking.VirtualService {
		return &networking.VirtualService{Hosts: []string{host}, ExportTo: exportTo}
	}
	const host = "reviews.shop.svc.cluster.local"
	cases := []struct {
		name       string
		existingNS string
		existing   *networking.VirtualService
		newNS      string
		admitted   *networking.VirtualService
		conflict   bool
	}{
		{"both exported everywhere (default)", "a", vs(host), "b", vs(host), true},
		{"both explicit *", "a", vs(host, "*"), "b", vs(host, "*"), true},
		{"both private to different namespaces", "a", vs(host, "."), "b", vs(host, "."), false},
		{"both private to the same namespace", "a", vs(host, "."), "a", vs(host, "."), true},
		{"private vs everywhere", "a", vs(host, "."), "b", vs(host), true},
		{"everywhere vs private", "a", vs(host), "b", vs(host, "."), true},
		{"disjoint explicit lists", "a", vs(host, "x", "y"), "b", vs(host, "z"), false},
		{"explicit lists sharing a namespace", "a", vs(host, "x", "y"), "b", vs(host, "z", "y"), true},
		{"own namespace named explicitly meets '.'", "a", vs(host, "."), "b", vs(host, "a"), true},
		{"'.' is the exporter's namespace, not the other's", "a", vs(host, "b"), "b", vs(host, "a"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ix := NewIndex("cluster.local")
			ix.SetReady()
			ix.SetVirtualService(Key{c.existingNS, "existing"}, c.existing)
			got := joined(ix.Check("VirtualService", Key{c.newNS, "admitted"}, c.admitted))
			if has := strings.Contains(got, c.existingNS+"/existing") && strings.Contains(got, "associated with mesh gateway define the same host"); has != c.conflict {
				t.Errorf("conflict=%v, want %v; findings:\n%s", has, c.conflict, got)
			}
		})
	}
}

func TestDestinationRuleAndGateway(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	ix.SetService("default", "reviews", true)
	if got := ix.Check("DestinationRule", Key{"default", "a"}, &networking.DestinationRule{Host: "reviews"}); len(got) != 0 {
		t.Errorf("known host flagged: %v", got)
	}
	if got := joined(ix.Check("DestinationRule", Key{"default", "a"}, &networking.DestinationRule{Host: "nope"})); !strings.Contains(got, "spec.host") {
		t.Errorf("unknown DR host not flagged: %q", got)
	}
	ix.SetService("default", "reviews", false)
	if got := ix.Check("DestinationRule", Key{"default", "a"}, &networking.DestinationRule{Host: "reviews"}); len(got) != 1 {
		t.Errorf("deleted service still known: %v", got)
	}

	sel := map[string]string{"istio": "ingressgateway"}
	server := func(port uint32, host string) *networking.Server {
		return &networking.Server{Port: &networking.Port{Number: port, Name: "p", Protocol: "HTTP"}, Hosts: []string{host}}
	}
	ix.SetGateway(Key{"istio-system", "one"}, &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "*/*.example.com")}})
	cases := []struct {
		gw       *networking.Gateway
		conflict bool
	}{
		// Hosts compare as written (Istio's model.CheckDuplicates), see TestConflictingGatewaysAsIstio.
		{&networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "a.example.com")}}, false},
		{&networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "*/*.example.com")}}, true},
		{&networking.Gateway{Selector: sel, Servers: []*networking.Server{server(8080, "a.example.com")}}, false},
		{&networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "other.org")}}, false},
		{&networking.Gateway{Selector: map[string]string{"istio": "egress"}, Servers: []*networking.Server{server(80, "a.example.com")}}, false},
	}
	for i, c := range cases {
		got := joined(ix.Check("Gateway", Key{"istio-system", "two"}, c.gw))
		if (got != "") != c.conflict {
			t.Errorf("case %d: conflict=%v, findings:\n%s", i, c.conflict, got)
		}
	}
}

func TestStrictNamespace(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	ix.SetNamespace("strict", map[string]string{StrictLabel: "true"}, true)
	ix.SetNamespace("lax", map[string]string{StrictLabel: "false"}, true)
	if !ix.Strict("strict") || ix.Strict("lax") || ix.Strict("unknown") {
		t.Error("strict label not honoured")
	}
	ix.SetNamespace("strict", nil, false)
	if ix.Strict("strict") {
		t.Error("deleted namespace still strict")
	}
	if got := ix.Check("Sidecar", Key{"a", "b"}, nil); got != nil {
		t.Errorf("kinds without checks must return nil: %v", got)
	}
}

func TestNotReadyReportsNothing(t *testing.T) {
	ix := NewIndex("")
	if ix.Ready() {
		t.Fatal("new index must not be ready")
	}
	if got := ix.Check("VirtualService", Key{"default", "x"}, canaryVS("v9")); got != nil {
		t.Errorf("findings before the cache synced: %v", got)
	}
	ix.SetReady()
	if got := ix.Check("VirtualService", Key{"default", "x"}, canaryVS("v9")); len(got) == 0 {
		t.Error("no findings once ready")
	}
}

// TestConflictingGatewaysAsIstio: IST0145 as Istio's
// gateway/conflictinggateway.go: same selector, a server on the same port and
// bind, and one of its hosts as written, "ns/" part included; one message
// per server naming every conflicting Gateway. The cases marked "before: …"
// failed when hosts were compared without their "ns/" part, with wildcards,
// once per host pair.
func TestConflictingGatewaysAsIstio(t *testing.T) {
	sel := map[string]string{"istio": "ingressgateway"}
	server := func(port uint32, bind string, hosts ...string) *networking.Server {
		return &networking.Server{Port: &networking.Port{Number: port, Name: "p", Protocol: "HTTP"}, Bind: bind, Hosts: hosts}
	}
	ix := NewIndex("")
	ix.SetGateway(Key{"istio-system", "a"}, &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "shop/foo.com", "bar.com")}})
	ix.SetGateway(Key{"istio-system", "b"}, &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "bar.com"), server(443, "", "foo.com")}})
	ix.SetGateway(Key{"istio-system", "c"}, &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "10.0.0.1", "baz.com")}})
	ix.SetReady()
	for _, tc := range []struct {
		name string
		gw   *networking.Gateway
		want []string
	}{
		{"before: same host, other namespace part", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "other/foo.com")}}, nil},
		{"same host with namespace part", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "shop/foo.com")}},
			[]string{"spec.servers[0]: Conflict with gateways istio-system/a (workload selector istio=ingressgateway, port 80, hosts shop/foo.com)."}},
		{"before: a wildcard host covering another is not a duplicate", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "*.com")}}, nil},
		{"before: one message per server, every Gateway named", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "bar.com", "shop/foo.com")}},
			[]string{"spec.servers[0]: Conflict with gateways istio-system/a,istio-system/b (workload selector istio=ingressgateway, port 80, hosts bar.com,shop/foo.com)."}},
		{"another port", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(8080, "", "bar.com")}}, nil},
		{"before: another bind", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "baz.com")}}, nil},
		{"same bind", &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "10.0.0.1", "baz.com")}},
			[]string{"spec.servers[0]: Conflict with gateways istio-system/c (workload selector istio=ingressgateway, port 80, hosts baz.com)."}},
		{"another selector", &networking.Gateway{Selector: map[string]string{"istio": "egress"}, Servers: []*networking.Server{server(80, "", "bar.com")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range ix.Check("Gateway", Key{"istio-system", "new"}, tc.gw) {
				got = append(got, f.Field+": "+f.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// An update of a stored Gateway does not conflict with its stored
	// version: Istio's analyzeGateway skips its own name (gwName != gwNameKey).
	var got []string
	for _, f := range ix.Check("Gateway", Key{"istio-system", "a"}, &networking.Gateway{Selector: sel, Servers: []*networking.Server{server(80, "", "shop/foo.com", "bar.com")}}) {
		got = append(got, f.Field+": "+f.Message)
	}
	if want := []string{"spec.servers[0]: Conflict with gateways istio-system/b (workload selector istio=ingressgateway, port 80, hosts shop/foo.com,bar.com)."}; !slices.Equal(got, want) {
		t.Errorf("update of stored Gateway a:\ngot  %q\nwant %q", got, want)
	}
}

// TestGatewayReference: Istio's analyzers read a gateway reference as
// "namespace/name" or as a name in the VirtualService's namespace
// (resource.NewShortOrFullName), so the legacy "name.namespace" form names a
// Gateway "name.namespace" there: IST0101 and IST0132 when it does not
// exist. The legacy cases failed when that form resolved to namespace/name.
func TestGatewayReference(t *testing.T) {
	ix := NewIndex("")
	gw := &networking.Gateway{Servers: []*networking.Server{{Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"*"}}}}
	ix.SetGateway(Key{"istio-system", "ingress"}, gw)
	ix.SetGateway(Key{"shop", "gw.v2"}, gw)
	ix.SetReady()
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"istio-system/ingress", nil},
		{"legacy: ingress.istio-system", []string{
			"IST0101 gateway shop/ingress.istio-system not found",
			"IST0132 one or more host [a.com] defined in VirtualService shop/vs not found in Gateway shop/ingress.istio-system."}},
		{"legacy: gw.v2", nil}, // the Gateway named "gw.v2" in shop
		{"legacy: ingress.istio-system.svc.cluster.local", []string{
			"IST0101 gateway shop/ingress.istio-system.svc.cluster.local not found",
			"IST0132 one or more host [a.com] defined in VirtualService shop/vs not found in Gateway shop/ingress.istio-system.svc.cluster.local."}},
		{"ingress", []string{
			"IST0101 gateway shop/ingress not found",
			"IST0132 one or more host [a.com] defined in VirtualService shop/vs not found in Gateway shop/ingress."}},
	} {
		ref := strings.TrimPrefix(tc.ref, "legacy: ")
		vs := &networking.VirtualService{Hosts: []string{"a.com"}, Gateways: []string{ref}}
		var got []string
		for _, f := range ix.Check("VirtualService", Key{"shop", "vs"}, vs) {
			got = append(got, f.Code+" "+f.Message)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.ref, got, tc.want)
		}
		var refs []string
		for _, r := range ix.References("VirtualService", Key{"shop", "vs"}, vs) {
			refs = append(refs, r.Key.String())
		}
		if wantRef := len(tc.want) == 0; (len(refs) == 1) != wantRef {
			t.Errorf("%s: references %q", tc.ref, refs)
		}
	}
}

// TestInternalGatewayReference: a reference to the Gateway Istio generates
// for a Kubernetes Gateway API listener is neither IST0101 nor IST0132 (Istio's
// virtualservice/gateways.go GatewayAnalyzer reports IST0165 for it and goes
// on; IsInternalGatewayReference at 461f85ba4afe); analyzers_test.go case
// "virtualServiceInternalGatewayRef". Other names, even close, are still
// checked.
func TestInternalGatewayReference(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	for _, tc := range []struct {
		ref     string
		missing bool
	}{
		{"istio-ingress/gateway~istio-autogenerated-k8s-gateway~foo", false},
		{"gateway~istio-autogenerated-k8s-gateway~foo", false},
		{"gw~istio-autogenerated-k8s-gateway", true}, // no listener part
		{"istio-autogenerated-k8s-gateway~foo", true},
		{"istio-ingress/gateway", true},
		// The "-"-separated names older Istio generated are references
		// like any other for IsInternalGatewayReference at 461f85ba4afe.
		{"istio-ingress/gateway-istio-autogenerated-k8s-gateway-foo", true},
		{"gateway-istio-autogenerated-k8s-gateway-foo", true},
	} {
		vs := &networking.VirtualService{Hosts: []string{"foo.com"}, Gateways: []string{tc.ref}}
		var codes []string
		for _, f := range ix.Check("VirtualService", Key{"shop", "vs"}, vs) {
			codes = append(codes, f.Code)
		}
		var want []string
		if tc.missing {
			want = []string{CodeReferencedResourceNotFound, CodeVirtualServiceHostNotFoundInGateway}
		}
		if !slices.Equal(codes, want) {
			t.Errorf("%s: got %q, want %q", tc.ref, codes, want)
		}
	}
}

// TestGatewayHostMessageBounded: IST0132 lists at most maxMessageHosts hosts,
// so a VirtualService with many hosts and many gateway references cannot make
// messages of gigabytes (each reference repeated the whole list).
func TestGatewayHostMessageBounded(t *testing.T) {
	ix := NewIndex("")
	ix.SetReady()
	vs := &networking.VirtualService{}
	for i := range 2000 {
		vs.Hosts = append(vs.Hosts, fmt.Sprintf("h%d.example.com", i))
		if i%10 == 0 {
			vs.Gateways = append(vs.Gateways, fmt.Sprintf("gw%d", i))
		}
	}
	fs := ix.Check("VirtualService", Key{"default", "big"}, vs)
	total, n := 0, 0
	for _, f := range fs {
		if f.Code == CodeVirtualServiceHostNotFoundInGateway {
			n++
			total += len(f.Message)
		}
	}
	if n != 200 {
		t.Fatalf("%d IST0132 findings, want 200", n)
	}
	if total > 200*1000 {
		t.Fatalf("IST0132 messages total %d bytes for 2,000 hosts and 200 gateway references", total)
	}
	want := "one or more host [h0.example.com h1.example.com"
	if !strings.Contains(fs[1].Message, want) || !strings.Contains(fs[1].Message, "h19.example.com ... and 1980 more] defined in VirtualService default/big not found in Gateway default/gw0") {
		t.Errorf("message %q", fs[1].Message)
	}
	small := ix.Check("VirtualService", Key{"default", "small"}, &networking.VirtualService{Hosts: []string{"a.com", "b.com"}, Gateways: []string{"gw"}})
	// Istio's messages.yaml template, its final "." included.
	if got, want := small[1].Message, "one or more host [a.com b.com] defined in VirtualService default/small not found in Gateway default/gw."; got != want {
		t.Errorf("message %q, want %q (Istio's)", got, want)
	}
}

// TestConflictingGatewaysLargeGateways: IST0145 for a Gateway of 20,000
// servers (about 2 MiB, all on port 80 with distinct hosts) against three
// stored ones like it takes work linear in the servers, the index's read
// lock held meanwhile. Comparing every server with every server of each
// other Gateway took over 20 s (1.2 billion comparisons) for one admission.
func TestConflictingGatewaysLargeGateways(t *testing.T) {
	sel := map[string]string{"istio": "ingressgateway"}
	big := func(tag string, n int) *networking.Gateway {
		gw := &networking.Gateway{Selector: sel}
		for i := range n {
			gw.Servers = append(gw.Servers, &networking.Server{Port: &networking.Port{Number: 80, Name: fmt.Sprintf("p%d", i), Protocol: "HTTP"},
				Hosts: []string{fmt.Sprintf("%s%d.example.com", tag, i)}})
		}
		return gw
	}
	assertLinearWork(t, 5000, func(n int) {
		ix := NewIndex("")
		for i := range 3 {
			ix.SetGateway(Key{"istio-system", fmt.Sprintf("g%d", i)}, big(fmt.Sprintf("g%d-", i), n))
		}
		ix.SetReady()
		gw := big("new-", n)
		gw.Servers[7].Hosts = append(gw.Servers[7].Hosts, "g2-5.example.com", "g0-9.example.com")
		fs := ix.Check("Gateway", Key{"istio-system", "new"}, gw)
		want := "spec.servers[7]: Conflict with gateways istio-system/g0,istio-system/g2 (workload selector istio=ingressgateway, port 80, hosts new-7.example.com,g2-5.example.com,g0-9.example.com)."
		if len(fs) != 1 || fs[0].Field+": "+fs[0].Message != want {
			t.Errorf("got %v\nwant %s", fs, want)
		}
	})
}

// TestGatewayHostsLargeObjects: IST0132 for a VirtualService of 20,000 hosts
// bound to a Gateway of 20,000 servers, none matching, and to one whose
// wildcard server host only the last VirtualService host (a wider wildcard)
// covers, takes work linear in the hosts. Matching every VirtualService host
// with every server host took about 9 s per Gateway for one admission. (The
// last host covers the server's rather than the other way round so that the
// match is found by the first lookup: a host of the VirtualService found
// among the others would be found after a number of lookups that map order
// makes random, and the work with it.)
func TestGatewayHostsLargeObjects(t *testing.T) {
	assertLinearWork(t, 5000, func(n int) {
		big := func(hosts func(int) []string) *networking.Gateway {
			gw := &networking.Gateway{Selector: map[string]string{"istio": "ingressgateway"}}
			for i := range n {
				gw.Servers = append(gw.Servers, &networking.Server{Port: &networking.Port{Number: 80, Name: fmt.Sprintf("p%d", i), Protocol: "HTTP"}, Hosts: hosts(i)})
			}
			return gw
		}
		ix := NewIndex("")
		ix.SetGateway(Key{"istio-system", "none"}, big(func(i int) []string { return []string{fmt.Sprintf("g%d.example.com", i)} }))
		ix.SetGateway(Key{"istio-system", "last"}, big(func(i int) []string {
			if i == n-1 {
				return []string{"shop/*.last.example.org"}
			}
			return []string{fmt.Sprintf("other/*.x%d.example.org", i)} // another namespace's
		}))
		ix.SetReady()
		vs := &networking.VirtualService{Gateways: []string{"istio-system/none", "istio-system/last"}}
		for i := range n {
			vs.Hosts = append(vs.Hosts, fmt.Sprintf("v%d.x%d.example.org", i, i))
		}
		vs.Hosts[n-1] = "*.example.org"
		fs := ix.Check("VirtualService", Key{"shop", "vs"}, vs)
		if len(fs) != 1 || fs[0].Field != "spec.gateways[0]" || fs[0].Code != CodeVirtualServiceHostNotFoundInGateway {
			t.Errorf("got %v, want IST0132 for spec.gateways[0] only", fs)
		}
	})
}

// TestObjectListsInMessagesBounded: the DestinationRules a subset message
// names and the Gateways an IST0145 message names are at most
// maxMessageNames, then "... and N more", as IST0132's hosts are. With
// 1,000 DestinationRules for a host, the findings of a VirtualService of
// 20,000 destinations held 514 MB of text (26 KB each), and 1,000 Gateways
// sharing a host with the 20,000 servers of another made 609 MB, both taking
// tens of seconds at admission. The work is linear in those numbers.
func TestObjectListsInMessagesBounded(t *testing.T) {
	sel := map[string]string{"istio": "ingressgateway"}
	assertLinearWork(t, 5000, func(n int) {
		objs := n / 20 // 1,000 of each for 20,000 destinations and servers
		ix := NewIndex("")
		ix.SetService("shop", "reviews", true)
		for d := range objs {
			ix.SetDestinationRule(Key{"shop", fmt.Sprintf("destination-rule-%d", d)}, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}})
			ix.SetGateway(Key{"istio-system", fmt.Sprintf("gateway-%03d", d)}, &networking.Gateway{Selector: sel,
				Servers: []*networking.Server{{Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"a.com"}}}})
		}
		ix.SetReady()
		r := &networking.HTTPRoute{}
		gw := &networking.Gateway{Selector: sel}
		for i := range n {
			r.Route = append(r.Route, &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "reviews", Subset: fmt.Sprintf("x%d", i)}})
			gw.Servers = append(gw.Servers, &networking.Server{Port: &networking.Port{Number: 80, Name: fmt.Sprintf("p%d", i), Protocol: "HTTP"}, Hosts: []string{"a.com"}})
		}
		vs := &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{r}}
		fs := [2][]Finding{ix.Check("VirtualService", Key{"shop", "vs"}, vs), ix.Check("Gateway", Key{"istio-system", "new"}, gw)}
		for i, want := range []string{
			`subset "x0" is not defined by DestinationRule shop/destination-rule-0, shop/destination-rule-1, shop/destination-rule-10, `,
			"Conflict with gateways istio-system/gateway-000,istio-system/gateway-001,",
		} {
			if len(fs[i]) != n || !strings.HasPrefix(fs[i][0].Message, want) || !strings.Contains(fs[i][0].Message, fmt.Sprintf("... and %d more", objs-20)) {
				t.Errorf("%d findings, first %q", len(fs[i]), fs[i][0].Message)
			}
			for _, f := range fs[i] {
				if len(f.Message) > 2000 {
					t.Fatalf("message of %d bytes: %.300s...", len(f.Message), f.Message)
				}
			}
		}
	})
}
