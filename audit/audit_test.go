package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation/crossref"
	"sigs.k8s.io/yaml"
)

func object(t testing.TB, uid, doc string) Object {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
		t.Fatal(err)
	}
	md := raw["metadata"].(map[string]any)
	md["uid"] = uid
	return Object{Ref: ObjectRef{APIVersion: raw["apiVersion"].(string), Kind: raw["kind"].(string),
		Namespace: md["namespace"].(string), Name: md["name"].(string), UID: uid}, Raw: raw}
}

const reviewsDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
`

const reviewsVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 50}
`

// weight -15 fails validation (Istio's validateHTTPRouteDestinations: weight < 0).
// Its destination host exists nowhere: an invalid object is reported as
// IST0106 only, left out of the cross-resource analysis (analysis.Input.Invalid),
// so no IST0101 comes with it.
const negativeWeightVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: other}
spec:
  hosts: [bad]
  http:
  - route: [{destination: {host: missing.shop.svc.cluster.local}, weight: -15}]
`

// The second rule's only match repeats the first's: Istio's IST0130 (rule not
// used, a Warning, kept by the audit); it routes through the reviews
// DestinationRule, so the organisation rule fires too.
const duplicateMatchVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dup, namespace: shop}
spec:
  hosts: [dup]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: reviews}}]
`

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte(`package meshguard.validation
deny contains msg if {
	input.kind == "VirtualService"
	input.namespaceLabels.environment == "production"
	some r in input.referenced
	r.kind == "DestinationRule"
	not r.spec.trafficPolicy.tls
	msg := sprintf("DestinationRule %s/%s sets no TLS", [r.metadata.namespace, r.metadata.name])
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := orgrules.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{
		Objects:  []Object{object(t, "u-dr", reviewsDR), object(t, "u-vs", reviewsVS), object(t, "u-bad", negativeWeightVS), object(t, "u-dup", duplicateMatchVS)},
		Services: []crossref.Key{{Namespace: "shop", Name: "reviews"}},
		// "both" has both injection labels: `meshguard analyze` warns
		// (IST0123), the audit, which reports on mesh objects, does not.
		Namespaces: map[string]map[string]string{"shop": {"environment": "production"}, "other": {},
			"both": {"istio-injection": "enabled", "istio.io/rev": "default"}},
	}
	got, err := Check(t.Context(), snap, rules)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, v := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %s", v.Level, v.Object.UID, v.Code, v.Text()))
	}
	// In `meshguard analyze`'s order, istioctl's: level, code, object
	// (TestCheckOrdersAsAnalyze).
	want := []string{
		`Error u-vs IST0101 [IST0101] spec.http[0].route[1].destination.subset: Referenced host+subset in destinationrule not found: "reviews+v2"`,
		`Error u-bad IST0106 [IST0106] Schema validation error: spec.http[0].route[0].weight: Invalid value: -15: weight -15 < 0`,
		`Error u-dup MG0001 [MG0001] DestinationRule shop/reviews sets no TLS`,
		`Error u-vs MG0001 [MG0001] DestinationRule shop/reviews sets no TLS`,
		`Warning u-dup IST0130 [IST0130] spec.http[1]: VirtualService rule #1 not used (all matches used by prior rules).`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Without organisation rules the MG0001 finding goes.
	got, err = Check(t.Context(), snap, nil)
	if err != nil || len(got) != 3 || got[0].Code != "IST0101" || got[1].Code != "IST0106" || got[2].Code != "IST0130" {
		t.Errorf("without rules: %v, %v", got, err)
	}
}

func TestNewEventsDeduplicates(t *testing.T) {
	a := Violation{Object: ObjectRef{Kind: "VirtualService", Namespace: "shop", Name: "reviews", UID: "1"}, Code: "IST0101", Message: "a"}
	b := a
	b.Message = "b"
	recreated := a
	recreated.Object.UID = "2"
	emit, seen := NewEvents(nil, []Violation{a, b}, 1)
	if len(emit) != 1 || emit[0] != a {
		t.Fatalf("first run, max 1: %v", emit)
	}
	emit, seen = NewEvents(seen, []Violation{a, b}, 10)
	if len(emit) != 1 || emit[0] != b {
		t.Fatalf("second run: want only b (a was emitted), got %v", emit)
	}
	emit, seen = NewEvents(seen, []Violation{a, b}, 10)
	if len(emit) != 0 {
		t.Fatalf("standing violations re-emitted: %v", emit)
	}
	emit, seen = NewEvents(seen, []Violation{b}, 10) // a fixed
	if len(emit) != 0 {
		t.Fatalf("got %v", emit)
	}
	emit, _ = NewEvents(seen, []Violation{a, b, recreated}, 10) // a back, and on a recreated object
	if len(emit) != 2 || emit[0] != a || emit[1] != recreated {
		t.Fatalf("a violation that came back, or a recreated object, is new: %v", emit)
	}
}

func TestReportsAndCounts(t *testing.T) {
	vs := []Violation{
		{Object: ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: "reviews", UID: "1"}, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Field: "spec.x", Message: "m1"},
		{Object: ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: "other", UID: "2"}, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Message: "m2"},
		{Object: ObjectRef{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication", Namespace: "prod", Name: "default", UID: "3"}, Code: "MG0001", Rule: "OrganisationRule", Level: analysis.Warning, Message: "m3"},
	}
	if c := Counts(vs); c[MetricKey{"VirtualService", "shop", "IST0101"}] != 2 || c[MetricKey{"PeerAuthentication", "prod", "MG0001"}] != 1 || len(c) != 2 {
		t.Errorf("counts: %v", c)
	}
	now := time.Unix(1000, 0)
	reports := Reports(vs, now)
	if len(reports) != 2 {
		t.Fatalf("want a report per namespace, got %d", len(reports))
	}
	shop := reports["shop"]
	if shop.GetAPIVersion() != "wgpolicyk8s.io/v1alpha2" || shop.GetKind() != "PolicyReport" || shop.GetName() != ReportName || shop.GetLabels()[ManagedByLabel] != "meshguard" {
		t.Errorf("report identity: %v", shop.Object)
	}
	if s := shop.Object["summary"].(map[string]any); s["fail"] != int64(2) || s["warn"] != int64(0) {
		t.Errorf("summary: %v", s)
	}
	// In `meshguard analyze`'s order: shop/other before shop/reviews (by
	// name), whatever the order given.
	results := shop.Object["results"].([]any)
	if other := results[0].(map[string]any)["resources"].([]any)[0].(map[string]any); other["uid"] != "2" {
		t.Errorf("first result: %v, want the VirtualService other", other)
	}
	r0 := results[1].(map[string]any)
	res := r0["resources"].([]any)[0].(map[string]any)
	if r0["policy"] != "IST0101" || r0["result"] != "fail" || r0["severity"] != "high" || r0["source"] != "meshguard" || res["uid"] != "1" || res["kind"] != "VirtualService" ||
		r0["properties"].(map[string]any)["field"] != "spec.x" {
		t.Errorf("result: %v", r0)
	}
	if r := reports["prod"].Object["results"].([]any)[0].(map[string]any); r["result"] != "warn" || r["severity"] != "medium" || r["category"] != "Organisation rule" {
		t.Errorf("warning result: %v", r)
	}
	// A later run with the same violations is the same report (timestamps aside); another message is not.
	if later := Reports(vs, now.Add(time.Hour)); !SameResults(shop, later["shop"]) {
		t.Error("same violations an hour later differ")
	}
	changed := append([]Violation(nil), vs...)
	changed[0].Message = "other"
	if SameResults(shop, Reports(changed, now)["shop"]) {
		t.Error("a changed message is the same report")
	}
}

// Check rests after every restEvery objects judged, so that the adapter's
// DutyCycle can pace a run; a run of 2*restEvery+10 objects rests twice.
func TestCheckRestsBetweenBatches(t *testing.T) {
	var snap Snapshot
	for i := range 2*restEvery + 10 {
		snap.Objects = append(snap.Objects, object(t, fmt.Sprint("u", i), reviewsDR))
	}
	rests := 0
	snap.Rest = func(context.Context) { rests++ }
	if _, err := Check(t.Context(), snap, nil); err != nil {
		t.Fatal(err)
	}
	if rests != 2 {
		t.Errorf("Check rested %d times over %d objects, want 2", rests, len(snap.Objects))
	}
}

// The gateway port analyzer runs in the audit too: a Gateway server port
// that no Service of the selected Pods targets is IST0162, one that is
// targeted is not, and a Gateway selecting no Pod is IST0101, as
// `meshguard analyze --kubeconfig` reports them.
func TestCheckGatewayPorts(t *testing.T) {
	gw := func(uid, name, selector string, port int) Object {
		return object(t, uid, fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: %s, namespace: shop}
spec:
  selector: {istio: %s}
  servers:
  - port: {number: %d, name: http, protocol: HTTP}
    hosts: ["*"]
`, name, selector, port))
	}
	var kube []map[string]any
	for _, doc := range []string{`apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
`, `apiVersion: v1
kind: Pod
metadata: {name: ingress-1, namespace: istio-system, labels: {istio: ingressgateway}}
`} {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		kube = append(kube, obj)
	}
	snap := Snapshot{
		Objects: []Object{gw("u-good", "good", "ingressgateway", 8080), gw("u-bad", "bad", "ingressgateway", 9090),
			gw("u-none", "none", "egressgateway", 8080)},
		Kube: kube,
	}
	got, err := Check(t.Context(), snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, v := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s", v.Object.UID, v.Code, v.Field))
	}
	want := []string{"u-none IST0101 spec.selector", "u-bad IST0162 spec.servers[0].port.number"} // istioctl's order: code first
	if !slices.Equal(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
}

// A rule that cannot be evaluated on an object (here a builtin error) is
// reported as the PolicyReport result "error" and counted in summary.error
// (wg-policy: "policies that could not be evaluated"), not as a failure of
// the object; it stays an Error (fail closed) for Events and metrics.
func TestReportsRuleEvaluationError(t *testing.T) {
	rules, err := orgrules.Compile(t.Context(), []orgrules.Module{{Name: "r.rego",
		Source: "package meshguard.validation\ndeny contains \"x\" if to_number(input.object.metadata.name) > 0\n"}})
	if err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{Objects: []Object{object(t, "u-dr", reviewsDR)}, Services: []crossref.Key{{Namespace: "shop", Name: "reviews"}}}
	vs, err := Check(t.Context(), snap, rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Code != analysis.OrgRule || vs[0].Level != analysis.Error {
		t.Fatalf("violations %+v: want the rule's error as MG0001 Error", vs)
	}
	r := Reports(vs, time.Unix(1000, 0))["shop"]
	s := r.Object["summary"].(map[string]any)
	res := r.Object["results"].([]any)[0].(map[string]any)
	if res["result"] != "error" || s["error"] != int64(1) || s["fail"] != int64(0) {
		t.Errorf("result %v, summary %v: want result error counted in summary.error", res["result"], s)
	}
}

// A rule module may give the same text as a deny and as a warn: the webhook
// then denies (and warns); the audit must keep the Error of every object,
// not fold it into the Warning of the same text.
func TestCheckKeepsDenyAndWarnOfSameText(t *testing.T) {
	rules, err := orgrules.Compile(t.Context(), []orgrules.Module{{Name: "r.rego",
		Source: "package meshguard.validation\ndeny contains \"same\" if true\nwarn contains \"same\" if true\n"}})
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	for i := range 40 {
		snap.Objects = append(snap.Objects, object(t, fmt.Sprintf("u-%d", i), strings.Replace(reviewsDR, "name: reviews,", fmt.Sprintf("name: dr-%d,", i), 1)))
	}
	vs, err := Check(t.Context(), snap, rules)
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string][]analysis.Level{}
	for _, v := range vs {
		levels[v.Object.Name] = append(levels[v.Object.Name], v.Level)
	}
	for _, o := range snap.Objects {
		if l := levels[o.Ref.Name]; !slices.Contains(l, analysis.Error) || !slices.Contains(l, analysis.Warning) {
			t.Errorf("%s: levels %v, want the deny (Error) and the warn (Warning)", o.Ref.Name, l)
		}
	}
}
