package injector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// TestGoldenSnapshotsMatchIstioStockTemplates: TestGolden compares against
// files it writes itself (-update), so testdata/golden are regression
// snapshots of meshguard's own output, not an oracle. This test ties every
// snapshot to Istio: the same input and settings rendered by the generic
// renderer from Istio's stock injection templates (config.Inputs.Load with no
// injector config: the `config` key of istio-sidecar-injector of a default
// install at template.Istio86c9f01, hash-checked by template.StockOf) must
// give the snapshot's pod exactly. A snapshot regenerated from a typed
// injector that drifted from Istio's templates fails here.
func TestGoldenSnapshotsMatchIstioStockTemplates(t *testing.T) {
	ins, _ := filepath.Glob("testdata/golden/*.in.yaml")
	// Exact: an input dropped from testdata/golden must fail here.
	if want := 7; len(ins) != want {
		t.Fatalf("%d golden inputs, want %d: %v", len(ins), want, ins)
	}
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.yaml")
		t.Run(filepath.Base(base), func(t *testing.T) {
			pod := loadPod(t, in)
			values, _ := os.ReadFile(base + ".values.yaml") // optional, as in snapshotFor
			mesh, _ := os.ReadFile(base + ".mesh.yaml")
			stock, err := config.Inputs{Values: values, Mesh: mesh}.Load()
			if err != nil {
				t.Fatal(err)
			}
			if len(stock.Templates.Stock) == 0 {
				t.Fatal("no Istio stock template loaded")
			}
			for name, v := range stock.Templates.Stock {
				if v != template.Istio86c9f01 {
					t.Fatalf("template %s is %s, not Istio's stock %s", name, v, template.Istio86c9f01)
				}
			}
			res, err := Inject(pod.DeepCopy(), pod.Namespace, forceGeneric(stock), Options{})
			if err != nil {
				t.Fatal(err)
			}
			generic := applyPatch(t, pod, res)
			snapshot := loadPod(t, base+".golden.yaml")
			if d := jsonDiff("", podJSON(snapshot), podJSON(generic)); len(d) > 0 {
				t.Errorf("%s.golden.yaml (got) differs from Istio's stock templates rendered generically (want):\n%s", base, strings.Join(d, "\n"))
			}
		})
	}
}
