package validation

import (
	"context"
	"encoding/json"
	"fmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
)

// typicalVS is a realistic VirtualService: a header match, a canary split,
// retries and a timeout.
const typicalVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - name: canary
    route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v3}
      weight: 10
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    timeout: 10s
`

func bigVS(routes int) string {
	var b strings.Builder
	b.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: big, namespace: bookinfo}\nspec:\n  hosts: [reviews]\n  http:\n")
	for i := 0; i < routes; i++ {
		fmt.Fprintf(&b, "  - match: [{uri: {prefix: /api/v%d/}, headers: {x-tenant: {exact: t%d}}}]\n    route: [{destination: {host: reviews, subset: v1}, weight: 80}, {destination: {host: reviews, subset: v2}, weight: 20}]\n    timeout: 5s\n", i, i)
	}
	b.WriteString("  - route: [{destination: {host: reviews}}]\n")
	return b.String()
}

func benchObject(b *testing.B, doc string) {
	docs, err := manifest.Split([]byte(doc))
	if err != nil || len(docs) != 1 || docs[0].Err != nil {
		b.Fatalf("bad document: %v", err)
	}
	obj := docs[0].Object
	ctx := context.Background()
	if res := ValidateObject(ctx, obj, Options{}); !res.Valid() {
		b.Fatalf("benchmark object invalid: %v", res.ErrorLines())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := ValidateObject(ctx, obj, Options{}); !res.Valid() {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkValidateTypicalVirtualService measures the full pipeline (schema,
// CEL, decode, webhook rules) for one already-parsed object, as the webhook runs it.
func BenchmarkValidateTypicalVirtualService(b *testing.B) { benchObject(b, typicalVS) }

func BenchmarkValidateVirtualService50Routes(b *testing.B)  { benchObject(b, bigVS(50)) }
func BenchmarkValidateVirtualService500Routes(b *testing.B) { benchObject(b, bigVS(500)) }

// BenchmarkValidateTypicalVirtualServiceJSON includes JSON parsing (the webhook's AdmissionRequest.Object.Raw path).
func BenchmarkValidateTypicalVirtualServiceJSON(b *testing.B) {
	docs, _ := manifest.Split([]byte(typicalVS))
	raw := mustJSON(b, docs[0].Object)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err := ValidateJSON(ctx, raw, Options{}); err != nil || !res.Valid() {
			b.Fatal("invalid")
		}
	}
}

func mustJSON(b *testing.B, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkRulesOnlyTypicalVirtualService isolates the webhook rules (proto
// decode + validateVirtualService), i.e. what Istio's webhook runs, without
// the CRD OpenAPI/CEL pass.
func BenchmarkRulesOnlyTypicalVirtualService(b *testing.B) { benchRules(b, typicalVS) }

func BenchmarkRulesOnlyVirtualService500Routes(b *testing.B) { benchRules(b, bigVS(500)) }

func benchRules(b *testing.B, doc string) {
	docs, _ := manifest.Split([]byte(doc))
	spec := docs[0].Object["spec"]
	v := validatorFor("VirtualService")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := kinds[vsGK].newSpec()
		if err := decodeSpec(spec, msg); err != nil {
			b.Fatal(err)
		}
		var f Findings
		v(metav1.ObjectMeta{Name: "x", Namespace: "bookinfo"}, msg, &f)
		if f.HasErrors() {
			b.Fatal(f.Errors)
		}
	}
}

var vsGK = schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}

func BenchmarkRulesOnlyVirtualService50Routes(b *testing.B) { benchRules(b, bigVS(50)) }
