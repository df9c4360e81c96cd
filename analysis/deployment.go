package analysis

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Codes of Istio's Service association analyzer
// (pkg/config/analysis/analyzers/deployment/services.go
// ServiceAssociationAnalyzer, istio/istio 03404d0fbc82; texts and levels from
// pkg/config/analysis/msg/messages.gen.go).
const (
	DeploymentAssociatedToMultipleServices = "IST0116"
	DeploymentConflictingPorts             = "IST0137"
)

func init() {
	Types[DeploymentAssociatedToMultipleServices] = MessageType{DeploymentAssociatedToMultipleServices, "DeploymentAssociatedToMultipleServices", Warning}
	Types[DeploymentConflictingPorts] = MessageType{DeploymentConflictingPorts, "DeploymentConflictingPorts", Warning}
}

// deploymentServices is Istio's ServiceAssociationAnalyzer.Analyze over the
// Deployments of in.Workloads (Pods are not read), in input order: for each
// Deployment in the mesh (workloadInMesh, Istio's util.DeploymentInMesh)
// that is not a waypoint (its own label gateway.istio.io/managed is
// istio.io-mesh-controller, isWaypointDeployment), the KubeServices of its
// namespace whose selector is not empty and matches its pod template labels
// (findMatchingServices) give
//
//   - IST0116 for each port number those Services define with more than one
//     protocol (an unset protocol is TCP), naming the Services of that port
//     as namespace/name, sorted (analyzeDeploymentPortProtocol);
//
//   - IST0137 for each targetPort (its string; unset or 0 is the port) that
//     more than one port number reaches, naming for each port the last
//     Service of the input giving it (a Service with two such ports is named
//     twice, as Istio's map of port to Service does) and the ports, both
//     sorted (analyzeDeploymentTargetPorts).
//
// Istio walks ports and targetPorts in map order; here ports ascend and
// targetPorts are in string order (the messages are sorted by Sort anyway).
// Every finding is about the Services given: more Services only add
// findings, so none depends on in.AllWorkloads. Istio's older
// IST0117 DeploymentRequiresServiceAssociated (a Deployment no Service
// selects) is gone from that version and not reported.
func deploymentServices(in *Input) []Message {
	var out []Message
	for _, w := range in.Workloads {
		if w.Kind != "Deployment" || w.DeploymentLabels[gatewayManagedLabel] == "istio.io-mesh-controller" || !workloadInMesh(w, in.Namespaces) {
			continue
		}
		var services []KubeService
		for _, s := range in.KubeServices {
			if s.Namespace == w.Namespace && len(s.Selector) > 0 && labels.SelectorFromSet(s.Selector).Matches(labels.Set(w.Labels)) {
				services = append(services, s)
			}
		}
		o := Object{Kind: "Deployment", Namespace: w.Namespace, Name: w.Name}
		protocols := map[int32]map[corev1.Protocol][]string{}
		targets := map[string]map[int32]string{}
		for _, s := range services {
			name := s.Namespace + "/" + s.Name
			for _, p := range s.Ports {
				protocol := cmp.Or(p.Protocol, corev1.ProtocolTCP)
				if protocols[p.Port] == nil {
					protocols[p.Port] = map[corev1.Protocol][]string{}
				}
				protocols[p.Port][protocol] = append(protocols[p.Port][protocol], name)
				target := p.TargetPort.String()
				if target == "0" || target == "" {
					target = strconv.Itoa(int(p.Port))
				}
				if targets[target] == nil {
					targets[target] = map[int32]string{}
				}
				targets[target][p.Port] = name
			}
		}
		for _, port := range slices.Sorted(maps.Keys(protocols)) {
			if len(protocols[port]) < 2 {
				continue
			}
			var names []string
			for _, n := range protocols[port] {
				names = append(names, n...)
			}
			slices.Sort(names)
			out = append(out, newMessage(o, DeploymentAssociatedToMultipleServices, "metadata.name",
				fmt.Sprintf("This deployment %s is associated with multiple services using port %d but different protocols: %v", w.Name, port, names)))
		}
		for _, target := range slices.Sorted(maps.Keys(targets)) {
			if len(targets[target]) < 2 {
				continue
			}
			ports := slices.Sorted(maps.Keys(targets[target]))
			names := slices.Sorted(maps.Values(targets[target]))
			out = append(out, newMessage(o, DeploymentConflictingPorts, "metadata.name",
				fmt.Sprintf("This deployment %s is associated with multiple services %v using targetPort %q but different ports: %v.", w.Name, names, target, ports)))
		}
	}
	return out
}
