package authz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/policy"
)

// BenchmarkGRPCCheck: one Check over a real gRPC connection on 127.0.0.1 with
// 1,000 policies over 100 namespaces, the request hack/ghz-load.sh sends.
// Allocations count the client and the server together; the in-process
// evaluation alone is policy.BenchmarkCheck.
func BenchmarkGRPCCheck(b *testing.B) {
	set := policy.GenerateSet(1000, 100)
	set.Pods = []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: "ns-0", Labels: map[string]string{"app": "app-0"}},
		Status: corev1.PodStatus{PodIP: "10.0.1.1"}}}
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), set); err != nil {
		b.Fatal(err)
	}
	client := authv3.NewAuthorizationClient(serveGRPC(b, engine, Options{DecisionLog: "off"}))
	req := request("/api/v0/items?x=1")
	req.Attributes.Source.Principal = "spiffe://cluster.local/ns/ingress/sa/gw"
	req.Attributes.Request.Http.Host = "app-0.ns-0"
	req.Attributes.Request.Http.Headers = map[string]string{":authority": "app-0.ns-0", ":method": "GET",
		":path": "/api/v0/items?x=1", "x-tenant": "shared", "user-agent": "bench", "accept": "*/*"}
	resp, err := client.Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		b.Fatalf("want OK, got %v %v", resp, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := client.Check(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
