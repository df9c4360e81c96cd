// Package manifest is the one decoder for Kubernetes-style YAML/JSON input
// (meshguard validate, the /validate webhook, authz check and --policy-dir):
// bounded reads, multi-document streams, duplicate keys rejected with the key
// and line (as the API server's strict field validation does), and List
// documents expanded into their items.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
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
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes (the limit; raise it with --max-input-size)", ErrTooLarge, max)
	}
	return b, nil
}

// Decode reads one YAML or JSON document into unstructured content with
// int64 numbers (as the API server does). A duplicate mapping key is an
// error naming the key and its line. An empty document gives (nil, nil).
func Decode(data []byte) (map[string]any, error) {
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
	return v, nil
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
func SplitRaw(data []byte) ([]RawDocument, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []RawDocument
	for i := 0; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, fmt.Errorf("reading document %d: %w", i, err)
		}
		if onlyComments(raw) {
			i--
			continue
		}
		if len(raw) > MaxDocumentBytes {
			docs = append(docs, RawDocument{Index: i, Err: fmt.Errorf("%w: document of %d bytes is over the %d-byte limit of one object (the API server's request limit)", ErrTooLarge, len(raw), MaxDocumentBytes)})
			continue
		}
		docs = append(docs, RawDocument{Index: i, Raw: raw})
	}
	return docs, nil
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

// Items returns the items of a list document. An item that is not an object
// is an error naming its index.
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
		out[i] = m
	}
	return out, nil
}
