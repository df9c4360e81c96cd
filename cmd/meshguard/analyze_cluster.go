package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/audit"
)

var namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// clusterPageSize bounds one list call: the API server is paged through,
// never asked for everything at once.
const clusterPageSize = 500

var servicesResource = schema.GroupVersionResource{Version: "v1", Resource: "services"}

// clusterResources are listed by `analyze --kubeconfig` in the audit's order
// (audit.Auditor.snapshot): the mesh kinds (audit.MeshResources), then what
// they refer to, the Services and the Namespaces. A Service or namespace
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

// listCluster pages through every clusterResources list (in namespace ns, or
// all namespaces when ns is empty) and hands each object to add. A kind
// removed between discovery and listing has no objects; any other error
// stops the listing.
func listCluster(ctx context.Context, client dynamic.Interface, mapper meta.RESTMapper, ns string, add func(origin string, obj map[string]any)) error {
	resources, err := clusterResources(mapper)
	if err != nil {
		return err
	}
	for _, gvr := range resources {
		var ri dynamic.ResourceInterface = client.Resource(gvr)
		if ns != "" && gvr != namespacesResource {
			ri = client.Resource(gvr).Namespace(ns)
		}
		opts := metav1.ListOptions{Limit: clusterPageSize}
		for {
			list, err := ri.List(ctx, opts)
			if apierrors.IsNotFound(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("listing %s: %w", gvr.GroupResource(), err)
			}
			for _, item := range list.Items {
				add(fmt.Sprintf("cluster %s", gvr.GroupResource()), item.Object)
			}
			if opts.Continue = list.GetContinue(); opts.Continue == "" {
				break
			}
		}
	}
	return nil
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// listSelectedWorkloads lists the pods the analysed objects' analyzers need
// (analysis.PodQueries: one paged list per query, a pod two of them select
// added once) and, when the cluster was read in one namespace only, the
// Services of the namespaces the Gateways' pods run in. The pods listed are
// all the cluster has for those selectors, so a selector matching none is
// reported (in.AllWorkloads).
func listSelectedWorkloads(ctx context.Context, client dynamic.Interface, ns string, in *analysis.Input, add func(origin string, obj map[string]any)) error {
	in.AllWorkloads = true
	podNamespaces := map[string]bool{} // of the Gateways' pods
	seen := map[string]bool{}          // namespace/name of the pods added
	for _, q := range analysis.PodQueries(in) {
		opts := metav1.ListOptions{Limit: clusterPageSize, LabelSelector: q.Selector}
	pages:
		for {
			list, err := client.Resource(podsResource).Namespace(q.Namespace).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("listing pods in %q (selector %q): %w", q.Namespace, q.Selector, err)
			}
			for _, item := range list.Items {
				if q.One && !analysis.PodCounts(item.Object, in.Namespaces) {
					continue // whether there is one: the first the analyzers count
				}
				if q.Gateway {
					podNamespaces[item.GetNamespace()] = true
				}
				if key := item.GetNamespace() + "/" + item.GetName(); !seen[key] {
					seen[key] = true
					add("cluster pods", item.Object)
				}
				if q.One {
					break pages
				}
			}
			if opts.Continue = list.GetContinue(); opts.Continue == "" {
				break
			}
		}
	}
	if ns == "" {
		return nil // every Service is listed already
	}
	for _, podNS := range slices.Sorted(maps.Keys(podNamespaces)) {
		if podNS == ns {
			continue
		}
		opts := metav1.ListOptions{Limit: clusterPageSize}
		for {
			list, err := client.Resource(servicesResource).Namespace(podNS).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("listing services in %s: %w", podNS, err)
			}
			for _, item := range list.Items {
				add("cluster services", item.Object)
			}
			if opts.Continue = list.GetContinue(); opts.Continue == "" {
				break
			}
		}
	}
	return nil
}

var errNoInput = errors.New("nothing to analyze: give -f FILE|DIR and/or --kubeconfig")
