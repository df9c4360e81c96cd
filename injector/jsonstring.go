package injector

import "unicode/utf8"

// AppendJSONString appends s quoted and escaped exactly as encoding/json
// writes it (its internal/jsonwire AppendQuote with encoding/json's HTML
// and JavaScript escaping): runs that need no escaping are copied whole,
// invalid UTF-8 becomes U+FFFD and U+2028/U+2029 are escaped. The webhook's
// patch encoder writes every string with it.
func AppendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start, i := 0, 0
	for {
		i += plainLen(s[i:])
		if i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			buf = appendEscapedASCII(append(buf, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1: // invalid UTF-8
			buf = append(append(buf, s[start:i]...), "\uFFFD"...)
		case r == '\u2028' || r == '\u2029':
			buf = append(append(buf, s[start:i]...), `\u202`...)
			buf = append(buf, hexDigits[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	return append(append(buf, s[start:]...), '"')
}

// appendJSONStrings appends ss as encoding/json writes a []string (null
// when nil).
func appendJSONStrings(buf []byte, ss []string) []byte {
	if ss == nil {
		return append(buf, "null"...)
	}
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendJSONString(buf, s)
	}
	return append(buf, ']')
}

// plainLen is the length of the prefix of s that encoding/json copies
// unescaped (plainJSON). It tests eight bytes at a time while none needs a
// look (the patch's strings are mostly plain: a byte at a time was a fifth
// of encoding a tiny pod's patch), then finds the first one byte by byte.
func plainLen(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if mayEscape(w) {
			break
		}
	}
	for ; i < len(s); i++ {
		if !plainJSON[s[i]] {
			return i
		}
	}
	return len(s)
}

const (
	bytes01 = 0x0101010101010101
	bytes80 = 0x8080808080808080
)

// mayEscape reports whether a byte of w is not plain: a control character,
// a byte of multi-byte UTF-8, or one of " \ < > &. It never misses one
// (each test is the classic "has a zero byte" / "has a byte less than n",
// exact about whether there is one); plainLen finds which byte it is.
func mayEscape(w uint64) bool {
	hasZero := func(v uint64) uint64 { return (v - bytes01) & ^v & bytes80 }
	return (w&bytes80)|
		((w-bytes01*0x20)&^w&bytes80)| // a byte below 0x20
		hasZero(w^(bytes01*'"'))|hasZero(w^(bytes01*'\\'))|
		hasZero(w^(bytes01*'<'))|hasZero(w^(bytes01*'>'))|hasZero(w^(bytes01*'&')) != 0
}

const hexDigits = "0123456789abcdef"

// appendEscapedASCII is encoding/json's escape of an ASCII byte.
func appendEscapedASCII(buf []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(buf, '\\', c)
	case '\b':
		return append(buf, `\b`...)
	case '\f':
		return append(buf, `\f`...)
	case '\n':
		return append(buf, `\n`...)
	case '\r':
		return append(buf, `\r`...)
	case '\t':
		return append(buf, `\t`...)
	}
	return append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// plainJSON marks the ASCII bytes encoding/json copies unescaped: printable
// ones except the quote, the backslash and the HTML characters <, > and &.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
