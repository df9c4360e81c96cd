package analysis

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/validation/crossref"
)

// gatewaySecrets is the credentialName half of Istio's gateway
// SecretAnalyzer (pkg/config/analysis/analyzers/gateway/secret.go
// SecretAnalyzer.Analyze, istio/istio 0a617ca985f9): IST0101 `Referenced
// credentialName not found: "NAME"` at spec.servers[i].tls.credentialName
// for each server whose tls.credentialName names no Secret in the namespace
// of the Gateway's pods (Istio: getGatewayNamespace, the namespace of the
// first pod the selector matches, not the Gateway's own namespace). A
// credentialName "ns/name" names Secret name of namespace ns (Istio:
// resource.NewShortOrFullName).
//
// Its other half, a selector matching no pod, is gatewayWorkloadPorts'
// IST0101 (gateway.go): a Gateway whose selector matches no workload gets no
// message here.
//
// It reports only when in.AllSecrets says in.SecretNames holds every Secret
// of the namespaces it reads (GatewaySecretNamespaces): `meshguard analyze
// --kubeconfig` lists their metadata; from files the Secrets are usually
// not part of the input, and nothing is reported (as the other "not found"
// findings of workloads from files). When the selected pods run in several
// namespaces (Istio's choice among them is undefined: its store's order),
// the server is reported when the Secret is missing in any of them: every
// pod of the gateway must load it.
func gatewaySecrets(in *Input) []Message {
	if !in.AllSecrets {
		return nil
	}
	var out []Message
	for _, o := range in.Objects {
		gw, ok := o.Spec.(*networking.Gateway)
		if !ok || !slices.ContainsFunc(gw.GetServers(), namesCredential) {
			continue // no pods to match
		}
		podNamespaces := gatewayPodNamespaces(in, gw)
		if len(podNamespaces) == 0 {
			continue // gatewayWorkloadPorts' IST0101 (selector), with in.AllWorkloads
		}
		for i, s := range gw.GetServers() {
			cn := s.GetTls().GetCredentialName()
			if cn == "" {
				continue
			}
			namespaces, name := podNamespaces, cn
			if ns, n, full := strings.Cut(cn, "/"); full {
				if !listableNamespace(ns) {
					continue // never listed (GatewaySecretNamespaces)
				}
				namespaces, name = []string{ns}, n
			}
			if slices.ContainsFunc(namespaces, func(ns string) bool { return !slices.Contains(in.SecretNames[ns], name) }) {
				out = append(out, newMessage(o, crossref.CodeReferencedResourceNotFound,
					field.NewPath("spec", "servers").Index(i).Child("tls", "credentialName").String(),
					fmt.Sprintf("Referenced credentialName not found: %q", cn)))
			}
		}
	}
	return out
}

// namesCredential: s has a tls.credentialName.
func namesCredential(s *networking.Server) bool { return s.GetTls().GetCredentialName() != "" }

// gatewayPodNamespaces are the namespaces (sorted) of the workloads
// (Input.selectable) gw's selector matches; an empty selector matches every
// workload, as Istio's labels.SelectorFromSet.
func gatewayPodNamespaces(in *Input, gw *networking.Gateway) []string {
	namespaces := map[string]bool{}
	for _, w := range in.selectedBy(gw.GetSelector()) {
		namespaces[w.Namespace] = true
	}
	return slices.Sorted(maps.Keys(namespaces))
}

// GatewaySecretNamespaces are the namespaces (sorted) whose Secrets the
// gateway Secret analyzer reads: those of the pods of each Gateway with a
// server naming a tls.credentialName, and the namespace of each
// credentialName "ns/name" (when ns is a valid namespace name; another is
// never listed, and its credentialName never found missing).
// `meshguard analyze --kubeconfig` lists their Secrets' metadata after the
// pods (listSelectedWorkloads) and sets in.AllSecrets.
func GatewaySecretNamespaces(given *Input) []string {
	in := *given // its selectedBy memo is this call's: the caller may add workloads later
	in.selections = nil
	namespaces := map[string]bool{}
	for _, o := range in.Objects {
		gw, ok := o.Spec.(*networking.Gateway)
		if !ok {
			continue
		}
		podsRead := false // the pods' namespaces, once per Gateway
		for _, s := range gw.GetServers() {
			cn := s.GetTls().GetCredentialName()
			if cn == "" {
				continue
			}
			if ns, _, full := strings.Cut(cn, "/"); full {
				if listableNamespace(ns) {
					namespaces[ns] = true
				}
				continue
			}
			if !podsRead {
				podsRead = true
				for _, ns := range gatewayPodNamespaces(&in, gw) {
					namespaces[ns] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(namespaces))
}

// listableNamespace: ns is a valid namespace name (a DNS-1123 label). The
// namespace part of a credentialName such as "kubernetes://name" is not:
// Istio's analyzer reports it, as it looks up Secret "/name" of namespace
// "kubernetes:"; meshguard neither lists nor reports it.
func listableNamespace(ns string) bool { return len(validation.IsDNS1123Label(ns)) == 0 }
