package validation

import (
	"context"
	"strings"
	"testing"

	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

func TestValidatePeerAuthentication(t *testing.T) {
	sel := &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "a"}}
	strict := &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}
	runKindCases(t, validatePeerAuthentication, []kindCase{
		{name: "mesh strict", spec: &security.PeerAuthentication{Mtls: strict}},
		{name: "port level with selector", spec: &security.PeerAuthentication{Selector: sel, Mtls: strict,
			PortLevelMtls: map[uint32]*security.PeerAuthentication_MutualTLS{8080: {Mode: security.PeerAuthentication_MutualTLS_DISABLE}}}},
		{name: "empty selector warns", spec: &security.PeerAuthentication{Selector: &typev1beta1.WorkloadSelector{}},
			warns: []string{"spec.selector.matchLabels"}},
		{name: "port level without selector", spec: &security.PeerAuthentication{
			PortLevelMtls: map[uint32]*security.PeerAuthentication_MutualTLS{80: strict}},
			errs: []string{"spec.portLevelMtls: Invalid value: portLevelMtls requires selector"}},
		{name: "port level with empty selector", spec: &security.PeerAuthentication{Selector: &typev1beta1.WorkloadSelector{},
			PortLevelMtls: map[uint32]*security.PeerAuthentication_MutualTLS{80: strict}},
			errs:  []string{"portLevelMtls requires selector"},
			warns: []string{"workload selector specified without labels"}},
		{name: "port out of range", spec: &security.PeerAuthentication{Selector: sel,
			PortLevelMtls: map[uint32]*security.PeerAuthentication_MutualTLS{0: strict, 42949672: strict, 443: nil}},
			errs: []string{`spec.portLevelMtls[0]: Invalid value: "0": port must be between 1-65535`,
				`spec.portLevelMtls[42949672]: Invalid value: "42949672": port must be between 1-65535`,
				"spec.portLevelMtls[443]: Required value"}},
		{name: "wildcard selector", spec: &security.PeerAuthentication{Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "a*"}}},
			errs: []string{"wildcard is not supported in selector"}},
	})
}

func TestPeerAuthenticationYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "istio docs STRICT", doc: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`},
		{name: "zero port", doc: `
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: p, namespace: ns}
spec:
  selector: {matchLabels: {app: a}}
  portLevelMtls:
    "0": {mode: STRICT}
`, errs: []string{"PeerAuthentication ns/p", "port must be between 1-65535"}},
	})
}

// A portLevelMtls key the validator accepts is one istio.io/api's own JSON
// decoder (golang/protobuf jsonpb: what istiod and client-go's typed
// informers read with) can read, and a key it rejects only for its form
// is one that decoder refuses.
func TestPeerAuthenticationPortKeysDecodable(t *testing.T) {
	for key, wantValid := range map[string]bool{"80": true, "8080": true, "080": false, "0080": false, "00443": false} {
		doc := "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: ns}\n" +
			"spec:\n  selector: {matchLabels: {app: a}}\n  portLevelMtls: {\"" + key + "\": {mode: DISABLE}}\n"
		res, err := ValidateJSON(context.Background(), []byte(doc), Options{})
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if res.Valid() != wantValid {
			t.Errorf("key %q: valid %v, want %v: %v", key, res.Valid(), wantValid, res.ErrorLines())
		}
		if !wantValid && !strings.Contains(strings.Join(res.ErrorLines(), "\n"), "spec.portLevelMtls["+key+"]") {
			t.Errorf("key %q: error does not name the key: %v", key, res.ErrorLines())
		}
		spec := []byte(`{"selector":{"matchLabels":{"app":"a"}},"portLevelMtls":{"` + key + `":{"mode":"DISABLE"}}}`)
		decodeErr := (&security.PeerAuthentication{}).UnmarshalJSON(spec)
		if (decodeErr == nil) != wantValid {
			t.Errorf("key %q: istio.io/api decode error %v; the validator's verdict (valid %v) disagrees", key, decodeErr, wantValid)
		}
	}
}
