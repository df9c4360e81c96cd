package webhook

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/injector"
)

// patchJSON encodes the injection patch. It writes what encoding/json writes
// for these types (jsonpatch.Operation.MarshalJSON is the reference, see
// TestEncodePatchMatchesJSONPatch), but the strings, maps, quantities and
// int-or-strings of a pod, which jsoniter and encoding/json encode with
// allocations or byte by byte, go through patchEncoders.
var patchJSON = func() jsoniter.API {
	api := jsoniter.Config{EscapeHTML: true, SortMapKeys: true}.Froze()
	api.RegisterExtension(&patchEncoders{})
	return api
}()

// encodePatch renders JSON Patch ops as jsonpatch.Operation.MarshalJSON
// does ("value" omitted when nil, except null for add and replace) into one
// buffer; nil when there are no ops. With buf, the patch is written into
// buf's memory (which it then keeps) and is valid until buf is reused.
func encodePatch(ops []jsonpatch.JsonPatchOperation, buf *patchBuffer) ([]byte, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	s := patchJSON.BorrowStream(nil)
	defer func() {
		if buf != nil {
			// On every path, an error or a panic included: the pooled
			// stream must not keep the request's memory.
			s.SetBuffer(nil)
		}
		patchJSON.ReturnStream(s)
	}()
	if buf != nil {
		s.SetBuffer(buf.b[:0])
	}
	s.WriteArrayStart()
	for i := range ops {
		op := &ops[i]
		if i > 0 {
			s.WriteMore()
		}
		s.WriteObjectStart()
		s.WriteRaw(`"op":`)
		writeString(s, op.Operation)
		s.WriteRaw(`,"path":`)
		writeString(s, op.Path)
		if op.Value != nil || op.Operation == "add" || op.Operation == "replace" {
			s.WriteRaw(`,"value":`)
			writeValue(s, op.Value)
		}
		s.WriteObjectEnd()
	}
	s.WriteArrayEnd()
	if s.Error != nil {
		return nil, s.Error
	}
	if buf == nil {
		return bytes.Clone(s.Buffer()), nil
	}
	buf.b = s.Buffer()
	return buf.b, nil
}

// patchBuffer is the memory one /inject request encodes its patch into. The
// patch has to live until controller-runtime has written the response, after
// Handle returns, so the buffer is taken from patchBuffers before the webhook
// runs and put back once it has answered (withPatchBuffer): a patch of a
// few KB per pod is then not garbage (docs/benchmarks.md, "/inject against
// its floor").
type patchBuffer struct{ b []byte }

var patchBuffers = sync.Pool{New: func() any { return new(patchBuffer) }}

// maxPooledPatch: a buffer grown past this (a pod with thousands of env
// entries) is not kept for the next request.
const maxPooledPatch = 256 << 10

type patchBufferKey struct{}

// writeValue writes an op's value. A pointer to a struct (a container,
// volume or probe) is encoded through its element's encoder: jsoniter's own
// pointer encoder allocates a box for every pointer it writes.
func writeValue(s *jsoniter.Stream, v any) {
	switch v := v.(type) {
	case map[string]string:
		writeStringMap(s, v)
		return
	case string:
		writeString(s, v)
		return
	case *string: // label and annotation values (injector.CreatePatch)
		if v == nil {
			s.WriteNil()
		} else {
			writeString(s, *v)
		}
		return
	}
	// (reflect2's slice and map types implement PtrType too.)
	if t, ok := reflect2.TypeOf(v).(reflect2.PtrType); ok && t.Kind() == reflect.Ptr && !t.Elem().LikePtr() {
		p := reflect2.PtrOf(v)
		if p == nil {
			s.WriteNil()
			return
		}
		patchJSON.EncoderOf(t.Elem()).Encode(p, s)
		return
	}
	s.WriteVal(v)
}

// writeString writes str quoted and escaped exactly as encoding/json does
// (injector.AppendJSONString), where jsoniter appends byte by byte and also
// escapes differently (\u0008 for \b, \ufffd for invalid UTF-8, which
// encoding/json replaces with the character itself).
func writeString(s *jsoniter.Stream, str string) {
	s.SetBuffer(injector.AppendJSONString(s.Buffer(), str))
}

// patchEncoders encodes strings, string maps (labels, annotations),
// resource lists, quantities and int-or-strings without per-entry
// allocations.
type patchEncoders struct{ jsoniter.DummyExtension }

var (
	quantityType     = reflect.TypeFor[resource.Quantity]()
	quantityPtrType  = reflect.TypeFor[*resource.Quantity]()
	stringMapType    = reflect.TypeFor[map[string]string]()
	resourceListType = reflect.TypeFor[corev1.ResourceList]()
	intOrStringType  = reflect.TypeFor[intstr.IntOrString]()
	intOrStringPtr   = reflect.TypeFor[*intstr.IntOrString]()
	envVarType       = reflect.TypeFor[corev1.EnvVar]()
	volumeType       = reflect.TypeFor[corev1.Volume]()
	volumeMountType  = reflect.TypeFor[corev1.VolumeMount]()
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
	case intOrStringType:
		return intOrStringEncoder{}
	case intOrStringPtr:
		return &jsoniter.OptionalEncoder{ValueEncoder: intOrStringEncoder{}}
	case envVarType:
		return envVarEncoder{}
	case volumeType:
		if volumeSourceFields != nil {
			return volumeEncoder{}
		}
	case volumeMountType:
		if volumeMountShape {
			return volumeMountEncoder{}
		}
	}
	if plainString(typ.Type1()) { // named string types (Protocol, PullPolicy, ...)
		return stringEncoder{}
	}
	return nil
}

// UpdateStructDescriptor gives the fields tagged omitzero (k8s.io's
// ObjectMeta.CreationTimestamp, in an ephemeral volume's
// volumeClaimTemplate) encoding/json's rule, which jsoniter does not know:
// such a field is left out when zero. jsoniter consults a field's IsEmpty
// only for omitempty, so an omitzero field without omitempty fails the
// encoding instead of writing what encoding/json omits.
func (*patchEncoders) UpdateStructDescriptor(sd *jsoniter.StructDescriptor) {
	for _, b := range sd.Fields {
		tag := b.Field.Tag().Get("json")
		_, opts, _ := strings.Cut(tag, ",")
		options := strings.Split(opts, ",")
		if !slices.Contains(options, "omitzero") {
			continue
		}
		b.Encoder = omitZeroEncoder{ValEncoder: b.Encoder, isZero: zeroCheck(b.Field.Type().Type1()),
			omitempty: slices.Contains(options, "omitempty"), field: sd.Type.String() + "." + b.Field.Name()}
	}
}

// omitZeroEncoder is a field encoder that is empty when the field is
// empty (omitempty) or zero (omitzero), as encoding/json omits it.
type omitZeroEncoder struct {
	jsoniter.ValEncoder
	isZero    func(unsafe.Pointer) bool
	omitempty bool
	field     string
}

func (e omitZeroEncoder) IsEmpty(ptr unsafe.Pointer) bool {
	return e.isZero(ptr) || (e.omitempty && e.ValEncoder.IsEmpty(ptr))
}

func (e omitZeroEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	if !e.omitempty && e.isZero(ptr) {
		s.Error = fmt.Errorf("%s: the patch encoder cannot omit a zero omitzero field not also tagged omitempty", e.field)
		return
	}
	e.ValEncoder.Encode(ptr, s)
}

type isZeroer interface{ IsZero() bool }

var isZeroerType = reflect.TypeFor[isZeroer]()

// zeroCheck is encoding/json's zero test for a field of type t (its
// typeFields): the type's IsZero method, through a pointer if needed, or
// else the zero value.
func zeroCheck(t reflect.Type) func(unsafe.Pointer) bool {
	field := func(p unsafe.Pointer) reflect.Value { return reflect.NewAt(t, p).Elem() }
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return func(p unsafe.Pointer) bool {
			v := field(p)
			return v.IsNil() || (v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil()) || v.Interface().(isZeroer).IsZero()
		}
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return func(p unsafe.Pointer) bool {
			v := field(p)
			return v.IsNil() || v.Interface().(isZeroer).IsZero()
		}
	case t.Implements(isZeroerType):
		return func(p unsafe.Pointer) bool { return field(p).Interface().(isZeroer).IsZero() }
	case reflect.PointerTo(t).Implements(isZeroerType):
		return func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Interface().(isZeroer).IsZero() }
	default:
		return func(p unsafe.Pointer) bool { return field(p).IsZero() }
	}
}

// DecorateEncoder replaces the HTML-escaping string encoder the config
// installs for the plain string type, which takes precedence over
// CreateEncoder.
func (*patchEncoders) DecorateEncoder(typ reflect2.Type, enc jsoniter.ValEncoder) jsoniter.ValEncoder {
	if plainString(typ.Type1()) {
		return stringEncoder{}
	}
	return enc
}

// plainString reports whether encoding/json writes values of t as quoted
// strings: string kinds, except json.Number, which is a number (the generic
// path's ops hold them: gomodules jsonpatch decodes with UseNumber), and
// types with their own JSON or text form. (jsoniter.Number is a plain
// string to encoding/json, unlike to jsoniter.)
func plainString(t reflect.Type) bool {
	if t.Kind() != reflect.String || t == jsonNumberType {
		return false
	}
	for _, t := range []reflect.Type{t, reflect.PointerTo(t)} {
		if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
			return false
		}
	}
	return true
}

var (
	jsonNumberType    = reflect.TypeFor[json.Number]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// stringEncoder writes any string-kinded value with writeString.
type stringEncoder struct{}

func (stringEncoder) IsEmpty(ptr unsafe.Pointer) bool { return len(*(*string)(ptr)) == 0 }

func (stringEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) { writeString(s, *(*string)(ptr)) }

// intOrStringEncoder writes intstr.IntOrString.MarshalJSON's output (which
// encodes its number or string with encoding/json, one allocation each).
type intOrStringEncoder struct{}

// IsEmpty is false: encoding/json never omits a struct value.
func (intOrStringEncoder) IsEmpty(unsafe.Pointer) bool { return false }

func (intOrStringEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	v := (*intstr.IntOrString)(ptr)
	switch v.Type {
	case intstr.Int:
		s.WriteInt32(v.IntVal)
	case intstr.String:
		writeString(s, v.StrVal)
	default:
		s.Error = fmt.Errorf("impossible IntOrString.Type %d", v.Type)
	}
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
	buf := append(s.Buffer(), '"')
	if v, ok := q.AsInt64(); ok && q.Format == resource.BinarySI && (v <= -1024 || v >= 1024) {
		buf = appendBinarySI(buf, v)
	} else {
		number, suffix := q.CanonicalizeBytes(buf[len(buf):])
		buf = append(append(buf, number...), suffix...)
	}
	s.SetBuffer(append(buf, '"'))
}

// appendBinarySI appends the canonical BinarySI form of the integer v (at
// least 1024 in magnitude) as Quantity.CanonicalizeBytes writes it (the
// largest power of 1024 that divides v as the suffix), without the
// allocation it makes there (Quantity.AsScale boxes the value): "128Mi" and
// "1Gi" are every proxy's memory request and limit.
func appendBinarySI(buf []byte, v int64) []byte {
	neg := v < 0
	if neg {
		v = -v
	}
	e := 0
	for v >= 1024 && v%1024 == 0 {
		v /= 1024
		e++
	}
	if neg {
		v = -v
	}
	return append(strconv.AppendInt(buf, v, 10), binarySuffixes[e]...)
}

// binarySuffixes are the BinarySI suffixes by power of 1024 (an int64 has
// at most six factors of 1024).
var binarySuffixes = [...]string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}

// envVarEncoder writes a corev1.EnvVar as encoding/json does (fields in
// struct order, value and valueFrom omitted when empty). The sidecar's
// environment is a quarter of a small pod's patch, nearly all of it names
// with a value or a fieldRef, which are written here directly; any other
// source goes through the generic encoder.
type envVarEncoder struct{}

func (envVarEncoder) IsEmpty(unsafe.Pointer) bool { return false }

func (envVarEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	e := (*corev1.EnvVar)(ptr)
	s.WriteRaw(`{"name":`)
	writeString(s, e.Name)
	if e.Value != "" {
		s.WriteRaw(`,"value":`)
		writeString(s, e.Value)
	}
	if src := e.ValueFrom; src != nil {
		s.WriteRaw(`,"valueFrom":`)
		if ref := src.FieldRef; ref != nil && *src == (corev1.EnvVarSource{FieldRef: ref}) {
			s.WriteRaw(`{"fieldRef":{`)
			if ref.APIVersion != "" {
				s.WriteRaw(`"apiVersion":`)
				writeString(s, ref.APIVersion)
				s.WriteRaw(`,`)
			}
			s.WriteRaw(`"fieldPath":`)
			writeString(s, ref.FieldPath)
			s.WriteRaw(`}}`)
		} else {
			envVarSourceEncoder().Encode(unsafe.Pointer(src), s)
		}
	}
	s.WriteObjectEnd()
}

var envVarSourceEncoder = sync.OnceValue(func() jsoniter.ValEncoder {
	return patchJSON.EncoderOf(reflect2.Type2(reflect.TypeFor[corev1.EnvVarSource]()))
})

// volumeEncoder writes a corev1.Volume as encoding/json does: the name,
// then the set fields of its inline VolumeSource in struct order. A source
// is a union of 30 omitempty pointers, one of them set: jsoniter's struct
// encoder tests each through two interface calls, which made the tiny pod's
// nine volumes (690 bytes of patch) cost nearly as much as istio-proxy
// (2.7 KB).
type volumeEncoder struct{}

func (volumeEncoder) IsEmpty(unsafe.Pointer) bool { return false }

func (volumeEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	v := (*corev1.Volume)(ptr)
	s.WriteRaw(`{"name":`)
	writeString(s, v.Name)
	src := unsafe.Pointer(&v.VolumeSource)
	for i := range volumeSourceFields {
		f := &volumeSourceFields[i]
		if p := *(*unsafe.Pointer)(unsafe.Add(src, f.offset)); p != nil {
			s.WriteRaw(f.key)
			if f.likePtr {
				// EncoderOf's encoder of a one-pointer struct takes the
				// pointer it holds (and boxes it): Ephemeral only.
				p = *(*unsafe.Pointer)(p)
			}
			f.encoder().Encode(p, s)
		}
	}
	s.WriteObjectEnd()
}

// sourceField is a field of corev1.VolumeSource: its offset, its key
// (`,"hostPath":`) and its pointee's encoder (looked up on first use: an
// encoder cannot be built while patchJSON builds the one of Volume).
type sourceField struct {
	offset  uintptr
	key     string
	likePtr bool // the pointee is a struct of one pointer (reflect2's LikePtr)
	encoder func() jsoniter.ValEncoder
}

// volumeSourceFields are VolumeSource's fields, or nil (and Volume keeps
// jsoniter's encoder) unless Volume is a name and an inline VolumeSource
// of omitempty pointers only, the shape volumeEncoder writes.
var volumeSourceFields = func() []sourceField {
	if volumeType.NumField() != 2 || volumeType.Field(0).Name != "Name" || volumeType.Field(0).Tag.Get("json") != "name" ||
		!volumeType.Field(1).Anonymous || volumeType.Field(1).Tag.Get("json") != ",inline" {
		return nil
	}
	src := volumeType.Field(1).Type
	fields := make([]sourceField, 0, src.NumField())
	for i := range src.NumField() {
		f := src.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() != reflect.Pointer || !f.IsExported() || name == "" || opts != "omitempty" || !plainKey(name) {
			return nil
		}
		// The pointee's encoder (the pointer type's would box every pointer
		// it is given, as writeValue notes).
		elem := reflect2.Type2(f.Type.Elem())
		fields = append(fields, sourceField{offset: f.Offset, key: `,"` + name + `":`, likePtr: elem.LikePtr(),
			encoder: sync.OnceValue(func() jsoniter.ValEncoder { return patchJSON.EncoderOf(elem) })})
	}
	return fields
}()

// volumeMountEncoder writes a corev1.VolumeMount as encoding/json does
// (fields in struct order, the omitempty ones only when set): the proxy's
// eight mounts cost jsoniter's struct encoder seven field encoders each.
type volumeMountEncoder struct{}

func (volumeMountEncoder) IsEmpty(unsafe.Pointer) bool { return false }

func (volumeMountEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	m := (*corev1.VolumeMount)(ptr)
	s.WriteRaw(`{"name":`)
	writeString(s, m.Name)
	if m.ReadOnly {
		s.WriteRaw(`,"readOnly":true`)
	}
	if m.RecursiveReadOnly != nil {
		s.WriteRaw(`,"recursiveReadOnly":`)
		writeString(s, string(*m.RecursiveReadOnly))
	}
	s.WriteRaw(`,"mountPath":`)
	writeString(s, m.MountPath)
	if m.SubPath != "" {
		s.WriteRaw(`,"subPath":`)
		writeString(s, m.SubPath)
	}
	if m.MountPropagation != nil {
		s.WriteRaw(`,"mountPropagation":`)
		writeString(s, string(*m.MountPropagation))
	}
	if m.SubPathExpr != "" {
		s.WriteRaw(`,"subPathExpr":`)
		writeString(s, m.SubPathExpr)
	}
	s.WriteObjectEnd()
}

// volumeMountShape: corev1.VolumeMount has exactly the fields, tags and
// kinds volumeMountEncoder writes (else it keeps jsoniter's encoder).
var volumeMountShape = func() bool {
	want := []struct{ name, tag string }{{"Name", "name"}, {"ReadOnly", "readOnly,omitempty"},
		{"RecursiveReadOnly", "recursiveReadOnly,omitempty"}, {"MountPath", "mountPath"}, {"SubPath", "subPath,omitempty"},
		{"MountPropagation", "mountPropagation,omitempty"}, {"SubPathExpr", "subPathExpr,omitempty"}}
	if volumeMountType.NumField() != len(want) {
		return false
	}
	for i, w := range want {
		f := volumeMountType.Field(i)
		t := f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if f.Name != w.name || f.Tag.Get("json") != w.tag || !(t.Kind() == reflect.Bool || plainString(t)) {
			return false
		}
	}
	return true
}()

// plainKey: a key encoding/json writes as it is.
func plainKey(k string) bool { return string(injector.AppendJSONString(nil, k)) == `"`+k+`"` }

// stringMapEncoder writes a map[string]string in key order, as encoding/json does.
type stringMapEncoder struct{}

func (stringMapEncoder) IsEmpty(ptr unsafe.Pointer) bool { return len(*(*map[string]string)(ptr)) == 0 }

func (stringMapEncoder) Encode(ptr unsafe.Pointer, s *jsoniter.Stream) {
	writeStringMap(s, *(*map[string]string)(ptr))
}

func writeStringMap(s *jsoniter.Stream, m map[string]string) {
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
		writeString(s, k)
		s.WriteRaw(":")
		writeString(s, m[k])
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
		writeString(s, string(k))
		s.WriteRaw(":")
		q := m[k]
		writeQuantity(s, &q)
	}
	s.WriteObjectEnd()
}
