package injector

import (
	"fmt"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/test/conformance"
)

// templateSnapshots loads Istio's default install three ways: "typed" (stock
// templates recognised: the typed injector builds the pod), "generic-stock"
// (the same templates forced through the generic renderer) and
// "generic-custom" (the sidecar template edited, so useGenericTemplates
// itself chooses the generic renderer, as for a customised ConfigMap).
func templateSnapshots(b *testing.B) []struct {
	name string
	cfg  *config.Snapshot
} {
	cfg, values, mesh := conformance.IstioInstall(b)
	typed, err := config.Inputs{Config: cfg, Values: values, Mesh: mesh}.Load()
	if err != nil {
		b.Fatal(err)
	}
	forced := forceGeneric(typed)
	custom, err := config.Inputs{Config: conformance.CustomSidecarConfig(b, cfg), Values: values, Mesh: mesh}.Load()
	if err != nil {
		b.Fatal(err)
	}
	if useGenericTemplates(benchPod(0), typed) || !useGenericTemplates(benchPod(0), custom) {
		b.Fatal("the stock config must take the typed path and the customised one the generic path")
	}
	return []struct {
		name string
		cfg  *config.Snapshot
	}{{"typed", typed}, {"generic-stock", forced}, {"generic-custom", custom}}
}

// BenchmarkInjectTemplates measures Inject with Istio's default install
// config on the typed path and the generic template path, for a tiny pod
// (env0) and a 2,000-env pod.
func BenchmarkInjectTemplates(b *testing.B) {
	for _, path := range templateSnapshots(b) {
		for _, envs := range []int{0, 2000} {
			b.Run(fmt.Sprintf("%s/env%d", path.name, envs), func(b *testing.B) {
				pod := benchPod(envs)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Inject(pod, "app", path.cfg, Options{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
