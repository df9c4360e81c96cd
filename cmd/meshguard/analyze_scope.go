package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/validation"
)

// fileObject is one object of the files, with where it was read.
type fileObject struct {
	file   string // the input it was read from
	origin string
	obj    map[string]any
	sum    [sha256.Size]byte // of its text, to tell a changed copy from the same one
}

// fileObjects are the objects of the files as istioctl's file source holds
// them (Istio: pilot/pkg/config/file/store.go KubeSource.ApplyContent): one
// per kind, namespace and name, the last copy read, which replaces an
// earlier one in its place; a copy of the same text leaves the stored one
// (and its origin) as it is, as ApplyContent skips a resource whose sha is
// unchanged.
type fileObjects struct {
	defaultNamespace string
	list             []fileObject
	at               map[string]int // objectKey → index in list
}

// add records obj, read at origin of file; text is its document's bytes (nil for
// an item of a List, whose canonical JSON is then compared).
func (f *fileObjects) add(file, origin string, obj map[string]any, text []byte) {
	if text == nil {
		text, _ = json.Marshal(obj) // a decoded object always marshals
	}
	fo := fileObject{file: file, origin: origin, obj: obj, sum: sha256.Sum256(bytes.TrimSpace(text))}
	key := objectKey(obj, f.defaultNamespace)
	if f.at == nil {
		f.at = map[string]int{}
	}
	if i, ok := f.at[key]; ok {
		if f.list[i].sum != fo.sum {
			f.list[i] = fo
		}
		return
	}
	f.at[key] = len(f.list)
	f.list = append(f.list, fo)
}

// inIgnoredNamespace: obj is in a namespace istioctl's analysis never reads
// (inject.IgnoredNamespaces, here injector.IgnoredNamespaces), its own for a
// namespaced object (defaultNamespace when it names none), its name for a
// Namespace. Istio drops such objects of the files
// (pkg/config/analysis/local/istiod_analyze.go addReaderKubeSourceInternal,
// SetNamespacesFilter); a cluster-scoped object (no namespace) is kept.
func inIgnoredNamespace(obj map[string]any, defaultNamespace string) bool {
	u := unstructured.Unstructured{Object: obj}
	if u.GetAPIVersion() == "v1" && u.GetKind() == "Namespace" {
		return injector.IgnoredNamespaces[u.GetName()]
	}
	if clusterScoped[u.GroupVersionKind().GroupKind()] {
		return false
	}
	ns := u.GetNamespace()
	if ns == "" {
		ns = defaultNamespace
	}
	return injector.IgnoredNamespaces[ns]
}

// clusterScoped are the cluster-scoped kinds analyze reads besides
// Namespaces.
var clusterScoped = map[schema.GroupKind]bool{
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}: true,
}

// meshKinds are the kinds listed as mesh objects (audit.MeshResources).
var meshKinds = func() map[schema.GroupKind]bool {
	m := map[schema.GroupKind]bool{}
	for _, gk := range validation.KnownKinds() {
		m[gk] = true
	}
	return m
}()

// ignoredClusterKinds are the kinds istioctl reads from a cluster without
// their objects in the ignored namespaces (Istio: istiod_analyze.go
// AddRunningKubeSourceWithRevision, the field selectors on metadata.name of
// Namespaces and metadata.namespace of Services, Pods and Deployments).
var ignoredClusterKinds = map[schema.GroupKind]bool{
	{Kind: "Service"}: true, {Kind: "Pod"}: true, {Group: "apps", Kind: "Deployment"}: true,
}

// skipStored: a stored object analyze does not read, as istioctl's cluster
// source does not (AddRunningKubeSourceWithRevision): a mesh object
// labelled istio.io/rev for another revision than rev (crdclient's
// Revision, the rule of policy.InRevision; unlabelled ones are every
// revision's), and a Namespace, Service, Pod or Deployment of an ignored
// namespace. Mesh objects of those namespaces are read, as there.
func skipStored(obj map[string]any, rev string) bool {
	u := unstructured.Unstructured{Object: obj}
	gk := u.GroupVersionKind().GroupKind()
	switch {
	case meshKinds[gk]:
		return !policy.InRevision(u.GetLabels(), rev)
	case gk == schema.GroupKind{Kind: "Namespace"}:
		return injector.IgnoredNamespaces[u.GetName()]
	case ignoredClusterKinds[gk]:
		return injector.IgnoredNamespaces[u.GetNamespace()]
	}
	return false
}
