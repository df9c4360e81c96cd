package crossref

import (
	"fmt"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// TestMeshHostsScopedOncePerVirtualService: IST0109 as Istio's
// ConflictingMeshGatewayHostsAnalyzer: one message per VirtualService, for
// the first scoped host (sorted) it conflicts on, naming that group; a
// namespace-scoped host also meets the matching hosts (wildcards either way)
// of VirtualServices exported everywhere, while two VirtualServices exported
// everywhere conflict only on the same host. The cases marked "before: …"
// failed on the pairwise check this replaced.
func TestMeshHostsScopedOncePerVirtualService(t *testing.T) {
	vs := func(exportTo []string, hosts ...string) *networking.VirtualService {
		return &networking.VirtualService{Hosts: hosts, ExportTo: exportTo}
	}
	type stored struct {
		key Key
		vs  *networking.VirtualService
	}
	for _, tc := range []struct {
		name    string
		stored  []stored
		checked Key
		vs      *networking.VirtualService
		want    string // the one finding, "" for none
	}{
		{"before: two hosts shared, two messages",
			[]stored{{Key{"a", "other"}, vs(nil, "x.example.com", "y.example.com")}},
			Key{"a", "vs"}, vs(nil, "x.example.com", "y.example.com"),
			"spec.hosts[0]: The VirtualServices a/other,a/vs associated with mesh gateway define the same host */x.example.com which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource."},
		{"before: namespace scope meets a wider wildcard exported everywhere",
			[]stored{{Key{"bar", "d"}, vs([]string{"*"}, "*.d")}},
			Key{"foo", "d"}, vs([]string{"."}, "*.productpage.d"),
			"spec.hosts[0]: The VirtualServices foo/d,bar/d associated with mesh gateway define the same host foo/*.productpage.d which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource."},
		{"before: exported everywhere, joins a namespace-scoped group its host matches",
			[]stored{{Key{"foo", "d"}, vs([]string{"."}, "a.example.com")}},
			Key{"bar", "d"}, vs(nil, "*.example.com"),
			"spec.hosts[0]: The VirtualServices foo/d,bar/d associated with mesh gateway define the same host foo/a.example.com which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource."},
		{"both exported everywhere, overlapping wildcard: no conflict",
			[]stored{{Key{"a", "other"}, vs(nil, "*.example.com")}},
			Key{"b", "vs"}, vs(nil, "a.example.com"), ""},
		{"scopes that never meet",
			[]stored{{Key{"a", "other"}, vs([]string{"."}, "*.example.com")}},
			Key{"b", "vs"}, vs([]string{"."}, "*.example.com"), ""},
		{"the stored version of the checked VirtualService does not count",
			[]stored{{Key{"a", "vs"}, vs(nil, "x.example.com")}},
			Key{"a", "vs"}, vs(nil, "x.example.com"), ""},
		// Istio's util.IsExportToAllNamespaces: an exportTo naming "*" is
		// scope "*" alone, not also each namespace listed beside it, so no
		// namespace-scoped group pulls in the wildcard exported everywhere.
		{"exportTo naming * and a namespace is exported everywhere only",
			[]stored{{Key{"b", "wild"}, vs(nil, "*.example.com")}},
			Key{"a", "vs"}, vs([]string{"a", "*"}, "x.example.com"), ""},
		{"gateway-bound VirtualServices do not count",
			[]stored{{Key{"a", "other"}, &networking.VirtualService{Hosts: []string{"x.example.com"}, Gateways: []string{"gw"}}}},
			Key{"a", "vs"}, vs(nil, "x.example.com"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex("")
			for _, s := range tc.stored {
				ix.SetVirtualService(s.key, s.vs)
			}
			ix.SetReady()
			var got []Finding
			for _, f := range ix.Check("VirtualService", tc.checked, tc.vs) {
				if f.Code == CodeConflictingMeshGatewayVirtualServiceHosts {
					got = append(got, f)
				}
			}
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("unexpected: %v", got)
			case tc.want != "" && (len(got) != 1 || got[0].Field+": "+got[0].Message != tc.want):
				t.Errorf("got  %v\nwant %s", got, tc.want)
			}
		})
	}
}

// TestMeshHostsLargeObjects: IST0109 for a mesh VirtualService of 20,000
// hosts exported everywhere, against 2,000 VirtualServices of a wildcard
// host covering them all, each exported to its own namespace, takes work
// linear in their numbers. Each of its hosts visited the 2,000 matching
// entries, copying them and building their scoped names: 11 s for one
// admission.
func TestMeshHostsLargeObjects(t *testing.T) {
	assertLinearWork(t, 5000, func(n int) {
		ix := NewIndex("")
		for d := range n / 10 {
			ix.SetVirtualService(Key{"shop", fmt.Sprintf("vs%04d", d)}, &networking.VirtualService{Hosts: []string{"*.example.com"}, ExportTo: []string{fmt.Sprintf("ns%04d", d)}})
		}
		ix.SetReady()
		vs := &networking.VirtualService{}
		for i := range n {
			vs.Hosts = append(vs.Hosts, fmt.Sprintf("h%d.example.com", i))
		}
		fs := ix.Check("VirtualService", Key{"shop", "big"}, vs)
		want := "spec.hosts[0]: The VirtualServices shop/vs0000,shop/big associated with mesh gateway define the same host ns0000/*.example.com which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource."
		if len(fs) != 1 || fs[0].Field+": "+fs[0].Message != want {
			t.Errorf("got %v\nwant %s", fs, want)
		}
	})
}

// TestMeshHostsGroupListBounded: IST0109 names at most maxMessageNames of the
// VirtualServices of the group. Checking every one of 20,000 VirtualServices
// sharing a host (the audit, analyze) made messages naming all of them: 8 GB.
func TestMeshHostsGroupListBounded(t *testing.T) {
	ix := NewIndex("")
	for d := range 2000 {
		ix.SetVirtualService(Key{"shop", fmt.Sprintf("vs%04d", d)}, &networking.VirtualService{Hosts: []string{"reviews"}})
	}
	ix.SetReady()
	fs := ix.Check("VirtualService", Key{"shop", "vs0005"}, &networking.VirtualService{Hosts: []string{"reviews"}})
	want := "The VirtualServices shop/vs0000,shop/vs0001,shop/vs0002,shop/vs0003,shop/vs0004,shop/vs0005,shop/vs0006,shop/vs0007,shop/vs0008,shop/vs0009," +
		"shop/vs0010,shop/vs0011,shop/vs0012,shop/vs0013,shop/vs0014,shop/vs0015,shop/vs0016,shop/vs0017,shop/vs0018,shop/vs0019,... and 1980 more " +
		"associated with mesh gateway define the same host */reviews.shop.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource."
	if len(fs) != 1 || fs[0].Message != want {
		t.Fatalf("got %.600v", fs)
	}
}
