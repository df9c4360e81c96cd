package secpolicy

import (
	"regexp"
	"testing"
)

// Vectors from Istio's pkg/config/security security_test.go
// (TestCheckValidPathTemplate, TestIsValidLiteral) and from Envoy's
// uri_template matcher semantics; not derived from this package.
func TestCheckPathIstioVectors(t *testing.T) {
	cases := []struct {
		path  string
		valid bool
	}{
		{"/{*}/foo/{**}", true},
		{"/{**}/foo/bar", true}, // literal segments may follow {**}
		{"/foo/{**}/bar/baz", true},
		{"/{**}/foo/temp/{**}/bar", false}, // two {**}
		{"/{**}/{*}", false},
		{"/{*}/foo/?abc", false}, // invalid literal in a template
		{"/foo/{x}", false},
		{"/foo{*}", false},
		{"/a{b", false}, // braces outside a template
		{"/a/*/{*}", false},
		{"/plain*", true}, // not a template: generic syntax
	}
	for _, c := range cases {
		if err := CheckPath(c.path); (err == nil) != c.valid {
			t.Errorf("CheckPath(%q) = %v, want valid=%v", c.path, err, c.valid)
		}
	}
	literals := map[string]bool{
		"123abcABC": true, "._~-": true, "a=c": true, "-._~%20!$&'()+,;:@": true,
		"`~!@#$%^&()-_+;:,<.>'\"\\| ": false, "a*b": false,
	}
	for lit, valid := range literals {
		if err := CheckPath("/{*}/" + lit); (err == nil) != valid {
			t.Errorf("literal %q: %v, want valid=%v", lit, err, valid)
		}
	}
}

func TestPathTemplateMatchesLikeEnvoy(t *testing.T) {
	cases := []struct {
		tmpl, path string
		match      bool
	}{
		{"/foo/{*}", "/foo/bar", true},
		{"/foo/{*}", "/foo/", false},
		{"/foo/{*}", "/foo/a/b", false},
		{"/foo/{*}", "/foo/a*b", false}, // '*' is not in Envoy's literal set
		{"/foo/{*}", "/foo/a%2Fb", true},
		{"/foo/{**}", "/foo/", true},
		{"/foo/{**}", "/foo/a/b/c", true},
		{"/foo/{**}", "/foo", false},
		{"/foo/{**}/bar", "/foo/a/b/bar", true},
		{"/foo/{**}/bar", "/foo/bar", false},
		{"/foo/{**}/bar", "/foo/a/bar/x", false},
		{"/{*}/b", "/a.b/b", true},
		{"/a.b/{*}", "/axb/c", false}, // literals are quoted
	}
	for _, c := range cases {
		re, err := PathTemplateRegex(c.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", c.tmpl, err)
		}
		if got := regexp.MustCompile(re).MatchString(c.path); got != c.match {
			t.Errorf("%s vs %s: %v, want %v (regex %s)", c.tmpl, c.path, got, c.match, re)
		}
	}
}

// Istio's generator.go regexes, checked against identities with extra segments.
func TestIdentityRegexes(t *testing.T) {
	sa, err := ParseServiceAccount("sleep", "foo")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"spiffe://cluster.local/ns/foo/sa/sleep":             true,
		"spiffe://cluster.local/ns/foo/x/y/sa/sleep":         true,
		"spiffe://cluster.local/ns/foo/sa/sleep/extra":       true,
		"spiffe://cluster.local/ns/foo/sa/sleep-x":           false,
		"spiffe://cluster.local/ns/bar/sa/sleep":             false,
		"spiffe://cluster.local/ns/bar/sa/x/ns/foo/sa/sleep": true,
	} {
		if got := regexp.MustCompile(sa.Regex()).MatchString(id); got != want {
			t.Errorf("serviceAccount foo/sleep vs %s: %v, want %v", id, got, want)
		}
	}
	for ns, ids := range map[string]map[string]bool{
		"f*": {
			"spiffe://td/ns/foo/sa/a":             true,
			"spiffe://td/ns/bar/sa/a":             false,
			"spiffe://td/ns/bar/sa/x/ns/foo/sa/a": true,
		},
		// Quoted but for '*' (istio/istio#59992).
		"a(b": {"spiffe://td/ns/a(b/sa/x": true, "spiffe://td/ns/ab/sa/x": false},
		"f.*": {"spiffe://td/ns/f.oo/sa/a": true, "spiffe://td/ns/fxoo/sa/a": false},
	} {
		re := regexp.MustCompile(NamespaceRegex(ns))
		for id, want := range ids {
			if got := re.MatchString(id); got != want {
				t.Errorf("namespace %s vs %s: %v, want %v", ns, id, got, want)
			}
		}
	}
	if _, err := ParseServiceAccount("a/*", "foo"); err == nil {
		t.Error("wildcard service account accepted")
	}
}

func TestParseConditionKey(t *testing.T) {
	for key, kind := range map[string]KeyKind{
		"request.headers[X-Foo]":              KeyRequestHeader,
		"request.auth.claims[groups][nested]": KeyRequestClaims,
		"experimental.envoy.filters.a.b[c]":   KeyEnvoyFilter,
		"source.ip":                           KeySourceIP,
		"connection.sni":                      KeyConnectionSNI,
	} {
		k, err := ParseConditionKey(key)
		if err != nil || k.Kind != kind {
			t.Errorf("%s: %+v %v, want kind %d", key, k, err, kind)
		}
	}
	for _, key := range []string{"", "request.headers", "request.headers[]", "request.headersX[a]", "request.auth.claims[a][]",
		"destination.namespace", "request.bogus", "source.principals"} {
		if _, err := ParseConditionKey(key); err == nil {
			t.Errorf("%q accepted", key)
		}
	}
}
