package validation

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// presenceValues are the values meshguard accepts for
// RequestAuthentication spec.jwtRules[].presence. The field is newer than the
// pinned istio.io/api (v1.31.1 has neither the proto field nor its schema),
// and Istio's conformance corpus, taken from a newer Istio, uses it; see
// docs/compatibility.md.
var presenceValues = []string{"OPTIONAL", "REQUIRED"}

// applySchemaOverlays extends a pinned Istio CRD with the fields that a newer
// Istio accepts, so that config written for it is validated (enum and all)
// rather than rejected as unknown. The proto decoder discards such fields:
// no rule of ours reads them.
func applySchemaOverlays(crd *apiextensionsv1.CustomResourceDefinition) {
	if crd.Name != "requestauthentications.security.istio.io" {
		return
	}
	enum := make([]apiextensionsv1.JSON, len(presenceValues))
	for i, v := range presenceValues {
		enum[i] = apiextensionsv1.JSON{Raw: []byte(`"` + v + `"`)}
	}
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		spec, ok := v.Schema.OpenAPIV3Schema.Properties["spec"]
		if !ok {
			continue
		}
		rules, ok := spec.Properties["jwtRules"]
		if !ok || rules.Items == nil || rules.Items.Schema == nil {
			continue
		}
		if _, exists := rules.Items.Schema.Properties["presence"]; exists {
			continue // the pinned CRD has it: it wins
		}
		rules.Items.Schema.Properties["presence"] = apiextensionsv1.JSONSchemaProps{
			Type:        "string",
			Description: "Whether a JWT matching this rule must be present (Istio >= 1.32; overlay added by meshguard).",
			Enum:        enum,
		}
		spec.Properties["jwtRules"] = rules
		v.Schema.OpenAPIV3Schema.Properties["spec"] = spec
	}
}
