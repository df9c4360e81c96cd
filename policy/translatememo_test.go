package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exportedAP is an AuthorizationPolicy as `kubectl get -o yaml` exports it:
// uid and resourceVersion included, which editing or copying the file keeps.
func exportedAP(name, created, action, rules string) string {
	return fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: %s
  namespace: shop
  uid: 6f1c2a9e-0000-4000-8000-000000000001
  resourceVersion: "4711"
  creationTimestamp: %q
spec:
  action: %s
  rules: %s
`, name, created, action, rules)
}

// TestTranslationMemoIgnoresFileUIDs: the translation memo must not take
// two policy-directory objects with the same uid and resourceVersion for
// one (an edited export, a copied export): after each reload the snapshot
// built from the previous one decides as a compile from scratch does.
// Keyed by uid and resourceVersion, the first case kept the edit's DENY
// from applying and the second turned the DENY into a copy of the ALLOW.
func TestTranslationMemoIgnoresFileUIDs(t *testing.T) {
	deny := exportedAP("block", "2024-01-01T00:00:00Z", "DENY", `[{to: [{operation: {paths: ["/admin"]}}]}]`)
	for _, tc := range []struct {
		name          string
		before, after map[string]string
		path          string
	}{
		{"edited export", map[string]string{"p.yaml": deny},
			map[string]string{"p.yaml": exportedAP("block", "2024-01-01T00:00:00Z", "DENY", `[{to: [{operation: {paths: ["/admin", "/secret"]}}]}]`)}, "/secret"},
		{"copied export", map[string]string{"a.yaml": deny, "b.yaml": exportedAP("allow-all", "2024-01-02T00:00:00Z", "ALLOW", `[{}]`)},
			nil, "/admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			write := func(files map[string]string) {
				for f, c := range files {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			loader := new(DirLoader)
			load := func() *Set {
				set, _, err := loader.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				return set
			}
			write(tc.before)
			prev, err := CompileNext(ctx, nil, Mesh{}, load(), 1)
			if err != nil {
				t.Fatal(err)
			}
			write(tc.after)
			set := load()
			inc, err := CompileNext(ctx, prev, Mesh{}, set, 2)
			if err != nil {
				t.Fatalf("rebuild: %v", err)
			}
			fresh, err := Compile(ctx, Mesh{}, set, 2)
			if err != nil {
				t.Fatal(err)
			}
			r := &Request{Namespace: "shop", Labels: map[string]string{"app": "web"}, Principal: "spiffe://cluster.local/ns/x/sa/y",
				SrcIP: "10.0.0.5", RemoteIP: "10.0.0.5", DstIP: "10.0.1.1", DstPort: 8080, Method: "GET", Path: tc.path, Host: "x"}
			got, want := checkBoth(ctx, t, inc, fresh, r)
			if want.Allowed || want.Action != "DENY" {
				t.Fatalf("GET %s: a compile from scratch gives %+v; the test expects a DENY", tc.path, want)
			}
			if got.Allowed != want.Allowed || got.Policy != want.Policy {
				t.Fatalf("GET %s: rebuilt snapshot %+v, compile from scratch %+v", tc.path, got, want)
			}
		})
	}
}

// TestMaterializeChecksDigest: a reused policy whose object no longer
// translates to the digest it was reused by is an error (the build fails
// and the last snapshot keeps serving), never a silently different policy.
func TestMaterializeChecksDigest(t *testing.T) {
	set := &Set{}
	if _, err := set.AddYAML("x", []byte(ap("shop", "block", "action: DENY\nrules:\n- to:\n  - operation: {paths: [/admin]}")+
		ap("shop", "other", "action: DENY\nrules:\n- to:\n  - operation: {paths: [/other]}"))); err != nil {
		t.Fatal(err)
	}
	block, other := set.AuthorizationPolicies[0], set.AuthorizationPolicies[1]
	tr := newTranslator(Mesh{})
	tr.memo = newTranslationMemo(nil, 2)
	cp, _, _ := tr.policyMemo(block)
	light := tr.memo.next[block].cp
	if light.Rules != nil || light.digest == "" || light.digest != cp.digest {
		t.Fatalf("memo entry: rules %v, digest %q (translation's %q); want no rules and the translation's digest", light.Rules, light.digest, cp.digest)
	}
	v := &view{B: newBuckets()}
	v.B.add("deny", light)
	if err := tr.materialize(v); err != nil {
		t.Fatalf("materialize with the policy's own object: %v", err)
	}
	if got := v.B["deny"].Any; len(got) != 1 || len(got[0].Rules) != 1 {
		t.Fatalf("materialized policy: %+v; want its one rule back", got)
	}
	v = &view{B: newBuckets()}
	v.B.add("deny", light)
	tr.memo.src[light.digest] = other // as if the object had changed under the same digest
	if err := tr.materialize(v); err == nil || !strings.Contains(err.Error(), "shop/block") {
		t.Fatalf("materialize with another object: err %v; want an error naming shop/block", err)
	}
}
