package manifest

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkText refuses a document whose decoding would put U+FFFD where the
// text has something else: invalid UTF-8, which the JSON decoder replaces
// silently (the YAML parser refuses it, naming no field), and a JSON \u
// escape of a lone UTF-16 surrogate ("\ud800"). A value changed that way
// would be validated and enforced with a meaning the file does not have (a
// DENY on a path that is not the file's). The error names the field and
// the line.
func checkText(raw []byte) error {
	if utf16Order(raw) != nil {
		return nil // UTF-16 (byte order mark): decoded as kubectl does (fromUTF16)
	}
	bad := badTextOffset(raw)
	if bad < 0 {
		return nil
	}
	line := bytes.Count(raw[:bad], []byte("\n")) + 1
	invalid := !utf8.Valid(raw)
	obj, err := decode(bytes.ToValidUTF8(raw, []byte("\uFFFD")))
	if err == nil {
		if f := replacedField(obj, ""); f != "" {
			return fmt.Errorf("%s (line %d of the document): invalid UTF-8 or a lone UTF-16 surrogate escape, which would be read as U+FFFD", f, line)
		}
	}
	if invalid {
		return fmt.Errorf("line %d of the document: invalid UTF-8", line)
	}
	// A "\ud800" that decodes to no U+FFFD is YAML text, not an escape.
	return nil
}

// badTextOffset is the offset of the first invalid UTF-8 sequence or
// lone-surrogate \u escape in b, -1 if none.
func badTextOffset(b []byte) int {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == '\\' && i+1 < len(b) {
				if b[i+1] == 'u' {
					if hi, ok := hex4(b, i+2); ok && hi >= 0xd800 && hi <= 0xdfff {
						if lo, ok := hex4(b, i+8); hi <= 0xdbff && ok && b[i+6] == '\\' && b[i+7] == 'u' && lo >= 0xdc00 && lo <= 0xdfff {
							i += 12
							continue
						}
						return i
					}
				}
				i += 2 // an escaped character, "\\" included
				continue
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(v), err == nil
}

// replacedField is the path of the first key or string value (in key
// order) of v holding U+FFFD, "" if none.
func replacedField(v any, path string) string {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, utf8.RuneError) {
			return path
		}
	case []any:
		for i, e := range v {
			if f := replacedField(e, fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if strings.ContainsRune(k, utf8.RuneError) {
				return p
			}
			if f := replacedField(v[k], p); f != "" {
				return f
			}
		}
	}
	return ""
}
