package policy

import (
	"errors"
	"fmt"
	"strings"
)

var errNulInPath = errors.New("path contains %00")

// PathNormalizations are the modes NormalizePath knows: MeshConfig
// pathNormalization's values, DEFAULT aside (ParsePathNormalization).
var PathNormalizations = [...]string{"NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"}

// ParsePathNormalization returns the mode s names (one of
// PathNormalizations), reading DEFAULT as BASE as Istio does
// (pilot/pkg/networking/core/listener_builder.go's path normalization:
// DEFAULT and BASE configure the same), "" as BASE (meshguard's default);
// the one check of the mode for the flag, the mesh config and a snapshot.
func ParsePathNormalization(s string) (string, error) {
	switch s {
	case "", "DEFAULT":
		return "BASE", nil
	}
	for _, m := range PathNormalizations {
		if s == m {
			return m, nil
		}
	}
	return "", fmt.Errorf("%q: want DEFAULT, %s", s, strings.Join(PathNormalizations[:], ", "))
}

// NormalizePath reproduces the HTTP connection manager's path handling that
// runs before any filter (MeshConfig pathNormalization, istio.io normalization doc): query and
// fragment stripped; for DECODE_AND_MERGE_SLASHES %2F/%5C decoded first;
// then RFC 3986 normalisation with backslash→slash and decoding of unreserved
// escapes; then, for MERGE_SLASHES and above, "//" merged. Decoding happens
// once. mode NONE only strips the query.
func NormalizePath(p, mode string) (string, error) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if mode == "NONE" {
		return p, nil
	}
	if !strings.ContainsAny(p, "%\\.") && !strings.Contains(p, "//") {
		return p, nil // fast path: nothing to do
	}
	decodeSlashes := mode == "DECODE_AND_MERGE_SLASHES"
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			h, ok := unhex2(p[i+1], p[i+2])
			if ok {
				if h == 0 {
					return "", errNulInPath
				}
				if isUnreserved(h) || (decodeSlashes && (h == '/' || h == '\\')) {
					if h == '\\' {
						h = '/'
					}
					b.WriteByte(h)
					i += 2
					continue
				}
				// Other escapes are kept exactly as written, hex case
				// included: Envoy's canonicalizer copies them "in case the
				// server is sensitive to changing the case of any hex
				// letters" (source/common/chromium_url/url_canon_path.cc
				// DoPartialPath), and policy paths are compared with it.
				b.WriteString(p[i : i+3])
				i += 2
				continue
			}
		}
		if c == '\\' {
			c = '/'
		}
		b.WriteByte(c)
	}
	out := removeDotSegments(b.String())
	if mode == "MERGE_SLASHES" || decodeSlashes {
		for strings.Contains(out, "//") {
			out = strings.ReplaceAll(out, "//", "/")
		}
	}
	return out, nil
}

func isUnreserved(c byte) bool {
	return c == '-' || c == '.' || c == '_' || c == '~' ||
		(c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// removeDotSegments is RFC 3986 §5.2.4 on an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if !strings.HasPrefix(r, "/") && strings.HasPrefix(p, "/") {
		r = "/" + r
	}
	return r
}
