package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	secapi "istio.io/api/security/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ra renders a minimal RequestAuthentication; spec is YAML indented by 2.
func ra(ns, name, spec string) string {
	return fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: %s, namespace: %s}\nspec:\n%s\n---\n", name, ns, indent(spec))
}

// TestHeadersJWTAuthnRewrites: under Istio's CUSTOM wiring ext_authz runs
// before jwt_authn (pilot/pkg/networking/core/listener_builder.go
// buildHTTPConnectionManager), and jwt_authn changes headers before Istio's
// RBAC filter reads them: outputClaimToHeaders and outputPayloadToHeader
// headers are appended (Envoy jwt_authn authenticator.cc handleGoodJwt,
// addCopy), the token's header removed unless forwardOriginalToken. A
// policy matching such a header of a workload a RequestAuthentication may
// apply to cannot get Istio's verdict where the CheckRequest carries the
// headers of before jwt_authn (JWT unknown): it denies. Where ext_authz
// runs after jwt_authn (metadata forwarded) nothing changes.
func TestHeadersJWTAuthnRewrites(t *testing.T) {
	const rule = `{jwtRules: [{issuer: "https://issuer", outputClaimToHeaders: [{header: x-jwt-group, claim: group}]}]}`
	allowAdmins := ap("foo", "allow-admins", `rules: [{when: [{key: "request.headers[x-jwt-group]", values: ["admins"]}]}]`)
	raFoo := ra("foo", "jwt", "jwtRules: [{issuer: \"https://issuer\", outputClaimToHeaders: [{header: X-JWT-Group, claim: group}]}]")
	const undecided = "x-jwt-group"
	for _, c := range []struct {
		name      string
		forwarded bool
		policies  string
		req       *Request
		meta      bool // the CheckRequest carries jwt_authn metadata: ext_authz runs after it
		want      want
		reason    string // "" : the JWT headers were not unknown
	}{
		{name: "before jwt_authn: client's own x-jwt-group", policies: allowAdmins + raFoo, req: http(hdr("x-jwt-group", "admins")),
			want: want{false, "DENY", "", -1}, reason: undecided},
		{name: "forwarded: headers are jwt_authn's", forwarded: true, policies: allowAdmins + raFoo, req: http(hdr("x-jwt-group", "admins")),
			want: allowedBy("foo/allow-admins", 0)},
		{name: "metadata present: after jwt_authn", policies: allowAdmins + raFoo, meta: true, req: http(hdr("x-jwt-group", "admins"), jwt(map[string]any{"iss": "https://issuer", "group": "admins"})),
			want: allowedBy("foo/allow-admins", 0)},
		{name: "no RequestAuthentication", policies: allowAdmins, req: http(hdr("x-jwt-group", "admins")), want: allowedBy("foo/allow-admins", 0)},
		{name: "RequestAuthentication of another workload", policies: allowAdmins + ra("foo", "jwt", "selector: {matchLabels: {app: other}}\njwtRules: "+rule[len("{jwtRules: "):len(rule)-1]),
			req: http(hdr("x-jwt-group", "admins")), want: allowedBy("foo/allow-admins", 0)},
		{name: "RequestAuthentication selecting the workload", policies: allowAdmins + ra("foo", "jwt", "selector: {matchLabels: {app: web}}\njwtRules: "+rule[len("{jwtRules: "):len(rule)-1]),
			req: http(hdr("x-jwt-group", "admins")), want: want{false, "DENY", "", -1}, reason: undecided},
		{name: "RequestAuthentication of another namespace", policies: allowAdmins + ra("bar", "jwt", "jwtRules: "+rule[len("{jwtRules: "):len(rule)-1]),
			req: http(hdr("x-jwt-group", "admins")), want: allowedBy("foo/allow-admins", 0)},
		{name: "root-namespace RequestAuthentication: mesh-wide", policies: allowAdmins + ra("istio-system", "jwt", "jwtRules: "+rule[len("{jwtRules: "):len(rule)-1]),
			req: http(hdr("x-jwt-group", "admins")), want: want{false, "DENY", "", -1}, reason: undecided},
		{name: "RequestAuthentication on a Gateway: not this sidecar", policies: allowAdmins + ra("foo", "jwt",
			"targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\njwtRules: "+rule[len("{jwtRules: "):len(rule)-1]),
			req: http(hdr("x-jwt-group", "admins")), want: allowedBy("foo/allow-admins", 0)},
		{name: "another header", policies: ap("foo", "allow-x", `rules: [{when: [{key: "request.headers[x-other]", values: ["a"]}]}]`) + raFoo,
			req: http(hdr("x-other", "a")), want: allowedBy("foo/allow-x", 0)},
		{name: "DENY notValues on the payload header", policies: ap("foo", "deny", `action: DENY
rules: [{when: [{key: "request.headers[x-payload]", notValues: ["p"]}]}]`) + ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", outputPayloadToHeader: X-Payload}]`),
			req: http(hdr("x-payload", "p")), want: want{false, "DENY", "", -1}, reason: "x-payload"},
		{name: "token header removed (forwardOriginalToken false)", policies: ap("foo", "allow-auth", `rules: [{when: [{key: "request.headers[authorization]", values: ["Bearer *"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer"}]`), req: http(hdr("authorization", "Bearer x")), want: want{false, "DENY", "", -1}, reason: "authorization"},
		{name: "token header forwarded", policies: ap("foo", "allow-auth", `rules: [{when: [{key: "request.headers[authorization]", values: ["Bearer *"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", forwardOriginalToken: true}]`), req: http(hdr("authorization", "Bearer x")), want: allowedBy("foo/allow-auth", 0)},
		{name: "custom token header removed", policies: ap("foo", "allow-tok", `rules: [{when: [{key: "request.headers[x-token]", values: ["*"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", fromHeaders: [{name: X-Token}]}]`), req: http(hdr("x-token", "t")), want: want{false, "DENY", "", -1}, reason: "x-token"},
		{name: "custom token header: authorization untouched", policies: ap("foo", "allow-auth", `rules: [{when: [{key: "request.headers[authorization]", values: ["*"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", fromHeaders: [{name: X-Token}]}]`), req: http(hdr("authorization", "t")), want: allowedBy("foo/allow-auth", 0)},
		{name: "default access_token parameter cut from :path", policies: ap("foo", "allow-q", `rules: [{when: [{key: "request.headers[:path]", values: ["/api?*"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer"}]`), req: http(path("/api?access_token=x"), hdr(":path", "/api?access_token=x")), want: want{false, "DENY", "", -1}, reason: ":path"},
		{name: "fromParams parameter cut from :path", policies: ap("foo", "allow-q", `rules: [{when: [{key: "request.headers[:path]", values: ["/api?*"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", fromParams: [tok]}]`), req: http(path("/api?tok=x"), hdr(":path", "/api?tok=x")), want: want{false, "DENY", "", -1}, reason: ":path"},
		{name: "fromHeaders only: :path untouched", policies: ap("foo", "allow-q", `rules: [{when: [{key: "request.headers[:path]", values: ["/api?*"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", fromHeaders: [{name: X-Token}]}]`), req: http(path("/api?tok=x"), hdr(":path", "/api?tok=x")), want: allowedBy("foo/allow-q", 0)},
		{name: "parameter forwarded: :path untouched", policies: ap("foo", "allow-q", `rules: [{when: [{key: "request.headers[:path]", values: ["/api?*"]}]}]`) +
			ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", fromParams: [tok], forwardOriginalToken: true}]`), req: http(path("/api?tok=x"), hdr(":path", "/api?tok=x")), want: allowedBy("foo/allow-q", 0)},
		{name: "policy of another workload", policies: ap("foo", "allow-admins", `selector: {matchLabels: {app: other}}
rules: [{when: [{key: "request.headers[x-jwt-group]", values: ["admins"]}]}]`) + raFoo, req: http(hdr("x-jwt-group", "admins")), want: open},
		{name: "TCP", policies: ap("foo", "deny", `action: DENY
rules: [{when: [{key: "request.headers[x-jwt-group]", values: ["admins"]}]}]`) + raFoo, req: http(tcp()), want: deniedBy("foo/deny", 0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{JWTMetadataForwarded: c.forwarded}, c.policies, webPod())
			req := c.req
			if !c.meta {
				req.JWT = nil
			}
			v, err := s.Check(context.Background(), envoyRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if c.reason != "" && (!strings.Contains(v.Reason, c.reason) || !strings.Contains(v.Reason, "RequestAuthentication")) {
				t.Errorf("reason %q, want it to name %q and the RequestAuthentication", v.Reason, c.reason)
			}
			if c.reason == "" && strings.Contains(v.Reason, "jwt_authn") {
				t.Errorf("reason %q: the headers were known", v.Reason)
			}
		})
	}
}

// TestHeadersJWTAuthnUnknownDestination: a destination missing from the
// Pod index may be any workload of its namespace: every RequestAuthentication
// of the namespace (and the root namespace) may apply.
func TestHeadersJWTAuthnUnknownDestination(t *testing.T) {
	s := compileCase(t, Mesh{}, ap("foo", "allow-admins", `rules: [{when: [{key: "request.headers[x-jwt-group]", values: ["admins"]}]}]`)+
		ra("foo", "jwt", `selector: {matchLabels: {app: other}}
jwtRules: [{issuer: "https://issuer", outputClaimToHeaders: [{header: x-jwt-group, claim: group}]}]`))
	req := envoyRequest(http(hdr("x-jwt-group", "admins")))
	req.Attributes.Destination.Principal = "spiffe://cluster.local/ns/foo/sa/web"
	v, err := s.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || !strings.Contains(v.Reason, "x-jwt-group") {
		t.Errorf("allowed=%v reason %q; want a denial naming x-jwt-group", v.Allowed, v.Reason)
	}
}

// TestHeadersJWTAuthnInvalidRequestAuthentication: a stored
// RequestAuthentication `meshguard validate` rejects cannot be read: any
// header may be what its jwt_authn provider writes (fail closed).
func TestHeadersJWTAuthnInvalidRequestAuthentication(t *testing.T) {
	set := &Set{Pods: []*corev1.Pod{webPod()}}
	if _, err := set.AddYAML(t.Name(), []byte(ap("foo", "allow-x", `rules: [{when: [{key: "request.headers[x-other]", values: ["a"]}]}]`))); err != nil {
		t.Fatal(err)
	}
	bad := &secv1.RequestAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "foo"}}
	bad.Spec.JwtRules = append(bad.Spec.JwtRules, &secapi.JWTRule{Issuer: "https://issuer", OutputClaimToHeaders: []*secapi.ClaimToHeader{{Header: "bad_name", Claim: "g"}}})
	set.RequestAuthentications = append(set.RequestAuthentications, bad)
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Check(context.Background(), envoyRequest(http(hdr("x-other", "a"))))
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || !strings.Contains(v.Reason, "RequestAuthentication foo/bad") {
		t.Errorf("allowed=%v reason %q; want a denial naming RequestAuthentication foo/bad", v.Allowed, v.Reason)
	}
}

// TestLoadDirRequestAuthentications: a policy directory's
// RequestAuthentications are loaded, validated, named once and filtered by
// revision as the other policy kinds are, and reach the snapshot.
func TestLoadDirRequestAuthentications(t *testing.T) {
	dir := t.TempDir()
	docs := ap("foo", "allow-admins", `rules: [{when: [{key: "request.headers[x-jwt-group]", values: ["admins"]}]}]`) +
		ra("foo", "jwt", `jwtRules: [{issuer: "https://issuer", outputClaimToHeaders: [{header: x-jwt-group, claim: group}]}]`) +
		"apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: canary, namespace: foo, labels: {istio.io/rev: canary}}\nspec: {}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(docs), 0o600); err != nil {
		t.Fatal(err)
	}
	set, warnings, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %v", warnings)
	}
	if len(set.RequestAuthentications) != 1 || set.RequestAuthentications[0].Name != "jwt" {
		t.Fatalf("RequestAuthentications %v, want foo/jwt alone (canary is another revision's)", set.RequestAuthentications)
	}
	set.Pods = []*corev1.Pod{webPod()}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Check(context.Background(), envoyRequest(http(hdr("x-jwt-group", "admins"))))
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed {
		t.Errorf("allowed (%q): the directory's RequestAuthentication rewrites x-jwt-group", v.Reason)
	}
	// One object per name, as for the other kinds.
	if err := os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(ra("foo", "jwt", `jwtRules: [{issuer: "https://other"}]`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "RequestAuthentication foo/jwt") {
		t.Errorf("err %v, want one naming RequestAuthentication foo/jwt defined twice", err)
	}
	// Invalid: the load fails naming it, as for the other kinds.
	if err := os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(ra("foo", "bad", `jwtRules: [{issuer: "https://i", outputClaimToHeaders: [{header: bad_name, claim: g}]}]`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "outputClaimToHeaders") {
		t.Errorf("err %v, want one naming the invalid outputClaimToHeaders", err)
	}
}
