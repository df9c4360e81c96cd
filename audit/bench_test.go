package audit

import (
	"fmt"
	"testing"

	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation/crossref"
)

// auditSnapshot builds n stored mesh objects: per app a DestinationRule with
// two subsets and a VirtualService splitting between them (every tenth one
// naming a missing subset), in 100 namespaces, with each app's Service.
func auditSnapshot(n int) Snapshot {
	snap := Snapshot{Namespaces: map[string]map[string]string{}}
	for i := 0; len(snap.Objects) < n; i++ {
		ns := fmt.Sprintf("ns-%d", i%100)
		app := fmt.Sprintf("app-%d", i)
		snap.Namespaces[ns] = map[string]string{"environment": "production"}
		snap.Services = append(snap.Services, crossref.Key{Namespace: ns, Name: app})
		subset := "v2"
		if i%10 == 0 {
			subset = "v3"
		}
		meta := func(kind string) (map[string]any, ObjectRef) {
			ref := ObjectRef{APIVersion: "networking.istio.io/v1", Kind: kind, Namespace: ns, Name: app, UID: fmt.Sprintf("%s-%d", kind, i)}
			return map[string]any{"name": app, "namespace": ns, "uid": ref.UID}, ref
		}
		md, ref := meta("DestinationRule")
		snap.Objects = append(snap.Objects, Object{Ref: ref, Raw: map[string]any{
			"apiVersion": ref.APIVersion, "kind": ref.Kind, "metadata": md,
			"spec": map[string]any{"host": app, "subsets": []any{
				map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
				map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
			}},
		}})
		md, ref = meta("VirtualService")
		snap.Objects = append(snap.Objects, Object{Ref: ref, Raw: map[string]any{
			"apiVersion": ref.APIVersion, "kind": ref.Kind, "metadata": md,
			"spec": map[string]any{"hosts": []any{app}, "http": []any{map[string]any{"route": []any{
				map[string]any{"destination": map[string]any{"host": app, "subset": "v1"}, "weight": int64(90)},
				map[string]any{"destination": map[string]any{"host": app, "subset": subset}, "weight": int64(10)},
			}}}},
		}})
	}
	snap.Objects = snap.Objects[:n]
	return snap
}

// BenchmarkAuditCheck10k is the audit core (validation, cross-resource
// analysis and the shipped example organisation rules) over 10,000 stored
// objects: one iteration is one audit run without the API calls.
//
//	go test ./audit/ -run '^$' -bench BenchmarkAuditCheck10k -benchmem -benchtime 3x
func BenchmarkAuditCheck10k(b *testing.B) {
	rules, err := orgrules.Load(b.Context(), "../deploy/examples/rego")
	if err != nil {
		b.Fatal(err)
	}
	snap := auditSnapshot(benchObjects)
	b.ReportAllocs()
	for b.Loop() {
		vs, err := Check(b.Context(), snap, rules)
		if err != nil {
			b.Fatal(err)
		}
		if len(vs) != benchObjects/20 { // every tenth VirtualService names subset v3
			b.Fatalf("want 500 violations, got %d", len(vs))
		}
	}
}

// benchObjects is the snapshot size of BenchmarkAuditCheck10k (a variable so a
// profile can be taken at a smaller size).
var benchObjects = 10_000

// BenchmarkAuditCheck10kServiceEntries is BenchmarkAuditCheck10k with
// 10,000 ServiceEntries more (one in ten a wildcard host): each destination
// is resolved against them (crossref's host index, not a scan).
func BenchmarkAuditCheck10kServiceEntries(b *testing.B) {
	rules, err := orgrules.Load(b.Context(), "../deploy/examples/rego")
	if err != nil {
		b.Fatal(err)
	}
	snap := auditSnapshot(benchObjects)
	for i := range 10_000 {
		ns, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("se-%d", i)
		host := fmt.Sprintf("api%d.example.com", i)
		if i%10 == 0 {
			host = fmt.Sprintf("*.w%d.example.org", i)
		}
		ref := ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "ServiceEntry", Namespace: ns, Name: name, UID: "se-" + name}
		snap.Objects = append(snap.Objects, Object{Ref: ref, Raw: map[string]any{
			"apiVersion": ref.APIVersion, "kind": ref.Kind, "metadata": map[string]any{"name": name, "namespace": ns, "uid": ref.UID},
			"spec": map[string]any{"hosts": []any{host}, "location": "MESH_EXTERNAL", "resolution": "DNS",
				"ports": []any{map[string]any{"number": int64(443), "name": "https", "protocol": "TLS"}}},
		}})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Check(b.Context(), snap, rules); err != nil {
			b.Fatal(err)
		}
	}
}
