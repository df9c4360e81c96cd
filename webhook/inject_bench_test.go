package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// injectBenchCases are the pods of BenchmarkInjectHandler and
// BenchmarkInjectFloor: same names, so a comparison pairs them by name.
var injectBenchCases = []struct {
	name string
	envs int
}{{"tiny", 0}, {"env500", 500}, {"env1000", 1000}, {"env2000", 2000}}

// benchServe posts body to h once per iteration and requires HTTP 200. One
// request before the loop (b.Loop resets the counters) builds the JSON
// codecs' per-type caches, a once-per-process cost that would otherwise
// dominate short runs such as -benchtime 200x.
func benchServe(b *testing.B, h http.Handler, body []byte) {
	serveOnce := func() {
		r := httptest.NewRequest(http.MethodPost, InjectPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("HTTP %d", w.Code)
		}
	}
	serveOnce()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		serveOnce()
	}
}

// BenchmarkInjectHandler measures one AdmissionReview through the full
// /inject handler (decode, decide, inject, patch, encode), without TLS.
func BenchmarkInjectHandler(b *testing.B) {
	for _, bc := range injectBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			benchServe(b, newHandler(b, nil), reviewBody(b, testPod(bc.envs), nil))
		})
	}
}
