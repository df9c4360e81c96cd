package validation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/apimachinery/pkg/runtime"
)

// decodeSpec decodes the (pruned) spec into its istio.io/api message.
func decodeSpec(raw any, msg proto.Message) error {
	if fastDecode(raw, msg.ProtoReflect()) == nil {
		return nil
	}
	proto.Reset(msg)
	return decodeSpecJSON(raw, msg)
}

// decodeSpecJSON is the reference decoder: back to JSON, then protojson.
func decodeSpecJSON(raw any, msg proto.Message) error {
	md := msg.ProtoReflect().Descriptor()
	// Rewrite on a copy, and only when needed: the caller's object is not ours.
	if normalizeDurations(md, raw, false) {
		raw = runtime.DeepCopyJSONValue(raw)
		normalizeDurations(md, raw, true)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	// Unknown fields were already reported with their paths by pruning.
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, msg)
}

const durationFullName = "google.protobuf.Duration"

// normalizeDurations rewrites Go-style duration strings ("1500ms", "1m") in
// google.protobuf.Duration fields to the seconds form protojson requires
// ("1.5s"). The CRD schema (CEL duration()) accepts both forms, so the API
// server stores both; we decode what it accepts. Invalid strings are left for
// the decoder to report. With apply=false it only reports whether a rewrite
// is needed; with apply=true it rewrites v in place.
func normalizeDurations(md protoreflect.MessageDescriptor, v any, apply bool) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	changed := false
	fields := md.Fields()
	for k, val := range obj {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k))
		}
		if fd == nil || fd.Kind() != protoreflect.MessageKind {
			continue
		}
		if fd.IsMap() {
			vd := fd.MapValue()
			if vd.Kind() != protoreflect.MessageKind {
				continue
			}
			if m, ok := val.(map[string]any); ok {
				for mk, mv := range m {
					if nv, c := normalizeValue(vd.Message(), mv, apply); c {
						changed = true
						if apply {
							m[mk] = nv
						}
					}
				}
			}
			continue
		}
		if fd.IsList() {
			if l, ok := val.([]any); ok {
				for i := range l {
					if nv, c := normalizeValue(fd.Message(), l[i], apply); c {
						changed = true
						if apply {
							l[i] = nv
						}
					}
				}
			}
			continue
		}
		if nv, c := normalizeValue(fd.Message(), val, apply); c {
			changed = true
			if apply {
				obj[k] = nv
			}
		}
		if changed && !apply {
			return true
		}
	}
	return changed
}

func normalizeValue(md protoreflect.MessageDescriptor, v any, apply bool) (any, bool) {
	if md.FullName() == durationFullName {
		if s, ok := v.(string); ok {
			if n := secondsForm(s); n != s {
				return n, true
			}
		}
		return v, false
	}
	return v, normalizeDurations(md, v, apply)
}

// secondsForm converts "1500ms" to "1.5s"; strings time.ParseDuration rejects are returned unchanged.
func secondsForm(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	out := fmt.Sprintf("%d.%09d", int64(d/time.Second), int64((d % time.Second).Abs()))
	if d < 0 && d > -time.Second {
		out = "-" + out
	}
	return strings.TrimSuffix(strings.TrimRight(out, "0"), ".") + "s"
}
