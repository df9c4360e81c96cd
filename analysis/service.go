package analysis

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector"
)

// The codes of Istio's Service port name analyzer
// (pkg/config/analysis/analyzers/service/portname.go PortNameAnalyzer, istio/istio
// d929cf5b80ce; texts and levels from pkg/config/analysis/msg/messages.gen.go).
const (
	PortNameIsNotUnderNamingConvention     = "IST0118"
	ExternalNameServiceTypeInvalidPortName = "IST0150"
)

func init() {
	Types[PortNameIsNotUnderNamingConvention] = MessageType{PortNameIsNotUnderNamingConvention, "PortNameIsNotUnderNamingConvention", Info}
	Types[ExternalNameServiceTypeInvalidPortName] = MessageType{ExternalNameServiceTypeInvalidPortName, "ExternalNameServiceTypeInvalidPortName", Warning}
}

// gatewayManagedLabel marks the Services Istio's gateway controllers create
// (Istio: label.GatewayManaged); managedGatewayControllers are its values
// for Istio's own controllers (pkg/config/constants ManagedGatewayControllerLabel,
// ManagedGatewayMeshControllerLabel, ManagedGatewayEastWestControllerLabel).
const gatewayManagedLabel = "gateway.istio.io/managed"

var managedGatewayControllers = map[string]bool{
	"istio.io-gateway-controller":  true,
	"istio.io-mesh-controller":     true,
	"istio.io-eastwest-controller": true,
}

// servicePortNames is Istio's PortNameAnalyzer.Analyze over in.KubeServices,
// in input order. A Service is skipped when it is in a namespace Istio's
// analysis never reads (inject.IgnoredNamespaces: kube-system, kube-public,
// kube-node-lease, local-path-storage; Istio's
// pkg/config/analysis/local/istiod_analyze.go drops those objects from files,
// AddReaderKubeSource's SetNamespacesFilter, and from a cluster,
// AddRunningKubeSourceWithRevision's field selectors), when it belongs to
// the control plane (util.IsIstioControlPlane: an "istio" label of any
// value, or release=istio) or when an Istio gateway controller manages it
// (analyzeService: gateway.istio.io/managed of Istio's gateway, waypoint or
// east-west controller). Every other port whose protocol is unsupported
// (servicePortProtocolKnown), or that is named "tcp" on an ExternalName
// Service, is one message at spec.ports[i]: IST0150 on an ExternalName
// Service, else IST0118 naming the port, its number and targetPort
// (intstr's String: "0" when not written, as Istio reads a file).
func servicePortNames(in *Input) []Message {
	var out []Message
	for _, s := range in.KubeServices {
		if injector.IgnoredNamespaces[s.Namespace] {
			continue
		}
		if _, ok := s.Labels["istio"]; ok || s.Labels["release"] == "istio" {
			continue
		}
		if managedGatewayControllers[s.Labels[gatewayManagedLabel]] {
			continue
		}
		o := Object{Kind: "Service", Namespace: s.Namespace, Name: s.Name}
		externalName := s.Type == corev1.ServiceTypeExternalName
		for i, p := range s.Ports {
			if servicePortProtocolKnown(p) && (p.Name != "tcp" || !externalName) {
				continue
			}
			field := fmt.Sprintf("spec.ports[%d]", i)
			if externalName {
				out = append(out, newMessage(o, ExternalNameServiceTypeInvalidPortName, field,
					"Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly"))
				continue
			}
			out = append(out, newMessage(o, PortNameIsNotUnderNamingConvention, field,
				fmt.Sprintf("Port name %s (port: %d, targetPort: %s) doesn't follow the naming convention of Istio port.",
					p.Name, p.Port, p.TargetPort.String())))
		}
	}
	return out
}

// istioPortProtocols are the protocol names Istio's protocol.Parse knows
// (pkg/config/protocol/instance.go, case-insensitive).
var istioPortProtocols = map[string]bool{
	"tcp": true, "udp": true, "grpc": true, "grpc-web": true, "http": true, "http_proxy": true,
	"http2": true, "https": true, "tls": true, "mongo": true, "redis": true, "mysql": true,
}

// wellKnownTCPPorts are taken as TCP when their name gives no protocol
// (Istio: pkg/config/kube/conversion.go wellKnownPorts: SMTP, DNS, MySQL, MongoDB).
var wellKnownTCPPorts = map[int32]bool{25: true, 53: true, 3306: true, 27017: true}

// servicePortProtocolKnown says whether Istio's kube.ConvertProtocol
// (pkg/config/kube/conversion.go) gives the port a protocol other than
// Unsupported: a UDP port is UDP; else the appProtocol when written (even
// empty), else the name, is read: a "grpc-web" prefix (any case) is
// GRPC-Web, else its part before the first '-' names the protocol
// (istioPortProtocols); an unknown one on a well-known port is TCP.
func servicePortProtocolKnown(p ServicePort) bool {
	if p.Protocol == corev1.ProtocolUDP {
		return true
	}
	name := p.Name
	if p.AppProtocol != nil {
		name = *p.AppProtocol
	}
	if len(name) >= len("grpc-web") && strings.EqualFold(name[:len("grpc-web")], "grpc-web") {
		return true
	}
	prefix, _, _ := strings.Cut(name, "-")
	return istioPortProtocols[strings.ToLower(prefix)] || wellKnownTCPPorts[p.Port]
}
