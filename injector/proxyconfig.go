package injector

import (
	"sort"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	clientnetworking "istio.io/client-go/pkg/apis/networking/v1beta1"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/internal/submap"
)

// proxyConfigLevels are the ProxyConfig custom resources that apply to one
// pod, picked as Istio picks them (pilot's EffectiveProxyConfig): at each
// level the oldest matching resource, and only it.
type proxyConfigLevels struct {
	root      *clientnetworking.ProxyConfig // root namespace, no selector: mesh-wide
	namespace *clientnetworking.ProxyConfig // the pod's namespace, no selector
	workload  *clientnetworking.ProxyConfig // the pod's namespace, selector matching its labels
}

// pickProxyConfigs selects the levels for a pod in namespace with labels.
// crs may hold resources of any namespace, in any order.
func pickProxyConfigs(crs []*clientnetworking.ProxyConfig, rootNamespace, namespace string, labels map[string]string) proxyConfigLevels {
	var l proxyConfigLevels
	if len(crs) == 0 {
		return l
	}
	sorted := append([]*clientnetworking.ProxyConfig(nil), crs...)
	// Istio's sortConfigByCreationTime: oldest first, then name, then namespace.
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Namespace < b.Namespace
	})
	for _, cr := range sorted {
		noSelector := cr.Spec.GetSelector() == nil
		if noSelector && cr.Namespace == rootNamespace && l.root == nil {
			l.root = cr
		}
		if cr.Namespace != namespace {
			continue
		}
		switch sel := cr.Spec.GetSelector().GetMatchLabels(); {
		case noSelector:
			// In the root namespace itself that resource is the root level only.
			if namespace != rootNamespace && l.namespace == nil {
				l.namespace = cr
			}
		case len(sel) > 0 && l.workload == nil && submap.Contains(labels, sel):
			l.workload = cr
		}
	}
	return l
}

// applyProxyConfig returns base with cr's fields merged over it as Istio
// merges a resource (toMeshConfigProxyConfig, then mergeWithPrecedence):
// concurrency and image replace, environmentVariables merge key by key into
// proxyMetadata (the three fields a ProxyConfig resource carries).
func applyProxyConfig(base *meshv1alpha1.ProxyConfig, cr *clientnetworking.ProxyConfig) *meshv1alpha1.ProxyConfig {
	if cr == nil {
		return base
	}
	return config.MergeProxyConfig(base, &meshv1alpha1.ProxyConfig{
		Concurrency:   cr.Spec.GetConcurrency(),
		ProxyMetadata: cr.Spec.GetEnvironmentVariables(),
		Image:         cr.Spec.GetImage(),
	})
}

// proxyConfigLayer is one pod-level ProxyConfig input and the fields it sets.
type proxyConfigLayer struct {
	source string // "annotation proxy.istio.io/config" or "ProxyConfig ns/name"
	sets   *meshv1alpha1.ProxyConfig
}

func crSource(cr *clientnetworking.ProxyConfig) string {
	if cr == nil {
		return ""
	}
	return "ProxyConfig " + cr.Namespace + "/" + cr.Name
}

// podSource names the highest-precedence pod-level input for which has
// holds (the one whose value took effect).
func (p *params) podSource(has func(*meshv1alpha1.ProxyConfig) bool) string {
	for i := len(p.podLayers) - 1; i >= 0; i-- {
		if has(p.podLayers[i].sets) {
			return p.podLayers[i].source
		}
	}
	return "annotation " + AnnotationProxyConfig
}
