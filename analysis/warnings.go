package analysis

import (
	"fmt"

	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
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
// (pkg/config/analysis/msg/messages.yaml) for the findings whose webhook text
// (validation's Problem.Message, crossref's Finding.Message) is more specific
// than istioctl's: analyze prints istioctl's text from the finding's Args.
var analyzerTemplates = map[string]struct {
	format string
	args   int
}{
	VirtualServiceUnreachableRule:           {"VirtualService rule %v not used (%s).", 2},
	VirtualServiceIneffectiveMatch:          {"VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v).", 3},
	crossref.CodeReferencedResourceNotFound: {"Referenced %s not found: %q", 2},
	crossref.CodeUnknownDestinationRuleHost: {"The host %s defined in the DestinationRule does not match any services in the mesh.", 1},
	SchemaValidationError:                   {"Schema validation error: %v", 1},
	SchemaWarning:                           {"Schema validation warning: %v", 1},
}

// analyzerText is istioctl analyze's text of a finding of code with the
// template arguments args, or text (the finding's own wording) when the code
// has no template or args do not fit it.
func analyzerText(code string, args []string, text string) string {
	t, ok := analyzerTemplates[code]
	if !ok || len(args) != t.args {
		return text
	}
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	return fmt.Sprintf(t.format, a...)
}

// ValidationMessages turns one object's validation errors (IST0106) and
// warnings (IST0130/IST0131/IST0133) into analyzer messages.
func ValidationMessages(o Object, errs, warns []validation.Problem) []Message {
	var out []Message
	add := func(code string, p validation.Problem, text string) {
		out = append(out, newMessage(o, code, p.Field, text))
	}
	// The error of IST0106 and IST0133 is validation's, which locates the
	// problem by its field path where istioctl gives a line number.
	schemaError := func(p validation.Problem) []string {
		if p.Field == "" {
			return []string{p.Message}
		}
		return []string{p.Field + ": " + p.Message}
	}
	for _, p := range errs {
		add(SchemaValidationError, p, analyzerText(SchemaValidationError, schemaError(p), p.Message))
	}
	for _, p := range warns {
		code, args := WarningCode(p), p.Args
		if code == SchemaWarning {
			args = schemaError(p)
		}
		add(code, p, analyzerText(code, args, p.Message))
	}
	return out
}
