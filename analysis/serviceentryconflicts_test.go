package analysis

import (
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// seObject is a ServiceEntry ns/name with hosts, one port per protocol
// (numbered port) and exportTo.
func seObject(ns, name string, hosts []string, port uint32, protocols []string, exportTo ...string) Object {
	spec := &networking.ServiceEntry{Hosts: hosts, ExportTo: exportTo}
	for i, p := range protocols {
		spec.Ports = append(spec.Ports, &networking.ServicePort{Number: port + uint32(i), Protocol: p, Name: "p"})
	}
	return Object{Kind: "ServiceEntry", Namespace: ns, Name: name, Spec: spec}
}

// TestServiceEntryProtocolConflicts: the cases Istio's test data does not
// cover, with the rule of Istio's
// pkg/config/analysis/analyzers/serviceentry/conflictingserviceentries.go
// (2392533cac45) ConflictingServiceEntryProtocolAnalyzer.Analyze and
// exportToScopes.
func TestServiceEntryProtocolConflicts(t *testing.T) {
	h := []string{"api.example.com"}
	conflict := func(names, protocols string) string {
		return `Multiple ServiceEntries (` + names + `) define the same host "api.example.com" and port 443 with conflicting protocols (` + protocols + `).`
	}
	for _, tc := range []struct {
		name string
		objs []Object
		want []string // "ns/name: text"
	}{
		{
			// Protocols are compared upper-cased: http and HTTP are one.
			name: "case of the protocol",
			objs: []Object{seObject("a", "x", h, 443, []string{"http"}), seObject("a", "y", h, 443, []string{"HTTP"})},
		},
		{
			// An unset protocol is a protocol of its own ("" sorts first).
			name: "unset and TCP",
			objs: []Object{seObject("a", "x", h, 443, []string{""}), seObject("a", "y", h, 443, []string{"TCP"})},
			want: []string{"a/x: " + conflict("a/x, a/y", ", TCP"), "a/y: " + conflict("a/x, a/y", ", TCP")},
		},
		{
			// Another port of the same host is no conflict.
			name: "different ports",
			objs: []Object{seObject("a", "x", h, 443, []string{"HTTP"}), seObject("a", "y", h, 444, []string{"TLS"})},
		},
		{
			// A ServiceEntry exported to its own namespace meets one
			// exported everywhere (another namespace): the namespace's key
			// takes the "*" entries.
			name: "local meets everywhere",
			objs: []Object{seObject("a", "x", h, 443, []string{"HTTP"}, "."), seObject("b", "y", h, 443, []string{"TLS"})},
			want: []string{"a/x: " + conflict("a/x, b/y", "HTTP, TLS"), "b/y: " + conflict("a/x, b/y", "HTTP, TLS")},
		},
		{
			// exportTo naming a namespace is that namespace's scope: it
			// meets a ServiceEntry of that namespace exported to ".".
			name: "exported to the other's namespace",
			objs: []Object{seObject("a", "x", h, 443, []string{"HTTP"}, "b"), seObject("b", "y", h, 443, []string{"TLS"}, ".")},
			want: []string{"a/x: " + conflict("a/x, b/y", "HTTP, TLS"), "b/y: " + conflict("a/x, b/y", "HTTP, TLS")},
		},
		{
			// "*" among other entries is everywhere.
			name: "star among entries",
			objs: []Object{seObject("a", "x", h, 443, []string{"HTTP"}, ".", "*"), seObject("b", "y", h, 443, []string{"TLS"}, ".")},
			want: []string{"a/x: " + conflict("a/x, b/y", "HTTP, TLS"), "b/y: " + conflict("a/x, b/y", "HTTP, TLS")},
		},
		{
			// Istio keeps "~" as a scope name: two ServiceEntries exported
			// nowhere meet there (Istio's exportToScopes; reproduced).
			name: "tilde is a scope",
			objs: []Object{seObject("a", "x", h, 443, []string{"HTTP"}, "~"), seObject("b", "y", h, 443, []string{"TLS"}, "~")},
			want: []string{"a/x: " + conflict("a/x, b/y", "HTTP, TLS"), "b/y: " + conflict("a/x, b/y", "HTTP, TLS")},
		},
		{
			// A ServiceEntry in two conflicts is reported once, for the
			// first key in input order (port 443 before 444); the other
			// ServiceEntries of the second conflict still are.
			name: "reported once",
			objs: []Object{
				seObject("a", "x", h, 443, []string{"HTTP", "HTTP"}),
				seObject("a", "y", h, 443, []string{"TLS"}),
				seObject("a", "z", h, 444, []string{"TCP"}),
			},
			want: []string{
				"a/x: " + conflict("a/x, a/y", "HTTP, TLS"),
				"a/y: " + conflict("a/x, a/y", "HTTP, TLS"),
				"a/z: " + strings.ReplaceAll(conflict("a/x, a/z", "HTTP, TCP"), "443", "444"),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range Analyze(Input{Objects: tc.objs}) {
				if m.Code != ConflictingServiceEntryProtocol {
					continue
				}
				if m.Level != Warning || m.Field != "metadata.name" || m.Name != "ConflictingServiceEntryProtocol" {
					t.Errorf("%s: level %s, field %q, name %q", m.Object, m.Level, m.Field, m.Name)
				}
				got = append(got, m.Namespace+"/"+m.Object+": "+m.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
