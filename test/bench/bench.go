// Package bench holds the fixtures of the side-by-side benchmarks
// (hack/bench-compare.sh, docs/benchmarks.md): the generated policy sets with
// their Pods and the CheckRequests every benchmark sends. It is test tooling:
// nothing under cmd/meshguard imports it.
package bench

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/policy"
)

// Namespaces the generated policies are spread over.
const Namespaces = 100

// Pods are the workloads of the benchmark: app-0 in ns-0 (the load target,
// selected by policies p-0, p-1000, ...), app-1 in ns-1, and app-0 in ns-57
// (another namespace with its own policies), and app-0 in ns-9, whose
// namespace has only DENY policies (every 10th generated policy).
func Pods() []*corev1.Pod {
	pod := func(name, ns, app, ip string) *corev1.Pod {
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}},
			Status:     corev1.PodStatus{PodIP: ip},
		}
	}
	return []*corev1.Pod{
		pod("app-0", "ns-0", "app-0", "10.0.1.1"),
		pod("app-1", "ns-1", "app-1", "10.0.1.2"),
		pod("app-0", "ns-57", "app-0", "10.0.1.3"),
		pod("app-0", "ns-9", "app-0", "10.0.1.4"),
	}
}

// Set is n generated AuthorizationPolicies (policy.GenerateSet over
// Namespaces namespaces) and Pods.
func Set(n int) *policy.Set {
	set := policy.GenerateSet(n, Namespaces)
	set.Pods = Pods()
	return set
}

// CheckRequest builds an HTTP CheckRequest as Envoy sends it.
func CheckRequest(principal, dstIP, method, path string, headers map[string]string) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	h := map[string]string{":authority": "app-0.ns-0", ":method": method, ":path": path, "user-agent": "bench",
		"accept": "*/*", "x-request-id": "2f1c6a0e-6d39-4c3e-9a55-8f0b2f6c1d10"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("10.0.0.5", 40000), Principal: principal},
		Destination: &authv3.AttributeContext_Peer{Address: addr(dstIP, 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "2f1c6a0e-6d39-4c3e-9a55-8f0b2f6c1d10", Method: method, Path: path, Host: "app-0.ns-0", Scheme: "http",
			Protocol: "HTTP/1.1", Headers: h}},
	}}
}

// Gateway is the principal the generated ALLOW policies all accept.
const Gateway = "spiffe://cluster.local/ns/ingress/sa/gw"

// LoadRequest is the request every load and in-process benchmark sends: the
// gateway calling app-0 in ns-0, allowed by ns-0/p-0 (the oldest of the
// matching ALLOW policies) at every policy count.
func LoadRequest() *authv3.CheckRequest {
	return CheckRequest(Gateway, "10.0.1.1", "GET", "/api/v0/items?x=1", map[string]string{"x-tenant": "shared"})
}

// NamedRequest is one benchmark request.
type NamedRequest struct {
	Name string
	Req  *authv3.CheckRequest
}

// Requests are the requests whose verdicts the OPA baseline must give exactly
// as meshguard does (test/bench/opabaseline): the load request and its
// variations over every condition the generated policies use.
func Requests() []NamedRequest {
	r := CheckRequest
	return []NamedRequest{
		{"load", LoadRequest()},
		{"admin-denied", r(Gateway, "10.0.1.1", "GET", "/admin/users", map[string]string{"x-tenant": "shared"})},
		{"admin-prefix-denied", r(Gateway, "10.0.1.1", "GET", "/adminx", nil)},
		{"wrong-tenant", r(Gateway, "10.0.1.1", "GET", "/api/v0/items", map[string]string{"x-tenant": "nobody"})},
		{"tenant-t0", r(Gateway, "10.0.1.1", "POST", "/api/v0/x", map[string]string{"x-tenant": "t-0"})},
		{"tenant-t3", r(Gateway, "10.0.1.1", "POST", "/api/v0/x", map[string]string{"x-tenant": "t-3"})},
		{"no-tenant", r(Gateway, "10.0.1.1", "GET", "/api/v0/items", nil)},
		{"healthz", r(Gateway, "10.0.1.1", "GET", "/healthz", map[string]string{"x-tenant": "shared"})},
		{"healthz-query", r(Gateway, "10.0.1.1", "GET", "/healthz?verbose=1", map[string]string{"x-tenant": "shared"})},
		{"path-v1", r(Gateway, "10.0.1.1", "GET", "/api/v1/items", map[string]string{"x-tenant": "shared"})},
		{"path-v2", r(Gateway, "10.0.1.1", "GET", "/api/v2/items", map[string]string{"x-tenant": "shared"})},
		{"method-delete", r(Gateway, "10.0.1.1", "DELETE", "/api/v0/items", map[string]string{"x-tenant": "shared"})},
		{"method-put", r(Gateway, "10.0.1.1", "PUT", "/healthz", map[string]string{"x-tenant": "shared"})},
		{"own-client", r("spiffe://cluster.local/ns/ns-0/sa/client-0", "10.0.1.1", "GET", "/api/v0/a", map[string]string{"x-tenant": "t-0"})},
		{"own-client-later-policy", r("spiffe://cluster.local/ns/ns-0/sa/client-3000", "10.0.1.1", "GET", "/api/v0/a", map[string]string{"x-tenant": "t-4"})},
		{"other-client", r("spiffe://cluster.local/ns/ns-9/sa/client-9", "10.0.1.1", "GET", "/api/v0/a", map[string]string{"x-tenant": "shared"})},
		{"no-principal", r("", "10.0.1.1", "GET", "/api/v0/a", map[string]string{"x-tenant": "shared"})},
		{"app-1-ns-1", r(Gateway, "10.0.1.2", "GET", "/api/v1/a", map[string]string{"x-tenant": "shared"})},
		{"app-1-ns-1-v0", r(Gateway, "10.0.1.2", "GET", "/api/v0/a", map[string]string{"x-tenant": "shared"})},
		{"ns-57", r(Gateway, "10.0.1.3", "GET", "/api/v0/a", map[string]string{"x-tenant": "shared"})},
		{"ns-57-v1", r(Gateway, "10.0.1.3", "GET", "/api/v1/a", map[string]string{"x-tenant": "shared"})},
		{"ns-57-admin", r(Gateway, "10.0.1.3", "GET", "/admin", nil)},
		{"deny-only-ns-admin", r(Gateway, "10.0.1.4", "GET", "/admin/x", nil)},
		{"deny-only-ns-api", r(Gateway, "10.0.1.4", "GET", "/api/v0/a", nil)},
		{"deny-only-ns-no-principal", r("", "10.0.1.4", "POST", "/other", nil)},
		{"unknown-workload", r(Gateway, "10.9.9.9", "GET", "/api/v0/a", map[string]string{"x-tenant": "nobody"})},
	}
}
