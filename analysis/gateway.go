package analysis

import (
	"fmt"

	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/validation/crossref"
)

// GatewayPortNotDefinedOnService is the code of Istio's gateway port analyzer
// (pkg/config/analysis/analyzers/gateway/gateway.go IngressGatewayPortAnalyzer).
const GatewayPortNotDefinedOnService = "IST0162"

func init() {
	Types[GatewayPortNotDefinedOnService] = MessageType{GatewayPortNotDefinedOnService, "GatewayPortNotDefinedOnService", Warning}
}

// Workload is a pod (or, from files, a Deployment's pod template): where it
// runs and its labels, which Gateway and Service selectors match.
type Workload struct {
	Namespace, Name string
	Labels          map[string]string
}

// KubeService is a Kubernetes Service's selector and ports, which the gateway
// port analyzer compares with the servers of the Gateways selecting the same
// workloads.
type KubeService struct {
	Namespace, Name string
	Selector        map[string]string
	Ports           []ServicePort
	// ExportTo is the networking.istio.io/exportTo annotation: the
	// namespaces whose VirtualServices may route to the Service.
	ExportTo string
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Port       int32
	TargetPort intstr.IntOrString
	// Protocol as written; empty is TCP (the API server's default).
	Protocol corev1.Protocol
}

// gatewayWorkloadPorts is Istio's IngressGatewayPortAnalyzer.analyzeGateway
// for one Gateway: the workloads its selector matches, the Services (same
// namespace) selecting those workloads, and each server port no TCP port of
// those Services targets (the targetPort, or the port when the targetPort is
// not a number). With no matching workload it reports IST0101 only when
// in.AllWorkloads says the workload list is complete (a cluster); from files
// the gateway's workload is usually not part of the input.
func gatewayWorkloadPorts(in *Input, o Object, gw *networking.Gateway) []Message {
	selector := labels.SelectorFromSet(gw.GetSelector())
	servicePorts := map[uint32]bool{}
	matched := 0
	for _, w := range in.Workloads {
		wl := labels.Set(w.Labels)
		if !selector.Matches(wl) {
			continue
		}
		matched++
		for _, svc := range in.KubeServices {
			if svc.Namespace != w.Namespace || !labels.SelectorFromSet(svc.Selector).Matches(wl) {
				continue
			}
			for _, p := range svc.Ports {
				if p.Protocol != corev1.ProtocolTCP && p.Protocol != "" {
					continue
				}
				if tp := p.TargetPort.IntValue(); tp != 0 {
					servicePorts[uint32(tp)] = true
				} else {
					servicePorts[uint32(p.Port)] = true
				}
			}
		}
	}
	msg := func(code, fieldPath, text string) Message {
		t := Types[code]
		return Message{Code: code, Name: t.Name, Level: t.Level, Kind: o.Kind, Namespace: o.Namespace, Object: o.Name,
			Origin: o.Origin, Field: fieldPath, Message: text}
	}
	if matched == 0 {
		if !in.AllWorkloads {
			return nil
		}
		return []Message{msg(crossref.CodeReferencedResourceNotFound, "spec.selector",
			fmt.Sprintf("Referenced selector not found: %q", selector.String()))}
	}
	var out []Message
	for i, s := range gw.GetServers() {
		if s.GetPort() == nil || servicePorts[s.GetPort().GetNumber()] {
			continue
		}
		out = append(out, msg(GatewayPortNotDefinedOnService,
			field.NewPath("spec", "servers").Index(i).Child("port", "number").String(),
			fmt.Sprintf("The gateway is listening on a target port (port %d) that is not defined in the Service associated with its workload instances (Pod selector %s). If you need to access the gateway port through the gateway Service, it will not be available.",
				s.GetPort().GetNumber(), selector.String())))
	}
	return out
}
