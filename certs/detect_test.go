package certs

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestDetectMode covers the discovery answers the e2e cluster (which always
// has cert-manager's CRDs) cannot produce.
func TestDetectMode(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		resources []string
		want      string
		wantErr   bool
	}{
		{"certificates served", 200, []string{"issuers", "certificates"}, ModeCertManager, false},
		{"group without certificates", 200, []string{"issuers"}, ModeSelf, false},
		{"group absent", 404, nil, ModeSelf, false},
		{"server error", 500, nil, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/apis/cert-manager.io/v1" {
					http.NotFound(w, r)
					return
				}
				if c.status != 200 {
					w.WriteHeader(c.status)
					return
				}
				list := metav1.APIResourceList{GroupVersion: "cert-manager.io/v1"}
				for _, r := range c.resources {
					list.APIResources = append(list.APIResources, metav1.APIResource{Name: r, Kind: r})
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(list)
			}))
			defer srv.Close()
			got, err := DetectMode(&rest.Config{Host: srv.URL})
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if got != c.want {
				t.Fatalf("DetectMode = %q, want %q", got, c.want)
			}
		})
	}
}
