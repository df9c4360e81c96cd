package authz

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/meshguard/meshguard/policy"
)

// fuzzPolicies: protocolPolicies plus an ALLOW on host, path and a header,
// so the verdict depends on every attribute the fuzz targets vary.
const fuzzPolicies = protocolPolicies + `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-api-alice, namespace: foo}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - to: [{operation: {hosts: ["web.foo", "*.example"], paths: ["/api/*"], notMethods: ["DELETE"]}}]
    when: [{key: "request.headers[x-user]", values: ["alice", "bob*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-range, namespace: foo}
spec:
  action: DENY
  rules: [{from: [{source: {ipBlocks: ["192.0.2.0/24", "2001:db8::/32"]}}]}]
`

// fuzzServer is a Server over fuzzPolicies, its decision log on (the log
// line is built from the request too).
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(fuzzPolicies), 0o644); err != nil {
		f.Fatal(err)
	}
	set, _, err := policy.LoadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	o := Options{HTTPPathPrefix: "/ext-authz", DecisionLog: "full"}
	engine := policy.NewEngine(o.Mesh())
	if _, err := engine.Update(context.Background(), set); err != nil {
		f.Fatal(err)
	}
	return NewServer(engine, o, logr.Discard())
}

// xfccQuote quotes an XFCC value as Envoy does for one holding a
// separator: in double quotes, quotes and backslashes escaped.
func xfccQuote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// FuzzHTTPAndGRPCAgree sends one request through the HTTP ext_authz handler
// as Envoy's HTTP client sends it (prefix + original path, the sidecar's
// x-forwarded-client-cert, the attribute headers) and through the gRPC
// Check handler as Envoy's gRPC client sends it: both must give the same
// verdict and deciding policy, as the two protocols promise (httpHandler).
func FuzzHTTPAndGRPCAgree(f *testing.F) {
	for _, c := range protocolCases {
		f.Add(c.method, c.path, "web.foo", c.principal, "", "10.0.0.5:40000")
	}
	f.Add("GET", "/api/x?y=1", "a.example", "", "alice", "192.0.2.1:1")
	f.Add("PUT", "/api/%2e%2e/admin", "web.foo", "spiffe://cluster.local/ns/bar/sa/client", "bob1", "[::ffff:192.0.2.1]:80")
	f.Add("DELETE", "/api/x", "WEB.FOO:80", `spiffe://a;b,"c"`, "alice", "[2001:db8::1%eth0]:5")
	f.Add("GET", "//admin", "web.foo", "", "", "[fe80::1]:0")
	s := fuzzServer(f)
	h := s.httpHandler()
	f.Fuzz(func(t *testing.T, method, path, host, principal, user, src string) {
		// The source address as Envoy's formatter writes it into the header
		// and as its gRPC client puts it into the CheckRequest.
		ap, err := netip.ParseAddrPort(src)
		if err != nil {
			return
		}
		for _, v := range []string{method, path, host, principal, user, src} {
			// What Envoy cannot send in a request line or header value.
			if strings.ContainsAny(v, "\x00\r\n") || !utf8.ValidString(v) {
				return
			}
		}
		if method == "" || strings.ContainsAny(method, " \t") || strings.ContainsAny(path, " \t") || !strings.HasPrefix(path, "/") {
			return
		}
		raw := method + " /ext-authz" + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
			HeaderSourceAddress + ": " + src + "\r\n" + HeaderDestinationAddress + ": 10.0.1.1:8080\r\n"
		if principal != "" {
			raw += HeaderXFCC + ": By=spiffe://cluster.local/ns/foo/sa/web;URI=" + xfccQuote(principal) + "\r\n"
		}
		if user != "" {
			raw += "x-user: " + user + "\r\n"
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil || r.Host != host || r.Header.Get("x-user") != user || r.RequestURI != "/ext-authz"+path {
			return // not a request line Go reads as sent (Envoy would not send it either)
		}
		r = r.WithContext(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		req := request(path)
		hr := req.Attributes.Request.Http
		hr.Method, hr.Host, hr.Protocol = method, host, "HTTP/1.1"
		hr.Headers = map[string]string{":method": method, ":path": path, ":authority": host}
		if user != "" {
			hr.Headers["x-user"] = user
		}
		req.Attributes.Source.Principal = principal
		req.Attributes.Source.Address.GetSocketAddress().Address = ap.Addr().String()
		req.Attributes.Source.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())}
		g, err := s.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("gRPC Check: %v", err)
		}
		gStatus, gPolicy := 200, headerValue(g.GetOkResponse().GetHeaders(), HeaderPolicy)
		if d := g.GetDeniedResponse(); d != nil {
			gStatus, gPolicy = int(d.GetStatus().GetCode()), headerValue(d.GetHeaders(), HeaderPolicy)
		}
		if gStatus == 503 {
			gStatus = 403 // the HTTP protocol's answer to an evaluation error (httpHandler)
		}
		if w.Code != gStatus || w.Header().Get(HeaderPolicy) != gPolicy {
			t.Fatalf("%s %q host %q principal %q x-user %q source %q: HTTP %d %q (%s), gRPC %d %q (%s)", method, path, host, principal, user, src,
				w.Code, w.Header().Get(HeaderPolicy), w.Body, gStatus, gPolicy, g.GetStatus().GetMessage())
		}
	})
}

// FuzzGRPCCheck decodes an arbitrary CheckRequest as the gRPC server does
// and answers it through the Check handler: no panic, never an error (a
// CheckResponse always), an OK status exactly for an OK response, a denial's
// HTTP status the one its gRPC code stands for, and a response the gRPC
// server can marshal (one it cannot is an error Envoy's failure_mode_allow
// may let through). The same request decided again gets the same answer.
func FuzzGRPCCheck(f *testing.F) {
	add := func(req *authv3.CheckRequest) {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range protocolCases {
		req := request(c.path)
		req.Attributes.Request.Http.Method = c.method
		req.Attributes.Source.Principal = c.principal
		add(req)
	}
	req := request("/api/x")
	req.Attributes.Request.Http.Headers = map[string]string{"x-user": "alice", ":path": "/api/x", ":method": "GET", ":authority": "web.foo"}
	req.Attributes.ContextExtensions = map[string]string{policy.NoMetadataExtension: "true"}
	add(req)
	req = request("/index")
	req.Attributes.Request.Http.Path = ""
	req.Attributes.Request.Http.Headers = map[string]string{":path": "/ad%ffmin"}
	add(req)
	add(&authv3.CheckRequest{})
	s := fuzzServer(f)
	wantStatus := map[codes.Code]int{codes.PermissionDenied: 403, codes.InvalidArgument: 400, codes.Unavailable: 503}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return // the gRPC server refuses it before Check
		}
		resp, err := s.Check(context.Background(), &req)
		if err != nil || resp == nil {
			t.Fatalf("Check: %v, %v", resp, err)
		}
		code := codes.Code(resp.GetStatus().GetCode())
		if (code == codes.OK) != (resp.GetOkResponse() != nil) {
			t.Fatalf("status %v with response %v", code, resp.GetHttpResponse())
		}
		if d := resp.GetDeniedResponse(); d != nil && (int(d.GetStatus().GetCode()) != wantStatus[code] || d.GetBody() == "") {
			t.Fatalf("denial %v: HTTP status %d, body %q", code, d.GetStatus().GetCode(), d.GetBody())
		}
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("response cannot be sent: %v (status message %q)", err, resp.GetStatus().GetMessage())
		}
		again, err := s.Check(context.Background(), &req)
		if err != nil {
			t.Fatalf("Check again: %v", err)
		}
		if ac := codes.Code(again.GetStatus().GetCode()); ac != code {
			t.Fatalf("decided twice: %v then %v", code, ac)
		}
	})
}

// FuzzXFCCPrincipals builds an x-forwarded-client-cert header as an Istio
// sidecar forwards it (a client-sent element, then the sidecar's own with
// values quoted) and reads it back: the principals are those of the last
// element only, the peer its URI, else its DNS name, else its subject.
func FuzzXFCCPrincipals(f *testing.F) {
	f.Add("spiffe://cluster.local/ns/foo/sa/web", "spiffe://cluster.local/ns/bar/sa/client", "", "O=x,CN=y", "By=spiffe://evil;URI=spiffe://evil")
	f.Add("b", "", "a.example", `CN="q;uoted",O=\x`, `Subject="a,b";URI=x`)
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, by, uri, dns, subject, forged string) {
		for _, v := range []string{by, uri, dns, subject, forged} {
			if strings.ContainsAny(v, "\x00\r\n") {
				return
			}
		}
		if _, err := splitQuoted(forged, ','); err != nil {
			return // a client's element the sidecar would not forward as one
		}
		var own []string
		for _, kv := range [][2]string{{"By", by}, {"Hash", "abc"}, {"Subject", subject}, {"URI", uri}, {"DNS", dns}} {
			if kv[1] != "" || kv[0] == "Subject" {
				own = append(own, kv[0]+"="+xfccQuote(kv[1]))
			}
		}
		header := strings.Join(own, ";")
		if forged != "" {
			header = forged + "," + header
		}
		peer, local, err := xfccPrincipals(header)
		if err != nil {
			t.Fatalf("%q: %v", header, err)
		}
		want := uri
		if want == "" {
			want = dns
		}
		if want == "" {
			want = subject
		}
		if peer != want || local != by {
			t.Fatalf("%q: peer %q, local %q; want %q, %q", header, peer, local, want, by)
		}
	})
}
