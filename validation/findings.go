// Package validation checks Istio mesh configuration objects (VirtualService,
// DestinationRule, AuthorizationPolicy, ...) the way Istio's validating webhook
// does (pkg/config/validation: validateMetadata, then the kind's Validate<Kind>),
// plus the CRD OpenAPI/CEL rules and the gaps listed in docs/compatibility.md
// "Stricter than Istio". It is pure logic: callers hand it bytes or objects and get
// field-path findings back; the webhook and the CLI are thin adapters on top.
package validation

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Findings collects the problems found in one object. Paths are full, starting
// at "spec" (or "metadata"). Errors deny the object; warnings are returned to
// the user but the object is accepted (Istio's validators return a (warning, error) pair).
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

// Code names a finding with the code of the Istio analyzer message that
// reports it (e.g. "IST0130"), so `meshguard analyze` reports it under that
// code without reading its text.
type Code string

// originCode marks a warning recorded by WarnCode: the field.Error's Origin
// holds originCode+code and its BadValue the message's arguments (a
// warning's BadValue is otherwise unused, see problems).
const originCode = "istio-analyzer:"

// WarnCode records a warning that Istio's analyzers report under code,
// with the arguments of that analyzer message's template.
func (f *Findings) WarnCode(path *field.Path, code Code, args []string, msg string) {
	f.Warnings = append(f.Warnings, &field.Error{Type: field.ErrorTypeInvalid, Field: path.String(),
		BadValue: args, Detail: msg, Origin: originCode + string(code)})
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
