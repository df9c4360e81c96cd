// Package hostname compares Istio host names, possibly wildcarded ("*",
// "*.foo.com", "*foo.com"), as Istio's pkg/config/host Name does, for
// validation and the cross-resource analysis alike.
package hostname

import "strings"

func wildcarded(n string) bool { return len(n) > 0 && n[0] == '*' }

// Matches is Name.Matches: n and o name a common host (either may be the
// wildcard covering the other).
func Matches(n, o string) bool {
	nw, ow := wildcarded(n), wildcarded(o)
	switch {
	case nw && ow:
		if len(n) < len(o) {
			return strings.HasSuffix(o[1:], n[1:])
		}
		return strings.HasSuffix(n[1:], o[1:])
	case nw:
		return strings.HasSuffix(o, n[1:])
	case ow:
		return strings.HasSuffix(n, o[1:])
	}
	return n == o
}

// SubsetOf is Name.SubsetOf: every host n names is one o names.
func SubsetOf(n, o string) bool {
	nw, ow := wildcarded(n), wildcarded(o)
	switch {
	case nw && ow:
		return len(n) >= len(o) && strings.HasSuffix(n[1:], o[1:])
	case nw:
		return false
	case ow:
		return strings.HasSuffix(n, o[1:])
	}
	return n == o
}
