package analysis

import (
	"fmt"
	"maps"

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
// runs and its labels, which Gateway and Service selectors match, and what
// the analyzers over pods read of it (Istio's util.PodInMesh and
// DeploymentInMesh, inmesh.go; injection.go's IST0103; deployment.go).
type Workload struct {
	// Kind is "Pod" or "Deployment" (the pod template's).
	Kind            string
	Namespace, Name string
	Labels          map[string]string
	// Annotations are the pod's (the pod template's) annotations.
	Annotations map[string]string
	// Containers and InitContainers are the pod's (template's) containers.
	Containers, InitContainers []Container
	// HostNetwork is spec.hostNetwork (IST0103 skips such pods).
	HostNetwork bool
	// DeploymentLabels are a Deployment's own labels (nil for a Pod).
	DeploymentLabels map[string]string
	// Stored: a Deployment read from a cluster (AddStoredKubernetesObject),
	// for the Deployment analyzers only: the selector analyzers match its
	// pods, the cluster's Pods (Input.selectable).
	Stored bool
	// RunAsUser is the pod's (template's) spec.securityContext.runAsUser
	// (nil when unset), which the application UID analyzer (podsecurity.go)
	// reads.
	RunAsUser *int64
}

// Container is a container's name and image, and its
// securityContext.runAsUser (nil when unset; podsecurity.go).
type Container struct {
	Name, Image string
	RunAsUser   *int64
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
	// Labels and Type (spec.type, "" for ClusterIP) decide which Services
	// the port name analyzer (service.go) checks.
	Labels map[string]string
	Type   corev1.ServiceType
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Port       int32
	TargetPort intstr.IntOrString
	// Protocol as written; empty is TCP (the API server's default).
	Protocol corev1.Protocol
	// Name and AppProtocol (nil when not written) give the port's
	// application protocol (service.go).
	Name        string
	AppProtocol *string
}

// gatewayPorts answers gatewayWorkloadPorts' question for a Gateway
// selector: whether it matches a workload, and which ports the Services (same
// namespace) selecting the matched workloads target. Istio's analyzer compares
// every pod with every Service for each Gateway; for an input of a thousand of
// each that was a billion selector matches (minutes). Here a Service selector
// is parsed once and Services of equal selectors are one, a Gateway selector
// is matched once (Input.selectedBy), a workload's ports are found once per
// distinct workload (namespace and labels), and the answer once per distinct
// Gateway selector.
type gatewayPorts struct {
	in            *Input
	services      map[string][]portService // by namespace
	workloadPorts map[workloadKey]map[uint32]bool
	bySelector    map[string]selected // by crossref.SelectorKey
}

// workloadKey is a distinct workload: its namespace and labels
// (crossref.SelectorKey).
type workloadKey struct{ namespace, labels string }

// portService is the Services of one namespace and selector: the TCP ports
// a Gateway server may name to reach them, each port and its numeric
// targetPort. A server port is a Service port, which pilot translates to the
// targetPort the proxy listens on, or that targetPort itself (Istio's
// analyzers_test.go cases gatewayCustomIngressGateway, a server on a
// targetPort, and gatewayCustomIngressGatewayTranslation, a server on port
// 80 of a Service mapping it to 8003: neither is IST0162).
type portService struct {
	selector labels.Selector
	ports    []uint32
}

type selected struct {
	matched bool
	ports   map[uint32]bool
}

func newGatewayPorts(in *Input) *gatewayPorts {
	g := &gatewayPorts{in: in, services: map[string][]portService{}, workloadPorts: map[workloadKey]map[uint32]bool{},
		bySelector: map[string]selected{}}
	services := map[workloadKey]int{} // Services by namespace and selector: index in services[namespace]
	for _, svc := range in.KubeServices {
		k := workloadKey{svc.Namespace, crossref.SelectorKey(svc.Selector)}
		i, ok := services[k]
		if !ok {
			i = len(g.services[svc.Namespace])
			services[k] = i
			g.services[svc.Namespace] = append(g.services[svc.Namespace], portService{selector: labels.SelectorFromSet(svc.Selector)})
		}
		s := &g.services[svc.Namespace][i]
		for _, p := range svc.Ports {
			if p.Protocol != corev1.ProtocolTCP && p.Protocol != "" {
				continue
			}
			s.ports = append(s.ports, uint32(p.Port))
			if tp := p.TargetPort.IntValue(); tp != 0 && tp != int(p.Port) {
				s.ports = append(s.ports, uint32(tp))
			}
		}
	}
	return g
}

// forSelector returns the workloads and ports of Gateway selector sel.
func (g *gatewayPorts) forSelector(sel map[string]string) selected {
	key := crossref.SelectorKey(sel)
	if r, ok := g.bySelector[key]; ok {
		return r
	}
	r := selected{ports: map[uint32]bool{}}
	for _, w := range g.in.selectedBy(sel) {
		r.matched = true
		k := workloadKey{w.Namespace, crossref.SelectorKey(w.Labels)}
		ports, ok := g.workloadPorts[k]
		if !ok {
			ports = map[uint32]bool{}
			set := labels.Set(w.Labels)
			for _, s := range g.services[w.Namespace] {
				if s.selector.Matches(set) {
					for _, p := range s.ports {
						ports[p] = true
					}
				}
			}
			g.workloadPorts[k] = ports
		}
		maps.Copy(r.ports, ports)
	}
	g.bySelector[key] = r
	return r
}

// gatewayWorkloadPorts is Istio's IngressGatewayPortAnalyzer.analyzeGateway
// for one Gateway: the workloads its selector matches, the Services (same
// namespace) selecting those workloads, and each server port that is neither
// a TCP port nor a targetPort of those Services (gatewayPorts). With no
// matching workload it reports IST0101 only when in.AllWorkloads says the
// workload list is complete (a cluster); from files the gateway's workload is
// usually not part of the input.
func gatewayWorkloadPorts(in *Input, gp *gatewayPorts, o Object, gw *networking.Gateway) []Message {
	selector := labels.SelectorFromSet(gw.GetSelector())
	found := gp.forSelector(gw.GetSelector())
	msg := func(code, fieldPath, text string) Message { return newMessage(o, code, fieldPath, text) }
	if !found.matched {
		if !in.AllWorkloads {
			return nil
		}
		return []Message{msg(crossref.CodeReferencedResourceNotFound, "spec.selector",
			fmt.Sprintf("Referenced selector not found: %q", selector.String()))}
	}
	var out []Message
	for i, s := range gw.GetServers() {
		if s.GetPort() == nil || found.ports[s.GetPort().GetNumber()] {
			continue
		}
		out = append(out, msg(GatewayPortNotDefinedOnService,
			field.NewPath("spec", "servers").Index(i).Child("port", "number").String(),
			fmt.Sprintf("The gateway is listening on a target port (port %d) that is not defined in the Service associated with its workload instances (Pod selector %s). If you need to access the gateway port through the gateway Service, it will not be available.",
				s.GetPort().GetNumber(), selector.String())))
	}
	return out
}
