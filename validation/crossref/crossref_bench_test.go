package crossref

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	networking "istio.io/api/networking/v1alpha3"
)

// largeIndex is a big cluster: 10,000 Services, 10,000 ServiceEntries (one
// in ten a wildcard host), 2,000 DestinationRules (one in ten a wildcard
// host) and 500 Gateways.
func largeIndex(b testing.TB) *Index {
	ix := NewIndex("")
	for i := range 10000 {
		ns := fmt.Sprintf("ns%d", i%100)
		ix.SetNamespace(ns, nil, true)
		ix.SetKubeService(Service{Key: Key{ns, fmt.Sprintf("svc%d", i)}, Ports: []uint32{80, 8080}, PortsKnown: true}, true)
		host := fmt.Sprintf("api%d.ext%d.example.com", i, i%50)
		if i%10 == 0 {
			host = fmt.Sprintf("*.w%d.example.org", i)
		}
		ix.SetServiceEntry(Key{ns, fmt.Sprintf("se%d", i)}, &networking.ServiceEntry{Hosts: []string{host}, Ports: []*networking.ServicePort{{Number: 443, Name: "https", Protocol: "TLS"}}})
	}
	for i := range 2000 {
		ns := fmt.Sprintf("ns%d", i%100)
		host := fmt.Sprintf("svc%d", i)
		if i%10 == 0 {
			host = fmt.Sprintf("*.w%d.example.org", i*5)
		}
		ix.SetDestinationRule(Key{ns, fmt.Sprintf("dr%d", i)}, &networking.DestinationRule{Host: host, Subsets: []*networking.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}}})
	}
	for i := range 500 {
		ix.SetGateway(Key{"istio-system", fmt.Sprintf("gw%d", i)}, &networking.Gateway{Selector: map[string]string{"istio": "ingressgateway"},
			Servers: []*networking.Server{{Port: &networking.Port{Number: 443, Name: "https", Protocol: "HTTPS"}, Hosts: []string{fmt.Sprintf("*/app%d.example.com", i)}}}})
	}
	ix.SetReady()
	return ix
}

// largeVS is a VirtualService of about 3 MiB in its JSON form (the API
// server's request limit): http routes whose destinations mix known
// Services, ServiceEntry hosts (exact and under a wildcard), hosts nothing
// defines, and subsets.
func largeVS(b testing.TB) *networking.VirtualService {
	vs := &networking.VirtualService{Hosts: []string{"app1.example.com"}, Gateways: []string{"istio-system/gw1", "mesh"}}
	for i := 0; ; i++ {
		var hosts []string
		switch i % 5 {
		case 0:
			hosts = []string{fmt.Sprintf("svc%d", i%10000)}
		case 1:
			hosts = []string{fmt.Sprintf("svc%d.ns%d.svc.cluster.local", i%10000, i%100)}
		case 2:
			hosts = []string{fmt.Sprintf("api%d.ext%d.example.com", i%10000, (i%10000)%50)}
		case 3:
			hosts = []string{fmt.Sprintf("x%d.w%d.example.org", i, (i%1000)*10)}
		case 4:
			hosts = []string{fmt.Sprintf("missing%d.example.net", i)}
		}
		r := &networking.HTTPRoute{}
		for _, h := range hosts {
			r.Route = append(r.Route, &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: h, Subset: "v1", Port: &networking.PortSelector{Number: 80}}})
		}
		vs.Http = append(vs.Http, r)
		if i%1000 == 0 {
			data, _ := protojson.Marshal(vs)
			if len(data) > 3<<20 {
				break
			}
		}
	}
	return vs
}

func BenchmarkCheckLargeVirtualService(b *testing.B) {
	ix, vs := largeIndex(b), largeVS(b)
	b.Logf("%d http routes", len(vs.GetHttp()))
	ix.Check("VirtualService", Key{"ns1", "big"}, vs) // build the view once
	b.ReportAllocs()
	for b.Loop() {
		ix.Check("VirtualService", Key{"ns1", "big"}, vs)
	}
}

func BenchmarkReferencesLargeVirtualService(b *testing.B) {
	ix, vs := largeIndex(b), largeVS(b)
	ix.Check("VirtualService", Key{"ns1", "big"}, vs)
	b.ReportAllocs()
	for b.Loop() {
		ix.References("VirtualService", Key{"ns1", "big"}, vs)
	}
}

func BenchmarkCheckDestinationRuleLargeIndex(b *testing.B) {
	ix := largeIndex(b)
	dr := &networking.DestinationRule{Host: "missing.example.net"}
	ix.Check("DestinationRule", Key{"ns1", "dr"}, dr)
	b.ReportAllocs()
	for b.Loop() {
		ix.Check("DestinationRule", Key{"ns1", "dr"}, dr)
	}
}

// BenchmarkCheckAfterChange is the first check after a watch update: the
// view is rebuilt from every object, under the read lock.
func BenchmarkCheckAfterChange(b *testing.B) {
	ix := largeIndex(b)
	dr := &networking.DestinationRule{Host: "missing.example.net"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ix.SetServiceEntry(Key{"ns1", "changing"}, &networking.ServiceEntry{Hosts: []string{fmt.Sprintf("h%d.example.com", i)}})
		ix.Check("DestinationRule", Key{"ns1", "dr"}, dr)
	}
}

// manyHostsVS is a mesh VirtualService with n hosts (about 150,000 fit in
// 3 MiB), some wildcards, bound to n/10 references of one Gateway.
func manyHostsVS(n int) *networking.VirtualService {
	vs := &networking.VirtualService{ExportTo: []string{".", "ns2"}}
	for i := range n {
		h := fmt.Sprintf("h%d.example.com", i)
		if i%10 == 0 {
			h = fmt.Sprintf("*.w%d.example.com", i)
			vs.Gateways = append(vs.Gateways, "istio-system/gw1")
		}
		vs.Hosts = append(vs.Hosts, h)
	}
	vs.Gateways = append(vs.Gateways, "mesh")
	return vs
}

func BenchmarkCheckManyHosts(b *testing.B) {
	ix := largeIndex(b)
	for i := range 2000 {
		ix.SetVirtualService(Key{fmt.Sprintf("ns%d", i%100), fmt.Sprintf("vs%d", i)}, &networking.VirtualService{Hosts: []string{fmt.Sprintf("svc%d", i), fmt.Sprintf("*.v%d.example.com", i)}})
	}
	for _, n := range []int{1000, 4000, 40000, 150000} {
		vs := manyHostsVS(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ix.Check("VirtualService", Key{"ns1", "big"}, vs)
			b.ReportAllocs()
			for b.Loop() {
				ix.Check("VirtualService", Key{"ns1", "big"}, vs)
			}
		})
	}
}

// BenchmarkCheckAllGateways checks every Gateway of a cluster with 5,000 of
// them, as the audit and `meshguard analyze` do.
func BenchmarkCheckAllGateways(b *testing.B) {
	var objs []Object
	for i := range 5000 {
		objs = append(objs, Object{Kind: "Gateway", Key: Key{fmt.Sprintf("ns%d", i%100), fmt.Sprintf("gw%d", i)}, Spec: &networking.Gateway{
			Selector: map[string]string{"istio": fmt.Sprintf("gw%d", i%50)},
			Servers:  []*networking.Server{{Port: &networking.Port{Number: 443, Name: "https", Protocol: "HTTPS"}, Hosts: []string{fmt.Sprintf("*/app%d.example.com", i)}}}}})
	}
	ix := IndexOf("", nil, nil, objs)
	b.ReportAllocs()
	for b.Loop() {
		for _, o := range objs {
			ix.Check(o.Kind, o.Key, o.Spec)
		}
	}
}
