package validation

import (
	"strings"
	"testing"

	extensions "istio.io/api/extensions/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

func TestValidateTrafficExtension(t *testing.T) {
	lua := func(code string) *extensions.TrafficExtension_Lua {
		return &extensions.TrafficExtension_Lua{Lua: &extensions.LuaConfig{InlineCode: code}}
	}
	wasm := func(w *extensions.WasmConfig) *extensions.TrafficExtension_Wasm {
		return &extensions.TrafficExtension_Wasm{Wasm: w}
	}
	runKindCases(t, validateTrafficExtension, []kindCase{
		{name: "lua with selector", spec: &extensions.TrafficExtension{
			Selector:     &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "productpage"}},
			FilterConfig: lua("function envoy_on_request(h) end")}},
		{name: "wasm with targetRefs", spec: &extensions.TrafficExtension{
			TargetRefs:   []*typev1beta1.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}},
			FilterConfig: wasm(&extensions.WasmConfig{Url: "oci://registry/openid:1", Sha256: strings.Repeat("0f", 32)}),
			Match:        []*extensions.TrafficSelector{{Ports: []*typev1beta1.PortSelector{{Number: 8080}}}}}},
		{name: "neither wasm nor lua", spec: &extensions.TrafficExtension{},
			errs: []string{"spec: Invalid value: exactly one of wasm or lua must be set"}},
		{name: "empty lua", spec: &extensions.TrafficExtension{FilterConfig: lua("")},
			errs: []string{"spec.lua.inlineCode: Required value: lua.inlineCode must not be empty"}},
		{name: "lua at 64 KiB is fine", spec: &extensions.TrafficExtension{FilterConfig: lua(strings.Repeat("-", 64<<10))}},
		{name: "lua over 64 KiB", spec: &extensions.TrafficExtension{FilterConfig: lua(strings.Repeat("-", 64<<10+1))},
			errs: []string{"spec.lua.inlineCode: Invalid value: lua.inlineCode is 65537 bytes long, the limit is 65536"}},
		{name: "null lua counts as empty", spec: &extensions.TrafficExtension{FilterConfig: &extensions.TrafficExtension_Lua{}},
			errs: []string{"spec.lua.inlineCode: Required value"}},
		{name: "null wasm", spec: &extensions.TrafficExtension{FilterConfig: &extensions.TrafficExtension_Wasm{}},
			errs: []string{"spec.wasm: Required value: wasm must not be null"}},
		{name: "wasm rules as for WasmPlugin", spec: &extensions.TrafficExtension{FilterConfig: wasm(&extensions.WasmConfig{
			Url: "fake://x", Sha256: "ABC", PluginName: strings.Repeat("p", 257),
			VmConfig: &extensions.VmConfig{Env: []*extensions.EnvVar{{Name: "a"}, {Name: "a"}}}})},
			errs: []string{`spec.wasm.url: Invalid value: "fake://x": url must have schema one of [http, https, file, oci], found "fake"`,
				`spec.wasm.sha256: Invalid value: "ABC"`, "spec.wasm.pluginName", `spec.wasm.vmConfig.env[1].name: Invalid value: "a": duplicate env name`}},
		{name: "wasm url required", spec: &extensions.TrafficExtension{FilterConfig: wasm(&extensions.WasmConfig{})},
			errs: []string{"spec.wasm.url: Required value: url must be set"}},
		{name: "selector and targetRefs", spec: &extensions.TrafficExtension{FilterConfig: lua("x"),
			Selector:   &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"a": "b"}},
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Kind: "Service", Name: "s"}}},
			errs: []string{"spec: Invalid value: only one of targetRefs or selector can be set"}},
		{name: "selector wildcard and bad targetRef", spec: &extensions.TrafficExtension{FilterConfig: lua("x"),
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Kind: "Pod", Name: "p", Namespace: "other"}, {Kind: "Service"}}},
			errs: []string{"spec.targetRefs[0].namespace: Invalid value: \"other\": cross namespace referencing is not currently supported",
				`spec.targetRefs[0]: Invalid value: "/Pod": targetRef must be to one of Service`, "spec.targetRefs[1].name: Required value"}},
		{name: "wildcard selector", spec: &extensions.TrafficExtension{FilterConfig: lua("x"),
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "*"}}},
			errs: []string{"wildcard is not supported in selector"}},
		{name: "match ports", spec: &extensions.TrafficExtension{FilterConfig: lua("x"), Match: []*extensions.TrafficSelector{
			nil, {Ports: []*typev1beta1.PortSelector{{Number: 0}, nil, {Number: 65536}, {Number: 65535}}}}},
			errs: []string{"spec.match[0]: Required value", "spec.match[1].ports[0].number: Invalid value: 0",
				"spec.match[1].ports[1]: Required value", "spec.match[1].ports[2].number: Invalid value: 65536"}},
	})
}

func TestTrafficExtensionYAML(t *testing.T) {
	head := "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata: {name: te, namespace: ns}\n"
	runYAMLCases(t, []yamlCase{
		{name: "lua valid", doc: head + "spec:\n  selector: {matchLabels: {app: productpage}}\n  phase: AUTHN\n  lua: {inlineCode: 'function envoy_on_request(h) end'}\n"},
		{name: "wasm valid", doc: head + "spec:\n  wasm: {url: 'oci://r/p:1'}\n  match: [{ports: [{number: 80}]}]\n"},
		{name: "both wasm and lua", doc: head + "spec:\n  wasm: {url: 'oci://r/p:1'}\n  lua: {inlineCode: x}\n",
			errs: []string{"TrafficExtension ns/te: spec: Invalid value: \"object\": exactly one of wasm or lua must be set"}},
		{name: "neither", doc: head + "spec:\n  phase: STATS\n", errs: []string{"exactly one of wasm or lua must be set"}},
		{name: "empty lua code", doc: head + "spec:\n  lua: {inlineCode: ''}\n", errs: []string{"TrafficExtension ns/te: spec.lua.inlineCode"}},
		{name: "bad wasm scheme", doc: head + "spec:\n  wasm: {url: 'ftp://x/y'}\n", errs: []string{"spec.wasm.url"}},
		{name: "port out of range", doc: head + "spec:\n  lua: {inlineCode: x}\n  match: [{ports: [{number: 70000}]}]\n",
			errs: []string{"spec.match[0].ports[0].number"}},
		{name: "unknown field", doc: head + "spec:\n  lua: {inlineCode: x, file: y}\n", errs: []string{`unknown field "spec.lua.file"`}},
	})
}
