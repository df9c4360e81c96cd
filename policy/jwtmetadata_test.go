package policy

import (
	"context"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestDecodeJWTMetadataSetting: the one rule of decode for a CheckRequest
// without jwt_authn's metadata. Istio's CUSTOM provider puts ext_authz
// before jwt_authn and forwards no metadata (Istio:
// pilot/pkg/networking/core/listener_builder.go buildHTTPConnectionManager,
// pilot/pkg/security/authz/builder/extauthz.go generateGRPCConfig), so by
// default (Mesh.JWTMetadataForwarded false) the JWT of an HTTP request
// without it is unknown and policies reading it deny (fail closed); with
// JWTMetadataForwarded it is a request without a token, as Istio's RBAC
// filter after jwt_authn reads it. A TCP request has no JWT either way, and
// Istio's TCP filters drop the JWT fields (TRules), so it is unaffected.
func TestDecodeJWTMetadataSetting(t *testing.T) {
	policies := ap("foo", "deny-evil", `action: DENY
rules: [{from: [{source: {requestPrincipals: ["evil/*"]}}], to: [{operation: {paths: ["/d"]}}]}]`) +
		ap("foo", "allow-not-evil", `rules: [{from: [{source: {notRequestPrincipals: ["evil/*"]}}]}]`)
	evil, err := structpb.NewStruct(map[string]any{"payload": map[string]any{"iss": "evil", "sub": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	withJWT := func(s *structpb.Struct) *corev3.Metadata {
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{JWTAuthnFilter: s}}
	}
	const unknown = "no metadata_context from envoy.filters.http.jwt_authn"
	for _, c := range []struct {
		name      string
		forwarded bool
		req       *Request
		meta      *corev3.Metadata
		noMeta    bool // the NoMetadataExtension
		want      want
		reason    string
	}{
		{name: "default, no metadata, DENY path", req: http(path("/d")), want: want{false, "DENY", "", -1}, reason: unknown},
		{name: "default, no metadata, ALLOW notRequestPrincipals", req: http(), want: want{false, "DENY", "", -1}, reason: unknown},
		{name: "default, evil/x", req: http(path("/d")), meta: withJWT(evil), want: deniedBy("foo/deny-evil", 0)},
		{name: "default, evil/x, ALLOW notRequestPrincipals", req: http(), meta: withJWT(evil), want: noAllow},
		{name: "default, empty jwt_authn struct: no token", req: http(path("/d")), meta: withJWT(&structpb.Struct{}), want: allowedBy("foo/allow-not-evil", 0)},
		{name: "default, TCP", req: http(tcp()), want: deniedBy("foo/deny-evil", 0)},
		{name: "forwarded, no metadata, DENY path", forwarded: true, req: http(path("/d")), want: allowedBy("foo/allow-not-evil", 0)},
		{name: "forwarded, no metadata, ALLOW notRequestPrincipals", forwarded: true, req: http(), want: allowedBy("foo/allow-not-evil", 0)},
		{name: "forwarded, evil/x", forwarded: true, req: http(path("/d")), meta: withJWT(evil), want: deniedBy("foo/deny-evil", 0)},
		{name: "forwarded, TCP", forwarded: true, req: http(tcp()), want: deniedBy("foo/deny-evil", 0)},
		{name: "forwarded, no-metadata extension", forwarded: true, req: http(), meta: withJWT(evil), noMeta: true, want: want{false, "DENY", "", -1},
			reason: "no JWT metadata (request.auth.*, requestPrincipals)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{JWTMetadataForwarded: c.forwarded}, policies, webPod())
			req := envoyRequest(c.req)
			if req.Attributes.Request != nil {
				req.Attributes.MetadataContext = c.meta
			}
			if c.noMeta {
				req.Attributes.ContextExtensions = map[string]string{NoMetadataExtension: "true"}
			}
			v, err := s.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if c.reason != "" && !strings.Contains(v.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, c.reason)
			}
			if c.reason == "" && strings.Contains(v.Reason, "JWT metadata") {
				t.Errorf("reason %q: the JWT was known", v.Reason)
			}
		})
	}
}
