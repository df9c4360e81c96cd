package validation

import (
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// A fast path for decodeSpec. The reference decoder marshals the unstructured
// spec back to JSON and parses it with protojson: about a third of the full
// pipeline's time (docs/benchmarks.md). Here the unstructured values are
// set on the message directly through protoreflect. Like the fast schema walk
// (schema_fast.go) it only handles what it models exactly: anything else
// (nulls, numbers given as strings, unknown enum names, bytes, Any, float
// rounding cases, a field named twice, ...) returns errFastDecode and the
// caller starts again with protojson, so results, including error messages,
// are protojson's. decode_fast_test.go compares both on the conformance corpus
// and the test fixtures.

// errFastDecode means "not modelled here": use the reference decoder.
var errFastDecode = errors.New("fast decode: unsupported input")

// fastDecode sets the fields of msg (which must be empty) from obj. On
// errFastDecode msg may be partly filled; the caller resets it.
func fastDecode(obj any, msg protoreflect.Message) error {
	m, ok := obj.(map[string]any)
	if !ok {
		return errFastDecode
	}
	fields := msg.Descriptor().Fields()
	for k, v := range m {
		fd := fields.ByJSONName(k)
		if fd == nil {
			if fields.ByTextName(k) != nil || (len(k) > 0 && k[0] == '[') {
				// Proto-name spelling (could duplicate the JSON name) or an extension.
				return errFastDecode
			}
			continue // DiscardUnknown: pruning already reported it
		}
		if v == nil {
			return errFastDecode
		}
		if od := fd.ContainingOneof(); od != nil && msg.WhichOneof(od) != nil {
			return errFastDecode // protojson rejects a oneof set twice
		}
		switch {
		case fd.IsList():
			l, ok := v.([]any)
			if !ok {
				return errFastDecode
			}
			list := msg.Mutable(fd).List()
			for _, item := range l {
				if item == nil {
					return errFastDecode
				}
				if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
					el := list.NewElement()
					if err := fastDecodeMessage(item, el.Message()); err != nil {
						return err
					}
					list.Append(el)
					continue
				}
				pv, err := fastScalar(fd, item)
				if err != nil {
					return err
				}
				list.Append(pv)
			}
		case fd.IsMap():
			mm, ok := v.(map[string]any)
			if !ok || fd.MapKey().Kind() != protoreflect.StringKind {
				return errFastDecode
			}
			pm := msg.Mutable(fd).Map()
			vd := fd.MapValue()
			for mk, mv := range mm {
				if mv == nil || !utf8.ValidString(mk) {
					return errFastDecode
				}
				key := protoreflect.ValueOfString(mk).MapKey()
				if vd.Kind() == protoreflect.MessageKind {
					val := pm.NewValue()
					if err := fastDecodeMessage(mv, val.Message()); err != nil {
						return err
					}
					pm.Set(key, val)
					continue
				}
				pv, err := fastScalar(vd, mv)
				if err != nil {
					return err
				}
				pm.Set(key, pv)
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if err := fastDecodeMessage(v, msg.Mutable(fd).Message()); err != nil {
				return err
			}
		default:
			pv, err := fastScalar(fd, v)
			if err != nil {
				return err
			}
			msg.Set(fd, pv)
		}
	}
	return nil
}

// fastDecodeMessage decodes into a message-typed field, handling the
// well-known types protojson gives a special JSON form.
func fastDecodeMessage(v any, msg protoreflect.Message) error {
	md := msg.Descriptor()
	switch md.FullName() {
	case durationFullName:
		s, ok := v.(string)
		if !ok {
			return errFastDecode
		}
		// decodeSpec rewrites Go-style durations to the seconds form first
		// (normalizeDurations); protojson then parses that form, which is
		// exactly what time.ParseDuration accepted.
		d, err := time.ParseDuration(s)
		if err != nil {
			return errFastDecode
		}
		msg.Set(md.Fields().ByNumber(1), protoreflect.ValueOfInt64(int64(d/time.Second)))
		msg.Set(md.Fields().ByNumber(2), protoreflect.ValueOfInt32(int32(d%time.Second)))
		return nil
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return fastStruct(md.FullName(), v, msg)
	case "google.protobuf.BoolValue", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.FloatValue",
		"google.protobuf.DoubleValue", "google.protobuf.StringValue":
		fd := md.Fields().ByNumber(1)
		pv, err := fastScalar(fd, v)
		if err != nil {
			return err
		}
		msg.Set(fd, pv)
		return nil
	}
	if md.FullName().Parent() == "google.protobuf" {
		return errFastDecode // Any, Timestamp, FieldMask, Empty, BytesValue, ...
	}
	return fastDecode(v, msg)
}

// fastStruct builds Struct/Value/ListValue with structpb, which converts the
// unstructured values (int64, float64, string, bool, nil, lists, maps) the way
// protojson reads their JSON text.
func fastStruct(name protoreflect.FullName, v any, msg protoreflect.Message) error {
	var src proto.Message
	var err error
	switch name {
	case "google.protobuf.Struct":
		m, ok := v.(map[string]any)
		if !ok {
			return errFastDecode
		}
		src, err = structpb.NewStruct(m)
	case "google.protobuf.ListValue":
		l, ok := v.([]any)
		if !ok {
			return errFastDecode
		}
		src, err = structpb.NewList(l)
	default:
		src, err = structpb.NewValue(v)
	}
	if err != nil {
		return errFastDecode
	}
	proto.Merge(msg.Interface(), src)
	return nil
}

// fastScalar converts a scalar (or enum) value.
func fastScalar(fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if s, ok := v.(string); ok && utf8.ValidString(s) {
			return protoreflect.ValueOfString(s), nil
		}
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
	case protoreflect.EnumKind:
		if s, ok := v.(string); ok {
			if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), nil
			}
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n, ok := v.(int64); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
			return protoreflect.ValueOfInt32(int32(n)), nil
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if n, ok := v.(int64); ok {
			return protoreflect.ValueOfInt64(n), nil
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if n, ok := v.(int64); ok && n >= 0 && n <= math.MaxUint32 {
			return protoreflect.ValueOfUint32(uint32(n)), nil
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if n, ok := v.(int64); ok && n >= 0 {
			return protoreflect.ValueOfUint64(uint64(n)), nil
		}
	case protoreflect.DoubleKind:
		switch n := v.(type) {
		case float64:
			return protoreflect.ValueOfFloat64(n), nil
		case int64:
			// Exact in a float64, so equal to parsing the digits.
			if n > -1<<53 && n < 1<<53 {
				return protoreflect.ValueOfFloat64(float64(n)), nil
			}
		}
	case protoreflect.FloatKind:
		// protojson rounds the text straight to float32; only exact values
		// are safe from double rounding.
		if n, ok := v.(int64); ok && n > -1<<24 && n < 1<<24 {
			return protoreflect.ValueOfFloat32(float32(n)), nil
		}
	}
	return protoreflect.Value{}, errFastDecode
}
