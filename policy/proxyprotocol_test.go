package policy

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestProxyProtocolSourceIP: on a gateway whose listeners run Envoy's
// proxy_protocol listener filter (ProxyConfig gatewayTopology.proxyProtocol,
// from the Pod's proxy.istio.io/config or the mesh's defaultConfig), Envoy
// replaces the connection's remote address with the PROXY header's client
// address, and its ext_authz CheckRequest sends that as source.address
// (check_request_utils.cc setAttrContextPeer: connectionInfoProvider()
// .remoteAddress()). Istio's ipBlocks and source.ip are Envoy RBAC
// direct_remote_ip (pilot/pkg/security/authz/model/generator.go
// srcIPGenerator), the physical peer (the load balancer), which the gRPC
// CheckRequest does not carry: a policy that may apply to the gateway and
// reads it denies (fail closed) instead of matching the client. remote.ip
// (Envoy's remote address) is the PROXY header's client in both, and the
// HTTP protocol's source address is the direct peer
// (%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%, SourceDirectPeerExtension).
func TestProxyProtocolSourceIP(t *testing.T) {
	gw := routerPod
	sidecar := webPod()
	sidecar.Spec.Containers = []corev1.Container{{Name: "istio-proxy", Args: []string{"proxy", "sidecar"}}}
	sidecar.Annotations = map[string]string{ProxyConfigAnnotation: "gatewayTopology: {proxyProtocol: {}}"}
	const pp = "gatewayTopology: {proxyProtocol: {}}"
	// The client 203.0.113.9 reaches the gateway through a load balancer
	// at 10.0.0.77 that speaks PROXY protocol: over gRPC source.address is
	// the client, over HTTP the direct peer, the load balancer.
	const client, lb = "203.0.113.9", "10.0.0.77"
	allowOffice := ap("foo", "allow-office", "rules: [{from: [{source: {ipBlocks: [203.0.113.0/24]}}]}]")
	denyLB := ap("foo", "deny-lb", "action: DENY\nrules: [{from: [{source: {ipBlocks: [10.0.0.0/16]}}]}]")
	allowNotLB := ap("foo", "allow-not-lb", "rules: [{from: [{source: {notIpBlocks: [10.0.0.0/16]}}]}]")
	allowWhen := ap("foo", "allow-when", "rules: [{when: [{key: source.ip, values: [203.0.113.0/24]}]}]")
	allowRemote := ap("foo", "allow-remote", "rules: [{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}]")
	allowGET := ap("foo", "allow-get", "rules: [{to: [{operation: {methods: [GET]}}]}]")
	// selects other workloads only: it cannot apply to the gateway
	denyOther := ap("foo", "deny-other", "selector: {matchLabels: {app: db}}\naction: DENY\nrules: [{from: [{source: {ipBlocks: [203.0.113.0/24]}}]}]")
	unknown := want{false, "DENY", "", -1}
	const reason = "the request has no source address (source.ip, ipBlocks: "
	for _, c := range []struct {
		name     string
		mesh     Mesh
		pod      *corev1.Pod
		policies string
		http     bool // the HTTP protocol: source.address is the direct peer
		tcp      bool
		want     want
		reason   string // in the deny reason
	}{
		{"ALLOW ipBlocks of the client", Mesh{}, gw(pp), allowOffice, false, false, unknown, reason},
		{"DENY ipBlocks of the load balancer", Mesh{}, gw(pp), denyLB, false, false, unknown, reason},
		{"ALLOW notIpBlocks of the load balancer", Mesh{}, gw(pp), allowNotLB, false, false, unknown, reason},
		{"ALLOW source.ip condition", Mesh{}, gw(pp), allowWhen, false, false, unknown, reason},
		{"TCP: ALLOW ipBlocks", Mesh{}, gw(pp), allowOffice, false, true, unknown, reason},
		{"mesh defaultConfig", Mesh{GatewayProxyProtocol: true}, gw(""), allowOffice, false, false, unknown, reason},
		{"annotation without gatewayTopology keeps the mesh's", Mesh{GatewayProxyProtocol: true}, gw("concurrency: 2"), denyLB, false, false, unknown, reason},
		// a gatewayTopology in the annotation replaces the mesh's whole
		// (pilot-agent getMeshConfig, ApplyProxyConfig)
		{"annotation gatewayTopology replaces the mesh's", Mesh{GatewayProxyProtocol: true}, gw("gatewayTopology: {numTrustedProxies: 1}"), allowOffice, false, false, allowedBy("foo/allow-office", 0), ""},
		{"unreadable annotation: PROXY protocol unknown", Mesh{}, gw("gatewayTopology: [1"), allowOffice, false, false, unknown,
			reason + "Pod foo/web-1: annotation proxy.istio.io/config: "},
		{"no PROXY protocol: source.address is the peer", Mesh{}, gw(""), allowOffice, false, false, allowedBy("foo/allow-office", 0), ""},
		{"sidecar: no gateway listeners", Mesh{GatewayProxyProtocol: true}, sidecar, allowOffice, false, false, allowedBy("foo/allow-office", 0), ""},
		// remote.ip is Envoy's remote address, the PROXY header's client
		{"remoteIpBlocks unchanged", Mesh{}, gw(pp), allowRemote, false, false, allowedBy("foo/allow-remote", 0), ""},
		{"TCP: remoteIpBlocks unchanged", Mesh{}, gw(pp), allowRemote, false, true, allowedBy("foo/allow-remote", 0), ""},
		{"policies not reading the source IP decide", Mesh{}, gw(pp), allowGET, false, false, allowedBy("foo/allow-get", 0), ""},
		{"a policy that cannot apply to the gateway", Mesh{}, gw(pp), denyOther, false, false, open, ""},
		// HTTP: x-meshguard-source-address is the direct peer, Istio's ipBlocks
		{"HTTP: DENY ipBlocks of the load balancer", Mesh{}, gw(pp), denyLB, true, false, deniedBy("foo/deny-lb", 0), ""},
		{"HTTP: ALLOW ipBlocks of the client", Mesh{}, gw(pp), allowOffice, true, false, noAllow, ""},
		// HTTP: remote.ip trusting no hop is Envoy's remote address, the
		// PROXY header's client, not the direct peer the HTTP protocol sends
		{"HTTP: remoteIpBlocks, no trusted hop: unknown", Mesh{}, gw(pp), allowRemote, true, false, unknown,
			"the request has no remote address (remote.ip: the gateway's listeners take the client address from a PROXY protocol header"},
		{"HTTP: remoteIpBlocks from a trusted X-Forwarded-For hop", Mesh{}, gw("gatewayTopology: {numTrustedProxies: 1, proxyProtocol: {}}"),
			allowRemote, true, false, allowedBy("foo/allow-remote", 0), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, c.mesh, c.policies, c.pod)
			src := client
			if c.http {
				src = lb
			}
			r := http(srcIP(src))
			if c.http {
				// what the client sent, then what Envoy appended: its
				// remote address, the PROXY header's client
				r.Headers["x-forwarded-for"] = client + ", " + client
			}
			if c.tcp {
				tcp()(r)
			}
			req := envoyRequest(r)
			if c.http {
				req.Attributes.ContextExtensions = map[string]string{SourceDirectPeerExtension: "true"}
			}
			v, err := s.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if !strings.Contains(v.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, c.reason)
			}
		})
	}
}

// TestProxyProtocolUnknownDestination: a destination missing from the Pod
// index may be a gateway; where the mesh's defaultConfig turns PROXY
// protocol on for gateways, or a gateway Pod's own proxy.istio.io/config does
// (a hostNetwork gateway is never in the index: it shares its node's IP), its
// source address is unknown too.
func TestProxyProtocolUnknownDestination(t *testing.T) {
	allowOffice := ap("foo", "allow-office", "rules: [{from: [{source: {ipBlocks: [203.0.113.0/24]}}]}]")
	hostGateway := func(annotation string) *corev1.Pod {
		p := routerPod(annotation)
		p.Spec.HostNetwork = true
		return p
	}
	sidecar := webPod()
	sidecar.Spec.HostNetwork = true
	sidecar.Spec.Containers = []corev1.Container{{Name: "istio-proxy", Args: []string{"proxy", "sidecar"}}}
	sidecar.Annotations = map[string]string{ProxyConfigAnnotation: "gatewayTopology: {proxyProtocol: {}}"}
	unknown := want{false, "DENY", "", -1}
	for _, c := range []struct {
		name   string
		mesh   Mesh
		pods   []*corev1.Pod
		want   want
		reason string
	}{
		{"mesh PROXY protocol", Mesh{GatewayProxyProtocol: true}, nil, unknown, "mesh defaultConfig gatewayTopology.proxyProtocol"},
		{"no mesh PROXY protocol", Mesh{}, nil, allowedBy("foo/allow-office", 0), ""},
		{"hostNetwork gateway with its own PROXY protocol", Mesh{}, []*corev1.Pod{hostGateway("gatewayTopology: {proxyProtocol: {}}")}, unknown,
			"may be gateway Pod foo/web-1, whose listeners take the client address from a PROXY protocol header"},
		{"hostNetwork gateway with an unreadable annotation", Mesh{}, []*corev1.Pod{hostGateway("gatewayTopology: [1")}, unknown,
			"may be gateway Pod foo/web-1, whose annotation proxy.istio.io/config cannot be read"},
		{"hostNetwork gateway without PROXY protocol", Mesh{}, []*corev1.Pod{hostGateway("gatewayTopology: {numTrustedProxies: 1}")},
			allowedBy("foo/allow-office", 0), ""},
		{"sidecar: no gateway listeners", Mesh{}, []*corev1.Pod{sidecar}, allowedBy("foo/allow-office", 0), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, c.mesh, allowOffice, c.pods...)
			req := envoyRequest(http(srcIP("203.0.113.9"), dstIP("10.9.9.9")))
			req.Attributes.Destination.Principal = "spiffe://cluster.local/ns/foo/sa/web"
			v, err := s.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if !strings.Contains(v.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, c.reason)
			}
		})
	}
}
