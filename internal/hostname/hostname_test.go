package hostname

import "testing"

// Cases of Istio's pkg/config/host name_test.go (TestNameMatches,
// TestNameSubsetOf: the "Matches" and "SubsetOf" columns are Istio's
// expectations where it lists the pair) and the forms without a dot after
// the wildcard ("*foo.com") that Istio's functions give the same answers.
func TestMatchesAndSubsetOf(t *testing.T) {
	for _, c := range []struct {
		a, b            string
		matches, subset bool
	}{
		{"", "", true, true},
		{"foo", "foo", true, true},
		{"foo", "bar", false, false},
		{"*.com", "foo.com", true, false},
		{"foo.com", "*.com", true, true},
		{"*.foo.com", "*.com", true, true},
		{"*.com", "*.foo.com", true, false},
		{"*.foo.com", "foo.com", false, false},
		{"foo.com", "*.foo.com", false, false},
		{"*", "foo.com", true, false},
		{"foo.com", "*", true, true},
		{"*", "*.com", true, false},
		{"*.com", "*", true, true},
		{"*foo.com", "foo.com", true, false},
		{"foo.com", "*foo.com", true, true},
		{"*foo.com", "*.foo.com", true, false},
		{"*.foo.com", "*foo.com", true, true},
		{"*bar.foo.com", "*foo.com", true, true},
		{"bar.foo.com", "foo.com", false, false},
		{"bar.foo.com", "*.foo.com", true, true},
		{"*.foo.bar.baz", "baz", false, false},
		{"baz", "*.foo.bar.baz", false, false},
		{"*.foo.bar.baz", "*.baz", true, true},
		{"foo.bar.baz", "*.baz", true, true},
		{"*", "*", true, true},
		{"*", "", true, false},
		{"", "foo.com", false, false},
		{"foo.com", "", false, false},
		{"*.com", "*.org", false, false},
		// Case-sensitive, as Istio's n == o and strings.HasSuffix.
		{"Foo.com", "foo.com", false, false},
		{"foo.com", "*.Com", false, false},
		{"*.Foo.com", "bar.foo.com", false, false},
		{"*.FOO.com", "*.foo.com", false, false},
	} {
		if got := Matches(c.a, c.b); got != c.matches {
			t.Errorf("Matches(%q, %q) = %v, want %v", c.a, c.b, got, c.matches)
		}
		if got := SubsetOf(c.a, c.b); got != c.subset {
			t.Errorf("SubsetOf(%q, %q) = %v, want %v", c.a, c.b, got, c.subset)
		}
	}
}
