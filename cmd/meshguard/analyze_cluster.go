package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	telemetry "istio.io/api/telemetry/v1alpha1"
	"k8s.io/apimachinery/pkg/labels"

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

// listSelectedWorkloads lists the pods the analysed objects select: in every
// namespace, those of each Gateway selector, and in its own namespace those of
// each Sidecar workloadSelector and Telemetry selector, and those each
// AuthorizationPolicy selector may select (one paged list per distinct
// namespace and selector, as a label
// selector; a pod two of them select is added once; one pod of the namespace
// for a policy without selector); and, when the cluster was read in one
// namespace only, the Services of the namespaces the Gateways' pods run in.
// The gateway port analyzer (IST0162) compares those, the Sidecar selector
// analyzer (IST0110) the pods of each namespace, the AuthorizationPolicy
// analyzer (IST0127) whether a policy selects any. The pods listed are all the
// cluster has for those selectors, so a Gateway selecting none is reported
// (in.AllWorkloads).
func listSelectedWorkloads(ctx context.Context, client dynamic.Interface, ns string, in *analysis.Input, add func(origin string, obj map[string]any)) error {
	type podQuery struct{ namespace, selector string } // namespace "": every namespace
	queries := map[podQuery]bool{}                     // → a Gateway's (every namespace); else a Sidecar's or AuthorizationPolicy's
	anyPod := map[string]bool{}                        // namespaces ("": any) where one pod is enough
	for _, o := range in.Objects {
		switch spec := o.Spec.(type) {
		case *networking.Gateway:
			queries[podQuery{selector: labels.SelectorFromSet(spec.GetSelector()).String()}] = true
		case *networking.Sidecar:
			if sel := spec.GetWorkloadSelector().GetLabels(); len(sel) > 0 {
				queries[podQuery{namespace: o.Namespace, selector: labels.SelectorFromSet(sel).String()}] = false
			}
		case *telemetry.Telemetry: // IST0159, IST0101 (analysis/telemetry.go): its namespace's pods
			if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
				queries[podQuery{namespace: o.Namespace, selector: labels.SelectorFromSet(sel).String()}] = false
			}
		case *security.AuthorizationPolicy:
			// As Istio's AuthorizationPoliciesAnalyzer (analysis/authz.go): a
			// selector of the root namespace selects in every namespace, any
			// other in its own; a policy without selector, or with an empty
			// one, needs one pod of its namespace (of any, in the root
			// namespace), and a root-namespace policy without selector none.
			ns := o.Namespace
			if ns == analysis.AuthzRootNamespace {
				if spec.GetSelector() == nil {
					continue
				}
				ns = ""
			}
			if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
				if q := (podQuery{namespace: ns, selector: labels.SelectorFromSet(sel).String()}); !queries[q] {
					queries[q] = false // a Gateway's query stays a Gateway's
				}
			} else {
				anyPod[ns] = true
			}
		}
	}
	in.AllWorkloads = true
	podNamespaces := map[string]bool{} // of the Gateways' pods
	seen := map[string]bool{}          // namespace/name of the pods added
	for _, q := range slices.SortedFunc(maps.Keys(queries), func(a, b podQuery) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.selector, b.selector))
	}) {
		opts := metav1.ListOptions{Limit: clusterPageSize, LabelSelector: q.selector}
		for {
			list, err := client.Resource(podsResource).Namespace(q.namespace).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("listing pods (selector %q): %w", q.selector, err)
			}
			for _, item := range list.Items {
				if queries[q] {
					podNamespaces[item.GetNamespace()] = true
				}
				if key := item.GetNamespace() + "/" + item.GetName(); !seen[key] {
					seen[key] = true
					add("cluster pods", item.Object)
				}
			}
			if opts.Continue = list.GetContinue(); opts.Continue == "" {
				break
			}
		}
	}
	// One pod, the first listed, of each namespace a policy without
	// selector needs: whether there is any (not every pod of a namespace).
	for _, podNS := range slices.Sorted(maps.Keys(anyPod)) {
		list, err := client.Resource(podsResource).Namespace(podNS).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return fmt.Errorf("listing pods in %q: %w", podNS, err)
		}
		if len(list.Items) > 0 {
			item := list.Items[0]
			if key := item.GetNamespace() + "/" + item.GetName(); !seen[key] {
				seen[key] = true
				add("cluster pods", item.Object)
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
