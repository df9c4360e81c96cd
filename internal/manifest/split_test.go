package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf16"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// yamlReaderSplit is SplitRaw as k8s.io/apimachinery's YAMLReader cuts a
// stream (the oracle SplitRaw's own cutter is checked against): documents
// read one by one, comment-only ones skipped, oversized ones reported. A
// UTF-16 stream is read as UTF-8 first, as kubectl's FileVisitor does.
func yamlReaderSplit(data []byte) ([]RawDocument, error) {
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		u, _, err := transform.Bytes(unicode.BOMOverride(unicode.UTF8.NewDecoder()), data)
		if err != nil {
			return nil, err
		}
		data = u
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []RawDocument
	for i := 0; ; {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, fmt.Errorf("reading document %d: %w", i, err)
		}
		switch {
		case onlyComments(raw):
			continue
		case len(raw) > MaxDocumentBytes:
			docs = append(docs, RawDocument{Index: i, Err: errors.New("too large")})
		default:
			docs = append(docs, RawDocument{Index: i, Raw: append([]byte(nil), raw...)})
		}
		i++
	}
}

func checkSplitLikeYAMLReader(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := SplitRaw(data)
	want, wantErr := yamlReaderSplit(data)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("SplitRaw(%q) error %v, YAMLReader %v", data, gotErr, wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("SplitRaw(%q): %d documents, YAMLReader %d", data, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Index != w.Index || !bytes.Equal(g.Raw, w.Raw) || (g.Err == nil) != (w.Err == nil) {
			t.Fatalf("SplitRaw(%q) document %d: {%d %q %v}, YAMLReader {%d %q %v}", data, i, g.Index, g.Raw, g.Err, w.Index, w.Raw, w.Err)
		}
	}
}

func TestSplitRawLikeYAMLReader(t *testing.T) {
	for _, in := range splitSeeds {
		checkSplitLikeYAMLReader(t, []byte(in))
	}
	long := "a: " + strings.Repeat("x", 10000) + "\n---\nb: 1" // lines beyond bufio's 4 KiB buffer
	checkSplitLikeYAMLReader(t, []byte(long))
}

// TestSplitRawDoesNotCopy: a stream with "\n" line ends is cut into
// sub-slices of itself (what makes a policy-dir reload cheap).
func TestSplitRawDoesNotCopy(t *testing.T) {
	data := []byte("a: 1\n---\n# only a comment\n---\nb: 2\n")
	docs, err := SplitRaw(data)
	if err != nil || len(docs) != 2 {
		t.Fatalf("SplitRaw: %d documents, %v", len(docs), err)
	}
	for _, d := range docs {
		if off := bytes.Index(data, d.Raw); off < 0 || &data[off] != &d.Raw[0] {
			t.Errorf("document %d (%q) is a copy, not a sub-slice of the stream", d.Index, d.Raw)
		}
	}
}

var splitSeeds = []string{
	"", "\n", "---", "---\n", "a: 1", "a: 1\n", "a: 1\n---\nb: 2\n", "---\na: 1\n---\n",
	"a: 1\r\n---\r\nb: 2\r\n", "a: 1\r\nb: 2", "a: 1\r", "a: 1\n---\r", "a\rb\n",
	"a: 1\n----\nb: 2\n", "a: 1\n---x\n", "a: 1\n--- # note\nb: 2", "a: 1\n---   \nb: 2\n",
	"a: 1\n--- |\n  x\n", "# c\n---\n# d\n", "a: 1\n---\n\n\n---\nb: 2\n", " ---\na: 1\n",
	"a: |\n  ---\n  x\n", "a: 1\n---\n---\n---\nb: 2", "{\"a\": 1}\n---\n{\"b\": 2}",
	"a: 1\n---\t\nb: 2\n", "a: 1\n---\v#\n",
	// A byte order mark (only at the stream's start), "..." end markers,
	// CRLF with a commented separator, a document of only comments between
	// two, "---" inside a block scalar indented or not.
	"\ufeffa: 1\n---\nb: 2\n", "\ufeff---\na: 1\n", "a: 1\n---\n\ufeffb: 2\n",
	"a: 1\n...\n---\nb: 2\n...\n", "a: 1\n...\nb: 2\n", "...\n", "a: 1\n... # end\n---\n",
	"a: 1\r\n--- # c\r\nb: 2\r\n", "a: 1\r\n---\r\n# only\r\n---\r\nb: 2",
	"a: 1\n---\n# c1\n  # c2\n\n---\nb: 2\n", "a: |\n---\nb: 2\n", "a: >\n  x\n---\n",
	// UTF-16 with its byte order mark, either order; an odd last byte.
	"\xff\xfea\x00\n\x00-\x00-\x00-\x00\n\x00b\x00", "\xfe\xff\x00a\x00\n\x00-\x00-\x00-\x00\n\x00b", "\xff\xfe\x00\xd8\n",
	// Two trailing surrogates, read as one bad pair (one U+FFFD, not two);
	// a trailing surrogate before a valid pair.
	"\xfe\xff\xdf0\xdf0", "\xff\xfe\x00\xdc\x00\xdc\x3d\xd8\x00\xde",
}

// FuzzSplitRaw: SplitRaw cuts any stream exactly as YAMLReader does.
func FuzzSplitRaw(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSplitLikeYAMLReader(t, data)
	})
}

// utf16Stream is s encoded as UTF-16 with a byte order mark (what Windows
// PowerShell 5's ">" writes).
func utf16Stream(s string, bigEndian bool) []byte {
	out := []byte{0xff, 0xfe}
	if bigEndian {
		out = []byte{0xfe, 0xff}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// TestSplitUTF16: a UTF-16 stream (with its byte order mark) is cut as
// kubectl cuts it, after reading it as UTF-8 (cli-runtime's FileVisitor:
// unicode.BOMOverride): its "---" lines were not found in the UTF-16 bytes,
// the stream was one document, and the YAML parser (which reads UTF-16)
// returned its first object only: the others went unvalidated and, in
// --policy-dir, unenforced. Decode refuses such a stream as it refuses any
// content after the first document.
func TestSplitUTF16(t *testing.T) {
	const stream = "kind: A\nmetadata:\n  name: a\n---\nkind: B\nmetadata:\n  name: é\n"
	for _, big := range []bool{false, true} {
		data := utf16Stream(stream, big)
		docs, err := Split(data)
		if err != nil || len(docs) != 2 {
			t.Fatalf("big endian %v: Split = %d documents, %v; want 2", big, len(docs), err)
		}
		for i, want := range []string{"A", "B"} {
			if docs[i].Err != nil || docs[i].Object["kind"] != want {
				t.Errorf("big endian %v: document %d = %v, %v; want kind %s", big, i, docs[i].Object, docs[i].Err, want)
			}
		}
		if name, _ := docs[1].Object["metadata"].(map[string]any)["name"].(string); name != "é" {
			t.Errorf("big endian %v: name %q, want \"é\"", big, name)
		}
		if v, err := Decode(data); err == nil || !strings.Contains(err.Error(), "more than one document") {
			t.Errorf("big endian %v: Decode = %v, %v; want an error saying more than one document", big, v, err)
		}
	}
}
