// Package textcut shortens text for fields with a byte limit (an Event's
// note, a rule's message, a log field) without splitting a UTF-8 character.
package textcut

import (
	"fmt"
	"unicode/utf8"
)

// Prefix is the longest prefix of s of at most n bytes that ends at a
// character boundary: s itself when it fits, "" for a negative n.
func Prefix(s string, n int) string {
	n = max(n, 0)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Marked is s cut to Prefix(s, n), followed by "… (N more bytes)" when
// anything was cut, so a reader sees the text was shortened and by how much.
func Marked(s string, n int) string {
	head := Prefix(s, n)
	if head == s {
		return s
	}
	return fmt.Sprintf("%s… (%d more bytes)", head, len(s)-len(head))
}

// MaxLogField bounds each log field taken from a request (an ext_authz
// CheckRequest, an AdmissionReview), or quoting one: a request may be
// megabytes (--authz-max-recv-msg-size, the webhook's body limit).
const MaxLogField = 1024

// LogField is s cut to MaxLogField bytes at a character boundary, saying how
// much was left out (Marked): the one cut of every such log field.
func LogField(s string) string { return Marked(s, MaxLogField) }
