package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/test/conformance"
)

// BenchmarkInjectHandlerTemplates is BenchmarkInjectHandler with Istio's
// default install config (injector config, values, mesh): "typed" (stock
// templates, the typed injector) and "generic-custom" (the sidecar template
// edited, rendered as Istio renders it), tiny pod and 2,000 envs.
func BenchmarkInjectHandlerTemplates(b *testing.B) {
	cfg, values, mesh := conformance.IstioInstall(b)
	typed, err := config.Inputs{Config: cfg, Values: values, Mesh: mesh}.Load()
	if err != nil {
		b.Fatal(err)
	}
	custom, err := config.Inputs{Config: conformance.CustomSidecarConfig(b, cfg), Values: values, Mesh: mesh}.Load()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		snap *config.Snapshot
		envs int
	}{{"typed/tiny", typed, 0}, {"typed/env2000", typed, 2000}, {"generic-custom/tiny", custom, 0}, {"generic-custom/env2000", custom, 2000}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(b, bc.snap)
			body := reviewBody(b, testPod(bc.envs), nil)
			// The first request compares the typed path with the templates
			// once per configuration (injector useGenericTemplates); keep
			// that out of the per-request figures.
			warm := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
			warm.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(httptest.NewRecorder(), warm)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("HTTP %d %s", w.Code, w.Body.Bytes())
				}
			}
		})
	}
}
