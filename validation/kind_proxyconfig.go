package validation

import (
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// pcImageTypes are the proxy image variants Istio publishes.
var pcImageTypes = map[string]bool{"default": true, "debug": true, "distroless": true}

// validateProxyConfig implements Istio's ValidateProxyConfig
// (pkg/config/validation/validation.go) and closes a gap of it (Istio checks
// only concurrency; docs/compatibility.md "Stricter than Istio"): environment variable names must be
// valid (the injected container would be rejected otherwise), and an unknown
// image type is a warning.
func validateProxyConfig(_ metav1.ObjectMeta, pc *networkingv1beta1.ProxyConfig, f *Findings) {
	sp := field.NewPath("spec")
	validateWorkloadSelector(sp.Child("selector"), pc.GetSelector(), f)
	if c := pc.GetConcurrency(); c != nil && c.GetValue() < 0 {
		f.Error(sp.Child("concurrency"), int64(c.GetValue()), "concurrency must be greater than or equal to 0 (0 means one worker per CPU)")
	}
	ep := sp.Child("environmentVariables")
	for _, k := range sortedKeys(pc.GetEnvironmentVariables()) {
		if errs := k8svalidation.IsEnvVarName(k); len(errs) > 0 {
			f.Error(ep.Key(k), k, "invalid environment variable name: "+errs[0])
		}
	}
	if t := pc.GetImage().GetImageType(); t != "" && !pcImageTypes[t] {
		f.Warn(sp.Child("image", "imageType"), t, "unknown image type: Istio publishes \"default\", \"debug\" and \"distroless\"")
	}
}
