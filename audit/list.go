package audit

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/meshguard/meshguard/analysis"
)

// Lister pages through a cluster's lists: the audit's snapshot and
// `meshguard analyze --kubeconfig` read a cluster through it.
type Lister struct {
	Client dynamic.Interface
	// Limiter, when set, is waited on before every list call (the audit's
	// --audit-qps).
	Limiter flowcontrol.RateLimiter
}

// ErrStopList, returned by an item function, ends Each early without error.
var ErrStopList = errors.New("stop listing")

// Each pages through the objects of gvr in namespace ("" every namespace,
// or a cluster-scoped resource) matching the label selector ("" any),
// PageSize a list call, and hands each to item. An error of item ends the
// listing and is returned, but ErrStopList, which ends it without error. A
// list error names the resource, namespace and selector.
func (l Lister) Each(ctx context.Context, gvr schema.GroupVersionResource, namespace, selector string, item func(*unstructured.Unstructured) error) error {
	opts := metav1.ListOptions{Limit: PageSize, LabelSelector: selector}
	for {
		if l.Limiter != nil {
			if err := l.Limiter.Wait(ctx); err != nil {
				return err
			}
		}
		page, err := l.Client.Resource(gvr).Namespace(namespace).List(ctx, opts)
		if err != nil {
			where := ""
			if namespace != "" {
				where += fmt.Sprintf(" in %q", namespace)
			}
			if selector != "" {
				where += fmt.Sprintf(" (selector %q)", selector)
			}
			return fmt.Errorf("listing %s%s: %w", gvr.GroupResource(), where, err)
		}
		for i := range page.Items {
			if err := item(&page.Items[i]); errors.Is(err, ErrStopList) {
				return nil
			} else if err != nil {
				return err
			}
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// SelectedPods lists the Pods of queries (analysis.PodQueries: one paged
// list per query; for a One query, only the first Pod the analyzers count,
// analysis.PodCounts with the namespaces' labels) and hands each Pod to
// add once, however many queries select it. An error of add ends the
// listing and is returned.
func (l Lister) SelectedPods(ctx context.Context, queries []analysis.PodQuery, namespaces map[string]map[string]string, add func(*unstructured.Unstructured) error) error {
	seen := map[string]bool{} // namespace/name of the Pods added
	for _, q := range queries {
		err := l.Each(ctx, podsResource, q.Namespace, q.Selector, func(u *unstructured.Unstructured) error {
			if q.One && !analysis.PodCounts(u.Object, namespaces) {
				return nil // whether there is one: the first the analyzers count
			}
			if key := u.GetNamespace() + "/" + u.GetName(); !seen[key] {
				seen[key] = true
				if err := add(u); err != nil {
					return err
				}
			}
			if q.One {
				return ErrStopList
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
