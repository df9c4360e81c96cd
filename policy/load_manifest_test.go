package policy

import (
	"strings"
	"testing"
)

// The policy loader decodes with the decoder `meshguard validate` uses
// (internal/manifest): duplicate keys are errors naming key and line, and
// `kubectl get -o yaml` lists (List, AuthorizationPolicyList) are expanded.
func TestAddYAMLSharesTheManifestDecoder(t *testing.T) {
	list := `apiVersion: security.istio.io/v1
kind: AuthorizationPolicyList
items:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: a, namespace: foo}
  spec: {action: DENY, rules: [{}]}
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: b, namespace: foo}
  spec: {}
`
	set := &Set{}
	if _, err := set.AddYAML("list.yaml", []byte(list)); err != nil {
		t.Fatal(err)
	}
	if len(set.AuthorizationPolicies) != 2 {
		t.Fatalf("items loaded: %d, want 2", len(set.AuthorizationPolicies))
	}
	dup := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: DENY\n  action: ALLOW\n"
	_, err := (&Set{}).AddYAML("dup.yaml", []byte(dup))
	if err == nil || !strings.Contains(err.Error(), `"action"`) || !strings.Contains(err.Error(), "line") {
		t.Fatalf("duplicate key: %v", err)
	}
	bad := strings.Replace(list, "  spec: {}\n", "  spec: {}\n  spec: {action: DENY}\n", 1)
	if _, err := (&Set{}).AddYAML("list.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `"spec"`) || !strings.Contains(err.Error(), "line 12") {
		t.Fatalf("duplicate key inside a list item: %v", err)
	}
}
