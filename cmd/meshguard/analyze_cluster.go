package main

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// clusterResources are listed by `analyze --kubeconfig`: the mesh kinds the
// checks read, and the Services and Namespaces they refer to.
var clusterResources = []schema.GroupVersionResource{
	{Version: "v1", Resource: "namespaces"},
	{Version: "v1", Resource: "services"},
	{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
	{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	{Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
	{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
	{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
	{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"},
}

// clusterPageSize bounds one list call: the API server is paged through,
// never asked for everything at once.
const clusterPageSize = 500

// listCluster pages through every clusterResources list (in namespace ns, or
// all namespaces when ns is empty) and hands each object to add. A kind the
// API server does not serve (its CRD is not installed) has no objects; any
// other error stops the listing.
func listCluster(ctx context.Context, client dynamic.Interface, ns string, add func(origin string, obj map[string]any)) error {
	for _, gvr := range clusterResources {
		var ri dynamic.ResourceInterface = client.Resource(gvr)
		if ns != "" && gvr.Resource != "namespaces" {
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

var errNoInput = errors.New("nothing to analyze: give -f FILE|DIR and/or --kubeconfig")
