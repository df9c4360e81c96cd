package authzref

// The only file that calls meshguard: it runs a generated case through the
// code path that serves traffic (authz/server.go: a policy.Set compiled into
// a Snapshot, then Check with an Envoy CheckRequest). Adapt it here if the
// policy API changes.

import (
	"context"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/policy"
)

// meshguardSnapshot compiles a generated set as meshguard's server does.
func meshguardSnapshot(s Set) (*policy.Snapshot, error) {
	return meshguardSnapshotRA(s, nil)
}

// meshguardSnapshotRA is meshguardSnapshot with RequestAuthentications.
func meshguardSnapshotRA(s Set, ras []*secv1.RequestAuthentication) (*policy.Snapshot, error) {
	set := &policy.Set{AuthorizationPolicies: s.APs, PeerAuthentications: s.PAs, RequestAuthentications: ras}
	for i, w := range Workloads {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%d", i), Namespace: w.Namespace, Labels: w.Labels},
			Status:     corev1.PodStatus{PodIP: w.IP},
		}
		// istio-proxy as Istio's injection templates write it: the gateway
		// ones a container running `proxy router`, the sidecar one a
		// container or (native sidecars) an always-restarting init
		// container running `proxy sidecar`
		app := corev1.Container{Name: "app", Image: "app"}
		proxy := func(kind string) corev1.Container {
			return corev1.Container{Name: "istio-proxy", Args: []string{"proxy", kind, "--domain", "$(POD_NAMESPACE).svc.cluster.local"}}
		}
		switch w.Proxy {
		case NoProxy:
			p.Spec.Containers = []corev1.Container{app}
		case RouterProxy:
			p.Spec.Containers = []corev1.Container{proxy("router")}
		case SidecarProxy:
			p.Spec.Containers = []corev1.Container{app, proxy("sidecar")}
		case NativeSidecarProxy:
			always := corev1.ContainerRestartPolicyAlways
			native := proxy("sidecar")
			native.RestartPolicy = &always
			p.Spec.InitContainers = []corev1.Container{native}
			p.Spec.Containers = []corev1.Container{app}
		}
		if w.ProxyConfig != "" {
			p.Annotations = map[string]string{"proxy.istio.io/config": w.ProxyConfig}
		}
		set.Pods = append(set.Pods, p)
	}
	m := policy.Mesh{RootNamespace: s.Mesh.RootNamespace, TrustDomain: s.Mesh.TrustDomain,
		TrustDomainAliases:   s.Mesh.TrustDomainAliases, // pathNormalization: meshguard's default, BASE
		NumTrustedProxies:    int(s.Mesh.GatewayNumTrustedProxies),
		GatewayProxyProtocol: s.Mesh.GatewayProxyProtocol,
		// The reference is Istio's RBAC filter, which runs after jwt_authn
		// (Istio: pilot/pkg/networking/core/listener_builder.go
		// buildHTTPConnectionManager): a request without a token has no
		// jwt_authn metadata. meshguard reads that as "no token" only where
		// Envoy forwards the metadata (--authz-jwt-metadata=forwarded); by
		// default the JWT is unknown (policy.Mesh.JWTMetadataForwarded).
		JWTMetadataForwarded: true}
	eng := policy.NewEngine(m)
	return eng.Update(context.Background(), set)
}

// meshguardCheck asks the snapshot about one request, as Envoy would send it.
func meshguardCheck(snap *policy.Snapshot, mesh Mesh, r Request) (Verdict, error) {
	v, err := snap.Check(context.Background(), checkRequest(mesh, r))
	if err != nil {
		return Verdict{}, err
	}
	return Verdict{Allowed: v.Allowed, Status: v.Status, Reason: v.Reason}, nil
}

func checkRequest(mesh Mesh, r Request) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	// source.address is Envoy's remote address: behind PROXY protocol the
	// header's client, not the direct peer (check_request_utils.cc
	// setAttrContextPeer: connectionInfoProvider().remoteAddress()).
	peer := remoteAddress(mesh, r)
	a := &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr(peer, 40000), Principal: r.Principal},
		Destination: &authv3.AttributeContext_Peer{Address: addr(r.Dest.IP, r.DstPort)},
	}
	// On a TLS connection Envoy fills destination.principal from the
	// server's certificate (check_request_utils.cc setAttrContextPeer), and
	// sends tls_session only with include_tls_session; its network filter
	// sends the requested server name as destination.service.
	if r.TLS || r.Principal != "" {
		a.Destination.Principal = "spiffe://cluster.local/ns/" + r.Dest.Namespace + "/sa/default"
		if r.TLSSession {
			a.TlsSession = &authv3.AttributeContext_TLSSession{Sni: r.SNI}
		}
	}
	if r.TCP {
		a.Destination.Service = r.SNI
	}
	a.ContextExtensions = map[string]string{}
	if r.TLSUnknown {
		a.ContextExtensions[policy.TLSUnknownExtension] = "true"
	}
	if r.JWTUnknown {
		a.ContextExtensions[policy.NoMetadataExtension] = "true"
	}
	if !r.TCP {
		// Envoy sends the request line as pseudo-headers too (":path" as
		// the path field, see Request.Path).
		h := map[string]string{":authority": r.Host, ":method": r.Method, ":path": r.Path}
		for k, v := range r.Headers {
			h[k] = v
		}
		if r.Dest.Router() {
			// A gateway's connection manager (use_remote_address) appends
			// the remote address to X-Forwarded-For before any filter
			// (ConnectionManagerUtility::mutateRequestHeaders appendXff).
			appendXFF(h, peer)
		}
		a.Request = &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: r.Method, Path: r.Path, Host: r.Host, Headers: h}}
		if r.JWT != nil {
			payload, err := r.JWT.Payload()
			if err != nil {
				panic(err)
			}
			a.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
				"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{"payload": structpb.NewStructValue(payload)}}}}
		}
	}
	return &authv3.CheckRequest{Attributes: a}
}

// appendXFF appends ip to h's X-Forwarded-For, whatever the case of its name.
func appendXFF(h map[string]string, ip string) {
	for k, v := range h {
		if strings.EqualFold(k, "x-forwarded-for") {
			h[k] = v + "," + ip
			return
		}
	}
	h["x-forwarded-for"] = ip
}
