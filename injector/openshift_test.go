package injector

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

func TestProxyIDs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		annos    map[string]string
		uid, gid int64
	}{
		{"not OpenShift", nil, 1337, 1337},
		{"uid range and groups", map[string]string{AnnotationOpenShiftUIDRange: "1000620000/10000", AnnotationOpenShiftSupplementalGroups: "1000640000/10000,5/2"}, 1000629999, 1000649999},
		{"groups fall back to the uid range", map[string]string{AnnotationOpenShiftUIDRange: "1000620000/10000"}, 1000629999, 1000629999},
		{"dash form", map[string]string{AnnotationOpenShiftUIDRange: "2000-2999", AnnotationOpenShiftSupplementalGroups: "3000-3010"}, 2999, 3010},
		{"unparsable: defaults", map[string]string{AnnotationOpenShiftUIDRange: "lots", AnnotationOpenShiftSupplementalGroups: "10/0"}, 1337, 1337},
		{"empty groups annotation does not fall back", map[string]string{AnnotationOpenShiftUIDRange: "100/10", AnnotationOpenShiftSupplementalGroups: ""}, 109, 1337},
		{"beyond 32 bits: defaults", map[string]string{AnnotationOpenShiftUIDRange: "4294967295/10"}, 1337, 1337},
		{"beyond what Kubernetes accepts: defaults", map[string]string{AnnotationOpenShiftUIDRange: "2147483000/1000"}, 1337, 1337},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid, gid := proxyIDs(tc.annos)
			if uid != tc.uid || gid != tc.gid {
				t.Errorf("proxyIDs = %d, %d; want %d, %d", uid, gid, tc.uid, tc.gid)
			}
		})
	}
}

// TestOpenShiftInjection: on OpenShift, the namespace's range reaches
// istio-init's -u, the proxy's and istio-validation's runAsUser/runAsGroup;
// TPROXY keeps -u 1337.
func TestOpenShiftInjection(t *testing.T) {
	ns := map[string]string{AnnotationOpenShiftUIDRange: "1000620000/10000", AnnotationOpenShiftSupplementalGroups: "1000640000/10000"}
	arg := func(c corev1.Container, flag string) string {
		if i := slices.Index(c.Args, flag); i >= 0 && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
		return ""
	}
	find := func(cs []corev1.Container, name string) corev1.Container {
		for _, c := range cs {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no container %s", name)
		return corev1.Container{}
	}
	inject := func(cfg *config.Snapshot) *corev1.Pod {
		t.Helper()
		res, err := Inject(loadPod(t, "testdata/golden/plain.in.yaml"), "app", cfg, Options{NamespaceAnnotations: ns})
		if err != nil {
			t.Fatal(err)
		}
		return res.Pod
	}

	pod := inject(openShiftConfig(t, ""))
	if u := arg(find(pod.Spec.InitContainers, InitContainerName), "-u"); u != "1000629999" {
		t.Errorf("istio-init -u %s, want 1000629999", u)
	}
	sc := find(pod.Spec.Containers, ProxyContainerName).SecurityContext
	if *sc.RunAsUser != 1000629999 || *sc.RunAsGroup != 1000649999 {
		t.Errorf("istio-proxy runs as %d:%d, want 1000629999:1000649999", *sc.RunAsUser, *sc.RunAsGroup)
	}

	vsc := find(inject(openShiftConfig(t, "pilot: {cni: {enabled: true}}\n")).Spec.InitContainers, ValidationContainerName).SecurityContext
	if *vsc.RunAsUser != 1000629999 || *vsc.RunAsGroup != 1000649999 {
		t.Errorf("istio-validation runs as %d:%d, want 1000629999:1000649999", *vsc.RunAsUser, *vsc.RunAsGroup)
	}

	tproxy, err := config.Load([]byte("defaultConfig: {interceptionMode: TPROXY}\n"), []byte("global: {platform: openshift}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tpod := inject(tproxy)
	if u := arg(find(tpod.Spec.InitContainers, InitContainerName), "-u"); u != "1337" {
		t.Errorf("TPROXY istio-init -u %s, want 1337", u)
	}
	// Envoy runs as root in TPROXY; the rules recognise it by the 1337 group.
	if tsc := find(tpod.Spec.Containers, ProxyContainerName).SecurityContext; *tsc.RunAsUser != 0 || *tsc.RunAsGroup != 1337 {
		t.Errorf("TPROXY istio-proxy runs as %d:%d, want 0:1337", *tsc.RunAsUser, *tsc.RunAsGroup)
	}
}
