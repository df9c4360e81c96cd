package webhook

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
)

// countingReader counts the namespace reads the handler makes.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

// TestInjectReadsNamespaceOnlyOnOpenShift: Istio's webhook reads the pod's
// namespace only with PLATFORM=openshift (pkg/kube/inject/webhook.go
// NewWebhook builds the namespace client, Webhook.inject reads it, only
// when platform.IsOpenShift()); meshguard's signal is the values'
// global.platform. Elsewhere the proxy runs as 1337 whatever the namespace's
// openshift.io annotations say, and the namespace is not read at all.
func TestInjectReadsNamespaceOnlyOnOpenShift(t *testing.T) {
	openshift, err := config.Load(nil, []byte("global: {platform: openshift}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name      string
		cfg       *config.Snapshot
		openShift bool
	}{{"default", config.Default(), false}, {"openshift", openshift, true}} {
		for _, ns := range []struct {
			name     string
			annos    map[string]string
			uid, gid int64 // on OpenShift
		}{
			{"not annotated", nil, 1337, 1337},
			{"uid range", map[string]string{injector.AnnotationOpenShiftUIDRange: "1000/1"}, 1000, 1000},
			{"uid range and groups", map[string]string{
				injector.AnnotationOpenShiftUIDRange:           "1000620000/10000",
				injector.AnnotationOpenShiftSupplementalGroups: "1000640000/10000",
			}, 1000629999, 1000649999},
		} {
			t.Run(p.name+"/"+ns.name, func(t *testing.T) {
				r := &countingReader{Reader: fake.NewClientBuilder().WithObjects(
					&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: ns.annos}}).Build()}
				h := NewInjectHTTPHandler(&InjectHandler{Config: NewConfigStore(p.cfg), Log: logr.Discard(), Namespaces: r}, 0)
				_, resp := serve(t, h, reviewBody(t, testPod(0), nil))
				if !resp.Allowed {
					t.Fatalf("denied: %v", resp.Result)
				}
				wantUID, wantGID, wantGets := int64(1337), int64(1337), int32(0)
				if p.openShift {
					wantUID, wantGID, wantGets = ns.uid, ns.gid, 1
				}
				if got := r.gets.Load(); got != wantGets {
					t.Errorf("namespace read %d times, want %d", got, wantGets)
				}
				pod := applyPatch(t, testPod(0), resp.Patch)
				i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "istio-init" })
				if i < 0 {
					t.Fatal("no istio-init")
				}
				args := pod.Spec.InitContainers[i].Args
				if u := slices.Index(args, "-u"); u < 0 || u+1 >= len(args) || args[u+1] != fmt.Sprint(wantUID) {
					t.Errorf("istio-init args %q, want -u %d", args, wantUID)
				}
				j := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == "istio-proxy" })
				if j < 0 {
					t.Fatal("no istio-proxy")
				}
				sc := pod.Spec.Containers[j].SecurityContext
				if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil || *sc.RunAsUser != wantUID || *sc.RunAsGroup != wantGID {
					t.Errorf("istio-proxy securityContext %+v, want runAsUser %d runAsGroup %d", sc, wantUID, wantGID)
				}
			})
		}
	}
}
