package policy

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestUserModuleUnknownJWT: a user module cannot tell an unknown JWT from
// no JWT (input.jwt is absent either way), so one that reads input.jwt is
// undecidable for a request whose JWT is unknown (no jwt_authn metadata
// under --authz-jwt-metadata=absent), as a policy on request.auth.* is:
// denied with a reason. A known JWT, or none where Envoy forwards the
// metadata, is evaluated; a module not reading input.jwt is unaffected.
func TestUserModuleUnknownJWT(t *testing.T) {
	const reads = "package meshguard.user\n\ndeny contains \"banned\" if input.jwt.claims.role == \"banned\"\n"
	const other = "package meshguard.user\n\ndeny contains \"no\" if input.path == \"/no\"\n"
	for _, c := range []struct {
		name      string
		mod       string
		forwarded bool
		req       *Request
		allowed   bool
	}{
		{"reads input.jwt, JWT unknown", reads, false, http(), false},
		{"reads input.jwt, JWT forwarded: none", reads, true, http(), true},
		{"reads input.jwt, JWT known", reads, false, http(jwt(map[string]any{"iss": "i", "role": "user"})), true},
		{"reads input.jwt, banned", reads, false, http(jwt(map[string]any{"iss": "i", "role": "banned"})), false},
		{"reads input.jwt, TCP", reads, false, http(tcp()), true},
		{"does not read input.jwt", other, false, http(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Compile(context.Background(), Mesh{JWTMetadataForwarded: c.forwarded},
				&Set{Pods: []*corev1.Pod{webPod()}, UserModules: map[string]string{"m.rego": c.mod}}, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Check(context.Background(), envoyRequest(c.req))
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowed != c.allowed {
				t.Errorf("allowed=%v (%q), want %v", v.Allowed, v.Reason, c.allowed)
			}
			if !c.allowed && c.req.JWT == nil && !strings.Contains(v.Reason, "input.jwt") {
				t.Errorf("reason %q: want it to name input.jwt", v.Reason)
			}
		})
	}
}
