package crossref

import (
	"slices"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// A finding is dropped only while a kind it depends on is incomplete
// (SetKindComplete): a Gateway reference on Gateways, a destination host and
// its ports on Services and ServiceEntries, a subset on DestinationRules.
func TestCheckDropsFindingsOfIncompleteKinds(t *testing.T) {
	vs := &networking.VirtualService{Hosts: []string{"reviews.example.com"}, Gateways: []string{"ingress"},
		Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
			{Destination: &networking.Destination{Host: "missing"}},
			{Destination: &networking.Destination{Host: "reviews", Subset: "v1"}},
		}}}}
	dr := &networking.DestinationRule{Host: "nowhere"}
	kinds := func(fs []Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Code+" "+f.Field)
		}
		return out
	}
	all := []string{
		"IST0101 spec.gateways[0]", "IST0132 spec.gateways[0]",
		"IST0101 spec.http[0].route[0].destination.host", "IST0101 spec.http[0].route[1].destination.subset",
	}
	for _, c := range []struct {
		incomplete string
		vs, dr     []string
	}{
		{"", all, []string{"IST0174 spec.host"}},
		{"Gateway", all[2:], []string{"IST0174 spec.host"}},
		{"ServiceEntry", []string{all[0], all[1], all[3]}, nil},
		{"Service", []string{all[0], all[1], all[3]}, nil},
		{"DestinationRule", all[:3], []string{"IST0174 spec.host"}},
		{"VirtualService", all, []string{"IST0174 spec.host"}},
	} {
		ix := NewIndex("")
		ix.SetService("default", "reviews", true)
		ix.SetReady()
		if c.incomplete != "" {
			ix.SetKindComplete(c.incomplete, false)
		}
		if got := kinds(ix.Check("VirtualService", Key{"default", "r"}, vs)); !slices.Equal(got, c.vs) {
			t.Errorf("%q incomplete: VirtualService findings %q, want %q", c.incomplete, got, c.vs)
		}
		if got := kinds(ix.Check("DestinationRule", Key{"default", "r"}, dr)); !slices.Equal(got, c.dr) {
			t.Errorf("%q incomplete: DestinationRule findings %q, want %q", c.incomplete, got, c.dr)
		}
		if c.incomplete != "" {
			ix.SetKindComplete(c.incomplete, true)
			if got := kinds(ix.Check("VirtualService", Key{"default", "r"}, vs)); !slices.Equal(got, all) {
				t.Errorf("%q complete again: VirtualService findings %q, want %q", c.incomplete, got, all)
			}
		}
	}
}
