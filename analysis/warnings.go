package analysis

import (
	"fmt"

	"github.com/meshguard/meshguard/validation"
)

// Codes for single-object validation warnings, as istioctl analyze reports
// the warnings of Istio's validation (pkg/config/analysis/msg/messages.yaml).
const (
	VirtualServiceUnreachableRule  = string(validation.CodeVirtualServiceUnreachableRule)
	VirtualServiceIneffectiveMatch = string(validation.CodeVirtualServiceIneffectiveMatch)
	SchemaWarning                  = "IST0133"
)

func init() {
	Types[VirtualServiceUnreachableRule] = MessageType{VirtualServiceUnreachableRule, "VirtualServiceUnreachableRule", Warning}
	Types[VirtualServiceIneffectiveMatch] = MessageType{VirtualServiceIneffectiveMatch, "VirtualServiceIneffectiveMatch", Info}
	Types[SchemaWarning] = MessageType{SchemaWarning, "SchemaWarning", Warning}
}

// WarningCode names a validation warning with Istio's analyzer code: the
// code validation gives the finding (validation.Problem.Code, e.g. IST0130
// and IST0131 for VirtualService unreachable rules and ineffective matches),
// else IST0133 SchemaWarning.
func WarningCode(p validation.Problem) string {
	if p.Code != "" {
		if _, known := Types[string(p.Code)]; known {
			return string(p.Code)
		}
	}
	return SchemaWarning
}

// analyzerTemplates are the message templates of Istio's analyzer messages
// for coded validation warnings (pkg/config/analysis/msg/messages.yaml); the
// webhook's text of the same finding is validation's Problem.Message.
var analyzerTemplates = map[string]struct {
	format string
	args   int
}{
	VirtualServiceUnreachableRule:  {"VirtualService rule %v not used (%s).", 2},
	VirtualServiceIneffectiveMatch: {"VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v).", 3},
}

// warningText is the analyzer message text of a coded warning (istioctl
// analyze's wording), or the validation message for any other warning.
func warningText(code string, p validation.Problem) string {
	t, ok := analyzerTemplates[code]
	if !ok || len(p.Args) != t.args {
		return p.Message
	}
	args := make([]any, len(p.Args))
	for i, a := range p.Args {
		args[i] = a
	}
	return fmt.Sprintf(t.format, args...)
}

// ValidationMessages turns one object's validation errors (IST0106) and
// warnings (IST0130/IST0131/IST0133) into analyzer messages.
func ValidationMessages(o Object, errs, warns []validation.Problem) []Message {
	var out []Message
	add := func(code string, p validation.Problem, text string) {
		t := Types[code]
		out = append(out, Message{Code: code, Name: t.Name, Level: t.Level, Kind: o.Kind, Namespace: o.Namespace,
			Object: o.Name, Origin: o.Origin, Field: p.Field, Message: text})
	}
	for _, p := range errs {
		add(SchemaValidationError, p, p.Message)
	}
	for _, p := range warns {
		code := WarningCode(p)
		add(code, p, warningText(code, p))
	}
	return out
}
