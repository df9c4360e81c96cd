package validation

import (
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

func TestValidateProxyConfig(t *testing.T) {
	runKindCases(t, validateProxyConfig, []kindCase{
		{name: "full", spec: &networkingv1beta1.ProxyConfig{Concurrency: wrapperspb.Int32(2),
			Selector:             &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "a"}},
			EnvironmentVariables: map[string]string{"ISTIO_META_FOO": "x"},
			Image:                &networkingv1beta1.ProxyImage{ImageType: "distroless"}}},
		{name: "concurrency zero", spec: &networkingv1beta1.ProxyConfig{Concurrency: wrapperspb.Int32(0)}},
		{name: "negative concurrency", spec: &networkingv1beta1.ProxyConfig{Concurrency: wrapperspb.Int32(-1)},
			errs: []string{"spec.concurrency: Invalid value: -1: concurrency must be greater than or equal to 0"}},
		{name: "empty selector key", spec: &networkingv1beta1.ProxyConfig{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"": "bar"}}},
			errs: []string{"spec.selector.matchLabels[]"}},
		{name: "empty selector warns", spec: &networkingv1beta1.ProxyConfig{Selector: &typev1beta1.WorkloadSelector{}},
			warns: []string{"workload selector specified without labels"}},
		{name: "bad env name", spec: &networkingv1beta1.ProxyConfig{EnvironmentVariables: map[string]string{"1BAD=": "x"}},
			errs: []string{"spec.environmentVariables[1BAD=]: Invalid value: \"1BAD=\": invalid environment variable name"}},
		{name: "unknown image type warns", spec: &networkingv1beta1.ProxyConfig{Image: &networkingv1beta1.ProxyImage{ImageType: "foo"}},
			warns: []string{"spec.image.imageType: Invalid value: \"foo\": unknown image type"}},
	})
}
