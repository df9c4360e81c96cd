package authz

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/meshguard/meshguard/internal/httplog"
	"github.com/meshguard/meshguard/policy"
)

// Attribute headers the HTTP protocol cannot carry otherwise. Envoy's HTTP
// ext_authz client sends only the original request's headers
// (source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc
// RawHttpClientImpl::check), so the connection attributes the gRPC
// CheckRequest carries come from headers the operator adds with the Istio
// provider's includeAdditionalHeadersInCheck, which Envoy evaluates with its
// formatter and which overwrite a client-sent header of the same name
// (docs/operations.md "HTTP ext_authz").
const (
	HeaderSourceAddress      = "x-meshguard-source-address"      // %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% (the TCP peer, not the XFF-derived address)
	HeaderDestinationAddress = "x-meshguard-destination-address" // %DOWNSTREAM_LOCAL_ADDRESS%
	HeaderSNI                = "x-meshguard-sni"                 // %REQUESTED_SERVER_NAME%
	HeaderXFCC               = "x-forwarded-client-cert"
)

// httpHandler serves Envoy's HTTP ext_authz protocol: the original method,
// the original path appended to the provider's pathPrefix, the allowed
// request headers. It builds the CheckRequest Envoy's gRPC client would have
// sent for the same request and decides it through the same path as Check,
// so both protocols give one verdict. 200 allows; a denial carries the
// status, headers and body meant for the downstream client.
func (s *Server) httpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := checkRequestFromHTTP(r, s.opts.HTTPPathPrefix)
		if err != nil {
			// Fail closed on what cannot be understood, logged with what was read.
			req = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Method: r.Method, Path: r.URL.Path, Host: r.Host}}}}
		}
		d := s.decide(r.Context(), req, err, "http")
		h := w.Header()
		h.Set(HeaderDecisionID, d.id)
		if d.verdict.Policy != "" {
			h.Set(HeaderPolicy, d.verdict.Policy)
		} else {
			// A client's own x-meshguard-policy must not reach the upstream
			// as if meshguard had set it (Envoy's HTTP ext_authz reads this
			// list; the gRPC response uses headers_to_remove).
			h.Set("x-envoy-auth-headers-to-remove", HeaderPolicy)
		}
		if d.verdict.Allowed {
			for k, v := range d.verdict.ResponseHeaders {
				h.Set(k, v)
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		h.Set("Content-Type", "text/plain")
		// Envoy reads a 5xx as the authorization service failing, not as its
		// answer, and then applies the provider's failOpen
		// (ext_authz_http_impl.cc RawHttpClientImpl::toResponse): a request
		// meshguard denies because it could not evaluate it (503 on gRPC,
		// a denial there) is a 403 here, so --fail-open alone decides, as
		// on gRPC.
		status := d.verdict.Status
		if status < 400 || status > 499 {
			status = http.StatusForbidden
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(deniedBody(d.verdict)))
	})
}

// checkRequestFromHTTP maps an HTTP ext_authz request to the CheckRequest
// attributes the policy engine evaluates.
func checkRequestFromHTTP(r *http.Request, pathPrefix string) (*authv3.CheckRequest, error) {
	uri := r.RequestURI
	if !strings.HasPrefix(uri, pathPrefix) {
		return nil, fmt.Errorf("path %q does not start with the path prefix %q", policy.WithoutQuery(uri), pathPrefix)
	}
	path := uri[len(pathPrefix):]
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q: the original path after prefix %q must start with /", policy.WithoutQuery(uri), pathPrefix)
	}
	headers := make(map[string]string, len(r.Header)+3)
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		switch k {
		case "content-length", HeaderSourceAddress, HeaderDestinationAddress, HeaderSNI:
			continue
		}
		headers[k] = strings.Join(vs, ",")
	}
	headers[":method"], headers[":path"], headers[":authority"] = r.Method, path, r.Host

	attrs := &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{},
		Destination: &authv3.AttributeContext_Peer{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: r.Method, Path: path, Host: r.Host, Headers: headers, Protocol: r.Proto,
		}},
		// Envoy's HTTP ext_authz client sends no dynamic metadata: a policy
		// on the JWT cannot be decided here (policy.NoMetadataExtension).
		ContextExtensions: noMetadata,
	}
	if v := r.Header.Values(HeaderXFCC); len(v) > 0 {
		peer, local, err := xfccPrincipals(strings.Join(v, ","))
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", HeaderXFCC, err)
		}
		attrs.Source.Principal, attrs.Destination.Principal = peer, local
	}
	var err error
	if attrs.Source.Address, err = headerAddress(r, HeaderSourceAddress); err != nil {
		return nil, err
	}
	if attrs.Destination.Address, err = headerAddress(r, HeaderDestinationAddress); err != nil {
		return nil, err
	}
	sni, err := attributeHeader(r, HeaderSNI)
	if err != nil {
		return nil, err
	}
	// Without the header (Envoy adds none for an empty value: a connection
	// without SNI, plaintext, or a provider without the header) there is no
	// tls_session, as on gRPC without include_tls_session. Nothing here
	// tells TLS from plaintext (no peer certificates; Envoy strips
	// x-forwarded-client-cert without a client certificate), so the SNI is
	// then unknown, not empty (noMetadata's policy.TLSUnknownExtension).
	if sni != "" {
		attrs.TlsSession = &authv3.AttributeContext_TLSSession{Sni: sni}
	}
	return &authv3.CheckRequest{Attributes: attrs}, nil
}

// noMetadata is every HTTP CheckRequest's context extensions (read-only):
// no dynamic metadata, no content-length of the request (Envoy's HTTP
// client sets the check request's own, checkRequestFromHTTP drops it), and
// no telling a TLS connection from a plaintext one; the source address is
// the direct peer (HeaderSourceAddress), whatever a PROXY protocol header
// said.
var noMetadata = map[string]string{policy.NoMetadataExtension: "true", policy.NoContentLengthExtension: "true",
	policy.TLSUnknownExtension: "true", policy.SourceDirectPeerExtension: "true"}

// attributeHeader is the value of an attribute header ("" when absent).
// Envoy sets each once (headers_to_add overwrite): a second value did not
// come from Envoy, and neither is trusted over the other.
func attributeHeader(r *http.Request, name string) (string, error) {
	vs := r.Header.Values(name)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", fmt.Errorf("header %s: %d values, want one", name, len(vs))
}

// headerAddress parses an ip:port attribute header (absent: nil).
func headerAddress(r *http.Request, name string) (*corev3.Address, error) {
	v, err := attributeHeader(r, name)
	if v == "" || err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		return nil, fmt.Errorf("header %s %q: want ip:port: %w", name, v, err)
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ap.Addr().Unmap().String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())}}}}, nil
}

// xfccPrincipals reads x-forwarded-client-cert as Istio's sidecar sets it on
// inbound mTLS requests (forward_client_cert_details APPEND_FORWARD with
// set_current_client_cert_details Subject, URI and DNS, in pilot/pkg/networking/core
// buildSidecarInboundHTTPOpts; Envoy removes the header on connections without a
// client certificate). Only the last element is the sidecar's own: earlier
// ones were forwarded from the client and are not trusted. The peer's
// principal is its first URI SAN, else its first DNS SAN, else its subject,
// as Envoy fills source.principal (source/extensions/filters/common/ext_authz/
// check_request_utils.cc setAttrContextPeer); By is the sidecar's URI SAN
// (destination.principal).
func xfccPrincipals(v string) (peer, local string, err error) {
	elems, err := splitQuoted(v, ',')
	if err != nil {
		return "", "", err
	}
	last := strings.TrimSpace(elems[len(elems)-1])
	pairs, err := splitQuoted(last, ';')
	if err != nil {
		return "", "", err
	}
	var dns, subject string
	for _, p := range pairs {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return "", "", fmt.Errorf("element %q: pair %q without =", last, p)
		}
		if val, err = unquote(val); err != nil {
			return "", "", fmt.Errorf("element %q: %w", last, err)
		}
		switch strings.ToLower(k) {
		case "uri":
			if peer == "" {
				peer = val
			}
		case "dns":
			if dns == "" {
				dns = val
			}
		case "subject":
			subject = val
		case "by":
			if local == "" {
				local = val
			}
		}
	}
	switch {
	case peer != "":
	case dns != "":
		peer = dns
	default:
		peer = subject
	}
	return peer, local, nil
}

// splitQuoted splits s at sep outside double quotes (backslash escapes).
func splitQuoted(s string, sep byte) ([]string, error) {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	return append(out, s[start:]), nil
}

func unquote(v string) (string, error) {
	if !strings.HasPrefix(v, `"`) {
		return v, nil
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", fmt.Errorf("bad quoted value %q", v)
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		if v[i] == '\\' && i+1 < len(v)-1 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}

// DefaultHTTPMaxHeaderBytes is --authz-http-max-header-bytes' default:
// Envoy's HTTP ext_authz request carries the original request's headers,
// which Envoy bounds by max_request_headers_kb (60 KiB by default), plus
// its own few (x-envoy-*, the attribute headers, x-forwarded-client-cert).
// It was --authz-max-recv-msg-size (4 MiB): 100 connections each sending
// just under it and stalling held 400 MiB until ReadHeaderTimeout.
const DefaultHTTPMaxHeaderBytes = 96 << 10

// HTTPServer builds the HTTP ext_authz server: bounded headers
// (--authz-http-max-header-bytes), bounded read/idle times, optional TLS from the same
// configuration as the gRPC port, net/http's messages to the server's
// logger (httplog.ErrorLog). The body is never read: Envoy's
// includeRequestBodyInCheck is not evaluated by any policy field.
func (s *Server) HTTPServer(tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(s.httpHandler(), 0),
		TLSConfig:         tlsConfig,
		MaxHeaderBytes:    s.opts.HTTPMaxHeaderBytes,
		ReadHeaderTimeout: handshakeTimeout,
		ReadTimeout:       callDeadline,
		WriteTimeout:      callDeadline,
		IdleTimeout:       s.opts.KeepaliveTime,
		ErrorLog:          httplog.ErrorLog(s.log.WithValues("server", "ext_authz HTTP")),
	}
}

// ServeHTTP serves HTTP ext_authz on lis until ctx is done, then shuts down
// gracefully (bounded).
// At most Options.MaxConnections connections are open at once (limit); a
// TLS handshake is bounded by ReadHeaderTimeout (net/http bounds it by the
// shortest of the server's read and write timeouts).
func (s *Server) ServeHTTP(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error {
	hs := s.HTTPServer(tlsConfig)
	lis = s.limit(lis)
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(lis, "", "")
			return
		}
		errc <- hs.Serve(lis)
	}()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ext_authz HTTP server on %s: %w", lis.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}
