package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/policy"
)

// Istio's CUSTOM provider puts Envoy's ext_authz filter before jwt_authn
// (Istio: pilot/pkg/networking/core/listener_builder.go
// buildHTTPConnectionManager appends authzCustomBuilder.BuildHTTP before
// authnBuilder.BuildHTTP, commit 044be69f174a7afe8a827ddc4e9717df7ee97cd3)
// and sets no metadata_context_namespaces
// (pilot/pkg/security/authz/builder/extauthz.go generateGRPCConfig, commit
// 08bd39c150a38c72a9bba7ae4b665d7292c8a6ea): a CheckRequest from Istio's own
// wiring never carries the JWT. Reading that as "no token" changes what a
// policy on the JWT means (a DENY on requestPrincipals never applies, an
// ALLOW on notRequestPrincipals always does), so by default
// (--authz-jwt-metadata=absent) a gRPC CheckRequest without jwt_authn
// metadata is "JWT unknown" and denied where the enforced policies of its
// namespace read the JWT; --authz-jwt-metadata=forwarded says Envoy is wired
// to send it (ext_authz after jwt_authn, metadata_context_namespaces), and
// then its absence is a request without a token, as Istio's RBAC filter
// (after jwt_authn) reads it. Deliberate difference from a plain CUSTOM
// provider, which cannot evaluate these attributes at all.
const jwtPolicies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-evil, namespace: foo}
spec:
  action: DENY
  rules: [{from: [{source: {requestPrincipals: ["evil/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-evil-claim, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/claims"]}}]
    when: [{key: "request.auth.claims[group]", values: ["evil"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-not-evil, namespace: bar}
spec:
  rules: [{from: [{source: {notRequestPrincipals: ["evil/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: plain}
spec:
  rules: [{to: [{operation: {methods: ["GET"]}}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: foo, labels: {app: web}}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: bar, labels: {app: api}}
status: {podIP: 10.0.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: app-1, namespace: plain, labels: {app: app}}
status: {podIP: 10.0.3.1}
`

// jwtServer serves jwtPolicies over gRPC on loopback with o.
func jwtServer(t *testing.T, o Options) authv3.AuthorizationClient {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(jwtPolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	set, _, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	engine := policy.NewEngine(o.Mesh())
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	o.DecisionLog = "off"
	return authv3.NewAuthorizationClient(serveGRPC(t, engine, o))
}

// jwtMeta is what Envoy forwards from jwt_authn (payload_in_metadata
// "payload", as Istio configures it) for a verified token of iss/sub.
func jwtMeta(iss, sub string, claims map[string]any) *corev3.Metadata {
	p := map[string]any{"iss": iss, "sub": sub}
	for k, v := range claims {
		p[k] = v
	}
	s, err := structpb.NewStruct(map[string]any{"payload": p})
	if err != nil {
		panic(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": s}}
}

const jwtUnknownReason = "JWT metadata (request.auth.*, requestPrincipals"

func TestGRPCJWTMetadataAbsentFailsClosed(t *testing.T) {
	type row struct {
		name       string
		dst, path  string
		meta       *corev3.Metadata
		ext        map[string]string
		allowed    bool
		wantPolicy string // the deciding policy of a denial ("" none)
		wantReason string // in the denial's status message
	}
	evil := jwtMeta("evil", "x", map[string]any{"group": "evil"})
	good := jwtMeta("good", "y", map[string]any{"group": "staff"})
	// The rows that differ between the two settings are the requests
	// without jwt_authn metadata to a namespace whose policies read the JWT.
	common := []row{
		{name: "DENY requestPrincipals, token evil/x", dst: "10.0.1.1", path: "/", meta: evil, wantPolicy: "foo/deny-evil"},
		{name: "DENY claim, token with group evil", dst: "10.0.1.1", path: "/claims", meta: jwtMeta("other", "z", map[string]any{"group": "evil"}), wantPolicy: "foo/deny-evil-claim"},
		{name: "DENY requestPrincipals, token good/y", dst: "10.0.1.1", path: "/", meta: good, allowed: true},
		{name: "ALLOW notRequestPrincipals, token evil/x", dst: "10.0.2.1", path: "/", meta: evil},
		{name: "ALLOW notRequestPrincipals, token good/y", dst: "10.0.2.1", path: "/", meta: good, allowed: true, wantPolicy: "bar/allow-not-evil"},
		// jwt_authn's struct without a payload: metadata forwarded, no token.
		{name: "DENY requestPrincipals, empty jwt_authn struct", dst: "10.0.1.1", path: "/",
			meta: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": {}}}, allowed: true},
		{name: "policies not on the JWT, no metadata", dst: "10.0.3.1", path: "/", allowed: true, wantPolicy: "plain/allow-get"},
		{name: "no-metadata extension with metadata for evil/x", dst: "10.0.1.1", path: "/", meta: evil,
			ext: map[string]string{policy.NoMetadataExtension: "true"}, wantReason: jwtUnknownReason},
		{name: "no-metadata extension, policies not on the JWT", dst: "10.0.3.1", path: "/",
			ext: map[string]string{policy.NoMetadataExtension: "true"}, allowed: true, wantPolicy: "plain/allow-get"},
	}
	for _, setting := range []struct {
		name string
		o    Options
		rows []row
	}{
		{"default", Options{}, []row{
			{name: "DENY requestPrincipals, no metadata", dst: "10.0.1.1", path: "/", wantReason: jwtUnknownReason},
			{name: "DENY claim, no metadata", dst: "10.0.1.1", path: "/claims", wantReason: jwtUnknownReason},
			{name: "ALLOW notRequestPrincipals, no metadata", dst: "10.0.2.1", path: "/", wantReason: jwtUnknownReason},
			// Other namespaces' metadata is not jwt_authn's.
			{name: "ALLOW notRequestPrincipals, other metadata only", dst: "10.0.2.1", path: "/", wantReason: jwtUnknownReason,
				meta: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.rbac": {}}}},
		}},
		{"absent", Options{JWTMetadata: "absent"}, []row{
			{name: "DENY requestPrincipals, no metadata", dst: "10.0.1.1", path: "/", wantReason: jwtUnknownReason},
		}},
		{"forwarded", Options{JWTMetadata: "forwarded"}, []row{
			// No jwt_authn metadata from a wired Envoy: no token.
			{name: "DENY requestPrincipals, no metadata", dst: "10.0.1.1", path: "/", allowed: true},
			{name: "DENY claim, no metadata", dst: "10.0.1.1", path: "/claims", allowed: true},
			{name: "ALLOW notRequestPrincipals, no metadata", dst: "10.0.2.1", path: "/", allowed: true, wantPolicy: "bar/allow-not-evil"},
		}},
	} {
		t.Run(setting.name, func(t *testing.T) {
			client := jwtServer(t, setting.o)
			for _, c := range append(setting.rows, common...) {
				t.Run(c.name, func(t *testing.T) {
					req := request(c.path)
					req.Attributes.Destination.Address.GetSocketAddress().Address = c.dst
					req.Attributes.Source.Principal = "spiffe://cluster.local/ns/client/sa/client"
					req.Attributes.MetadataContext, req.Attributes.ContextExtensions = c.meta, c.ext
					resp, err := client.Check(context.Background(), req)
					if err != nil {
						t.Fatal(err)
					}
					if c.allowed {
						ok := resp.GetOkResponse()
						if ok == nil {
							t.Fatalf("want allowed, got %v", resp)
						}
						if got := headerValue(ok.GetHeaders(), HeaderPolicy); got != c.wantPolicy {
							t.Errorf("policy %q, want %q", got, c.wantPolicy)
						}
						return
					}
					d := resp.GetDeniedResponse()
					if d == nil || d.GetStatus().GetCode() != 403 {
						t.Fatalf("want denied with 403, got %v", resp)
					}
					if got := headerValue(d.GetHeaders(), HeaderPolicy); got != c.wantPolicy {
						t.Errorf("policy %q, want %q (%s)", got, c.wantPolicy, resp.GetStatus().GetMessage())
					}
					if msg := resp.GetStatus().GetMessage(); !strings.Contains(msg, c.wantReason) {
						t.Errorf("reason %q, want it to contain %q", msg, c.wantReason)
					}
				})
			}
		})
	}
}

// TestJWTMetadataFlag: --authz-jwt-metadata is validated, defaults to
// absent (fail closed), reaches the engine's settings, and survives a mesh
// config reload (it is no MeshConfig field).
func TestJWTMetadataFlag(t *testing.T) {
	for _, c := range []struct {
		args      []string
		forwarded bool
		wantErr   string
	}{
		{args: nil},
		{args: []string{"--authz-jwt-metadata=absent"}},
		{args: []string{"--authz-jwt-metadata=forwarded"}, forwarded: true},
		{args: []string{"--authz-jwt-metadata=Forwarded"}, wantErr: `--authz-jwt-metadata "Forwarded": want absent or forwarded`},
		{args: []string{"--authz-jwt-metadata=none"}, wantErr: `--authz-jwt-metadata "none": want absent or forwarded`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var o Options
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("Validate = %v, want %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.Mesh().JWTMetadataForwarded; got != c.forwarded {
				t.Errorf("Mesh().JWTMetadataForwarded = %v, want %v", got, c.forwarded)
			}
			o.MeshFlagSet = fs.Changed
			mc := meshconfig.DefaultMeshConfig() // meshSettings validates it
			mc.TrustDomain = "td.example"
			m, err := meshSettings(o, mc)
			if err != nil {
				t.Fatal(err)
			}
			if m.JWTMetadataForwarded != c.forwarded || m.TrustDomain != "td.example" {
				t.Errorf("after a mesh config: %+v, want JWTMetadataForwarded %v", m, c.forwarded)
			}
		})
	}
	// `authz check` decides as the server does: the flag is a semantics flag.
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	var o Options
	o.AddSemanticsFlags(fs)
	if fs.Lookup("authz-jwt-metadata") == nil {
		t.Error("AddSemanticsFlags does not register --authz-jwt-metadata")
	}
}

// TestRunStandaloneJWTMetadata: the option reaches the verdicts of the
// server RunStandalone builds (not only an engine built in the test).
func TestRunStandaloneJWTMetadata(t *testing.T) {
	for _, c := range []struct {
		setting string
		allowed bool
	}{{"", false}, {"forwarded", true}} {
		t.Run("setting="+c.setting, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "p.yaml"), jwtPolicies)
			conn := startServer(t, dir, Options{JWTMetadata: c.setting}, nil, insecure.NewCredentials())
			req := request("/")
			req.Attributes.Source.Principal = "spiffe://cluster.local/ns/client/sa/client"
			resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetOkResponse() != nil; got != c.allowed {
				t.Fatalf("allowed %v, want %v: %v", got, c.allowed, resp)
			}
			if !c.allowed && !strings.Contains(resp.GetStatus().GetMessage(), jwtUnknownReason) {
				t.Errorf("reason %q, want the JWT unknown", resp.GetStatus().GetMessage())
			}
		})
	}
}
