package analysis

import (
	"google.golang.org/protobuf/encoding/prototext"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Codes of Istio's EnvoyFilter patch analyzer (Istio:
// pkg/config/analysis/analyzers/envoyfilter/envoyfilter.go
// EnvoyPatchAnalyzer), names and levels as in
// pkg/config/analysis/msg/messages.yaml.
const (
	EnvoyFilterUsesRelativeOperation                 = "IST0151"
	EnvoyFilterUsesReplaceOperationIncorrectly       = "IST0152"
	EnvoyFilterUsesAddOperationIncorrectly           = "IST0153"
	EnvoyFilterUsesRemoveOperationIncorrectly        = "IST0154"
	EnvoyFilterUsesRelativeOperationWithProxyVersion = "IST0155"
)

// envoyFilterTexts are the messages' templates (they take no parameters),
// as istioctl prints them (messages.gen.go; IST0151's "INSERT_FIRST of ADD"
// is Istio's wording).
var envoyFilterTexts = map[string]string{
	EnvoyFilterUsesRelativeOperation:                 "This EnvoyFilter does not have a priority and has a relative patch operation set which can cause the EnvoyFilter not to be applied. Using the INSERT_FIRST of ADD option or setting the priority may help in ensuring the EnvoyFilter is applied correctly.",
	EnvoyFilterUsesReplaceOperationIncorrectly:       "The REPLACE operation is only valid for HTTP_FILTER and NETWORK_FILTER.",
	EnvoyFilterUsesAddOperationIncorrectly:           "The ADD operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE.",
	EnvoyFilterUsesRemoveOperationIncorrectly:        "The REMOVE operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE.",
	EnvoyFilterUsesRelativeOperationWithProxyVersion: "This EnvoyFilter does not have a priority and has a relative patch operation (NSTERT_BEFORE/AFTER, REPLACE, MERGE, DELETE) and proxyVersion set which can cause the EnvoyFilter not to be applied during an upgrade. Using the INSERT_FIRST or ADD option or setting the priority may help in ensuring the EnvoyFilter is applied correctly.",
}

func init() {
	Types[EnvoyFilterUsesRelativeOperation] = MessageType{EnvoyFilterUsesRelativeOperation, "EnvoyFilterUsesRelativeOperation", Warning}
	Types[EnvoyFilterUsesReplaceOperationIncorrectly] = MessageType{EnvoyFilterUsesReplaceOperationIncorrectly, "EnvoyFilterUsesReplaceOperationIncorrectly", Error}
	Types[EnvoyFilterUsesAddOperationIncorrectly] = MessageType{EnvoyFilterUsesAddOperationIncorrectly, "EnvoyFilterUsesAddOperationIncorrectly", Error}
	Types[EnvoyFilterUsesRemoveOperationIncorrectly] = MessageType{EnvoyFilterUsesRemoveOperationIncorrectly, "EnvoyFilterUsesRemoveOperationIncorrectly", Error}
	Types[EnvoyFilterUsesRelativeOperationWithProxyVersion] = MessageType{EnvoyFilterUsesRelativeOperationWithProxyVersion, "EnvoyFilterUsesRelativeOperationWithProxyVersion", Warning}
}

// patchName is what Istio's analyzer calls a patch's instance name: the
// "name" of the patch value when it has one (Istio compares the protobuf
// text of that structpb.Value, so a name of another JSON type is compared as
// written), else the filter name of the listener match. The two sources are
// kept apart: Istio compares the text of a value with a plain filter name,
// which could only meet a filter name spelled as protobuf text.
type patchName struct {
	fromValue bool
	name      string
}

// instanceName is Istio's EnvoyPatchAnalyzer.analyzeEnvoyFilterPatch naming
// of a patch: the empty name when the patch has no value (or a value of no
// fields), the value's "name", else the match's listener filter chain
// filter name (empty without one).
func instanceName(p *networking.EnvoyFilter_EnvoyConfigObjectPatch) patchName {
	fields := p.GetPatch().GetValue().GetFields()
	if fields == nil {
		return patchName{}
	}
	if v, ok := fields["name"]; ok && v != nil {
		return patchName{fromValue: true, name: prototext.Format(v)}
	}
	return patchName{name: p.GetMatch().GetListener().GetFilterChain().GetFilter().GetName()}
}

// envoyFilterPatches is Istio's EnvoyPatchAnalyzer over the EnvoyFilters
// of objs, in their order. For each patch (up to the first without a
// patch, where Istio's analyzer stops for that EnvoyFilter):
//   - ADD on ROUTE_CONFIGURATION or HTTP_ROUTE is IST0153 (ignored);
//   - REMOVE on those is IST0154, else a relative operation;
//   - REPLACE on anything but HTTP_FILTER or NETWORK_FILTER is IST0152,
//     else a relative operation;
//   - INSERT_BEFORE and INSERT_AFTER are relative operations;
//   - MERGE, INSERT_FIRST and ADD elsewhere are not judged.
//
// A relative operation in an EnvoyFilter without priority is IST0151, or
// IST0155 when an earlier patch (of this or an earlier EnvoyFilter, in any
// namespace) with match.proxy.proxyVersion set has the same instance name
// (instanceName). Istio takes the EnvoyFilters in its config store's order
// (a map's, so unspecified); meshguard takes them in input order.
//
// Each message names the patch's operation as its field; istioctl gives each
// the line of the patch (its value), and deduplicates messages that print
// alike (diag.Messages.SortedDedupedCopy), which meshguard's distinct
// fields never are, as the lines of a file are not.
func envoyFilterPatches(objs []Object) []Message {
	var out []Message
	proxyVersioned := map[patchName]bool{}
	for _, o := range objs {
		ef, ok := o.Spec.(*networking.EnvoyFilter)
		if !ok || ef == nil {
			continue
		}
		msg := func(code string, i int) Message {
			return newMessage(o, code, field.NewPath("spec", "configPatches").Index(i).Child("patch", "operation").String(), envoyFilterTexts[code])
		}
		relative := func(i int, name patchName) {
			if ef.GetPriority() != 0 {
				return
			}
			code := EnvoyFilterUsesRelativeOperation
			if proxyVersioned[name] {
				code = EnvoyFilterUsesRelativeOperationWithProxyVersion
			}
			out = append(out, msg(code, i))
		}
		for i, p := range ef.GetConfigPatches() {
			if p.GetPatch() == nil {
				break
			}
			name := instanceName(p)
			routeLevel := p.GetApplyTo() == networking.EnvoyFilter_ROUTE_CONFIGURATION || p.GetApplyTo() == networking.EnvoyFilter_HTTP_ROUTE
			switch p.GetPatch().GetOperation() {
			case networking.EnvoyFilter_Patch_ADD:
				if routeLevel {
					out = append(out, msg(EnvoyFilterUsesAddOperationIncorrectly, i))
				}
			case networking.EnvoyFilter_Patch_REMOVE:
				if routeLevel {
					out = append(out, msg(EnvoyFilterUsesRemoveOperationIncorrectly, i))
				} else {
					relative(i, name)
				}
			case networking.EnvoyFilter_Patch_REPLACE:
				if p.GetApplyTo() != networking.EnvoyFilter_NETWORK_FILTER && p.GetApplyTo() != networking.EnvoyFilter_HTTP_FILTER {
					out = append(out, msg(EnvoyFilterUsesReplaceOperationIncorrectly, i))
				} else {
					relative(i, name)
				}
			case networking.EnvoyFilter_Patch_INSERT_BEFORE, networking.EnvoyFilter_Patch_INSERT_AFTER:
				relative(i, name)
			}
			if p.GetMatch().GetProxy().GetProxyVersion() != "" {
				proxyVersioned[name] = true
			}
		}
	}
	return out
}
