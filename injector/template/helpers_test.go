package template_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
	"github.com/meshguard/meshguard/test/conformance"
)

// injectionDir is Istio's injection test data (test/conformance): golden
// cases and the default install's injector inputs.
func injectionDir(t testing.TB) string { return conformance.Dir(t, "injection") }

type injectionCase struct {
	input, golden string
	native        bool
}

// injectionCases reads cases.tsv with test/conformance's strict reader
// (every line well-formed, every file under cases/ named, every named file
// present).
func injectionCases(t testing.TB) []injectionCase {
	t.Helper()
	var out []injectionCase
	for _, c := range conformance.InjectionCases(t) {
		out = append(out, injectionCase{input: c.Input, golden: c.Golden, native: c.Native})
	}
	return out
}

// loadPaths loads the three input files as `meshguard inject
// --injectConfigFile --valuesFile --meshConfigFile` does (an empty path:
// Istio's defaults).
func loadPaths(cfg, values, mesh string) (*config.Snapshot, error) {
	in := config.Inputs{ConfigSource: cfg, ValuesSource: values, MeshSource: mesh}
	for _, f := range []struct {
		data *[]byte
		path string
	}{{&in.Config, cfg}, {&in.Values, values}, {&in.Mesh, mesh}} {
		if f.path != "" {
			b, err := os.ReadFile(f.path)
			if err != nil {
				return nil, err
			}
			*f.data = b
		}
	}
	return in.Load()
}

// defaultInstall loads the three inputs of Istio's default install.
func defaultInstall(t testing.TB, dir string) *config.Snapshot {
	t.Helper()
	d := filepath.Join(dir, "istio-default-install")
	s, err := loadPaths(filepath.Join(d, "config"), filepath.Join(d, "values"), filepath.Join(d, "mesh"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withNative returns a copy of s with the cluster's native-sidecar mode
// fixed, and generic rendering forced or not.
func withNative(s *config.Snapshot, native, generic bool) *config.Snapshot {
	c := *s
	c.Values.Global.NativeSidecars = &native
	if s.Templates != nil {
		t := *s.Templates
		t.AlwaysGeneric = generic
		c.Templates = &t
	}
	return &c
}

// inject runs input through the `meshguard inject -f` code path.
func inject(t testing.TB, cfg *config.Snapshot, input []byte) []byte {
	t.Helper()
	res, err := kubeinject.InjectData(input, cfg)
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	return res.Output
}

// workloadSet is the workloads of an injected stream, and whether their
// images are compared.
type workloadSet struct {
	objs       map[string]any // test/conformance Workloads: "Kind/name" → object
	keepImages bool
}

// workloads reads the workloads of a YAML stream, items of a List included
// (test/conformance Workloads); compareWorkloads compares them by the
// conformance README's rules, images aside when dropImages.
func workloads(t testing.TB, stream []byte, dropImages bool) workloadSet {
	t.Helper()
	objs, err := conformance.Workloads(stream)
	if err != nil {
		t.Fatal(err)
	}
	return workloadSet{objs: objs, keepImages: !dropImages}
}

// compareWorkloads reports every difference between two injected streams,
// workload by workload (test/conformance CompareWorkloads); images are
// compared only when both sides keep them.
func compareWorkloads(got, want workloadSet) []string {
	return conformance.CompareWorkloads(got.objs, want.objs, conformance.CompareOptions{KeepImages: got.keepImages && want.keepImages})
}
