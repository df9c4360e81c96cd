package policy

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkCheck: one in-process Check (decode + input + OPA eval + result)
// for a workload in ns-0 with app=app-0, the policy set spread over 100
// namespaces (docs/benchmarks.md).
func BenchmarkCheck(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			set := GenerateSet(n, 100)
			set.Pods = []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: "ns-0", Labels: map[string]string{"app": "app-0"}},
				Status: corev1.PodStatus{PodIP: "10.0.1.1"}}}
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				b.Fatal(err)
			}
			req := checkReq("spiffe://cluster.local/ns/ingress/sa/gw", "10.0.0.5", "10.0.1.1", 8080, "GET", "/api/v0/items?x=1",
				map[string]string{":authority": "app-0.ns-0", ":method": "GET", ":path": "/api/v0/items?x=1", "x-tenant": "shared",
					"user-agent": "bench", "accept": "*/*", "x-request-id": "abc"})
			v, err := s.Check(context.Background(), req)
			if err != nil || (!v.Allowed && n > 0) {
				b.Fatalf("want allowed, got %+v %v", v, err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var benchSizes = []int{0, 10, 1000, 10000}
