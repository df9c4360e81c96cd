package analysis

import (
	"strings"

	"github.com/meshguard/meshguard/validation"
)

// Codes for single-object validation warnings, as istioctl analyze reports
// the warnings of Istio's validation (pkg/config/analysis/msg/messages.yaml).
const (
	VirtualServiceUnreachableRule  = "IST0130"
	VirtualServiceIneffectiveMatch = "IST0131"
	SchemaWarning                  = "IST0133"
)

func init() {
	Types[VirtualServiceUnreachableRule] = MessageType{VirtualServiceUnreachableRule, "VirtualServiceUnreachableRule", Warning}
	Types[VirtualServiceIneffectiveMatch] = MessageType{VirtualServiceIneffectiveMatch, "VirtualServiceIneffectiveMatch", Info}
	Types[SchemaWarning] = MessageType{SchemaWarning, "SchemaWarning", Warning}
}

// WarningCode names a validation warning with Istio's analyzer code. The
// unreachable-rule warnings of validation/kind_virtualservice.go
// warnUnreachableHTTP are recognised by their text (validation.Problem has no
// code); every other warning is IST0133 SchemaWarning.
func WarningCode(p validation.Problem) string {
	switch {
	case strings.HasPrefix(p.Message, "match is not used"):
		return VirtualServiceIneffectiveMatch
	case strings.HasPrefix(p.Message, "route without matches defined before other routes"),
		p.Message == "all matches used by prior rules":
		return VirtualServiceUnreachableRule
	}
	return SchemaWarning
}

// ValidationMessages turns one object's validation errors (IST0106) and
// warnings (IST0130/IST0131/IST0133) into analyzer messages.
func ValidationMessages(o Object, errs, warns []validation.Problem) []Message {
	var out []Message
	add := func(code string, p validation.Problem) {
		t := Types[code]
		out = append(out, Message{Code: code, Name: t.Name, Level: t.Level, Kind: o.Kind, Namespace: o.Namespace,
			Object: o.Name, Origin: o.Origin, Field: p.Field, Message: p.Message})
	}
	for _, p := range errs {
		add(SchemaValidationError, p)
	}
	for _, p := range warns {
		add(WarningCode(p), p)
	}
	return out
}
