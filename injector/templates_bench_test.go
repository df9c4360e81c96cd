package injector

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
)

// defaultInstallSnapshot loads Istio's default install (all stock templates)
// from <repo>/../shared/conformance/injection/istio-default-install.
func defaultInstallSnapshot(b *testing.B) *config.Snapshot {
	b.Helper()
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if dir == filepath.Dir(dir) {
			b.Fatal("go.mod not found")
		}
		dir = filepath.Dir(dir)
	}
	d := filepath.Join(dir, "..", "shared", "conformance", "injection", "istio-default-install")
	s, err := config.LoadInputs(filepath.Join(d, "config"), filepath.Join(d, "values"), filepath.Join(d, "mesh"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkInjectTemplates measures injection with Istio's default install
// config on both paths: "fast" (stock templates recognised, typed injector)
// and "generic" (the same templates rendered as Istio renders them, which a
// customised template takes).
func BenchmarkInjectTemplates(b *testing.B) {
	fast := defaultInstallSnapshot(b)
	generic := *fast
	t := *fast.Templates
	t.AlwaysGeneric = true
	generic.Templates = &t
	for _, path := range []struct {
		name string
		cfg  *config.Snapshot
	}{{"fast", fast}, {"generic", &generic}} {
		for _, envs := range []int{0, 2000} {
			b.Run(fmt.Sprintf("%s/env%d", path.name, envs), func(b *testing.B) {
				pod := benchPod(envs)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Inject(pod, "app", path.cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
