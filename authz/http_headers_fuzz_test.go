package authz

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHTTPHeaders sends HTTP ext_authz requests with arbitrary header
// lines (any names and values Go's server reads, repeated or not) through
// the HTTP handler as the server serves it: no panic, a decision ID, a
// verdict of 200, 400 (what cannot be understood) or 403 (a denial, and an
// evaluation error: httpHandler turns 5xx into 403), a denial with a body,
// and an attribute header (x-meshguard-source-address,
// -destination-address, -sni) sent twice always 400: Envoy sets each once
// (attributeHeader), so neither copy is trusted. The same request decided
// again gets the same verdict. FuzzHTTPAndGRPCAgree checks the verdict's
// agreement with gRPC for the attributes both protocols carry.
func FuzzHTTPHeaders(f *testing.F) {
	f.Add("GET", "/api/x", "x-user: alice\r\n"+HeaderSourceAddress+": 10.0.0.5:1\r\n"+HeaderDestinationAddress+": 10.0.1.1:8080\r\n")
	f.Add("GET", "/api/x", HeaderSourceAddress+": 10.0.0.5:1\r\n"+HeaderSourceAddress+": 192.0.2.1:1\r\n")
	f.Add("POST", "/api/x", "X-Meshguard-Sni: a\r\nx-meshguard-sni: b\r\n")
	f.Add("GET", "/api/x", HeaderDestinationAddress+": not-an-address\r\n")
	f.Add("GET", "/api/x", "x-user: bob1\r\nx-user: alice\r\nX-Meshguard-Policy: forged\r\n")
	f.Add("PUT", "/api/x", HeaderXFCC+": By=spiffe://a;URI=\"spiffe://cluster.local/ns/bar/sa/c\"\r\n"+HeaderXFCC+": By=x;URI=y\r\n")
	f.Add("GET", "/x", HeaderXFCC+": URI=\"unterminated\r\n")
	f.Add("GET", "/x", "Content-Length: 0\r\n:authority: evil\r\n")
	s := fuzzServer(f)
	h := s.httpHandler()
	attributeHeaders := []string{HeaderSourceAddress, HeaderDestinationAddress, HeaderSNI}
	f.Fuzz(func(t *testing.T, method, path, headerLines string) {
		if len(headerLines) > 4<<10 {
			return // a long header costs time, not coverage
		}
		raw := method + " /ext-authz" + path + " HTTP/1.1\r\nHost: web.foo\r\n" + headerLines
		if !strings.HasSuffix(raw, "\r\n") {
			raw += "\r\n"
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			return // Go's server refuses it before the handler
		}
		r = r.WithContext(context.Background())
		serve := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		w := serve()
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("HTTP %d for %q: %s", w.Code, raw, w.Body)
		}
		if w.Header().Get(HeaderDecisionID) == "" {
			t.Fatalf("no %s for %q", HeaderDecisionID, raw)
		}
		if w.Code != http.StatusOK && w.Body.Len() == 0 {
			t.Fatalf("HTTP %d without a body for %q", w.Code, raw)
		}
		for _, name := range attributeHeaders {
			if n := len(r.Header.Values(name)); n > 1 && w.Code != http.StatusBadRequest {
				t.Fatalf("%s sent %d times: HTTP %d, want 400: %s", name, n, w.Code, w.Body)
			}
		}
		if again := serve(); again.Code != w.Code || again.Header().Get(HeaderPolicy) != w.Header().Get(HeaderPolicy) {
			t.Fatalf("decided twice: HTTP %d %q then %d %q", w.Code, w.Header().Get(HeaderPolicy), again.Code, again.Header().Get(HeaderPolicy))
		}
	})
}
