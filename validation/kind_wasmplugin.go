package validation

import (
	"fmt"
	"net/url"
	"regexp"

	extensions "istio.io/api/extensions/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// wasmSHA256 is a lowercase hex SHA-256 digest.
var wasmSHA256 = regexp.MustCompile(`^[a-f0-9]{64}$`)

// wasmSchemes are the module URL schemes Istio can fetch ("" means oci).
var wasmSchemes = map[string]bool{"": true, "file": true, "http": true, "https": true, "oci": true}

// validateWasmPlugin implements Istio's ValidateWasmPlugin
// (pkg/config/validation/validation.go). Empty
// imagePullSecret/pluginName are CRD rules (minLength 1) left to the CRD layer.
func validateWasmPlugin(_ metav1.ObjectMeta, w *extensions.WasmPlugin, f *Findings) {
	sp := field.NewPath("spec")
	khPolicyTargets(sp, w.GetSelector(), w.GetTargetRef(), w.GetTargetRefs(), f)

	wasmModule(sp, wasmModuleFields{url: w.GetUrl(), sha256: w.GetSha256(), imagePullSecret: w.GetImagePullSecret(),
		pluginName: w.GetPluginName(), vmConfig: w.GetVmConfig()}, f)
	for i, m := range w.GetMatch() {
		mp := sp.Child("match").Index(i)
		if m == nil {
			f.Required(mp, "match entry must not be null")
			continue
		}
		wasmPortSelectors(mp.Child("ports"), m.GetPorts(), f)
	}
}

// wasmModuleFields are the module settings WasmPlugin and TrafficExtension's
// wasm config share (Istio checks both alike).
type wasmModuleFields struct {
	url, sha256, imagePullSecret, pluginName string
	vmConfig                                 *extensions.VmConfig
}

// wasmModule checks the Wasm module settings found under sp (Istio's ValidateWasmPlugin).
func wasmModule(sp *field.Path, w wasmModuleFields, f *Findings) {
	up := sp.Child("url")
	if w.url == "" {
		f.Required(up, "url must be set")
	} else if u, err := url.Parse(w.url); err != nil {
		f.Error(up, w.url, "url must have schema one of [http, https, file, oci]: invalid url: "+err.Error())
	} else if !wasmSchemes[u.Scheme] {
		f.Error(up, w.url, fmt.Sprintf("url must have schema one of [http, https, file, oci], found %q", u.Scheme))
	}
	if s := w.sha256; s != "" && !wasmSHA256.MatchString(s) {
		f.Error(sp.Child("sha256"), s, "sha256 must be 64 lowercase hexadecimal characters")
	}
	if s := w.imagePullSecret; len(s) > 253 {
		f.Error(sp.Child("imagePullSecret"), s, fmt.Sprintf("imagePullSecret is %d characters long, the limit is 253", len(s)))
	}
	if s := w.pluginName; len(s) > 256 {
		f.Error(sp.Child("pluginName"), s, fmt.Sprintf("pluginName is %d characters long, the limit is 256", len(s)))
	}

	ep := sp.Child("vmConfig", "env")
	seen := map[string]int{}
	for i, e := range w.vmConfig.GetEnv() {
		p := ep.Index(i)
		if e == nil {
			f.Required(p, "env entry must not be null")
			continue
		}
		switch n := e.GetName(); {
		case n == "":
			f.Required(p.Child("name"), "env name must not be empty")
		case len(n) > 256:
			f.Error(p.Child("name"), n, fmt.Sprintf("env name is %d characters long, the limit is 256", len(n)))
		default:
			if j, dup := seen[n]; dup {
				f.Error(p.Child("name"), n, fmt.Sprintf("duplicate env name (Duplicate value): also set by env[%d]", j))
			} else {
				seen[n] = i
			}
		}
		if e.GetValueFrom() != extensions.EnvValueSource_INLINE && e.GetValue() != "" {
			f.Error(p.Child("value"), e.GetValue(), "value may only be set when valueFrom is INLINE")
		}
	}
}

// wasmPortSelectors checks match[].ports: numbers in 1..65535.
func wasmPortSelectors(pp *field.Path, ports []*typev1beta1.PortSelector, f *Findings) {
	for j, port := range ports {
		p := pp.Index(j)
		if port == nil {
			f.Required(p, "port selector must not be null")
			continue
		}
		validatePort(p.Child("number"), port.GetNumber(), f)
	}
}
