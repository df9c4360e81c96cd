package authz

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/policy"
)

// TestHTTPHeaderLimit: the HTTP port's header limit is
// --authz-http-max-header-bytes (default 96 KiB, above Envoy's default
// max_request_headers_kb of 60 KiB), not --authz-max-recv-msg-size (4 MiB,
// with which 100 stalled connections held 400 MiB): a header block over it
// is answered 431, one of Envoy's default limit is served.
func TestHTTPHeaderLimit(t *testing.T) {
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		limit int // Options.HTTPMaxHeaderBytes
		pad   int
		want  int
	}{
		{"Envoy's default limit under the default", 0, 60 << 10, http.StatusOK},
		{"over the default", 0, 200 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{"raised by the flag", 512 << 10, 200 << 10, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(engine, Options{DecisionLog: "off", ShutdownTimeout: time.Second, HTTPMaxHeaderBytes: tc.limit}, logr.Discard())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.ServeHTTP(ctx, lis, nil) }()
			defer func() { cancel(); <-done }()
			req, err := http.NewRequest(http.MethodGet, "http://"+lis.Addr().String()+"/api", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Pad", strings.Repeat("p", tc.pad))
			req.Header.Set(HeaderSourceAddress, "10.0.0.1:1234")
			req.Header.Set(HeaderDestinationAddress, "10.0.0.2:8080")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%d bytes of headers, limit %d: status %d, want %d", tc.pad, tc.limit, resp.StatusCode, tc.want)
			}
		})
	}
}
