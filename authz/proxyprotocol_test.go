package authz

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHTTPSourceAddressIsTheDirectPeer: behind a PROXY protocol load
// balancer (the gateway's gatewayTopology.proxyProtocol), the HTTP
// protocol's x-meshguard-source-address is %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%,
// the physical peer Istio's ipBlocks match (Envoy RBAC direct_remote_ip), so
// an ipBlocks policy decides there; over gRPC source.address is the PROXY
// header's client, and the same policy denies as unknown
// (policy.Request.hideProxied).
func TestHTTPSourceAddressIsTheDirectPeer(t *testing.T) {
	const policies = `apiVersion: v1
kind: Pod
metadata:
  name: gw-1
  namespace: foo
  labels: {app: web}
  annotations: {proxy.istio.io/config: "gatewayTopology: {proxyProtocol: {}}"}
spec:
  containers: [{name: istio-proxy, image: proxy, args: [proxy, router]}]
status: {podIP: 10.0.1.1}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-lb, namespace: foo}
spec:
  action: DENY
  rules: [{from: [{source: {ipBlocks: [10.0.0.0/24]}}]}]
`
	s := startBoth(t, policies, Options{HTTPPathPrefix: "/ext-authz"})
	c := protocolCase{method: "GET", path: "/index"}
	// httpCheck's source address 10.0.0.5 is the load balancer.
	h := httpCheck(t, s, "/ext-authz", c)
	if h.StatusCode != 403 || h.Header.Get(HeaderPolicy) != "foo/deny-lb" {
		t.Errorf("HTTP: status %d policy %q, want 403 by foo/deny-lb", h.StatusCode, h.Header.Get(HeaderPolicy))
	}
	g := grpcCheck(t, s, c)
	d := g.GetDeniedResponse()
	if d == nil || headerValue(d.GetHeaders(), HeaderPolicy) != "" {
		t.Errorf("gRPC: %v, want a denial without a deciding policy (source address unknown)", g)
	}
}

// TestMeshConfigGatewayProxyProtocol: the mesh config's
// defaultConfig.gatewayTopology.proxyProtocol is the gateways' default
// (policy.Mesh.GatewayProxyProtocol); removed, it is off again.
func TestMeshConfigGatewayProxyProtocol(t *testing.T) {
	for _, c := range []struct {
		name, mesh string
		want       bool
	}{
		{"set", "defaultConfig: {gatewayTopology: {proxyProtocol: {}}}\n", true},
		{"other gatewayTopology fields only", "defaultConfig: {gatewayTopology: {numTrustedProxies: 1}}\n", false},
		{"none", "trustDomain: cluster.local\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mesh")
			if err := os.WriteFile(path, []byte(c.mesh), 0o600); err != nil {
				t.Fatal(err)
			}
			o := DefaultOptions()
			o.MeshConfigPath = path
			o.GatewayProxyProtocol = !c.want // an earlier mesh config's value does not stay
			m, err := loadMesh(o)
			if err != nil {
				t.Fatal(err)
			}
			if m.GatewayProxyProtocol != c.want {
				t.Errorf("GatewayProxyProtocol = %v, want %v", m.GatewayProxyProtocol, c.want)
			}
		})
	}
}
