// Package validation checks Istio mesh configuration objects (VirtualService,
// DestinationRule, AuthorizationPolicy, ...) the way Istio's validating webhook
// does (spec validation.md §2–§3), plus the CRD OpenAPI/CEL rules and the gaps
// listed in spec §9. It is pure logic: callers hand it bytes or objects and get
// field-path findings back; the webhook and the CLI are thin adapters on top.
package validation

import (
	"fmt"
	"sort"
	"sync"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Findings collects the problems found in one object. Paths are full, starting
// at "spec" (or "metadata"). Errors deny the object; warnings are returned to
// the user but the object is accepted (spec §2.3, Istio's (warning, error) pair).
type Findings struct {
	Errors   field.ErrorList
	Warnings field.ErrorList
}

// Error records a problem that makes the object invalid.
func (f *Findings) Error(path *field.Path, value any, msg string) {
	f.Errors = append(f.Errors, field.Invalid(path, printable(value), msg))
}

// Warn records a suspicious but legal setting.
func (f *Findings) Warn(path *field.Path, value any, msg string) {
	f.Warnings = append(f.Warnings, field.Invalid(path, printable(value), msg))
}

// Required records a missing mandatory field.
func (f *Findings) Required(path *field.Path, msg string) {
	f.Errors = append(f.Errors, field.Required(path, msg))
}

// Add merges other's findings into f.
func (f *Findings) Add(other Findings) {
	f.Errors = append(f.Errors, other.Errors...)
	f.Warnings = append(f.Warnings, other.Warnings...)
}

// HasErrors reports whether any error was recorded.
func (f *Findings) HasErrors() bool { return len(f.Errors) > 0 }

// printable keeps messages readable: whole proto messages, maps and slices are
// not echoed back (the field path already says where the problem is).
func printable(v any) any {
	switch t := v.(type) {
	case nil, proto.Message:
		return field.OmitValueType{}
	case string, bool, int, int32, int64, uint32, uint64, float32, float64:
		return v
	case fmt.Stringer:
		return t.String()
	default:
		return field.OmitValueType{}
	}
}

// kindValidator checks one kind's spec. meta gives name/namespace/labels/
// annotations; spec is the decoded istio.io/api message (the same Go type for
// every served version of the kind, spec §1).
type kindValidator func(meta metav1.ObjectMeta, spec proto.Message, f *Findings)

var (
	registryMu sync.RWMutex
	registry   = map[string]kindValidator{}
)

// register installs the validator for a kind (e.g. "ServiceEntry"); it applies
// to all served versions. Called from the init() of each kind's file with the
// kind's own message type, so the type check happens here, once.
// Registering a kind twice is a programming error caught at start-up.
func register[T proto.Message](kind string, v func(meta metav1.ObjectMeta, spec T, f *Findings)) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[kind]; dup {
		panic(fmt.Sprintf("validation: kind %s registered twice", kind))
	}
	registry[kind] = func(meta metav1.ObjectMeta, spec proto.Message, f *Findings) {
		typed, ok := spec.(T)
		if !ok {
			f.Error(field.NewPath("spec"), nil, fmt.Sprintf("internal error: %s spec has type %T", kind, spec))
			return
		}
		v(meta, typed, f)
	}
}

// rawValidator checks a kind's spec as decoded JSON, before the proto decode,
// for rules the proto cannot express (e.g. an empty list vs an absent one).
type rawValidator func(meta metav1.ObjectMeta, spec map[string]any, f *Findings)

var rawRegistry = map[string]rawValidator{}

// registerRaw installs the raw-spec validator of a kind; like register it
// panics on duplicates. Called from init().
func registerRaw(kind string, v rawValidator) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := rawRegistry[kind]; dup {
		panic(fmt.Sprintf("validation: raw validator for kind %s registered twice", kind))
	}
	rawRegistry[kind] = v
}

// rawValidatorFor returns the registered raw-spec validator of a kind, or nil.
func rawValidatorFor(kind string) rawValidator {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return rawRegistry[kind]
}

// validatorFor returns the registered validator of a kind, or nil.
func validatorFor(kind string) kindValidator {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return registry[kind]
}

// RegisteredKinds lists the kinds with a spec validator, sorted.
func RegisteredKinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
