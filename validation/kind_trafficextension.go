package validation

import (
	"fmt"

	extensions "istio.io/api/extensions/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// luaMaxBytes caps lua.inlineCode (64 KiB, as Istio's ValidateTrafficExtension). The CRD's maxLength
// 65536 counts characters; this counts bytes, as Envoy stores the source.
const luaMaxBytes = 64 << 10

// validateTrafficExtension implements Istio's ValidateTrafficExtension (TrafficExtension,
// extensions.istio.io/v1alpha1, new in Istio 1.30; istio.io/api v1.31.1 has
// the Go type). The wasm config reuses WasmPlugin's module and port checks.
func validateTrafficExtension(_ metav1.ObjectMeta, te *extensions.TrafficExtension, f *Findings) {
	sp := field.NewPath("spec")
	// TrafficExtension has selector and targetRefs only (no singular targetRef).
	khPolicyTargets(sp, te.GetSelector(), nil, te.GetTargetRefs(), f)

	// wasm and lua are a proto oneof: setting both fails decoding (and the
	// CRD rule) before this point, so only "neither" can reach here.
	switch cfg := te.GetFilterConfig().(type) {
	case *extensions.TrafficExtension_Wasm:
		wp := sp.Child("wasm")
		if cfg.Wasm == nil {
			f.Required(wp, "wasm must not be null")
			break
		}
		w := cfg.Wasm
		wasmModule(wp, wasmModuleFields{url: w.GetUrl(), sha256: w.GetSha256(), imagePullSecret: w.GetImagePullSecret(),
			pluginName: w.GetPluginName(), vmConfig: w.GetVmConfig()}, f)
	case *extensions.TrafficExtension_Lua:
		cp := sp.Child("lua", "inlineCode")
		switch code := cfg.Lua.GetInlineCode(); {
		case code == "":
			f.Required(cp, "lua.inlineCode must not be empty")
		case len(code) > luaMaxBytes:
			f.Error(cp, field.OmitValueType{}, fmt.Sprintf("lua.inlineCode is %d bytes long, the limit is %d (64 KiB)", len(code), luaMaxBytes))
		}
	default:
		f.Error(sp, nil, "exactly one of wasm or lua must be set")
	}

	for i, m := range te.GetMatch() {
		mp := sp.Child("match").Index(i)
		if m == nil {
			f.Required(mp, "match entry must not be null")
			continue
		}
		wasmPortSelectors(mp.Child("ports"), m.GetPorts(), f)
	}
}
