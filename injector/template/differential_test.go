package template_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenericMatchesTypedOnIstioCases renders Istio's stock templates of a
// default install generically (forced) and with the typed fast path, for
// every input of Istio's golden cases in both native-sidecar modes the case
// uses, and requires the same pods: two independent constructions of
// Istio's pod that must agree.
func TestGenericMatchesTypedOnIstioCases(t *testing.T) {
	dir := injectionDir(t)
	install := defaultInstall(t, dir)
	for _, c := range injectionCases(t, dir) {
		t.Run(c.golden, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(dir, "cases", c.input))
			if err != nil {
				t.Fatal(err)
			}
			typedOut := inject(t, withNative(install, c.native, false), input)
			genericOut := inject(t, withNative(install, c.native, true), input)
			typed, generic := workloads(t, typedOut, false), workloads(t, genericOut, false)
			if len(typed) == 0 && string(typedOut) != string(genericOut) {
				t.Errorf("no workload in %s, yet the outputs differ:\n--- generic\n%s\n--- typed\n%s", c.input, genericOut, typedOut)
			}
			if d := compareWorkloads(generic, typed); len(d) > 0 {
				t.Errorf("generic (got) and typed (want) differ on %s (%d differences):\n%s", c.input, len(d), strings.Join(d, "\n"))
			}
		})
	}
}

// deliberate are the goldens the generic path deliberately differs from,
// because it applies meshguard's rules where they differ from Istio's
// (docs/compatibility.md).
var deliberate = map[string]string{
	// The Prometheus merge is the typed injector's rule on both paths.
	"status_annotations_zeroport.yaml.injected": "status port 0: no Prometheus merge towards a port pilot-agent does not serve",
}

// TestGenericMatchesIstioGoldens renders every case with Istio's stock
// templates through the generic renderer and compares with the pod Istio's
// own injector produced (images aside, as the conformance README says).
func TestGenericMatchesIstioGoldens(t *testing.T) {
	dir := injectionDir(t)
	install := defaultInstall(t, dir)
	for _, c := range injectionCases(t, dir) {
		t.Run(c.golden, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(dir, "cases", c.input))
			if err != nil {
				t.Fatal(err)
			}
			golden, err := os.ReadFile(filepath.Join(dir, "cases", c.golden))
			if err != nil {
				t.Fatal(err)
			}
			got := workloads(t, inject(t, withNative(install, c.native, true), input), true)
			want := workloads(t, golden, true)
			d := compareWorkloads(got, want)
			if why, ok := deliberate[c.golden]; ok {
				if len(d) == 0 {
					t.Errorf("%s is listed as a deliberate difference (%s) but now matches Istio: remove it from the list", c.golden, why)
				}
				return
			}
			if len(d) > 0 {
				t.Errorf("generic rendering (got) differs from Istio's golden %s (want) (%d differences):\n%s", c.golden, len(d), strings.Join(d, "\n"))
			}
		})
	}
}
