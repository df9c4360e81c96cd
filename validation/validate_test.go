package validation

import (
	"context"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestEveryCRDKindIsKnown: every kind in the embedded CRDs decodes into an
// istio.io/api type, and every served version has a compiled schema.
func TestEveryCRDKindIsKnown(t *testing.T) {
	set, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	if len(set.byGVK) < 30 {
		t.Fatalf("only %d served versions compiled", len(set.byGVK))
	}
	for gk, versions := range set.versions {
		if _, ok := kinds[gk]; !ok {
			t.Errorf("CRD kind %s has no istio.io/api type", gk)
		}
		if len(versions) == 0 {
			t.Errorf("%s: no served versions", gk)
		}
	}
	var noRules []string
	for gk := range kinds {
		if len(set.versions[gk]) == 0 {
			t.Errorf("%s has a type but no CRD", gk)
		}
		if validatorFor(gk.Kind) == nil {
			noRules = append(noRules, gk.Kind)
		}
	}
	// Istio's webhook runs a kind-specific validation function for every
	// Istio kind (pkg/config/validation); a kind that only gets the CRD's
	// schema here would admit what Istio rejects.
	if len(noRules) > 0 {
		t.Errorf("kinds with CRD rules only (no webhook rules registered): %v", noRules)
	}
}

func TestValidateObjectEnvelope(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		obj     map[string]any
		skipped bool
		errs    []string
	}{
		{"missing apiVersion and kind", map[string]any{"metadata": map[string]any{"name": "x"}}, false, []string{"apiVersion: Required value", "kind: Required value"}},
		{"non-Istio object skipped", map[string]any{"apiVersion": "v1", "kind": "Service"}, true, nil},
		{"unknown Istio kind", map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Frobnicator", "metadata": map[string]any{"name": "x"}}, false, []string{"unrecognized type Frobnicator"}},
		{"unserved version", map[string]any{"apiVersion": "networking.istio.io/v9", "kind": "VirtualService", "metadata": map[string]any{"name": "x"}}, false, []string{"version v9 of VirtualService is not served; served versions:"}},
		{"metadata checks", map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": map[string]any{"name": "Bad_Name",
			"annotations": map[string]any{"istio.io/dry-run": "true", "internal.istio.io/webhook-always-reject": "", "internal.istio.io/parents": "x"}},
			"spec": map[string]any{"egress": []any{map[string]any{"hosts": []any{"./*"}}}}}, false,
			[]string{"metadata.name", "has unsupported annotation istio.io/dry-run", `"internal.istio.io/webhook-always-reject" annotation found, rejecting`, "may not be set by users"}},
		{"bad metadata type", map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": "nope"}, false, []string{"metadata"}},
		// Said "Required value: apiVersion must be set" of a number.
		{"apiVersion and kind not strings", map[string]any{"apiVersion": int64(1), "kind": true, "metadata": map[string]any{"name": "x"}}, false,
			[]string{"apiVersion: Invalid value: 1: must be a string", "kind: Invalid value: true: must be a string"}},
		// An Istio group misspelt in case or without its version was
		// skipped as another group's object: exit 0 offline, and a DENY
		// policy left unenforced by --policy-dir with only a warning.
		{"Istio group in other case", map[string]any{"apiVersion": "Security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": map[string]any{"name": "x"}}, false,
			[]string{`apiVersion: Invalid value: "Security.istio.io/v1": API groups are case-sensitive: did you mean security.istio.io/v1?`}},
		{"Istio group without version", map[string]any{"apiVersion": "security.istio.io", "kind": "AuthorizationPolicy", "metadata": map[string]any{"name": "x"}}, false,
			[]string{`apiVersion: Invalid value: "security.istio.io": an API group without a version (apiVersion is group/version)`}},
		// A mistyped metadata field was ignored: `namspace: prod` validated
		// (and loaded) the object as default/x. The API server's strict field
		// validation reports it (apiextensions-apiserver schema/objectmeta
		// GetObjectMetaWithOptions, ReturnUnknownFieldPaths).
		{"unknown metadata fields", map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
			"metadata": map[string]any{"name": "x", "namspace": "prod", "ownerReferences": []any{map[string]any{"kind": "A", "name": "a", "uid": "u", "apiVersion": "v1", "contrller": true}}},
			"spec":     map[string]any{"egress": []any{map[string]any{"hosts": []any{"./*"}}}}}, false,
			[]string{`metadata.namspace: unknown field "metadata.namspace"`, `metadata.ownerReferences[0].contrller: unknown field "metadata.ownerReferences[0].contrller"`}},
	}
	for _, c := range cases {
		res := ValidateObject(ctx, c.obj, Options{DefaultNamespace: "default"})
		if res.Skipped != c.skipped {
			t.Errorf("%s: skipped=%v", c.name, res.Skipped)
		}
		got := strings.Join(res.ErrorLines(), "\n")
		if len(c.errs) == 0 && got != "" {
			t.Errorf("%s: unexpected errors:\n%s", c.name, got)
		}
		for _, w := range c.errs {
			if !strings.Contains(got, w) {
				t.Errorf("%s: want %q in:\n%s", c.name, w, got)
			}
		}
	}
	_ = schema.GroupKind{}
}

func TestResultRendering(t *testing.T) {
	r := Result{Kind: "VirtualService", Namespace: "default", Name: "reviews",
		Errors:   []Problem{{Field: "spec.http[1].route[0].weight", Message: "Invalid value: -15: weight -15 < 0"}, {Message: "whole object"}},
		Warnings: []Problem{{Field: "spec.hosts[0]", Message: "hmm"}}}
	want := []string{"VirtualService default/reviews: spec.http[1].route[0].weight: Invalid value: -15: weight -15 < 0", "VirtualService default/reviews: whole object"}
	if got := r.ErrorLines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ErrorLines = %q", got)
	}
	if got := r.WarningLines(); len(got) != 1 || got[0] != "VirtualService default/reviews: spec.hosts[0]: hmm" {
		t.Errorf("WarningLines = %q", got)
	}
	if r.Valid() || (Result{}).Object() != "object <unnamed>" {
		t.Error("Valid/Object wrong")
	}
}

func TestAPIServerAdmittedIsVersionTolerant(t *testing.T) {
	// futureKnob stands for a field of a newer Istio that meshguard does not know
	// (presence is covered by the schema overlay and is known).
	ctx := context.Background()
	obj := func() map[string]any {
		return map[string]any{"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication", "metadata": map[string]any{"name": "ra"},
			"spec": map[string]any{"jwtRules": []any{map[string]any{"issuer": "example", "futureKnob": "REQUIRED"}}}}
	}
	offline := ValidateObject(ctx, obj(), Options{DefaultNamespace: "default"})
	if offline.Valid() || !strings.Contains(strings.Join(offline.ErrorLines(), "\n"), `unknown field "spec.jwtRules[0].futureKnob"`) {
		t.Errorf("offline: unknown spec field must be an error: %v", offline.ErrorLines())
	}
	admitted := ValidateObject(ctx, obj(), Options{DefaultNamespace: "default", APIServerAdmitted: true})
	if !admitted.Valid() || !strings.Contains(strings.Join(admitted.WarningLines(), "\n"), `field "spec.jwtRules[0].futureKnob" is not in meshguard's Istio API version`) {
		t.Errorf("webhook: unknown spec field must be a warning: errors=%v warnings=%v", admitted.ErrorLines(), admitted.WarningLines())
	}
	if strings.Contains(strings.Join(admitted.WarningLines(), "\n"), "ext_authz") {
		t.Errorf("RequestAuthentication is not enforced by ext_authz: %v", admitted.WarningLines())
	}
	// An AuthorizationPolicy with such a field is admitted, and the warning
	// says what ext_authz will do with it (policy.DecodeStored).
	ap := map[string]any{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": map[string]any{"name": "ap"},
		"spec": map[string]any{"rules": []any{map[string]any{"to": []any{map[string]any{"operation": map[string]any{"paths": []any{"/a"}, "futureField": []any{"x"}}}}}}}}
	apRes := ValidateObject(ctx, ap, Options{DefaultNamespace: "default", APIServerAdmitted: true})
	if !apRes.Valid() || !strings.Contains(strings.Join(apRes.WarningLines(), "\n"), "ext_authz denies every workload this policy selects") {
		t.Errorf("AuthorizationPolicy with an unknown field: errors=%v warnings=%v", apRes.ErrorLines(), apRes.WarningLines())
	}
	newer := map[string]any{"apiVersion": "networking.istio.io/v2", "kind": "VirtualService", "metadata": map[string]any{"name": "vs"},
		"spec": map[string]any{"hosts": []any{"a"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "a"}, "weight": int64(-1)}}}}}}
	res := ValidateObject(ctx, newer, Options{APIServerAdmitted: true})
	if !strings.Contains(strings.Join(res.WarningLines(), "\n"), "version v2 of VirtualService is newer") || !strings.Contains(strings.Join(res.ErrorLines(), "\n"), "weight -1 < 0") {
		t.Errorf("newer version must be validated with known rules: errors=%v warnings=%v", res.ErrorLines(), res.WarningLines())
	}
	if res := ValidateObject(ctx, newer, Options{}); !strings.Contains(strings.Join(res.ErrorLines(), "\n"), "not served") {
		t.Errorf("offline: unknown version must be an error: %v", res.ErrorLines())
	}
}

// TestSimpleMetaAgreesWithConverter: the reflection-free metadata decode must
// give what runtime.DefaultUnstructuredConverter gives, or decline.
func TestSimpleMetaAgreesWithConverter(t *testing.T) {
	cases := []map[string]any{
		{"name": "a", "namespace": "b"},
		{"name": "a", "labels": map[string]any{"app": "x", "": "y"}, "annotations": map[string]any{"istio.io/dry-run": "true"}},
		{"generateName": "a-", "uid": "123", "resourceVersion": "7", "labels": map[string]any{}},
		{},
		{"name": 5},
		{"name": "a", "labels": map[string]any{"a": 1}},
		{"name": "a", "labels": nil},
		{"name": "a", "creationTimestamp": nil},
		{"name": "a", "ownerReferences": []any{}},
	}
	for i, raw := range cases {
		var fast metav1.ObjectMeta
		ok := simpleMeta(raw, &fast)
		var slow metav1.ObjectMeta
		err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &slow)
		if !ok {
			continue
		}
		if err != nil {
			t.Errorf("case %d: simpleMeta accepted what the converter rejects: %v", i, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("case %d: simpleMeta %+v, converter %+v", i, fast, slow)
		}
	}
	var m metav1.ObjectMeta
	if !simpleMeta(cases[1], &m) || m.Labels["app"] != "x" || m.Annotations["istio.io/dry-run"] != "true" {
		t.Errorf("common metadata not taken by the fast path: ok=%v %+v", simpleMeta(cases[1], &m), m)
	}
	if simpleMeta(cases[4], &m) || simpleMeta(cases[5], &m) || simpleMeta(cases[7], &m) {
		t.Error("simpleMeta must decline wrong types and unmodelled fields")
	}
}

// validatorFor returns the rules of the kind named kind (in any group), or nil.
func validatorFor(kind string) kindValidator {
	for gk, e := range kinds {
		if gk.Kind == kind {
			return e.validate
		}
	}
	return nil
}

// A CRD rule on a map reports at the map, the webhook rule at the entry:
// one mistake, one line (the CRD's), as for errors at the same path
// (docs/compatibility.md "Same field flagged by the CRD rule and the webhook
// rule"). A different detail on the entry is kept.
func TestOneLinePerMistakeOnMapEntries(t *testing.T) {
	const pa = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a, namespace: ns}
spec:
  selector: {matchLabels: {app: a}}
  portLevelMtls:
    "0": {mode: STRICT}
`
	res, err := ValidateJSON(context.Background(), []byte(pa), Options{DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.ErrorLines(); len(got) != 1 || !strings.Contains(got[0], "spec.portLevelMtls: ") || !strings.Contains(got[0], "port must be between 1-65535") {
		t.Errorf("errors %q, want the CRD's one line at spec.portLevelMtls", got)
	}
	for _, tc := range []struct {
		field string
		ok    bool
		want  string
	}{{"spec.m[0]", true, "spec.m"}, {`spec.m["k"]`, true, "spec.m"}, {"spec.l[0][1]", true, "spec.l[0]"}, {"spec.m", false, ""}, {"[0]", false, ""}} {
		if got, ok := entryParent(tc.field); got != tc.want || ok != tc.ok {
			t.Errorf("entryParent(%q) = %q, %v; want %q, %v", tc.field, got, ok, tc.want, tc.ok)
		}
	}
}

// CapProblemsCounting keeps at most max problems and counts the rest, built
// or not ("and 1,234 more errors"); within max, all built, nothing is added.
func TestCapProblemsCounting(t *testing.T) {
	ps := func(n int) []Problem {
		out := make([]Problem, n)
		for i := range out {
			out[i] = Problem{Message: "p"}
		}
		return out
	}
	for _, tc := range []struct {
		built, more, max int
		wantLen          int
		wantLast         string
	}{
		{3, 0, 5, 3, "p"},
		{5, 0, 5, 5, "p"},
		{6, 0, 5, 6, "and 1 more errors"},
		{3, 2, 5, 4, "and 2 more errors"},
		{5, 1234, 5, 6, "and 1,234 more errors"},
		{100, 9901, 100, 101, "and 9,901 more errors"},
		{7, 3, 5, 6, "and 5 more errors"},
	} {
		got := CapProblemsCounting(ps(tc.built), tc.more, tc.max, "errors")
		if len(got) != tc.wantLen || got[len(got)-1].Message != tc.wantLast {
			t.Errorf("built %d, more %d, max %d: %d problems, last %q; want %d, %q", tc.built, tc.more, tc.max, len(got), got[len(got)-1].Message, tc.wantLen, tc.wantLast)
		}
	}
}
