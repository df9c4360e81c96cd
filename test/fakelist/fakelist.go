// Package fakelist lets a test create objects in a fake dynamic client just
// before one resource is listed, as if they had been written while a
// snapshot of the cluster (the audit, `analyze --kubeconfig`) was being
// listed kind by kind. Test code only.
package fakelist

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Object is an object of the resource GVR.
type Object struct {
	GVR    schema.GroupVersionResource
	Object map[string]any
}

// CreateWhenListed creates objs, in order and each once, when resource is
// listed (the list then sees the objects of its own resource among them).
func CreateWhenListed(t testing.TB, client *dynamicfake.FakeDynamicClient, resource string, objs ...Object) {
	client.PrependReactor("list", resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		for _, o := range objs {
			u := &unstructured.Unstructured{Object: o.Object}
			if _, err := client.Tracker().Get(o.GVR, u.GetNamespace(), u.GetName()); err == nil {
				continue
			}
			if err := client.Tracker().Create(o.GVR, u, u.GetNamespace()); err != nil {
				t.Error(err)
			}
		}
		return false, nil, nil
	})
}
