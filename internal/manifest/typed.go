package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// DecodeStrict decodes one YAML or JSON document into a Go type (a
// Kubernetes API type) as the API server's strict field validation reads a
// request: field names are case-sensitive, and a field the type does not
// have, a duplicate key (named with its line) or a value of the wrong type
// is an error. Each error names the field by its path in the object, with
// at (e.g. "spec.template.") in front when data is part of a larger object:
// "field spec.template.spec.containerz: unknown field". Integers keep every
// digit (int64) where the type has an untyped field.
func DecodeStrict(data []byte, into any, at string) error {
	js, err := yaml.YAMLToJSONStrict(data) // a duplicate key, with its line
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ") // then one "line N: ..." per line
		return errors.New(strings.ReplaceAll(msg, "\n  ", "; "))
	}
	strictErrs, err := kjson.UnmarshalStrict(js, into)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fieldError(at, te.Field, fmt.Sprintf("cannot decode %s as %s", te.Value, typeString(te.Type)))
		}
		return fmt.Errorf("cannot decode: %w", err)
	}
	if len(strictErrs) == 0 {
		return nil
	}
	msgs := make([]string, len(strictErrs))
	for i, e := range strictErrs {
		msgs[i] = e.Error()
		if fe, ok := e.(kjson.FieldError); ok {
			// kjson says `unknown field "a.b"` or `duplicate field "a.b"`.
			msgs[i] = fieldError(at, fe.FieldPath(), strings.TrimSuffix(e.Error(), " "+strconv.Quote(fe.FieldPath()))).Error()
		}
	}
	return errors.New(strings.Join(msgs, "; "))
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
