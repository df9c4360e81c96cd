package webhook

import (
	"bytes"
	"reflect"
	"slices"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// patchJSON encodes the injection patch. It writes what encoding/json writes
// for these types (jsonpatch.Operation.MarshalJSON is the reference, see
// TestEncodePatchMatchesJSONPatch), but the maps and quantities of a pod,
// which jsoniter and encoding/json encode with several allocations each, go
// through patchEncoders.
var patchJSON = func() jsoniter.API {
	api := jsoniter.Config{EscapeHTML: true, SortMapKeys: true}.Froze()
	api.RegisterExtension(&patchEncoders{})
	return api
}()

// encodePatch renders JSON Patch ops as jsonpatch.Operation.MarshalJSON
// does ("value" omitted when nil, except null for add and replace) into one
// buffer; nil when there are no ops.
func encodePatch(ops []jsonpatch.JsonPatchOperation) ([]byte, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	s := patchJSON.BorrowStream(nil)
	defer patchJSON.ReturnStream(s)
	s.WriteArrayStart()
	for i := range ops {
		op := &ops[i]
		if i > 0 {
			s.WriteMore()
		}
		s.WriteObjectStart()
		s.WriteObjectField("op")
		s.WriteString(op.Operation)
		s.WriteMore()
		s.WriteObjectField("path")
		s.WriteString(op.Path)
		if op.Value != nil || op.Operation == "add" || op.Operation == "replace" {
			s.WriteMore()
			s.WriteObjectField("value")
			s.WriteVal(op.Value)
		}
		s.WriteObjectEnd()
	}
	s.WriteArrayEnd()
	if s.Error != nil {
		return nil, s.Error
	}
	return bytes.Clone(s.Buffer()), nil
}

// patchEncoders encodes string maps (labels, annotations), resource lists
// and quantities without per-entry allocations.
type patchEncoders struct{ jsoniter.DummyExtension }

var (
	quantityType     = reflect.TypeFor[resource.Quantity]()
	quantityPtrType  = reflect.TypeFor[*resource.Quantity]()
	stringMapType    = reflect.TypeFor[map[string]string]()
	resourceListType = reflect.TypeFor[corev1.ResourceList]()
)

func (*patchEncoders) CreateEncoder(typ reflect2.Type) jsoniter.ValEncoder {
	switch typ.Type1() {
	case quantityType:
		return quantityEncoder{}
	case quantityPtrType:
		return &jsoniter.OptionalEncoder{ValueEncoder: quantityEncoder{}}
	case stringMapType:
		return stringMapEncoder{}
	case resourceListType:
		return resourceListEncoder{}
	}
	return nil
}

// quantityEncoder writes resource.Quantity.MarshalJSON's output.
type quantityEncoder struct{}

// IsEmpty is false: encoding/json never omits a struct value.
func (quantityEncoder) IsEmpty(unsafe.Pointer) bool { return false }

func (quantityEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	writeQuantity(s, (*resource.Quantity)(ptr))
}

// writeQuantity writes q's canonical form, quoted, formatting it straight
// into the stream's spare capacity (Quantity.String would allocate it).
func writeQuantity(s *jsoniter.Stream, q *resource.Quantity) {
	s.WriteRaw(`"`)
	buf := s.Buffer()
	number, suffix := q.CanonicalizeBytes(buf[len(buf):])
	s.SetBuffer(append(append(buf, number...), suffix...))
	s.WriteRaw(`"`)
}

// stringMapEncoder writes a map[string]string in key order, as encoding/json does.
type stringMapEncoder struct{}

func (stringMapEncoder) IsEmpty(ptr unsafe.Pointer) bool { return len(*(*map[string]string)(ptr)) == 0 }

func (stringMapEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	m := *(*map[string]string)(ptr)
	if m == nil {
		s.WriteNil()
		return
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.WriteObjectStart()
	for i, k := range keys {
		if i > 0 {
			s.WriteMore()
		}
		s.WriteObjectField(k)
		s.WriteString(m[k])
	}
	s.WriteObjectEnd()
}

// resourceListEncoder writes a ResourceList in key order, as encoding/json does.
type resourceListEncoder struct{}

func (resourceListEncoder) IsEmpty(ptr unsafe.Pointer) bool {
	return len(*(*corev1.ResourceList)(ptr)) == 0
}

func (resourceListEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	m := *(*corev1.ResourceList)(ptr)
	if m == nil {
		s.WriteNil()
		return
	}
	var small [8]corev1.ResourceName
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.WriteObjectStart()
	for i, k := range keys {
		if i > 0 {
			s.WriteMore()
		}
		s.WriteObjectField(string(k))
		q := m[k]
		writeQuantity(s, &q)
	}
	s.WriteObjectEnd()
}
