package analysis

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1alpha3"
)

// efPatch builds one config patch: applyTo, operation, the value's "name"
// (none when valueName is nil; no value at all when noValue), the listener
// match's filter name and proxyVersion.
type efPatch struct {
	applyTo      networking.EnvoyFilter_ApplyTo
	op           networking.EnvoyFilter_Patch_Operation
	valueName    any
	noValue      bool
	filter       string
	proxyVersion string
	noPatch      bool
}

func envoyFilter(t *testing.T, ns, name string, priority int32, patches ...efPatch) Object {
	t.Helper()
	ef := &networking.EnvoyFilter{Priority: priority}
	for _, p := range patches {
		cp := &networking.EnvoyFilter_EnvoyConfigObjectPatch{ApplyTo: p.applyTo, Match: &networking.EnvoyFilter_EnvoyConfigObjectMatch{}}
		if p.filter != "" {
			cp.Match.ObjectTypes = &networking.EnvoyFilter_EnvoyConfigObjectMatch_Listener{Listener: &networking.EnvoyFilter_ListenerMatch{
				FilterChain: &networking.EnvoyFilter_ListenerMatch_FilterChainMatch{Filter: &networking.EnvoyFilter_ListenerMatch_FilterMatch{Name: p.filter}},
			}}
		}
		if p.proxyVersion != "" {
			cp.Match.Proxy = &networking.EnvoyFilter_ProxyMatch{ProxyVersion: p.proxyVersion}
		}
		if !p.noPatch {
			cp.Patch = &networking.EnvoyFilter_Patch{Operation: p.op}
			if !p.noValue {
				fields := map[string]any{"typed_config": map[string]any{}}
				if p.valueName != nil {
					fields["name"] = p.valueName
				}
				v, err := structpb.NewStruct(fields)
				if err != nil {
					t.Fatal(err)
				}
				cp.Patch.Value = v
			}
		}
		ef.ConfigPatches = append(ef.ConfigPatches, cp)
	}
	return Object{Kind: "EnvoyFilter", Namespace: ns, Name: name, Origin: name + ".yaml#0", Spec: ef}
}

// efMessages renders envoyFilterPatches' messages as "CODE ns/name field".
func efMessages(objs ...Object) []string {
	var out []string
	for _, m := range envoyFilterPatches(objs) {
		out = append(out, m.Code+" "+m.Namespace+"/"+m.Object+" "+m.Field)
	}
	return out
}

const (
	httpFilter    = networking.EnvoyFilter_HTTP_FILTER
	networkFilter = networking.EnvoyFilter_NETWORK_FILTER
	insertAfter   = networking.EnvoyFilter_Patch_INSERT_AFTER
)

// TestEnvoyFilterPerPatch: Istio's test-replace-3 (REPLACE with a
// proxyVersion, REPLACE of the same value name, REPLACE of another): one
// message per patch, each naming its patch, with Istio's levels and texts in
// istioctl's format.
func TestEnvoyFilterPerPatch(t *testing.T) {
	in := loadIstioInput(t, "envoy-filter-replace-operation.yaml")
	var got []Message
	for _, m := range envoyFilterPatches(in.Objects) {
		if m.Object == "test-replace-3" {
			got = append(got, m)
		}
	}
	want := []struct {
		code, field string
		level       Level
	}{
		{EnvoyFilterUsesRelativeOperation, "spec.configPatches[0].patch.operation", Warning},
		{EnvoyFilterUsesRelativeOperationWithProxyVersion, "spec.configPatches[1].patch.operation", Warning},
		{EnvoyFilterUsesRelativeOperation, "spec.configPatches[2].patch.operation", Warning},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Code != w.code || got[i].Field != w.field || got[i].Level != w.level || got[i].Message != envoyFilterTexts[w.code] {
			t.Errorf("message %d: got %+v, want %s %s %s", i, got[i], w.code, w.field, w.level)
		}
	}
	s := got[1].String()
	if !strings.HasPrefix(s, "Warning [IST0155] (EnvoyFilter bookinfo/test-replace-3)") ||
		!strings.HasSuffix(s, ") This EnvoyFilter does not have a priority and has a relative patch operation (NSTERT_BEFORE/AFTER, REPLACE, MERGE, DELETE) and proxyVersion set which can cause the EnvoyFilter not to be applied during an upgrade. Using the INSERT_FIRST or ADD option or setting the priority may help in ensuring the EnvoyFilter is applied correctly.") {
		t.Errorf("String() = %q", s)
	}
	// IST0152 (Error) sorts before the Warnings, as istioctl prints it.
	all := Analyze(in)
	if i := slices.IndexFunc(all, func(m Message) bool { return m.Kind == "EnvoyFilter" }); i < 0 || all[i].Code != EnvoyFilterUsesReplaceOperationIncorrectly || all[i].Level != Error {
		t.Errorf("first EnvoyFilter message of Analyze: %v", all)
	}
}

// TestEnvoyFilterAcrossFilters: the proxyVersion names are shared by every
// later EnvoyFilter, whatever its namespace, and only later ones (input
// order).
func TestEnvoyFilterAcrossFilters(t *testing.T) {
	withVersion := envoyFilter(t, "a", "versioned", 0, efPatch{applyTo: httpFilter, op: insertAfter, valueName: "envoy.lua", proxyVersion: `^1\.11.*`})
	other := envoyFilter(t, "b", "other", 0, efPatch{applyTo: httpFilter, op: insertAfter, valueName: "envoy.lua"})
	field := "spec.configPatches[0].patch.operation"
	if got, want := efMessages(withVersion, other), []string{"IST0151 a/versioned " + field, "IST0155 b/other " + field}; !slices.Equal(got, want) {
		t.Errorf("versioned first: got %q, want %q", got, want)
	}
	if got, want := efMessages(other, withVersion), []string{"IST0151 b/other " + field, "IST0151 a/versioned " + field}; !slices.Equal(got, want) {
		t.Errorf("versioned last: got %q, want %q", got, want)
	}
	// A priority silences the relative operation, not the name it records.
	prioritized := envoyFilter(t, "a", "prioritized", 5, efPatch{applyTo: httpFilter, op: insertAfter, valueName: "envoy.lua", proxyVersion: "1.2"})
	if got, want := efMessages(prioritized, other), []string{"IST0155 b/other " + field}; !slices.Equal(got, want) {
		t.Errorf("prioritized: got %q, want %q", got, want)
	}
}

// TestEnvoyFilterInstanceNames: Istio's instance name is the value's "name"
// (compared by its protobuf value, so 7 is not "7"), else the match's filter
// name when the value has fields, else empty; the two sources do not meet.
func TestEnvoyFilterInstanceNames(t *testing.T) {
	field := "spec.configPatches[1].patch.operation"
	for _, tc := range []struct {
		name        string
		first, then efPatch
		want        string
	}{
		{"same value name", efPatch{valueName: "x"}, efPatch{valueName: "x"}, EnvoyFilterUsesRelativeOperationWithProxyVersion},
		{"other value name", efPatch{valueName: "x"}, efPatch{valueName: "y"}, EnvoyFilterUsesRelativeOperation},
		{"number and string", efPatch{valueName: 7.0}, efPatch{valueName: "7"}, EnvoyFilterUsesRelativeOperation},
		{"same number", efPatch{valueName: 7.0}, efPatch{valueName: 7.0}, EnvoyFilterUsesRelativeOperationWithProxyVersion},
		{"same match filter", efPatch{filter: "f"}, efPatch{filter: "f"}, EnvoyFilterUsesRelativeOperationWithProxyVersion},
		{"value name is not a filter name", efPatch{valueName: "f"}, efPatch{filter: "f"}, EnvoyFilterUsesRelativeOperation},
		{"value name before match filter", efPatch{valueName: "f", filter: "g"}, efPatch{filter: "g"}, EnvoyFilterUsesRelativeOperation},
		// Without a value the name is empty, whatever the match names.
		{"no value, empty names", efPatch{noValue: true, filter: "f"}, efPatch{noValue: true, filter: "g"}, EnvoyFilterUsesRelativeOperationWithProxyVersion},
		{"no value is not the match filter", efPatch{noValue: true, filter: "f"}, efPatch{filter: "f"}, EnvoyFilterUsesRelativeOperation},
		{"no filter is the empty name", efPatch{}, efPatch{noValue: true}, EnvoyFilterUsesRelativeOperationWithProxyVersion},
	} {
		first, then := tc.first, tc.then
		first.applyTo, first.op, first.proxyVersion = networkFilter, networking.EnvoyFilter_Patch_ADD, "1.2"
		then.applyTo, then.op = networkFilter, networking.EnvoyFilter_Patch_REMOVE
		got := efMessages(envoyFilter(t, "ns", "ef", 0, first, then))
		if want := []string{tc.want + " ns/ef " + field}; !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, want)
		}
	}
}

// TestEnvoyFilterOperations: which operations Istio's analyzer judges, and
// that it stops at a patch without a patch.
func TestEnvoyFilterOperations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		patches []efPatch
		want    []string
	}{
		{"merge is not judged", []efPatch{{applyTo: networking.EnvoyFilter_CLUSTER, op: networking.EnvoyFilter_Patch_MERGE}}, nil},
		{"insert first", []efPatch{{applyTo: httpFilter, op: networking.EnvoyFilter_Patch_INSERT_FIRST}}, nil},
		{"insert before", []efPatch{{applyTo: httpFilter, op: networking.EnvoyFilter_Patch_INSERT_BEFORE}}, []string{"IST0151"}},
		{"add cluster", []efPatch{{applyTo: networking.EnvoyFilter_CLUSTER, op: networking.EnvoyFilter_Patch_ADD}}, nil},
		{"add route configuration", []efPatch{{applyTo: networking.EnvoyFilter_ROUTE_CONFIGURATION, op: networking.EnvoyFilter_Patch_ADD}}, []string{"IST0153"}},
		{"remove http route", []efPatch{{applyTo: networking.EnvoyFilter_HTTP_ROUTE, op: networking.EnvoyFilter_Patch_REMOVE}}, []string{"IST0154"}},
		{"remove listener", []efPatch{{applyTo: networking.EnvoyFilter_LISTENER, op: networking.EnvoyFilter_Patch_REMOVE}}, []string{"IST0151"}},
		{"replace virtual host", []efPatch{{applyTo: networking.EnvoyFilter_VIRTUAL_HOST, op: networking.EnvoyFilter_Patch_REPLACE}}, []string{"IST0152"}},
		{"replace network filter", []efPatch{{applyTo: networkFilter, op: networking.EnvoyFilter_Patch_REPLACE}}, []string{"IST0151"}},
		{"stops at a missing patch", []efPatch{
			{applyTo: networking.EnvoyFilter_HTTP_ROUTE, op: networking.EnvoyFilter_Patch_ADD},
			{noPatch: true},
			{applyTo: networking.EnvoyFilter_HTTP_ROUTE, op: networking.EnvoyFilter_Patch_ADD},
		}, []string{"IST0153"}},
	} {
		var got []string
		for _, m := range envoyFilterPatches([]Object{envoyFilter(t, "ns", "ef", 0, tc.patches...)}) {
			got = append(got, m.Code)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Other kinds, and an EnvoyFilter without a spec, are passed over.
	if got := envoyFilterPatches([]Object{{Kind: "Gateway", Spec: &networking.Gateway{}}, {Kind: "EnvoyFilter", Spec: (*networking.EnvoyFilter)(nil)}}); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}
