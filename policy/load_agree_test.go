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
		// validateSkips: `meshguard validate` passes over the document as
		// another API group's object (exit 0), and the loader rejects it: a
		// policy kind is never dropped from a policy directory with only a
		// warning.
		validateSkips bool
		errHas        string // in the loader's error
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
		// A security.istio.io kind under another group: Istio reads only
		// security.istio.io (pkg/config/schema/collections), so validate
		// skips it as another group's object; a policy directory holds the
		// policies meant to be enforced, and refuses it, naming apiVersion.
		"AuthorizationPolicy apiVersion v1beta1 (no group)": {doc: "apiVersion: v1beta1\nkind: AuthorizationPolicy\n" + deny, validateSkips: true, errHas: `apiVersion "v1beta1"`},
		"AuthorizationPolicy apiVersion v1 (core group)":    {doc: "apiVersion: v1\nkind: AuthorizationPolicy\n" + deny, validateSkips: true, errHas: `apiVersion "v1"`},
		"AuthorizationPolicy apiVersion security/v1":        {doc: "apiVersion: security/v1\nkind: AuthorizationPolicy\n" + deny, validateSkips: true, errHas: `apiVersion "security/v1"`},
		"AuthorizationPolicy apiVersion istio.io/v1":        {doc: "apiVersion: istio.io/v1\nkind: AuthorizationPolicy\n" + deny, validateSkips: true, errHas: `apiVersion "istio.io/v1"`},
		"AuthorizationPolicy apiVersion security.istio.io.v1": {
			doc: "apiVersion: security.istio.io.v1\nkind: AuthorizationPolicy\n" + deny, validateSkips: true, errHas: `apiVersion "security.istio.io.v1"`,
		},
		"AuthorizationPolicy of another CRD group": {doc: "apiVersion: example.com/v1\nkind: AuthorizationPolicy\n" + deny, validateSkips: true, errHas: `apiVersion "example.com/v1"`},
		"PeerAuthentication apiVersion v1 (core group)": {
			doc:           "apiVersion: v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: foo}\nspec: {mtls: {mode: STRICT}}\n",
			validateSkips: true, errHas: `apiVersion "v1"`,
		},
		// A null label value: both accept; TestLoaderEnforcesWhatValidateChecked
		// checks that the loader enforces what validate checked ({}).
		"null matchLabels value": {doc: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: foo}\nspec: {action: DENY, selector: {matchLabels: {app: null}}, rules: [{}]}\n", accept: true},
		"ConfigMap":              {doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n", accept: true},
		"valid VirtualService":   {doc: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: default}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}\n", accept: true},
		"AuthorizationPolicy":    {doc: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n" + deny, accept: true},
		"policy in a flat list":  {doc: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  " + strings.ReplaceAll(deny, "\n", "\n  "), accept: true},
	} {
		t.Run(name, func(t *testing.T) {
			data := []byte(tc.doc)
			if got := validateAccepts(t, data); got != (tc.accept || tc.validateSkips) {
				t.Fatalf("meshguard validate accepts: %v, want %v", got, tc.accept || tc.validateSkips)
			}
			_, err := (&Set{}).AddYAML("p.yaml", data)
			if tc.accept {
				if err != nil {
					t.Fatalf("validate accepts, loader rejects: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("loader error %v, want one mentioning %q", err, tc.errHas)
			}
		})
	}
}
