package authz

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
)

func revPolicy(kind, name string, labels map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"mtls": map[string]any{"mode": "STRICT"}}
	if kind == "AuthorizationPolicy" {
		spec = map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "action": "ALLOW",
			"rules": []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"principals": []any{"cluster.local/ns/bar/sa/api"}}}}}}}
	}
	if kind == "RequestAuthentication" {
		spec = map[string]any{"jwtRules": []any{map[string]any{"issuer": "https://issuer",
			"outputClaimToHeaders": []any{map[string]any{"header": "x-jwt-group", "claim": "group"}}}}}
	}
	meta := map[string]any{"name": name, "namespace": "foo", "creationTimestamp": "2026-01-01T00:00:00Z"}
	if labels != nil {
		meta["labels"] = labels
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "security.istio.io/v1beta1", "kind": kind, "metadata": meta, "spec": spec}}
}

// TestKubeSourceRevision: the API server loader reads an object labelled
// istio.io/rev only when it is this instance's revision (istiod's
// crdclient Client.inRevision), and logs the ones it skips at V(1).
func TestKubeSourceRevision(t *testing.T) {
	objs := []runtime.Object{
		revPolicy("AuthorizationPolicy", "global", nil),
		revPolicy("AuthorizationPolicy", "labelled-default", map[string]any{"istio.io/rev": "default"}),
		revPolicy("AuthorizationPolicy", "canary-allow-bar", map[string]any{"istio.io/rev": "canary"}),
		revPolicy("PeerAuthentication", "canary-strict", map[string]any{"istio.io/rev": "canary"}),
		revPolicy("RequestAuthentication", "global-jwt", nil),
		revPolicy("RequestAuthentication", "canary-jwt", map[string]any{"istio.io/rev": "canary"}),
	}
	for _, c := range []struct {
		rev  string
		want string // the policies loaded, sorted
	}{
		{"", "AuthorizationPolicy/global,AuthorizationPolicy/labelled-default,RequestAuthentication/global-jwt"},
		{"default", "AuthorizationPolicy/global,AuthorizationPolicy/labelled-default,RequestAuthentication/global-jwt"},
		{"canary", "AuthorizationPolicy/canary-allow-bar,AuthorizationPolicy/global,PeerAuthentication/canary-strict," +
			"RequestAuthentication/canary-jwt,RequestAuthentication/global-jwt"},
	} {
		t.Run("rev="+c.rev, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
				{Group: "security.istio.io", Version: "v1beta1", Resource: "authorizationpolicies"}:  "AuthorizationPolicyList",
				{Group: "security.istio.io", Version: "v1beta1", Resource: "peerauthentications"}:    "PeerAuthenticationList",
				{Group: "security.istio.io", Version: "v1beta1", Resource: "requestauthentications"}: "RequestAuthenticationList",
			}, objs...)
			var logs []string
			log := funcr.New(func(prefix, args string) { logs = append(logs, args) }, funcr.Options{Verbosity: 1})
			// Through the constructor, as serve builds it (its discovery
			// selectors, none here, select every namespace).
			k, err := newKubeSourceFor(dc, metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()),
				&informertest.FakeInformers{}, "", c.rev, log)
			if err != nil {
				t.Fatal(err)
			}
			synced, err := runPolicyInformers(ctx, k.policies, make(chan struct{}, 1))
			if err != nil {
				t.Fatal(err)
			}
			if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
				t.Fatal("informers did not sync")
			}
			set, err := k.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ap := range set.AuthorizationPolicies {
				got = append(got, "AuthorizationPolicy/"+ap.Name)
			}
			for _, pa := range set.PeerAuthentications {
				got = append(got, "PeerAuthentication/"+pa.Name)
			}
			for _, ra := range set.RequestAuthentications {
				got = append(got, "RequestAuthentication/"+ra.Name)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != c.want {
				t.Errorf("revision %q loaded %v, want %s", c.rev, got, c.want)
			}
			if c.rev != "canary" {
				all := strings.Join(logs, "\n")
				for _, name := range []string{"foo/canary-allow-bar", "foo/canary-strict", "foo/canary-jwt"} {
					if !strings.Contains(all, name) || !strings.Contains(all, `"canary"`) {
						t.Errorf("no V(1) log naming %s and its revision label; logs:\n%s", name, all)
					}
				}
			}
		})
	}
}

// TestDirLoaderForRevision: --policy-dir under serve and authz serve reads
// the directory for the revision, logging what it skips at V(1).
func TestDirLoaderForRevision(t *testing.T) {
	dir := t.TempDir()
	doc := `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: canary-deny, namespace: foo, labels: {istio.io/rev: canary}}
spec: {action: DENY, rules: [{}]}
`
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rev  string
		want int
	}{{"", 0}, {"canary", 1}} {
		var logs []string
		log := funcr.New(func(_, args string) { logs = append(logs, args) }, funcr.Options{Verbosity: 1})
		set, err := DirLoaderFor(dir, "", c.rev, log)(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(set.AuthorizationPolicies) != c.want {
			t.Errorf("revision %q: %d policies, want %d", c.rev, len(set.AuthorizationPolicies), c.want)
		}
		if all := strings.Join(logs, "\n"); (c.want == 0) != strings.Contains(all, "foo/canary-deny") {
			t.Errorf("revision %q: logs %q, want the skip logged: %v", c.rev, all, c.want == 0)
		}
	}
}
