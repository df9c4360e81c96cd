package main

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/validation"
)

// clusterScopedKinds are the cluster-scoped kinds of meshguard's scheme
// (scheme.Scheme): Kubernetes' built-in ones, apiextensions'
// CustomResourceDefinition and cert-manager's ClusterIssuer; every Istio kind
// is namespaced. TestClusterScopedKindsMatchClientGo checks it against their
// generated clientsets.
var clusterScopedKinds = map[schema.GroupKind]bool{}

func init() {
	for group, kinds := range map[string][]string{
		"":                             {"ComponentStatus", "Namespace", "Node", "PersistentVolume"},
		"admissionregistration.k8s.io": {"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration"},
		"apiextensions.k8s.io":         {"CustomResourceDefinition"},
		"authentication.k8s.io":        {"SelfSubjectReview", "TokenReview"},
		"authorization.k8s.io":         {"SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview"},
		"certificates.k8s.io":          {"CertificateSigningRequest", "ClusterTrustBundle"},
		"flowcontrol.apiserver.k8s.io": {"FlowSchema", "PriorityLevelConfiguration"},
		"internal.apiserver.k8s.io":    {"StorageVersion"},
		"networking.k8s.io":            {"IPAddress", "IngressClass", "ServiceCIDR"},
		"node.k8s.io":                  {"RuntimeClass"},
		"rbac.authorization.k8s.io":    {"ClusterRole", "ClusterRoleBinding"},
		"resource.k8s.io":              {"DeviceClass", "DeviceTaintRule", "ResourcePoolStatusRequest", "ResourceSlice"},
		"scheduling.k8s.io":            {"PriorityClass"},
		"storage.k8s.io":               {"CSIDriver", "CSINode", "StorageClass", "VolumeAttachment", "VolumeAttributesClass"},
		"storagemigration.k8s.io":      {"StorageVersionMigration"},
		"cert-manager.io":              {"ClusterIssuer"},
	} {
		for _, k := range kinds {
			clusterScopedKinds[schema.GroupKind{Group: group, Kind: k}] = true
		}
	}
}

// reportScope drops the namespace validation gave a skipped object (the
// default one, when it set none) if its kind is known to be cluster-scoped:
// the API server clears metadata.namespace of such an object (k8s.io/apiserver
// registry/rest BeforeCreate), so "Namespace default/prod" names nothing.
// Kinds meshguard does not know keep it: offline their scope is unknown.
func reportScope(res *validation.Result) {
	if !res.Skipped {
		return
	}
	gv, err := schema.ParseGroupVersion(res.APIVersion)
	if err == nil && clusterScopedKinds[gv.WithKind(res.Kind).GroupKind()] {
		res.Namespace = ""
	}
}
