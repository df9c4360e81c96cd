package webhook

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type mutation40ErrReader struct{}

func (mutation40ErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestMutation40RequireJSONBody: Istio's serveInject (pkg/kube/inject/webhook.go)
// checks the body before the Content-Type (an empty body is 400 whatever its
// Content-Type), answers a body it cannot read 400, and compares the
// Content-Type with "application/json" exactly (parameters included: 415).
func TestMutation40RequireJSONBody(t *testing.T) {
	h := newHandler(t, nil)
	for _, tc := range []struct {
		name        string
		body        io.Reader
		length      int64
		contentType string
		wantStatus  int
	}{
		{"missing body, wrong content-type", bytes.NewReader(nil), 0, "application/yaml", http.StatusBadRequest},
		{"missing chunked body, no content-type", bytes.NewReader(nil), -1, "", http.StatusBadRequest},
		{"unreadable chunked body", mutation40ErrReader{}, -1, "application/json", http.StatusBadRequest},
		{"content-type with parameters", bytes.NewReader([]byte(`{}`)), -1, "application/json; charset=utf-8", http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, InjectPath, nil)
			r.Body, r.ContentLength = io.NopCloser(tc.body), tc.length
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tc.wantStatus, w.Body.String())
			}
		})
	}
}
