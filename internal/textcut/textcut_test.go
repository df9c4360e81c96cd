package textcut

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exact", 5, "exact"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},          // é is two bytes: not split
		{"éé", 3, "é"},          // the second é would be split
		{"日本", 4, "日"},          // three-byte runes
		{"日本", 2, ""},           // nothing fits whole
		{"\xffabc", 2, "\xffa"}, // invalid bytes count as characters of their own
		{"\x80\x80", 1, ""},     // no character start before the cut: nothing, not s[:-1]
		{"abc", 0, ""},
		{"abc", -1, ""}, // a negative limit is none, not a panic
		{"", -1, ""},
	} {
		got := Prefix(tc.s, tc.n)
		if got != tc.want || len(got) > max(tc.n, 0) && got != tc.s {
			t.Errorf("Prefix(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
		if utf8.ValidString(tc.s) && !utf8.ValidString(got) {
			t.Errorf("Prefix(%q, %d) = %q: splits a character", tc.s, tc.n, got)
		}
	}
}

func TestMarked(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc… (3 more bytes)"},
		{"éé", 3, "é… (2 more bytes)"}, // not split: the second é is left out whole
	} {
		if got := Marked(tc.s, tc.n); got != tc.want {
			t.Errorf("Marked(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// LogField is Marked at MaxLogField: the one cut of every log field taken
// from a request (authz decision lines, webhook lines).
func TestLogField(t *testing.T) {
	short := strings.Repeat("a", MaxLogField)
	if got := LogField(short); got != short {
		t.Errorf("LogField of %d bytes changed it: %q", len(short), got)
	}
	long := strings.Repeat("é", MaxLogField) // 2*MaxLogField bytes
	want := strings.Repeat("é", MaxLogField/2) + fmt.Sprintf("… (%d more bytes)", MaxLogField)
	if got := LogField(long); got != want {
		t.Errorf("LogField of %d bytes = %.80q..., want %.80q...", len(long), got, want)
	}
}
