package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
)

// BenchmarkInjectHandlerTemplates is BenchmarkInjectHandler with Istio's
// default install config (injector config, values, mesh) on the typed fast
// path (stock templates) and on the generic template path.
func BenchmarkInjectHandlerTemplates(b *testing.B) {
	d := filepath.Join("..", "..", "shared", "conformance", "injection", "istio-default-install")
	if _, err := os.Stat(d); err != nil {
		b.Fatalf("conformance data missing: %v", err)
	}
	fast, err := config.LoadInputs(filepath.Join(d, "config"), filepath.Join(d, "values"), filepath.Join(d, "mesh"))
	if err != nil {
		b.Fatal(err)
	}
	generic := *fast
	t := *fast.Templates
	t.AlwaysGeneric = true
	generic.Templates = &t
	for _, bc := range []struct {
		name string
		snap *config.Snapshot
		envs int
	}{{"fast/tiny", fast, 0}, {"fast/env2000", fast, 2000}, {"generic/tiny", &generic, 0}, {"generic/env2000", &generic, 2000}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(b, bc.snap)
			body := reviewBody(b, testPod(bc.envs), nil)
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
