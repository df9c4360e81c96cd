package injector

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// openShiftConfig is the injector configuration of an OpenShift install:
// values.global.platform "openshift", with extra values appended.
func openShiftConfig(t testing.TB, extra string) *config.Snapshot {
	t.Helper()
	cfg, err := config.Load(nil, []byte("global: {platform: openshift}\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestOpenShiftRangeOnlyOnOpenShift: Istio reads the namespace, and so its
// OpenShift UID range, only when istiod runs with PLATFORM=openshift
// (pkg/kube/inject/webhook.go NewWebhook and Webhook.inject); elsewhere
// GetProxyIDs gets no namespace and answers 1337. A namespace annotation must
// not move the UID iptables exempts on any other platform.
func TestOpenShiftRangeOnlyOnOpenShift(t *testing.T) {
	full := map[string]string{AnnotationOpenShiftUIDRange: "1000620000/10000", AnnotationOpenShiftSupplementalGroups: "1000640000/10000"}
	uidOnly := map[string]string{AnnotationOpenShiftUIDRange: "1000/1"}
	groupsOnly := map[string]string{AnnotationOpenShiftSupplementalGroups: "5000/10"}
	gcp, err := config.Load(nil, []byte("global: {platform: gcp}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Istio compares PLATFORM exactly (pkg/platform IsOpenShift), as its
	// templates compare .Values.global.platform.
	capitalised, err := config.Load(nil, []byte("global: {platform: OpenShift}\n"))
	if err != nil {
		t.Fatal(err)
	}
	platforms := []struct {
		name string
		cfg  *config.Snapshot
	}{
		{"default", config.Default()},
		{"gcp", gcp},
		{"OpenShift (not the exact value)", capitalised},
		{"openshift", openShiftConfig(t, "")},
	}
	for _, p := range platforms {
		for _, ns := range []struct {
			name     string
			annos    map[string]string
			uid, gid int64 // on OpenShift; 1337 elsewhere
		}{
			{"no annotations", nil, 1337, 1337},
			{"uid range and groups", full, 1000629999, 1000649999},
			{"uid range only", uidOnly, 1000, 1000},
			{"groups only", groupsOnly, 1337, 5009},
		} {
			t.Run(p.name+"/"+ns.name, func(t *testing.T) {
				wantUID, wantGID := int64(1337), int64(1337)
				if p.name == "openshift" {
					wantUID, wantGID = ns.uid, ns.gid
				}
				res, err := Inject(loadPod(t, "testdata/golden/plain.in.yaml"), "app", p.cfg, Options{NamespaceAnnotations: ns.annos})
				if err != nil {
					t.Fatal(err)
				}
				pod := res.Pod
				i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == InitContainerName })
				if i < 0 {
					t.Fatal("no istio-init")
				}
				args := pod.Spec.InitContainers[i].Args
				u := slices.Index(args, "-u")
				if u < 0 || u+1 >= len(args) || args[u+1] != fmt.Sprint(wantUID) {
					t.Errorf("istio-init args %q, want -u %d", args, wantUID)
				}
				j := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == ProxyContainerName })
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

func TestIsOpenShift(t *testing.T) {
	if IsOpenShift(config.Default()) {
		t.Error("default values: IsOpenShift true")
	}
	if !IsOpenShift(openShiftConfig(t, "")) {
		t.Error("global.platform openshift: IsOpenShift false")
	}
	if IsOpenShift(nil) {
		t.Error("nil configuration: IsOpenShift true")
	}
}
