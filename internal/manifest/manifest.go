// Package manifest is the one decoder for Kubernetes-style YAML/JSON input
// (meshguard validate, the /validate webhook, authz check and --policy-dir):
// bounded reads, multi-document streams, duplicate keys rejected with the key
// and line (as the API server's strict field validation does), and List
// documents expanded into their items.
package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// DefaultMaxInputBytes bounds one input (a file or stdin) read by the CLI:
// the same 8 MiB `meshguard inject` allows, above the API server's 3 MiB
// request limit, so anything the API server would take fits.
const DefaultMaxInputBytes = 8 << 20

// MaxDocumentBytes bounds one document of a stream: the API server's own
// request body limit (3 MiB, k8s.io/apiserver DefaultMaxRequestBodyBytes), so
// nothing the API server would store is refused, and the work done for one
// object stays bounded.
const MaxDocumentBytes = 3 << 20

// ErrTooLarge is returned (wrapped) by ReadAll for input over the limit.
var ErrTooLarge = errors.New("input too large")

// ReadAll reads r up to max bytes; more is an error wrapping ErrTooLarge that
// names the limit, without reading the rest.
func ReadAll(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxInputBytes
	}
	// A file is read into one buffer of its size (as os.ReadFile does)
	// rather than grown by doubling: a policy-dir reload reads megabytes.
	var buf bytes.Buffer
	if f, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() <= max {
			buf.Grow(int(fi.Size()) + bytes.MinRead)
		}
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes (the limit; raise it with --max-input-size)", ErrTooLarge, max)
	}
	return b, nil
}

// ReadFile reads the named file through ReadAll (max <= 0: DefaultMaxInputBytes).
// Only a regular file (links followed, as a mounted Secret's or ConfigMap's
// are) is read. It is opened non-blocking and checked once open: a blocking
// open of a FIFO waits until something writes to it, and a stat before the
// open would let a FIFO renamed over the file in between block the reader for
// good. O_NONBLOCK changes nothing for the read of a regular file.
func ReadFile(name string, max int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", name, fi.Mode().Type())
	}
	b, err := ReadAll(f, max)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// Decode reads one YAML or JSON document into unstructured content with
// int64 numbers (as the API server does). A duplicate mapping key is an
// error naming the key and its line, and so is text the decoder would read
// as U+FFFD (checkText). An empty document gives (nil, nil).
func Decode(data []byte) (map[string]any, error) {
	if err := checkText(data); err != nil {
		return nil, err
	}
	return decode(data)
}

func decode(data []byte) (map[string]any, error) {
	var v any
	// JSON (the webhook's case) is parsed directly; the YAML route costs ~4x
	// more. A YAML flow mapping such as "{a: b}" fails here and goes the YAML way.
	t := bytes.TrimSpace(data)
	jsonOK := false
	if len(t) > 0 && t[0] == '{' {
		strictErrs, err := kjson.UnmarshalStrict(t, &v, kjson.DisallowDuplicateFields)
		switch {
		case err == nil && len(strictErrs) == 0:
			jsonOK = true
		case err == nil:
			// Valid JSON with a duplicate key: the YAML parser names its
			// line (JSON is YAML); when YAML cannot read it (a control
			// character JSON allows), the JSON error still names the key.
			if _, yerr := yamlToValue(data); yerr != nil && strings.Contains(yerr.Error(), "already set in map") {
				return nil, yerr
			}
			return nil, fmt.Errorf("cannot parse JSON: %w", errors.Join(strictErrs...))
		}
	}
	if !jsonOK {
		var err error
		if v, err = yamlToValue(data); err != nil {
			return nil, err
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("document is not an object but %s", typeName(v))
	}
	return obj, nil
}

// yamlToValue converts YAML to JSON rejecting duplicate keys (yaml.v2 strict
// mode: `line 5: key "action" already set in map`), then decodes the JSON
// with int64 numbers.
func yamlToValue(data []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("cannot parse YAML/JSON: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	var v any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &v); err != nil {
		return nil, fmt.Errorf("cannot parse YAML/JSON: %w", err)
	}
	if err := OneDocument(data); err != nil {
		return nil, err
	}
	return v, nil
}

// OneDocument fails when data holds content after its first YAML document,
// which the YAML-to-JSON conversion ignores: a second object after a JSON or
// flow-mapping root ({"a": 1}{"b": 2}) or after a "..." line. kubectl
// applies a JSON stream whole; dropping the rest (as sigs.k8s.io/yaml, and so
// istioctl validate, does) would let an object through unvalidated (or a
// policy go unenforced). Only a root in flow style (or with
// a tag or anchor) or a "..." line can end a document before the end of data,
// so other documents are not parsed twice. Decode applies it; a reader
// that decodes documents itself (`meshguard inject`) calls it for each.
func OneDocument(data []byte) error {
	// UTF-16 (which the parser reads) is never checked by the byte tests.
	if utf16Order(data) == nil && !bytes.HasPrefix(data, []byte("...")) && !bytes.Contains(data, []byte("\n...")) && !flowRoot(data) {
		return nil
	}
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	var first, next any
	if err := dec.Decode(&first); err != nil {
		return fmt.Errorf("cannot parse YAML/JSON: %w", err)
	}
	switch err := dec.Decode(&next); {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("cannot parse YAML/JSON: more than one document (content follows the first one: %w); separate objects with a line \"---\"", err)
	}
	return errors.New(`cannot parse YAML/JSON: more than one document (content follows the first one); separate objects with a line "---"`)
}

// SingleDocument fails when data, one configuration object (the mesh
// config, the injector config or values), holds content beyond its first
// YAML document: sigs.k8s.io/yaml, and so Istio's decoder (protomarshal
// ApplyYAML), reads the first document and drops the rest silently, so a
// trust domain in a second one would not apply. Documents are cut as
// SplitRaw cuts them; every document after the first must be empty (only a
// "---", comments or null), and the first is checked by OneDocument. The
// error names the document, counted from 1 as the stream holds them.
func SingleDocument(data []byte) error {
	raws, err := SplitRawUnbounded(data)
	if err != nil {
		return fmt.Errorf("cannot parse YAML/JSON: %w", err)
	}
	for i, r := range raws {
		if i == 0 {
			if err := OneDocument(r.Raw); err != nil {
				return fmt.Errorf("document 1: %w", err)
			}
			continue
		}
		if obj, err := Decode(r.Raw); err != nil || obj != nil {
			return fmt.Errorf("document %d: content after the first YAML document, which alone would be read; give one document", r.Index+1)
		}
	}
	return nil
}

// flowRoot: the first line that is not blank or a comment starts with a
// flow collection, a tag or an anchor, so the root may end mid-line.
func flowRoot(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return bytes.IndexByte([]byte("{[!&"), t[0]) >= 0
		}
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// Document is one document of a multi-document YAML stream.
type Document struct {
	Index  int            // 0-based position among the stream's non-empty documents
	Object map[string]any // nil for an empty document
	Err    error          // the document could not be parsed
}

// Split reads a multi-document YAML (or JSON) stream. A parse error in one
// document is reported on that document; the others are still returned.
func Split(data []byte) ([]Document, error) {
	raws, err := SplitRaw(data)
	docs := make([]Document, len(raws))
	for i, r := range raws {
		docs[i] = Document{Index: r.Index, Err: r.Err}
		if r.Err == nil {
			docs[i].Object, docs[i].Err = Decode(r.Raw)
		}
	}
	return docs, err
}

// RawDocument is one non-empty document of a stream, not yet decoded.
type RawDocument struct {
	Index int    // 0-based position among the stream's non-empty documents
	Raw   []byte // the document's bytes (a sub-slice of the stream)
	Err   error  // the document is over MaxDocumentBytes
}

// SplitRaw cuts a multi-document stream into its non-empty documents
// (comment-only documents are empty) without decoding them: callers that
// remember what a document decoded to (the policy directory's reload) decode
// only the documents they have not seen.
//
// The cut is k8s.io/apimachinery's utilyaml.YAMLReader's, byte for byte (a
// line starting "---" ends a non-empty document; anything but spaces or a
// comment after it is an error; each line as its LineReader returns it: "\r\n" read as
// "\n", the last line ended with "\n"), but a document is a sub-slice of data
// wherever those bytes are already there, instead of a copy per line: on a
// 10,000-policy file, a third of a reload's allocations were those copies.
//
// A UTF-16 stream (with its byte order mark) is cut as UTF-8, as kubectl
// reads files (cli-runtime's FileVisitor: unicode.BOMOverride): its "---"
// lines are not "---" bytes, and the YAML parser, which reads UTF-16, would
// return the whole stream's first object only.
func SplitRaw(data []byte) ([]RawDocument, error) {
	if u, ok := fromUTF16(data); ok {
		data = u
	}
	return splitRaw(data, true)
}

// SplitRawUnbounded is SplitRaw without the limit of one object, for a
// reader that applies CheckObjectSize itself: `meshguard inject` bounds each
// item of a v1 List, as kubectl apply sends the items one by one, and any
// other document whole. The stream is still bounded by the caller's read
// (ReadAll).
func SplitRawUnbounded(data []byte) ([]RawDocument, error) {
	if u, ok := fromUTF16(data); ok {
		data = u
	}
	return splitRaw(data, false)
}

// CheckObjectSize fails, wrapping ErrTooLarge, when one object (what: a
// "document", an "object" of a List) of n bytes is over MaxDocumentBytes.
func CheckObjectSize(what string, n int) error {
	if n <= MaxDocumentBytes {
		return nil
	}
	return fmt.Errorf("%w: %s of %d bytes is over the %d-byte limit of one object (the API server's request limit)", ErrTooLarge, what, n, MaxDocumentBytes)
}

// splitRaw cuts UTF-8 data; bounded applies CheckObjectSize to each document.
func splitRaw(data []byte, bounded bool) ([]RawDocument, error) {
	var docs []RawDocument
	i := 0 // index of the next non-empty document
	emit := func(raw []byte) {
		var tooLarge error
		if bounded {
			tooLarge = CheckObjectSize("document", len(raw))
		}
		switch {
		case onlyComments(raw):
		case tooLarge != nil:
			docs = append(docs, RawDocument{Index: i, Err: tooLarge})
			i++
		default:
			docs = append(docs, RawDocument{Index: i, Raw: raw})
			i++
		}
	}
	start := 0 // of the current document in data
	for pos := 0; pos < len(data); {
		end := len(data) // of this line, after its '\n'
		if j := bytes.IndexByte(data[pos:], '\n'); j >= 0 {
			end = pos + j + 1
		}
		if line := data[pos:end]; bytes.HasPrefix(line, []byte(yamlSeparator)) {
			if rest := strings.TrimSpace(string(lineText(line)[len(yamlSeparator):])); rest != "" && rest[0] != '#' {
				return docs, fmt.Errorf("reading document %d: invalid Yaml document separator: %s", i, rest)
			}
			// A separator ends a document; one that would start an empty
			// document is, as in YAMLReader, the first line of the next.
			if pos > start {
				emit(asRead(data[start:pos]))
				start = end
			}
		}
		pos = end
	}
	if len(data) > start {
		emit(asRead(data[start:]))
	}
	return docs, nil
}

// fromUTF16 is data as UTF-8 when it starts with a UTF-16 byte order mark
// (dropped), as golang.org/x/text's UTF-16 decoder gives it
// (encoding/unicode utf16Decoder.Transform): an unpaired surrogate or odd
// last byte becomes U+FFFD, and a surrogate followed by a trailing one
// (DC00-DFFF) is read as one pair, U+FFFD when it is not a valid one, where
// utf16.Decode gives two.
func fromUTF16(data []byte) ([]byte, bool) {
	order := utf16Order(data)
	if order == nil {
		return nil, false
	}
	data = data[2:]
	units := make([]uint16, len(data)/2)
	for i := range units {
		units[i] = order.Uint16(data[2*i:])
	}
	out := make([]byte, 0, len(data)+len(data)/2)
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		if utf16.IsSurrogate(r) && i+1 < len(units) && units[i+1] >= 0xdc00 && units[i+1] <= 0xdfff {
			i++
			r = utf16.DecodeRune(r, rune(units[i]))
		}
		out = utf8.AppendRune(out, r) // a lone surrogate is written as U+FFFD
	}
	if len(data)%2 == 1 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return out, true
}

// utf16Order is the byte order data's UTF-16 byte order mark gives; nil
// without one.
func utf16Order(data []byte) binary.ByteOrder {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}):
		return binary.LittleEndian
	case bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		return binary.BigEndian
	}
	return nil
}

// yamlSeparator starts the line that ends a document (utilyaml's separator).
const yamlSeparator = "---"

// lineText is a line without its ending ("\n" or "\r\n"), as bufio's ReadLine
// returns it (a "\r" without a "\n" after it stays).
func lineText(line []byte) []byte {
	if t, ok := bytes.CutSuffix(line, []byte("\n")); ok {
		return bytes.TrimSuffix(t, []byte("\r"))
	}
	return line
}

// asRead is doc (whole lines) as utilyaml's LineReader returns its lines:
// each ended by exactly "\n". Only a document with a "\r\n" line end or an
// unterminated last line is copied.
func asRead(doc []byte) []byte {
	if doc[len(doc)-1] == '\n' && !bytes.Contains(doc, []byte("\r\n")) {
		return doc
	}
	out := make([]byte, 0, len(doc)+1)
	for len(doc) > 0 {
		line := doc
		if j := bytes.IndexByte(doc, '\n'); j >= 0 {
			line, doc = doc[:j+1], doc[j+1:]
		} else {
			doc = nil
		}
		out = append(append(out, lineText(line)...), '\n')
	}
	return out
}

// onlyComments: every line of b is blank or a whole-line YAML comment, so
// the document is empty.
func onlyComments(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// IsList reports whether obj is a list document: kind "List" or any kind
// ending in "List" (VirtualServiceList, ...) that has an items field, as
// `kubectl get -o yaml` prints them.
func IsList(obj map[string]any) bool {
	kind, _ := obj["kind"].(string)
	if !strings.HasSuffix(kind, "List") {
		return false
	}
	_, has := obj["items"]
	return has || kind == "List"
}

// Items returns the items of a list document. An item that is not an object,
// or is itself a list, is an error naming its index: every reader (the
// validator, the analyzer, the authz loader) expands one level, so a policy
// in a nested list is refused everywhere rather than enforced by one and
// unseen by another.
func Items(obj map[string]any) ([]map[string]any, error) {
	raw, ok := obj["items"]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("items: must be a list, not %s", typeName(raw))
	}
	out := make([]map[string]any, len(list))
	for i, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("items[%d]: must be an object, not %s", i, typeName(it))
		}
		if IsList(m) {
			return nil, fmt.Errorf("items[%d]: a list inside a list is not supported", i)
		}
		out[i] = m
	}
	return out, nil
}
