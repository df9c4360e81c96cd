package authz

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/policy"
)

// denyContentLength denies /upload with a content-length of 100.
const denyContentLength = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-length, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/upload"]}}]
    when: [{key: "request.headers[Content-Length]", values: ["100"]}]
`

// TestContentLengthUnknownOverHTTP: Istio's
// RBAC filter matches request.headers[content-length] against the
// request's own header, which a gRPC CheckRequest carries; Envoy's HTTP
// ext_authz client sends its check request's own content-length instead
// (the original is dropped, authz/http.go), so over HTTP a DENY on it would
// never apply. There the request is denied where a deciding policy reads
// it (fail closed, as for the JWT and the SNI), and only there.
func TestContentLengthUnknownOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, policies string
		length         int
		grpcStatus     int
		grpcPolicy     string
		httpStatus     int
		httpReason     string // in the verdict's reason
	}{
		{"DENY matches", denyAdmin + denyContentLength, 100, 403, "foo/deny-length", 403, "content-length"},
		{"DENY does not match", denyAdmin + denyContentLength, 5, 200, "", 403, "content-length"},
		{"no policy reads it", denyAdmin, 100, 200, "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			set := &policy.Set{}
			if _, err := set.AddYAML("p.yaml", []byte(tc.policies)); err != nil {
				t.Fatal(err)
			}
			engine := policy.NewEngine(policy.Mesh{})
			if _, err := engine.Update(ctx, set); err != nil {
				t.Fatal(err)
			}
			s := NewServer(engine, Options{DecisionLog: "off"}, logr.Discard())
			body := strings.Repeat("x", tc.length)

			req := request("/upload")
			req.Attributes.Request.Http.Method = "POST"
			req.Attributes.Request.Http.Headers = map[string]string{"content-length": strconv.Itoa(tc.length)}
			resp, err := s.Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			status, hs := 200, resp.GetOkResponse().GetHeaders()
			if d := resp.GetDeniedResponse(); d != nil {
				status, hs = int(d.GetStatus().GetCode()), d.GetHeaders()
			}
			if status != tc.grpcStatus || headerValue(hs, HeaderPolicy) != tc.grpcPolicy {
				t.Errorf("gRPC: %d %q, want %d %q", status, headerValue(hs, HeaderPolicy), tc.grpcStatus, tc.grpcPolicy)
			}

			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := s.HTTPServer(nil)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(func() { srv.Close() })
			hreq, err := http.NewRequest("POST", "http://"+lis.Addr().String()+"/upload", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			hreq.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
			hresp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			hresp.Body.Close()
			if hresp.StatusCode != tc.httpStatus || hresp.Header.Get(HeaderPolicy) != "" {
				t.Errorf("HTTP: %d %q, want %d without a policy", hresp.StatusCode, hresp.Header.Get(HeaderPolicy), tc.httpStatus)
			}
			// The reason, through the HTTP adapter's mapping.
			r := httptest.NewRequest("POST", "/upload", strings.NewReader(body))
			r.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
			creq, err := checkRequestFromHTTP(r, "")
			if err != nil {
				t.Fatal(err)
			}
			d := s.decide(ctx, creq, nil, "http")
			if tc.httpReason != "" && !strings.Contains(d.verdict.Reason, tc.httpReason) {
				t.Errorf("HTTP reason %q, want it to name %s", d.verdict.Reason, tc.httpReason)
			}
		})
	}
}
