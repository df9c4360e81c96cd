package validation

import (
	"strings"
	"testing"

	extensions "istio.io/api/extensions/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

func TestValidateWasmPlugin(t *testing.T) {
	runKindCases(t, validateWasmPlugin, []kindCase{
		{name: "full", spec: &extensions.WasmPlugin{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"istio": "ingressgateway"}},
			Url:      "file:///opt/filters/openid.wasm", Sha256: strings.Repeat("ab", 32),
			ImagePullSecret: "secret", PluginName: "openid",
			VmConfig: &extensions.VmConfig{Env: []*extensions.EnvVar{{Name: "a", ValueFrom: extensions.EnvValueSource_HOST},
				{Name: "b", Value: "x"}}},
			Match: []*extensions.WasmPlugin_TrafficSelector{{Ports: []*typev1beta1.PortSelector{{Number: 8080}}}}}},
		{name: "oci and schemeless urls", spec: &extensions.WasmPlugin{Url: "oci://registry:5000/openid:latest"}},
		{name: "url without scheme", spec: &extensions.WasmPlugin{Url: "test"}},
		{name: "url required", spec: &extensions.WasmPlugin{}, errs: []string{"spec.url: Required value"}},
		{name: "bad url", spec: &extensions.WasmPlugin{Url: "#%blah$#@"},
			errs: []string{"spec.url: Invalid value: \"#%blah$#@\": url must have schema one of [http, https, file, oci]"}},
		// Stricter than Istio (docs/compatibility.md): Istio's strictParseURL retries a
		// URL it cannot parse as "http://" + url, and "http://http://a b/x" parses.
		{name: "space in host", spec: &extensions.WasmPlugin{Url: "http://a b/x"},
			errs: []string{`spec.url: Invalid value: "http://a b/x": url must have schema one of [http, https, file, oci]: invalid url`}},
		{name: "bad scheme", spec: &extensions.WasmPlugin{Url: "fake://example.com"},
			errs: []string{`url must have schema one of [http, https, file, oci], found "fake"`}},
		{name: "bad sha", spec: &extensions.WasmPlugin{Url: "http://test", Sha256: strings.Repeat("AB", 32)},
			errs: []string{"spec.sha256"}},
		{name: "long names", spec: &extensions.WasmPlugin{Url: "http://test", ImagePullSecret: strings.Repeat("a", 254), PluginName: strings.Repeat("a", 257)},
			errs: []string{"spec.imagePullSecret", "spec.pluginName"}},
		{name: "env", spec: &extensions.WasmPlugin{Url: "http://test", VmConfig: &extensions.VmConfig{Env: []*extensions.EnvVar{
			{Name: "a"}, {Name: "a"}, {Name: ""}, nil, {Name: "h", ValueFrom: extensions.EnvValueSource_HOST, Value: "v"}, {Name: strings.Repeat("n", 257)}}}},
			errs: []string{`spec.vmConfig.env[1].name: Invalid value: "a": duplicate env name (Duplicate value)`, "spec.vmConfig.env[2].name: Required value",
				"spec.vmConfig.env[3]: Required value", "spec.vmConfig.env[4].value: Invalid value: \"v\": value may only be set when valueFrom is INLINE",
				"spec.vmConfig.env[5].name"}},
		{name: "match ports", spec: &extensions.WasmPlugin{Url: "http://test", Match: []*extensions.WasmPlugin_TrafficSelector{
			nil, {Ports: []*typev1beta1.PortSelector{{}, nil, {Number: 70000}}}}},
			errs: []string{"spec.match[0]: Required value", "spec.match[1].ports[0].number: Invalid value: 0", "spec.match[1].ports[1]: Required value",
				"spec.match[1].ports[2].number"}},
		{name: "selector wildcard", spec: &extensions.WasmPlugin{Url: "http://test",
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"istio": "bar*"}}},
			errs: []string{"wildcard is not supported in selector"}},
		{name: "targetRefs gateway", spec: &extensions.WasmPlugin{Url: "http://test",
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}}},
	})
}

func TestWasmPluginYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid", doc: `
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: openid, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  url: oci://private-registry:5000/openid-connect/openid:latest
  phase: AUTHN
`},
		{name: "bad scheme", doc: `
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: openid, namespace: istio-system}
spec:
  url: "fake://example.com"
`, errs: []string{"WasmPlugin istio-system/openid", "spec.url", "url must have schema one of"}},
	})
}
