package manifest

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	yamlv2 "go.yaml.in/yaml/v2"
	kjson "sigs.k8s.io/json"
)

// DecodeStrict decodes one YAML or JSON document into a Go type (a
// Kubernetes API type) as istioctl kube-inject reads a workload, but
// strictly, as the API server's strict field validation reads a request.
//
// As istioctl (pkg/kube/inject/inject.go FromRawToObject, which calls
// sigs.k8s.io/yaml Unmarshal): a number or boolean where the type has a
// string is read as that string (`value: 8080` is "8080", `value: on` is
// "true"; targetJSON). As the API server: field names are case-sensitive,
// and a field the type does not have, a duplicate key (named with its line)
// or a value of the wrong type is an error. Each error names the field by
// its path in the object, list indices included, with at (e.g.
// "spec.template.") in front when data is part of a larger object:
// "field spec.template.spec.containers[0].imagez: unknown field". Integers
// keep every digit (int64) where the type has an untyped field.
func DecodeStrict(data []byte, into any, at string) error {
	var doc any
	if err := yamlv2.UnmarshalStrict(data, &doc); err != nil { // a duplicate key, with its line
		msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ") // then one "line N: ..." per line
		return errors.New(strings.ReplaceAll(msg, "\n  ", "; "))
	}
	w := &jsonWriter{}
	if err := w.value(doc, reflect.TypeOf(into)); err != nil {
		var pe *pathError
		if errors.As(err, &pe) {
			return fieldError(at, pe.path, pe.msg)
		}
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(w.buf, into)
	if err != nil {
		return decodeError(doc, into, at, err)
	}
	if len(strictErrs) == 0 {
		return nil
	}
	msgs := make([]string, len(strictErrs))
	for i, e := range strictErrs {
		msgs[i] = e.Error()
		if fe, ok := e.(kjson.FieldError); ok {
			// kjson says `unknown field "a[0].b"` or `duplicate field "a.b"`.
			msgs[i] = fieldError(at, fe.FieldPath(), strings.TrimSuffix(e.Error(), " "+strconv.Quote(fe.FieldPath()))).Error()
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// decodeError names the field of a decode error. The JSON decoder's type
// error gives its path without list indices but the offset in the JSON, and
// a type's own decoder (resource.Quantity, IntOrString) gives neither, so
// the JSON is written again, this time noting where each value lies.
func decodeError(doc, into any, at string, err error) error {
	w := &jsonWriter{find: -1}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		w.find = te.Offset
	}
	if w.value(doc, reflect.TypeOf(into)) != nil { // it was written once already
		w.found = nil
	}
	if te != nil {
		path := te.Field
		if w.found != nil {
			path = *w.found
		}
		return fieldError(at, path, fmt.Sprintf("cannot decode %s as %s", te.Value, typeString(te.Type)))
	}
	for _, s := range w.custom {
		v := reflect.New(s.t)
		if e := kjson.UnmarshalCaseSensitivePreserveInts(w.buf[s.start:s.end], v.Interface()); e != nil && e.Error() == err.Error() {
			return fieldError(at, s.path, err.Error())
		}
	}
	return fmt.Errorf("cannot decode: %w", err)
}

func fieldError(at, field, msg string) error {
	if at+field == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("field %s: %s", strings.TrimSuffix(at+field, "."), msg)
}

// typeString names a Go type as a kind of value: int32, string, object.
func typeString(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 data"
		}
		return "a list"
	case reflect.Pointer:
		return typeString(t.Elem())
	}
	return t.Kind().String()
}

// pathError is an error at one value of the document being written.
type pathError struct{ path, msg string }

func (e *pathError) Error() string { return e.path + ": " + e.msg }

// customValue is a value decoded by its type's own UnmarshalJSON or
// UnmarshalText, and where it lies in the JSON.
type customValue struct {
	t          reflect.Type
	path       string
	start, end int
}

// jsonWriter writes a YAML document (as go.yaml.in/yaml/v2 decodes it) as
// JSON for decoding into a Go type, converting a number or boolean to a
// string where the type has a string, as sigs.k8s.io/yaml's Unmarshal does
// (yaml.go convertToJSONableObject, the conversion istioctl kube-inject's
// decoding goes through), with the same spelling: integers in decimal,
// floats as strconv.FormatFloat(f, 'g', -1, 32), booleans "true"/"false".
// Map keys are sorted, so the same document is always the same JSON.
type jsonWriter struct {
	buf  []byte
	path []string // ".name" or "[i]" per level
	// find, when not negative, is a JSON offset (a decode error's): found is
	// set to the path of the innermost value holding the byte before it,
	// where the decoder stops after reading a scalar or the first byte of a
	// list or object.
	find   int64
	found  *string
	custom []customValue
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (w *jsonWriter) pathString() string {
	return strings.TrimPrefix(strings.Join(w.path, ""), ".")
}

func (w *jsonWriter) fail(msg string) error {
	return &pathError{path: w.pathString(), msg: msg}
}

// value writes v for a target of type t (nil: untyped, nothing converted).
func (w *jsonWriter) value(v any, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type with its own decoder (resource.Quantity, IntOrString) gets the
	// value unconverted, as sigs.k8s.io/yaml gives it.
	var custom reflect.Type
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		custom, t = t, nil
	}
	start := len(w.buf)
	var err error
	switch x := v.(type) {
	case map[any]any:
		err = w.object(x, t)
	case []any:
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		w.buf = append(w.buf, '[')
		for i, e := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.path = append(w.path, "["+strconv.Itoa(i)+"]")
			err = w.value(e, elem)
			w.path = w.path[:len(w.path)-1]
			if err != nil {
				return err
			}
		}
		w.buf = append(w.buf, ']')
	default:
		if t != nil && t.Kind() == reflect.String {
			if s, ok := scalarString(x); ok {
				v = s
			}
		}
		err = w.scalar(v)
	}
	if err != nil {
		return err
	}
	if end := len(w.buf); w.found == nil && int64(start) < w.find && w.find <= int64(end) {
		p := w.pathString()
		w.found = &p
	}
	if custom != nil && w.find < 0 {
		w.custom = append(w.custom, customValue{t: custom, path: w.pathString(), start: start, end: len(w.buf)})
	}
	return nil
}

// object writes a mapping. Its keys become strings as sigs.k8s.io/yaml
// converts them; two keys that become the same string (1 and "1") are an
// error, where sigs.k8s.io/yaml keeps one of the two values at random.
func (w *jsonWriter) object(m map[any]any, t reflect.Type) error {
	keys := make([]string, 0, len(m))
	values := make(map[string]any, len(m))
	for k, v := range m {
		s, err := keyString(k)
		if err != nil {
			return w.fail(err.Error())
		}
		if _, dup := values[s]; dup {
			return w.fail(fmt.Sprintf("key %q appears twice (once not as a string)", s))
		}
		keys = append(keys, s)
		values[s] = v
	}
	slices.Sort(keys)
	w.buf = append(w.buf, '{')
	for i, k := range keys {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		kb, _ := json.Marshal(k) // a string always encodes
		w.buf = append(w.buf, kb...)
		w.buf = append(w.buf, ':')
		w.path = append(w.path, "."+k)
		err := w.value(values[k], fieldType(t, k))
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

func (w *jsonWriter) scalar(v any) error {
	switch x := v.(type) {
	case nil:
		w.buf = append(w.buf, "null"...)
		return nil
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
		return nil
	case int:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
		return nil
	case int64:
		w.buf = strconv.AppendInt(w.buf, x, 10)
		return nil
	case uint64:
		w.buf = strconv.AppendUint(w.buf, x, 10)
		return nil
	}
	b, err := json.Marshal(v) // strings, floats (NaN and infinities fail)
	if err != nil {
		return w.fail("cannot convert to JSON: " + err.Error())
	}
	w.buf = append(w.buf, b...)
	return nil
}

// scalarString is a number or boolean as sigs.k8s.io/yaml writes it where
// the target is a string.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 32), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// keyString is a YAML mapping key as sigs.k8s.io/yaml converts it to a
// JSON key (a float as go-yaml writes it).
func keyString(k any) (string, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case int, int64, bool: // not uint64: sigs.k8s.io/yaml refuses such a key
		s, _ := scalarString(x)
		return s, nil
	case float64:
		// Formatted as float32 first, then named as YAML names the
		// specials: 1e40 overflows float32 and becomes ".inf" too.
		switch s := strconv.FormatFloat(x, 'g', -1, 32); s {
		case "+Inf":
			return ".inf", nil
		case "-Inf":
			return "-.inf", nil
		case "NaN":
			return ".nan", nil
		default:
			return s, nil
		}
	case nil:
		return "", errors.New("a map key that is null is not supported")
	}
	return "", fmt.Errorf("a map key of type %T is not supported", k)
}

// fieldType is the type a key of an object of type t decodes into: a
// struct's field (by its JSON name, exactly: another case is an unknown
// field), a map's element, else nil.
func fieldType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		return structFields(t)[key]
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// structFields maps a struct's JSON field names to the type a value under
// that name is converted for. A field promoted from an embedded struct
// (Volume's VolumeSource, a Probe's ProbeHandler) maps to the embedded
// struct, not to the field: sigs.k8s.io/yaml takes the embedded field
// (encoding/json's field index[0]) as the target, so nothing under it
// becomes a string, and istioctl refuses `configMap: {name: 1}` in a
// volume; so does this.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	direct := map[string]reflect.Type{}
	promoted := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for n := range structFields(et) {
					if _, ok := promoted[n]; !ok {
						promoted[n] = f.Type
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		direct[name] = f.Type
	}
	for n, ft := range promoted {
		if _, ok := direct[n]; !ok {
			direct[n] = ft
		}
	}
	fieldCache.Store(t, direct)
	return direct
}
