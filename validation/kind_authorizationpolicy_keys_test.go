package validation

import (
	"context"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/secpolicy"
)

// Which `when` keys are HTTP-only is one rule,
// secpolicy.ConditionKey.HTTPOnly (the compiler's). The DENY warning about
// TCP ports (Istio: pkg/config/validation ValidateAuthorizationPolicy) must
// follow it key by key; and CUSTOM refuses the request.auth.* keys (JWT)
// and the peer identity keys, never a header key.
func TestWhenKeyRulesFollowSecpolicy(t *testing.T) {
	for _, c := range []struct {
		key          string
		customRefuse bool
	}{
		{"request.headers[x-a]", false},
		{"request.experimental.inline.headers[x-a]", false},
		{"request.auth.claims[iss]", true},
		{"request.auth.principal", true},
		{"request.auth.audiences", true},
		{"request.auth.presenter", true},
		{"source.ip", false},
		{"remote.ip", false},
		{"destination.ip", false},
		{"source.namespace", true},
		{"source.principal", true},
		{"connection.sni", false},
		{"experimental.envoy.filters.a.b[c]", false},
	} {
		k, err := secpolicy.ParseConditionKey(c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		value := "a"
		if c.key == "source.ip" || c.key == "remote.ip" || c.key == "destination.ip" {
			value = "10.0.0.1"
		}
		validate := func(action string) Result {
			doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: " + action + "\n" +
				"  rules: [{when: [{key: \"" + c.key + "\", values: [\"" + value + "\"]}]}]\n"
			if action == "CUSTOM" {
				doc += "  provider: {name: ext}\n"
			}
			obj, err := manifest.Decode([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			return ValidateObject(context.Background(), obj, Options{DefaultNamespace: "default"})
		}
		res := validate("DENY")
		if !res.Valid() {
			t.Errorf("%s: DENY rejected: %v", c.key, res.ErrorLines())
		}
		warned := strings.Contains(strings.Join(res.WarningLines(), "\n"), "only HTTP attributes in a DENY rule")
		if warned != k.HTTPOnly() {
			t.Errorf("%s: DENY TCP-port warning %v, secpolicy HTTPOnly %v", c.key, warned, k.HTTPOnly())
		}
		res = validate("CUSTOM")
		refused := strings.Contains(strings.Join(res.ErrorLines(), "\n"), "not supported with CUSTOM action")
		if refused != c.customRefuse {
			t.Errorf("%s: CUSTOM refuses %v, want %v (%v)", c.key, refused, c.customRefuse, res.ErrorLines())
		}
	}
}
