package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/validation"
)

// A null label value in selector.matchLabels. The
// API server prunes an explicit null before storing (apiextensions-apiserver
// PruneNonNullableNullsWithoutDefaults), so Istio reads matchLabels {} and the
// policy selects every workload of its namespace; `meshguard validate` checks
// that pruned form. Every loader path must enforce the object validation
// checked, not a second decode of the raw document (which read {app: ""}, a
// selector matching no pod labelled app=web: a DENY-all and a STRICT
// PeerAuthentication went unenforced).
func TestLoaderEnforcesWhatValidateChecked(t *testing.T) {
	docs := map[string]string{
		"AuthorizationPolicy": "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: foo}\nspec: {action: DENY, selector: {matchLabels: {app: null}}, rules: [{}]}\n",
		"PeerAuthentication":  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: foo}\nspec: {selector: {matchLabels: {app: null}}, mtls: {mode: STRICT}}\n",
	}
	loaders := map[string]func(t *testing.T, kind, doc string) *Set{
		"AddYAML": func(t *testing.T, _, doc string) *Set {
			set := &Set{}
			if _, err := set.AddYAML("p.yaml", []byte(doc)); err != nil {
				t.Fatal(err)
			}
			return set
		},
		"DirLoader": func(t *testing.T, _, doc string) *Set {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			// Checked on the reload, which reuses the first load's objects
			// (DirLoader's memo) and the validation memo.
			l := new(DirLoader)
			if _, _, err := l.Load(dir); err != nil {
				t.Fatal(err)
			}
			set, _, err := l.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			return set
		},
		"DecodeStored": func(t *testing.T, kind, doc string) *Set {
			obj, err := manifest.Decode([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			st, err := DecodeStored(kind, obj)
			if err != nil {
				t.Fatal(err)
			}
			if st.Invalid != "" {
				t.Fatalf("stored %s invalid: %s", kind, st.Invalid)
			}
			set := &Set{}
			set.AddStored(st)
			return set
		},
	}
	for kind, doc := range docs {
		obj, err := manifest.Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if res := validation.ValidateObject(context.Background(), obj, validation.Options{DefaultNamespace: "default"}); !res.Valid() {
			t.Fatalf("%s: validate rejects: %v", kind, res.ErrorLines())
		}
		for name, load := range loaders {
			t.Run(kind+"/"+name, func(t *testing.T) {
				set := load(t, kind, doc)
				for _, ap := range set.AuthorizationPolicies {
					if l := ap.Spec.GetSelector().GetMatchLabels(); len(l) != 0 {
						t.Errorf("AuthorizationPolicy selector %v, want {} (as validated)", l)
					}
				}
				for _, pa := range set.PeerAuthentications {
					if l := pa.Spec.GetSelector().GetMatchLabels(); len(l) != 0 {
						t.Errorf("PeerAuthentication selector %v, want {} (as validated)", l)
					}
				}
				s, err := Compile(context.Background(), Mesh{}, set, 1)
				if err != nil {
					t.Fatal(err)
				}
				v, err := s.CheckRequest(context.Background(), http(ns("foo", map[string]string{"app": "web"})))
				if err != nil {
					t.Fatal(err)
				}
				if v.Allowed {
					t.Errorf("plaintext request to foo/app=web allowed (%s); validate checked a policy selecting every workload of foo", v.Reason)
				}
			})
		}
	}
}

// A stored policy validation rejects whose
// targetRefs name no Gateway of its namespace. Istio attaches it to no
// workload meshguard serves (pilot/pkg/model/policyattachment.go
// ShouldAttachPolicy), so nothing is denied for it; but it cannot be
// evaluated, and is reported in Snapshot.Failed (engine.go) with Denies
// false, never dropped unseen.
func TestFailedPolicyWithForeignTargetRefs(t *testing.T) {
	for name, ref := range map[string]string{
		"core group Gateway":      "{group: \"\", kind: Gateway, name: gw}",
		"lower-case kind":         "{group: gateway.networking.k8s.io, kind: gateway, name: gw}",
		"other namespace Gateway": "{group: gateway.networking.k8s.io, kind: Gateway, name: gw, namespace: bar}",
		"Pod":                     "{group: \"\", kind: Pod, name: gw}",
	} {
		t.Run(name, func(t *testing.T) {
			doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: broken, namespace: foo}\n" +
				"spec:\n  action: DENY\n  targetRefs: [" + ref + "]\n  rules: [{to: [{operation: {ports: [\"99999\"]}}]}]\n"
			obj, err := manifest.Decode([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			st, err := DecodeStored("AuthorizationPolicy", obj)
			if err != nil {
				t.Fatal(err)
			}
			if st.Invalid == "" {
				t.Fatal("the stored policy is valid; the case needs an invalid one")
			}
			set := &Set{}
			set.AddStored(st)
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Failed) != 1 || s.Failed[0].ID != "foo/broken" || s.Failed[0].Denies || s.Failed[0].Reason == "" {
				t.Fatalf("Failed = %+v, want foo/broken with a reason, Denies false", s.Failed)
			}
			v, err := s.CheckRequest(context.Background(), http(ns("foo", map[string]string{"app": "web"})))
			if err != nil {
				t.Fatal(err)
			}
			if !v.Allowed {
				t.Errorf("verdict %+v: denied by a policy attached to no workload meshguard serves", v)
			}
			if strings.Contains(v.Reason, "foo/broken") {
				t.Errorf("verdict %+v names a policy that selects no sidecar workload", v)
			}
		})
	}
}
