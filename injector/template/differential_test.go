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
	for _, c := range injectionCases(t) {
		t.Run(c.golden, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(dir, "cases", c.input))
			if err != nil {
				t.Fatal(err)
			}
			typedOut := inject(t, withNative(install, c.native, false), input)
			genericOut := inject(t, withNative(install, c.native, true), input)
			typed, generic := workloads(t, typedOut, false), workloads(t, genericOut, false)
			if len(typed.objs) == 0 && string(typedOut) != string(genericOut) {
				t.Errorf("no workload in %s, yet the outputs differ:\n--- generic\n%s\n--- typed\n%s", c.input, genericOut, typedOut)
			}
			if d := compareWorkloads(generic, typed); len(d) > 0 {
				t.Errorf("generic (got) and typed (want) differ on %s (%d differences):\n%s", c.input, len(d), strings.Join(d, "\n"))
			}
		})
	}
}

// deliberate are the differences from Istio's goldens the generic path
// makes on purpose, because it applies meshguard's rules where they differ
// from Istio's (docs/compatibility.md), keyed by golden. Only the listed
// fields are accepted: any other difference in the same golden still fails,
// and a listed difference that no longer occurs fails too.
var deliberate = map[string]deliberateDiff{
	// The Prometheus merge is the typed injector's rule on both paths.
	"status_annotations_zeroport.yaml.injected": {
		workload:    "Deployment/statusPort",
		fieldPrefix: "spec.template.metadata.annotations.prometheus.io/",
		reason:      "status port 0: no Prometheus merge towards a port pilot-agent does not serve",
	},
}

// deliberateDiff accepts the differences of one workload whose field path
// starts with fieldPrefix (compareWorkloads' "workload: field: ..." lines).
type deliberateDiff struct {
	workload, fieldPrefix, reason string
}

// without drops the differences dd accepts and says whether it accepted any.
func (dd deliberateDiff) without(diffs []string) (kept []string, used bool) {
	for _, d := range diffs {
		if strings.HasPrefix(d, dd.workload+": "+dd.fieldPrefix) {
			used = true
			continue
		}
		kept = append(kept, d)
	}
	return kept, used
}

// TestGenericMatchesIstioGoldens renders every case with Istio's stock
// templates through the generic renderer and compares with the pod Istio's
// own injector produced (images aside, as the conformance README says).
func TestGenericMatchesIstioGoldens(t *testing.T) {
	dir := injectionDir(t)
	install := defaultInstall(t, dir)
	for _, c := range injectionCases(t) {
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
			if dd, ok := deliberate[c.golden]; ok {
				var used bool
				if d, used = dd.without(d); !used {
					t.Errorf("deliberate difference %s %s* (%s) no longer occurs in %s: remove it from the list", dd.workload, dd.fieldPrefix, dd.reason, c.golden)
				}
			}
			if len(d) > 0 {
				t.Errorf("generic rendering (got) differs from Istio's golden %s (want) (%d differences):\n%s", c.golden, len(d), strings.Join(d, "\n"))
			}
		})
	}
}
