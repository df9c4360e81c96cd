package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkInjectHandler measures one AdmissionReview through the full
// /inject handler (decode, decide, inject, patch, encode), without TLS.
func BenchmarkInjectHandler(b *testing.B) {
	for _, bc := range []struct {
		name string
		envs int
	}{{"tiny", 0}, {"env500", 500}, {"env1000", 1000}, {"env2000", 2000}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(b, nil)
			body := reviewBody(b, testPod(bc.envs), nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("HTTP %d", w.Code)
				}
			}
		})
	}
}
