// Package textcut shortens text for fields with a byte limit (an Event's
// note, a rule's message) without splitting a UTF-8 character.
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
