package policy

import (
	"context"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/util/json"
)

const fuzzPolicies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: foo}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/foo/*"], notNamespaces: ["bar*"], ipBlocks: ["10.0.0.0/8"]}
    to:
    - operation: {methods: [GET], paths: ["/api/{*}/x", "/static*"], hosts: ["*.foo"]}
    when:
    - key: request.headers[x-user]
      values: ["a*"]
    - key: request.auth.claims[groups]
      values: [admin]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: d, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/admin*"]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: s, namespace: foo}
spec:
  selector: {matchLabels: {app: web}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls:
    9000: {mode: STRICT}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: foo, labels: {app: web}}
status: {podIP: 10.0.1.1}
`

var (
	fuzzSnapOnce sync.Once
	fuzzSnap     *Snapshot
)

// FuzzCheck: any CheckRequest yields a verdict with a valid status, never a
// panic or an internal error.
func FuzzCheck(f *testing.F) {
	f.Add(`{"attributes":{"source":{"principal":"spiffe://cluster.local/ns/foo/sa/a","address":{"socketAddress":{"address":"10.0.0.5","portValue":1}}},"destination":{"address":{"socketAddress":{"address":"10.0.1.1","portValue":8080}}},"request":{"http":{"method":"GET","path":"/api/v1/x?q=1","host":"web.foo","headers":{"x-user":"alice"}}},"metadataContext":{"filterMetadata":{"envoy.filters.http.jwt_authn":{"payload":{"iss":"i","sub":"s","groups":["admin"]}}}}}}`)
	f.Add(`{"attributes":{"destination":{"address":{"socketAddress":{"address":"10.0.1.1","portValue":9000}}}}}`)
	f.Add(`{"attributes":{"request":{"http":{"path":"/a/%2e%2e/admin%00"}}}}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, js string) {
		fuzzSnapOnce.Do(func() {
			set := &Set{}
			if _, err := set.AddYAML("fuzz", []byte(fuzzPolicies)); err != nil {
				panic(err)
			}
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				panic(err)
			}
			fuzzSnap = s
		})
		req := &authv3.CheckRequest{}
		if err := protojson.Unmarshal([]byte(js), req); err != nil {
			return
		}
		v, err := fuzzSnap.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("internal error for %s: %v", js, err)
		}
		switch v.Status {
		case 200, 400, 403:
		default:
			t.Fatalf("status %d for %s", v.Status, js)
		}
		if v.Allowed != (v.Status == 200) {
			t.Fatalf("allowed=%v with status %d", v.Allowed, v.Status)
		}
	})
}

// FuzzCompile: arbitrary AuthorizationPolicy/PeerAuthentication YAML either
// fails to load with an error or compiles into a snapshot that decides.
func FuzzCompile(f *testing.F) {
	f.Add(fuzzPolicies)
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: b}\nspec:\n  rules:\n  - when:\n    - key: request.auth.claims[a][b]\n      notValues: [\"*\"]\n")
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec: {action: CUSTOM, provider: {name: x}, rules: [{to: [{operation: {ports: [\"99999\"], paths: [\"/{**}/x\"]}}]}]}\n")
	f.Add("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		set := &Set{}
		if _, err := set.AddYAML("fuzz", []byte(doc)); err != nil {
			return
		}
		s, err := Compile(context.Background(), Mesh{}, set, 1)
		if err != nil {
			t.Fatalf("valid objects must compile: %v\n%s", err, doc)
		}
		v, err := s.CheckRequest(context.Background(), &Request{Namespace: "b", Method: "GET", Path: "/x", Headers: map[string]string{}})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if v.Allowed != (v.Status == 200) {
			t.Fatalf("inconsistent verdict %+v", v)
		}
	})
}

// FuzzDecodeStored: an object read from the API server and the same document
// read from a policy directory get the same verdict, and neither path panics.
func FuzzDecodeStored(f *testing.F) {
	f.Add(`{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"a","namespace":"b"},"spec":{"rules":[{"to":[{"operation":{"paths":["/x"],"futureField":["y"]}}]}]}}`)
	f.Add(`{"apiVersion":"security.istio.io/v1beta1","kind":"PeerAuthentication","metadata":{"name":"a","namespace":"b","managedFields":[{}]},"spec":{"selector":{"matchLabels":{"app":"x"}},"portLevelMtls":{"080":{"mode":"DISABLE"}}}}`)
	f.Add(`{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"a","namespace":"b"},"spec":{"action":"DENY","rules":[{"when":[{"key":"source.ip","values":["10.0.0.0/8"]}]}]}}`)
	f.Fuzz(func(t *testing.T, js string) {
		var obj map[string]any
		if err := json.Unmarshal([]byte(js), &obj); err != nil {
			return
		}
		kind, _ := obj["kind"].(string)
		if kind != "AuthorizationPolicy" && kind != "PeerAuthentication" {
			return
		}
		if apiVersion, _ := obj["apiVersion"].(string); !strings.HasPrefix(apiVersion, "security.istio.io/") {
			return
		}
		// The policy directory reads the document as the API server stored it
		// (one value per key, as it re-encodes what it accepted), without
		// managedFields: the API server writes and checks those, and
		// DecodeStored drops them unread.
		if meta, ok := obj["metadata"].(map[string]any); ok {
			delete(meta, "managedFields")
		}
		canonical, err := json.Marshal(obj)
		if err != nil {
			return
		}
		_, fileErr := (&Set{}).AddYAML("fuzz", canonical)
		st, err := DecodeStored(kind, obj)
		if err != nil {
			t.Fatalf("DecodeStored: %v", err)
		}
		if (st.Invalid == "") != (fileErr == nil) {
			t.Fatalf("stored verdict %q, policy directory %v, for %s", st.Invalid, fileErr, js)
		}
		set := &Set{}
		set.AddStored(st)
		if _, err := Compile(context.Background(), Mesh{}, set, 1); err != nil {
			t.Fatalf("a stored object must not stop the snapshot: %v\n%s", err, js)
		}
	})
}
