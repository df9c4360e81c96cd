package validation

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/internal/manifest"
)

// TestUnreachableRulesIstioAnalyzerCases runs Istio's own analyzer test data
// for duplicate and overlapping matches (testdata/istio-unreachable, see its
// NOTICE) and expects exactly the messages Istio's test "dupmatches"
// (pkg/config/analysis/analyzers/analyzers_test.go) expects: code and object,
// as a multiset, per VirtualService.
func TestUnreachableRulesIstioAnalyzerCases(t *testing.T) {
	const unreachable, ineffective = string(CodeVirtualServiceUnreachableRule), string(CodeVirtualServiceIneffectiveMatch)
	want := map[string][]string{
		"default/duplicate-match":                           {unreachable, ineffective},
		"foo/sample-foo-cluster01":                          {unreachable},
		"default/almost-duplicate-match":                    {ineffective},
		"default/duplicate-tcp-match":                       {unreachable, ineffective},
		"default/duplicate-empty-tcp":                       {unreachable},
		"default/almost-duplicate-tcp-match":                {ineffective},
		"none/tls-routing":                                  {unreachable, ineffective},
		"none/tls-routing-almostmatch":                      {ineffective},
		"default/non-method-get":                            {ineffective},
		"default/overlapping-in-single-match":               {ineffective},
		"default/overlapping-in-two-matches":                {ineffective},
		"default/overlapping-mathes-with-different-methods": {ineffective},
		"default/uri-with-prefix-exact":                     nil,
	}
	got := map[string][]string{}
	for _, file := range []string{"virtualservice_dupmatches.yaml", "virtualservice_overlappingmatches.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "istio-unreachable", file))
		if err != nil {
			t.Fatal(err)
		}
		docs, err := manifest.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			if d.Object == nil {
				continue
			}
			res := ValidateObject(context.Background(), d.Object, Options{DefaultNamespace: "default"})
			if !res.Valid() {
				t.Errorf("%s#%d: Istio accepts it, meshguard rejects it: %v", file, d.Index, res.ErrorLines())
			}
			key := res.Namespace + "/" + res.Name
			if res.Namespace == "" {
				key = "default/" + res.Name
			}
			got[key] = []string{}
			for _, w := range res.Warnings {
				if w.Code != "" {
					got[key] = append(got[key], string(w.Code))
				}
			}
			slices.Sort(got[key])
			if len(got[key]) == 0 && len(res.Warnings) > 0 {
				t.Errorf("%s: warnings without an analyzer code: %v", key, res.WarningLines())
			}
		}
	}
	for vs, codes := range want {
		g, ok := got[vs]
		if !ok {
			t.Errorf("%s: not in the test data", vs)
			continue
		}
		if !slices.Equal(g, codes) && !(len(g) == 0 && len(codes) == 0) {
			t.Errorf("%s: codes %v, Istio's analyzer test expects %v", vs, g, codes)
		}
	}
	if len(got) != len(want) {
		t.Errorf("test data has %d VirtualServices, expectations for %d", len(got), len(want))
	}
}

// TestUnreachableRuleMessages checks the text and arguments of each warning
// against Istio's: pkg/config/validation/validation.go ValidateVirtualService
// (warnUnused, warnIneffective, routeName, requestName) and Istio's
// validation_test.go TestValidateVirtualService cases "non-method-get"
// (warning) and "uri-with-prefix-exact" (no warning). The "slash" case is the
// admission warning Istio gives for it as quoted in a user's report:
// `virtualService rule "slash-api" match #0 of prefix /api is not used
// (duplicate/overlapping match in rule #0 of prefix / on "slash")`.
func TestUnreachableRuleMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []Problem // Field, Message, Code, Args
	}{
		{name: "slash before slash-api (Istio's admission warning)", doc: `
  hosts: [example.com]
  gateways: [gw]
  http:
  - name: slash
    match: [{uri: {prefix: /}}]
    route: [{destination: {host: a}}]
  - name: slash-api
    match: [{uri: {prefix: /api}}]
    route: [{destination: {host: b}}]`, want: []Problem{{Field: "spec.http[1].match[0]",
			Message: `virtualService rule "slash-api" match #0 of prefix /api is not used (duplicate/overlapping match in rule #0 of prefix / on "slash")`,
			Code:    CodeVirtualServiceIneffectiveMatch, Args: []string{`"slash-api"`, "#0 of prefix /api", `#0 of prefix / on "slash"`}}}},
		{name: "non-method-get (Istio: warning)", doc: `
  hosts: [foo.bar]
  http:
  - match:
    - uri: {prefix: /api/v1/product}
    - uri: {prefix: /api/v1/products}
      method: {exact: GET}
    route: [{destination: {host: foo.baz}}]`, want: []Problem{{Field: "spec.http[0].match[1]",
			Message: "virtualService rule #0 match #1 of prefix /api/v1/products is not used (duplicate/overlapping match in rule #0 of prefix /api/v1/product on #0)",
			Code:    CodeVirtualServiceIneffectiveMatch, Args: []string{"#0", "#1 of prefix /api/v1/products", "#0 of prefix /api/v1/product on #0"}}}},
		{name: "uri-with-prefix-exact (Istio: no warning)", doc: `
  hosts: [foo.bar]
  http:
  - match:
    - uri: {prefix: /}
    - uri: {exact: /}
      method: {exact: GET}
    route: [{destination: {host: foo.baz}}]`},
		{name: "named duplicate and unreachable rule", doc: `
  hosts: [foo.bar]
  http:
  - name: first
    match: [{name: m, uri: {exact: /a}}]
    route: [{destination: {host: a}}]
  - match: [{name: again, uri: {exact: /a}}]
    route: [{destination: {host: b}}]`, want: []Problem{
			{Field: "spec.http[1].match[0]", Message: `virtualService rule #1 match "again" is not used (duplicate/overlapping match in rule "first")`,
				Code: CodeVirtualServiceIneffectiveMatch, Args: []string{"#1", `"again"`, `"first"`}},
			{Field: "spec.http[1]", Message: "virtualService rule #1 not used (all matches used by prior rules)",
				Code: CodeVirtualServiceUnreachableRule, Args: []string{"#1", "all matches used by prior rules"}}}},
		{name: "routes after a route without matches", doc: `
  hosts: [foo.bar]
  http:
  - route: [{destination: {host: a}}]
  - match: [{uri: {exact: /a}}, {uri: {exact: /b}}]
    route: [{destination: {host: b}}]
  - route: [{destination: {host: c}}]`, want: []Problem{
			{Field: "spec.http[1].match[0]", Message: "virtualService rule #1 not used (route without matches defined before)",
				Code: CodeVirtualServiceUnreachableRule, Args: []string{"#1", "route without matches defined before"}},
			{Field: "spec.http[1].match[1]", Message: "virtualService rule #1 not used (route without matches defined before)",
				Code: CodeVirtualServiceUnreachableRule, Args: []string{"#1", "route without matches defined before"}},
			{Field: "spec.http[2]", Message: "virtualService rule #2 not used (only the last rule can have no matches)",
				Code: CodeVirtualServiceUnreachableRule, Args: []string{"#2", "only the last rule can have no matches"}}}},
		{name: "tcp duplicate port", doc: `
  hosts: [foo.bar]
  tcp:
  - match: [{port: 31400}]
    route: [{destination: {host: a}}]
  - match: [{port: 31400}, {port: 31401}]
    route: [{destination: {host: b}}]`, want: []Problem{{Field: "spec.tcp[1].match[0]",
			Message: "virtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0)",
			Code:    CodeVirtualServiceIneffectiveMatch, Args: []string{"#1", "#0", "#0"}}}},
		{name: "tls routes compare whole matches", doc: `
  hosts: [foo.bar]
  tls:
  - match: [{port: 443, sniHosts: [foo.bar]}]
    route: [{destination: {host: a}}]
  - match: [{port: 443, sniHosts: [foo.bar]}]
    route: [{destination: {host: b}}]
  - match: [{port: 8443, sniHosts: [foo.bar]}]
    route: [{destination: {host: b}}]`, want: []Problem{
			{Field: "spec.tls[1].match[0]", Message: "virtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0)",
				Code: CodeVirtualServiceIneffectiveMatch, Args: []string{"#1", "#0", "#0"}},
			{Field: "spec.tls[1]", Message: "virtualService rule #1 not used (all matches used by prior rules)",
				Code: CodeVirtualServiceUnreachableRule, Args: []string{"#1", "all matches used by prior rules"}}}},
		{name: "different header values are not covered", doc: `
  hosts: [foo.bar]
  http:
  - match: [{uri: {prefix: /api}, headers: {x: {exact: "1"}}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /api/v1}, headers: {x: {exact: "2"}}}]
    route: [{destination: {host: b}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := validateNetYAML(t, vsHeader+tc.doc)
			if !res.Valid() {
				t.Fatalf("errors: %v", res.ErrorLines())
			}
			var got []Problem
			for _, w := range res.Warnings {
				if w.Code != "" {
					got = append(got, w)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d coded warnings, want %d:\n%s", len(got), len(tc.want), strings.Join(res.WarningLines(), "\n"))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Field != w.Field || g.Message != w.Message || g.Code != w.Code || !slices.Equal(g.Args, w.Args) {
					t.Errorf("warning %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// TestPrefixOverlapBounded: the prefix-overlap check of one VirtualService
// stops after maxPrefixComparisons (here 2,600 × 2,600 candidate pairs) with
// a warning saying so, instead of running unbounded.
func TestPrefixOverlapBounded(t *testing.T) {
	var prefixes []prefixRoute
	for i := 0; i < 2600; i++ {
		prefixes = append(prefixes, prefixRoute{prefix: "/a", method: overlapExact + strconv.Itoa(i)})
	}
	for i := 0; i < 2600; i++ {
		prefixes = append(prefixes, prefixRoute{prefix: "/ab", method: overlapExact + "x" + strconv.Itoa(i)})
	}
	var f Findings
	pairs := coveredPrefixes(prefixes, field.NewPath("spec", "http"), &f)
	if len(pairs) != 0 || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].Detail, "prefix-overlap check stopped after 5000000 comparisons") {
		t.Fatalf("pairs %d, warnings %v", len(pairs), f.Warnings)
	}
}
