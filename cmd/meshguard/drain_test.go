package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// handlerServer is a webhook server that keeps the handler registered.
type handlerServer struct {
	ctrlwebhook.Server
	h http.Handler
}

func (s *handlerServer) Register(_ string, h http.Handler) { s.h = h }

// TestDrain: once draining begins (SIGTERM), /readyz fails and every webhook
// response closes its connection (docs/operations.md); before, neither.
func TestDrain(t *testing.T) {
	d := newDrain(0)
	srv := &handlerServer{}
	drainingServer{Server: srv, d: d}.Register("/inject", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, draining := range []bool{false, true} {
		if draining {
			close(d.begun)
		}
		rec := httptest.NewRecorder()
		srv.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", nil))
		if got := rec.Header().Get("Connection") == "close"; got != draining || rec.Code != http.StatusOK {
			t.Errorf("draining %v: status %d, Connection: close %v", draining, rec.Code, got)
		}
		if err := d.ready(nil); (err != nil) != draining {
			t.Errorf("draining %v: readyz check %v", draining, err)
		}
	}
}
