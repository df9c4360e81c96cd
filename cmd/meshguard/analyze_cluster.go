package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/audit"
	injectorconfig "github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/meshconfig"
)

var namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// clusterPageSize bounds one list call: the API server is paged through,
// never asked for everything at once (audit.Lister's page).
const clusterPageSize = audit.PageSize

var servicesResource = schema.GroupVersionResource{Version: "v1", Resource: "services"}

// clusterResources are listed by `analyze --kubeconfig` in this order: the
// mesh kinds (audit.MeshResources), then what they refer to, the Services and
// the Namespaces (the selected Pods follow, listSelectedWorkloads). The audit
// (audit.Auditor.snapshot) also lists the Services and Namespaces after the
// mesh kinds, but the Namespaces and Pods before the Services. A Service or namespace
// created before an object that names it is then seen, not missed (a false
// IST0101, or rules without the labels, for that run); one deleted while
// listing is missing, and a reference to it reported.
func clusterResources(mapper meta.RESTMapper) ([]schema.GroupVersionResource, error) {
	mesh, err := audit.MeshResources(mapper)
	if err != nil {
		return nil, err
	}
	return append(mesh, servicesResource, namespacesResource), nil
}

// listCluster pages through every clusterResources list, in every
// namespace, and hands each object to add. A kind removed between discovery
// and listing has no objects; any other error stops the listing.
//
// Every namespace, also under -n: istioctl analyze -n reads the whole
// cluster and drops the messages about objects of other namespaces after
// the analysis (Istio: pkg/config/analysis/local/istiod_analyze.go
// AddRunningKubeSourceWithRevision, informers of every namespace;
// internalAnalyze, "analysis is run for all namespaces", then
// filterMessages), and the analyzers of a namespace's objects read other
// namespaces' ones: a VirtualService's Gateway "istio-system/gw" and
// destination hosts (IST0101, IST0132), the Gateways of the same selector
// (IST0145), the RequestAuthentications of its Gateways' pods' namespace
// and of the root namespace (IST0149), the root namespace's ProxyConfig
// (IST0158's image type). Listing only the namespace made those messages
// false (or missing); runAnalyze scopes the messages as filterMessages.
func listCluster(ctx context.Context, client dynamic.Interface, mapper meta.RESTMapper, add func(origin string, obj map[string]any) error) error {
	resources, err := clusterResources(mapper)
	if err != nil {
		return err
	}
	for _, gvr := range resources {
		origin := fmt.Sprintf("cluster %s", gvr.GroupResource())
		err := audit.Lister{Client: client}.Each(ctx, gvr, "", "", func(u *unstructured.Unstructured) error { return add(origin, u.Object) })
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// errNamespaceNotFound is clusterNamespaceExists's error for a namespace the
// cluster does not have; runAnalyze prints istioctl's line for it.
var errNamespaceNotFound = errors.New("namespace not found")

// clusterNamespaceExists checks that the namespace analyze -n scopes the
// analysis to exists, as istioctl analyze checks it before analysing
// (Istio: istioctl/pkg/analyze/analyze.go Analyze, Namespaces().Get under
// useKube): errNamespaceNotFound when it does not, any other error of the
// get wrapped.
func clusterNamespaceExists(ctx context.Context, client dynamic.Interface, ns string) error {
	_, err := client.Resource(namespacesResource).Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return errNamespaceNotFound
	case err != nil:
		return fmt.Errorf("reading namespace %q: %w", ns, err)
	}
	return nil
}

// listSelectedWorkloads lists the pods the analysed objects' analyzers need
// (analysis.PodQueries: one paged list per query, a pod two of them select
// added once; audit.Lister.SelectedPods, as the audit lists them). The pods
// listed are all the cluster has for those selectors, so a selector
// matching none is reported (in.AllWorkloads). The Services
// of the Gateways' pods' namespaces (IST0162) are listed already
// (listCluster: every namespace).
func listSelectedWorkloads(ctx context.Context, client dynamic.Interface, in *analysis.Input, add func(origin string, obj map[string]any) error) error {
	in.AllWorkloads = true
	return audit.Lister{Client: client}.SelectedPods(ctx, analysis.PodQueries(in), in.Namespaces, func(u *unstructured.Unstructured) error {
		return add("cluster pods", u.Object)
	})
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

var secretsResource = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// listGatewaySecrets lists the Secrets of the namespaces the gateway Secret
// analyzer reads (analysis.GatewaySecretNamespaces: those of the Gateways'
// pods, so after listSelectedWorkloads) through client, the metadata API
// (PartialObjectMetadata: no Secret data is ever read), and hands add each
// Secret's kind, namespace and name; the list is then complete
// (in.AllSecrets), so a credentialName naming none is IST0101. Without a
// client (nil) nothing is listed and no credentialName is reported.
func listGatewaySecrets(ctx context.Context, client metadata.Interface, in *analysis.Input, add func(origin string, obj map[string]any) error) error {
	if client == nil {
		return nil
	}
	for _, ns := range analysis.GatewaySecretNamespaces(in) {
		opts := metav1.ListOptions{Limit: clusterPageSize}
		for {
			list, err := client.Resource(secretsResource).Namespace(ns).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("listing secrets (metadata) in %q: %w", ns, err)
			}
			for _, s := range list.Items {
				obj := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": s.Name, "namespace": s.Namespace}}
				if err := add("cluster secrets", obj); err != nil {
					return err
				}
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
	}
	in.AllSecrets = true
	return nil
}

var errNoInput = errors.New("nothing to analyze: give FILE|DIR (or -f FILE|DIR) and/or --kubeconfig FILE, --context NAME or -k")

// clusterConfig is the client config of the cluster analyze reads, and the
// namespace of its context, built as istioctl builds its client (Istio:
// istioctl/pkg/cli/context.go newKubeClientWithRevision, pkg/kube/util.go
// BuildClientCmd and ConfigLoadingRules): client-go's loading rules, so
// kubeconfig (--kubeconfig), else the files of KUBECONFIG, else
// ~/.kube/config, with the context kubeContext (--context) or the current
// one; the in-cluster config only as clientcmd falls back to it, when no
// kubeconfig gives a cluster. (serve takes the in-cluster config first,
// loadRESTConfig: it runs in its cluster; analyze is run by people and CI
// against the kubeconfig they chose.) The namespace is the context's, else
// "default" (istioctl's RootFlags.DefaultNamespace). A kubeconfig that is
// missing or empty is an error, where istioctl falls back to the other
// rules: analysing another cluster than the one named would report on the
// wrong objects.
func clusterConfig(kubeconfig, kubeContext string) (*rest.Config, string, error) {
	if kubeconfig != "" {
		fi, err := os.Stat(kubeconfig)
		switch {
		case err != nil:
			return nil, "", fmt.Errorf("--kubeconfig: %w", err)
		case !fi.Mode().IsRegular():
			return nil, "", fmt.Errorf("--kubeconfig %s: not a regular file", kubeconfig)
		case fi.Size() == 0:
			return nil, "", fmt.Errorf("--kubeconfig %s: empty file", kubeconfig)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	rules.DefaultClientConfig = &clientcmd.DefaultClientConfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{ClusterDefaults: clientcmd.ClusterDefaults, CurrentContext: kubeContext})
	where := "load kubeconfig"
	if kubeContext != "" {
		where += fmt.Sprintf(" (--context %q)", kubeContext)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", where, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("%s: namespace of the context: %w", where, err)
	}
	return cfg, ns, nil
}

var (
	configMapsResource  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	deploymentsResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// clusterMeshConfig reads the mesh config as istioctl analyze reads it from
// a cluster (Istio: pkg/config/analysis/local/istiod_analyze.go
// addRunningKubeIstioConfigMapSource): ConfigMap istio in the Istio
// namespace, key mesh, over Istio's defaults. No ConfigMap: the defaults
// (nil), as istioctl. A ConfigMap without the key, or a mesh config that does
// not parse or validate, is an error, where istioctl logs it and analyses
// with the defaults: its settings must not silently become the defaults (the
// injector's rule, webhook.IstioConfigMaps.Load).
func clusterMeshConfig(ctx context.Context, client dynamic.Interface, istioNamespace string) (*meshv1alpha1.MeshConfig, error) {
	cm, err := client.Resource(configMapsResource).Namespace(istioNamespace).Get(ctx, injectorconfig.MeshConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	where := fmt.Sprintf("ConfigMap %s/%s", istioNamespace, injectorconfig.MeshConfigMapName)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	data, found, err := unstructured.NestedString(cm.Object, "data", injectorconfig.KeyMesh)
	if err != nil || !found {
		return nil, fmt.Errorf("%s has no data key %q", where, injectorconfig.KeyMesh)
	}
	m, err := meshconfig.Load([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", where, injectorconfig.KeyMesh, err)
	}
	return m, nil
}

// listInjectorConfigMaps hands add the ConfigMaps of istioNamespace named
// istio-sidecar-injector* (the injector ConfigMaps of each revision), which
// istioctl's injection analyzers read (IST0148, IST0158: Istio's
// injection.go and injection-image.go); analysis.Input.AddKubernetesObject
// keeps their values.
func listInjectorConfigMaps(ctx context.Context, client dynamic.Interface, istioNamespace string, add func(origin string, obj map[string]any) error) error {
	return audit.Lister{Client: client}.Each(ctx, configMapsResource, istioNamespace, "", func(u *unstructured.Unstructured) error {
		if !strings.HasPrefix(u.GetName(), "istio-sidecar-injector") {
			return nil
		}
		return add("cluster configmaps", u.Object)
	})
}

// listInjectedWorkloads lists what istioctl's pod and Deployment analyzers
// read beyond the selected pods: every pod of the injected namespaces
// (IST0103, IST0158: analysis.PodNamespaces) and every Deployment (IST0116,
// IST0137), in namespace ns only when the cluster is read in one: those
// analyzers report on the pod, the Deployment or the pod's namespace, whose
// messages -n keeps for ns only, and read no other namespace's pods. A pod
// listed already (listSelectedWorkloads) is not added twice.
func listInjectedWorkloads(ctx context.Context, client dynamic.Interface, ns string, in *analysis.Input, add func(origin string, obj map[string]any) error) error {
	seen := map[string]bool{}
	for _, w := range in.Workloads {
		if w.Kind == "Pod" {
			seen[w.Namespace+"/"+w.Name] = true
		}
	}
	for _, podNS := range analysis.PodNamespaces(in) {
		if ns != "" && podNS != ns {
			continue
		}
		err := audit.Lister{Client: client}.Each(ctx, podsResource, podNS, "", func(u *unstructured.Unstructured) error {
			if key := u.GetNamespace() + "/" + u.GetName(); !seen[key] {
				seen[key] = true
				return add("cluster pods", u.Object)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return audit.Lister{Client: client}.Each(ctx, deploymentsResource, ns, "", func(u *unstructured.Unstructured) error { return add("cluster deployments", u.Object) })
}

var mutatingWebhooksResource = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}

// listMutatingWebhooks lists what istioctl's webhook analyzer reads (IST0139;
// Istio: pkg/config/analysis/analyzers/webhook/webhook.go Analyzer): every
// MutatingWebhookConfiguration (cluster scoped: listed whatever namespace is
// analysed). The Services their webhooks name are listed already
// (listCluster: every namespace, so the injector's istiod Service in
// istio-system is not missing because analyze -n reads another namespace).
// Any list error stops the analysis (a configuration not read would hide an
// overlap).
func listMutatingWebhooks(ctx context.Context, client dynamic.Interface, add func(origin string, obj map[string]any) error) error {
	return audit.Lister{Client: client}.Each(ctx, mutatingWebhooksResource, "", "", func(u *unstructured.Unstructured) error {
		return add("cluster mutatingwebhookconfigurations", u.Object)
	})
}
