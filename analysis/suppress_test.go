package analysis

import (
	"slices"
	"testing"

	"github.com/meshguard/meshguard/validation"
)

// TestSuppressAnnotation: Analyze drops the messages whose object's
// galley.istio.io/analyze-suppress names their code or "*", as Istio's
// pkg/config/analysis/local/istiod_analyze.go filterMessages: the value is
// split at "," and each element compared as written. Kubernetes objects
// (AddKubernetesObject) and accepted mesh objects are honoured; a rejected
// object's IST0106 is kept (meshguard's deliberate difference, suppress.go).
func TestSuppressAnnotation(t *testing.T) {
	const unknown = "foo.istio.io/x" // IST0108 on any object
	for _, tc := range []struct {
		name, suppress string
		want           []string
	}{
		{"none", "", []string{"IST0102 Namespace /n", "IST0108 Namespace /n", "IST0108 Pod n/p", "IST0101 VirtualService n/vs", "IST0106 VirtualService n/bad"}},
		{"one code", "IST0108", []string{"IST0102 Namespace /n", "IST0108 Pod n/p", "IST0101 VirtualService n/vs", "IST0106 VirtualService n/bad"}},
		{"list", "IST0102,IST0108,IST0101,IST0106", []string{"IST0108 Pod n/p", "IST0106 VirtualService n/bad"}},
		{"space not trimmed", "IST0102, IST0108", []string{"IST0108 Namespace /n", "IST0108 Pod n/p", "IST0101 VirtualService n/vs", "IST0106 VirtualService n/bad"}},
		{"star", "*", []string{"IST0108 Pod n/p", "IST0106 VirtualService n/bad"}},
		{"lower case", "ist0108", []string{"IST0102 Namespace /n", "IST0108 Namespace /n", "IST0108 Pod n/p", "IST0101 VirtualService n/vs", "IST0106 VirtualService n/bad"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			annotations := map[string]any{unknown: "1"}
			if tc.suppress != "" {
				annotations["galley.istio.io/analyze-suppress"] = tc.suppress
			}
			var in Input
			for _, obj := range []map[string]any{
				{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "n", "annotations": annotations}},
				// The Pod has no suppress annotation: its message stays.
				{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "n", "annotations": map[string]any{unknown: "1"}}},
			} {
				if _, err := in.AddKubernetesObject(obj, "n"); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range []string{"vs", "bad"} {
				weight := int64(100)
				if name == "bad" {
					weight = -1
				}
				obj := map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
					"metadata": map[string]any{"name": name, "namespace": "n", "annotations": annotations},
					"spec": map[string]any{"hosts": []any{name}, "http": []any{map[string]any{"route": []any{
						map[string]any{"destination": map[string]any{"host": "missing"}, "weight": weight}}}}}}
				res := validation.ValidateObject(t.Context(), obj, validation.Options{DefaultNamespace: "n"})
				o := Object{Kind: res.Kind, Namespace: res.Namespace, Name: res.Name, Spec: res.Spec(), Annotations: ObjectAnnotations(obj)}
				in.Invalid = append(in.Invalid, ValidationMessages(o, res.Errors, res.Warnings)...)
				if res.Valid() {
					in.Objects = append(in.Objects, o)
				}
			}
			got := istioMessages(Analyze(in), func(Message) bool { return true })
			if want := sorted(tc.want...); !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// TestObjectAnnotations: metadata.annotations as strings; none when absent
// or not a map of strings (validation reports that metadata).
func TestObjectAnnotations(t *testing.T) {
	md := func(a any) map[string]any { return map[string]any{"metadata": map[string]any{"annotations": a}} }
	if got := ObjectAnnotations(md(map[string]any{"a": "1"})); len(got) != 1 || got["a"] != "1" {
		t.Errorf("strings: %v", got)
	}
	for _, obj := range []map[string]any{{}, md(nil), md("x"), md(map[string]any{"a": 1}), {"metadata": "x"}} {
		if got := ObjectAnnotations(obj); got != nil {
			t.Errorf("%v: got %v, want none", obj, got)
		}
	}
}

// --suppress CODE=RESOURCE, as istioctl analyze -S: the resource is matched
// against "Kind namespace/name" ("Kind name" when cluster-scoped), Istio's
// Origin.FriendlyName (pkg/config/legacy/source/kube/origin.go at istio/istio
// 0a617ca985f9) that istiod_analyze.go filterMessages globs, with "*" as
// go-glob's wildcard. The "Kind name.namespace" form matches nothing.
func TestSuppressions(t *testing.T) {
	msgs := func() []Message {
		return []Message{
			{Code: "IST0101", Kind: "VirtualService", Namespace: "shop", Object: "reviews"},
			{Code: "IST0101", Kind: "VirtualService", Namespace: "shop", Object: "ratings"},
			{Code: "IST0101", Kind: "VirtualService", Namespace: "shipping", Object: "reviews"},
			{Code: "IST0102", Kind: "Namespace", Object: "shop"},
			{Code: "IST0134", Kind: "ServiceEntry", Namespace: "shop", Object: "db"},
		}
	}
	all := []string{"IST0101 VirtualService shop/reviews", "IST0101 VirtualService shop/ratings", "IST0101 VirtualService shipping/reviews", "IST0102 Namespace shop", "IST0134 ServiceEntry shop/db"}
	tests := []struct {
		flags []string
		want  []string // the messages left, "code kind namespace/object"
	}{
		{nil, all},
		{[]string{"IST0101=VirtualService shop/reviews"}, []string{"IST0101 VirtualService shop/ratings", "IST0101 VirtualService shipping/reviews", "IST0102 Namespace shop", "IST0134 ServiceEntry shop/db"}},
		{[]string{"IST0101=VirtualService shop/*"}, []string{"IST0101 VirtualService shipping/reviews", "IST0102 Namespace shop", "IST0134 ServiceEntry shop/db"}},
		{[]string{"IST0101=VirtualService */reviews"}, []string{"IST0101 VirtualService shop/ratings", "IST0102 Namespace shop", "IST0134 ServiceEntry shop/db"}},
		{[]string{"IST0101=*"}, []string{"IST0102 Namespace shop", "IST0134 ServiceEntry shop/db"}},
		{[]string{"IST0101=*p/rev*"}, []string{"IST0101 VirtualService shop/ratings", "IST0101 VirtualService shipping/reviews", "IST0102 Namespace shop", "IST0134 ServiceEntry shop/db"}},
		{[]string{"IST0102=Namespace shop", "IST0134=ServiceEntry shop/db"}, []string{"IST0101 VirtualService shop/reviews", "IST0101 VirtualService shop/ratings", "IST0101 VirtualService shipping/reviews"}},
		// A cluster-scoped object has no namespace in its name.
		{[]string{"IST0102=Namespace shop/shop"}, all},
		{[]string{"IST0102=Namespace /shop"}, all},
		// The "name.namespace" form of Istio's AnalysisSuppression comment
		// is not the name istioctl globs: it suppresses nothing.
		{[]string{"IST0101=VirtualService reviews.shop"}, all},
		{[]string{"IST0101=VirtualService *.shop"}, all},
		{[]string{"IST0134=ServiceEntry db.shop"}, all},
		{[]string{"IST0134=VirtualService *"}, all},
		{[]string{"IST0101=virtualservice shop/reviews"}, all},
	}
	for _, tt := range tests {
		in := Input{}
		for _, f := range tt.flags {
			s, known, err := ParseSuppression(f)
			if err != nil || !known {
				t.Fatalf("ParseSuppression(%q) = %v, %v", f, known, err)
			}
			in.Suppressions = append(in.Suppressions, s)
		}
		var got []string
		for _, m := range suppressAnnotated(&in, msgs()) {
			name := m.Object
			if m.Namespace != "" {
				name = m.Namespace + "/" + m.Object
			}
			got = append(got, m.Code+" "+m.Kind+" "+name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.flags, got, tt.want)
		}
	}
	for _, bad := range []string{"IST0101", "IST0101=a=b", ""} {
		if _, _, err := ParseSuppression(bad); err == nil {
			t.Errorf("ParseSuppression(%q): no error", bad)
		}
	}
	if _, known, err := ParseSuppression("IST9999=Pod y/x"); err != nil || known {
		t.Errorf("ParseSuppression of an unknown code: known %v, err %v", known, err)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, subj string
		want          bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "abc", true},
		{"abc", "abc", true}, {"abc", "abcd", false},
		{"a*", "a", true}, {"a*", "ba", false}, {"*a", "ba", true}, {"*a", "ab", false},
		{"a*c", "abc", true}, {"a*c", "ac", true}, {"a*c", "acb", false},
		{"a*b*c", "axbyc", true}, {"a*b*c", "axcyb", false}, {"ab*b", "ab", false}, {"a**b", "ab", true},
	} {
		if got := globMatch(tt.pattern, tt.subj); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.subj, got, tt.want)
		}
	}
}
