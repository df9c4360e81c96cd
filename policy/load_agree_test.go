package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/validation"
)

// validateAccepts is `meshguard validate`'s verdict on a stream (exit 0):
// every document, and every item of a list document, valid.
func validateAccepts(t *testing.T, data []byte) bool {
	t.Helper()
	docs, err := manifest.Split(data)
	if err != nil {
		return false
	}
	for _, d := range docs {
		if d.Err != nil {
			return false
		}
		if d.Object == nil {
			continue
		}
		objs := []map[string]any{d.Object}
		if manifest.IsList(d.Object) {
			if objs, err = manifest.Items(d.Object); err != nil {
				return false
			}
		}
		for _, o := range objs {
			opts := validation.Options{DefaultNamespace: "default"}
			if !validation.ValidateObject(context.Background(), o, opts).Valid() {
				return false
			}
		}
	}
	return true
}

// The policy loader never skips, with only a warning, a document
// `meshguard validate` rejects: a DENY policy with a mistyped kind or group
// would otherwise go unenforced while the validator flags it. And a list
// inside a list is refused by both, never enforced by one and unseen by the
// other.
func TestLoaderAgreesWithValidate(t *testing.T) {
	const deny = "metadata: {name: deny-all, namespace: default}\nspec: {action: DENY, rules: [{}]}\n"
	for name, tc := range map[string]struct {
		doc    string
		accept bool
		errHas string // in the loader's error
	}{
		"no apiVersion":     {doc: "kind: AuthorizationPolicy\n" + deny, errHas: "apiVersion"},
		"kind typo":         {doc: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicies\n" + deny, errHas: "AuthorizationPolicies"},
		"wrong Istio group": {doc: "apiVersion: networking.istio.io/v1\nkind: AuthorizationPolicy\n" + deny, errHas: "networking.istio.io"},
		"invalid VirtualService": {
			doc:    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: default}\nspec: {hosts: []}\n",
			errHas: "VirtualService default/v",
		},
		"nested list": {
			doc:    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: security.istio.io/v1\n    kind: AuthorizationPolicy\n    " + strings.ReplaceAll(deny, "\n", "\n    "),
			errHas: "a list inside a list",
		},
		"PeerAuthentication port key with a leading zero": {
			doc:    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: foo}\nspec:\n  selector: {matchLabels: {app: a}}\n  portLevelMtls: {\"080\": {mode: DISABLE}}\n",
			errHas: "spec.portLevelMtls[080]",
		},
		"generateName without name": {
			doc:    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {generateName: deny-, namespace: default}\nspec: {action: DENY, rules: [{}]}\n",
			errHas: "metadata.name",
		},
		"ConfigMap":             {doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n", accept: true},
		"valid VirtualService":  {doc: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: default}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}\n", accept: true},
		"AuthorizationPolicy":   {doc: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n" + deny, accept: true},
		"policy in a flat list": {doc: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  " + strings.ReplaceAll(deny, "\n", "\n  "), accept: true},
	} {
		t.Run(name, func(t *testing.T) {
			data := []byte(tc.doc)
			if got := validateAccepts(t, data); got != tc.accept {
				t.Fatalf("meshguard validate accepts: %v, want %v", got, tc.accept)
			}
			_, err := (&Set{}).AddYAML("p.yaml", data)
			if tc.accept {
				if err != nil {
					t.Fatalf("validate accepts, loader rejects: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("validate rejects; loader error %v, want one mentioning %q", err, tc.errHas)
			}
		})
	}
}
