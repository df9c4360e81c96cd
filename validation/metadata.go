package validation

import (
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Annotations with a meaning for validation (Istio's validateMetadata).
const (
	annotationDryRun       = "istio.io/dry-run"
	annotationAlwaysReject = "internal.istio.io/webhook-always-reject"
	annotationParents      = "internal.istio.io/parents"
	annotationParentNS     = "internal.istio.io/parent-namespace"
)

// validateMetadata applies the checks every kind gets before its own rules
// (Istio's validateMetadata in pkg/config/validation/validation.go), plus the API server's name rules so
// offline results agree with kubectl apply.
func validateMetadata(kind string, meta metav1.ObjectMeta, f *Findings) {
	p := field.NewPath("metadata")
	switch {
	case meta.Name == "" && meta.GenerateName == "":
		f.Required(p.Child("name"), "name is required")
	case meta.Name == "":
		// The API server fills name from generateName before admission, so only a
		// file can get here; kubectl apply refuses it and the policy loader could
		// not name the policy in its verdicts.
		f.Required(p.Child("name"), "name is required; generateName alone is honoured only by kubectl create")
	default:
		for _, msg := range k8svalidation.IsDNS1123Subdomain(meta.Name) {
			f.Error(p.Child("name"), meta.Name, msg)
		}
	}
	if meta.Namespace != "" {
		for _, msg := range k8svalidation.IsDNS1123Label(meta.Namespace) {
			f.Error(p.Child("namespace"), meta.Namespace, msg)
		}
	}
	validateLabels(p.Child("labels"), meta.Labels, f)

	ap := p.Child("annotations")
	if _, ok := meta.Annotations[annotationAlwaysReject]; ok {
		f.Error(ap.Key(annotationAlwaysReject), field.OmitValueType{}, fmt.Sprintf("%q annotation found, rejecting", annotationAlwaysReject))
	}
	for _, a := range []string{annotationParents, annotationParentNS} {
		if _, ok := meta.Annotations[a]; ok {
			f.Error(ap.Key(a), field.OmitValueType{}, fmt.Sprintf("annotation %s may not be set by users", a))
		}
	}
	if v, ok := meta.Annotations[annotationDryRun]; ok {
		if kind != "AuthorizationPolicy" {
			f.Error(ap.Key(annotationDryRun), v, fmt.Sprintf("%s/%s has unsupported annotation %s, please remove the annotation", meta.Namespace, meta.Name, annotationDryRun))
		} else if _, err := strconv.ParseBool(v); err != nil {
			f.Error(ap.Key(annotationDryRun), v, "must be a boolean (true or false)")
		}
		// The ALLOW/DENY action restriction needs the spec: AuthorizationPolicy's own validator checks it.
	}
}
