package cluster

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/validation"
)

// The embedded CRDs must be the ones of the module versions go.mod pins;
// `hack/sync-crds.sh` refreshes them after a version bump.
func TestCRDsMatchModules(t *testing.T) {
	moduleDir := func(t *testing.T, module string) string {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
		if err != nil {
			t.Fatalf("locate module %s: %v", module, err)
		}
		return strings.TrimSpace(string(out))
	}
	t.Run("istio", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(moduleDir(t, "istio.io/api"), "kubernetes", "customresourcedefinitions.gen.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(validation.IstioCRDs(), want) {
			t.Error("validation/istio-crds.gen.yaml differs from the pinned istio.io/api: run go generate ./validation")
		}
	})
	cases := map[string]struct{ module, dir, embedded string }{
		"cert-manager": {"github.com/cert-manager/cert-manager", "deploy/crds", "crds/cert-manager"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			moduleDir := filepath.Join(moduleDir(t, tc.module), tc.dir)
			entries, err := crdFiles.ReadDir(tc.embedded)
			if err != nil || len(entries) == 0 {
				t.Fatalf("no embedded CRDs in %s: %v", tc.embedded, err)
			}
			for _, e := range entries {
				want, err := os.ReadFile(filepath.Join(moduleDir, e.Name()))
				if err != nil {
					t.Fatalf("%s is not in %s: %v", e.Name(), moduleDir, err)
				}
				got, _ := crdFiles.ReadFile(tc.embedded + "/" + e.Name())
				if !bytes.Equal(got, want) {
					t.Errorf("%s/%s differs from %s: run hack/sync-crds.sh", tc.embedded, e.Name(), moduleDir)
				}
			}
		})
	}
}

func TestCRDsDecode(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"virtualservices.networking.istio.io":     false,
		"authorizationpolicies.security.istio.io": false,
		"telemetries.telemetry.istio.io":          false,
		"wasmplugins.extensions.istio.io":         false,
		"certificates.cert-manager.io":            false,
		"issuers.cert-manager.io":                 false,
	}
	for _, crd := range crds {
		if _, ok := want[crd.Name]; ok {
			want[crd.Name] = true
		}
	}
	for name, found := range want {
		if !found {
			t.Errorf("CRD %s not embedded", name)
		}
	}
}

// The PolicyReport CRD the harness installs is the one the chart ships
// (hack/sync-crds.sh copies both from Kyverno's module), and it serves
// wgpolicyk8s.io/v1alpha2 PolicyReport, the version meshguard's audit writes.
func TestPolicyReportCRDSameInChart(t *testing.T) {
	const file = "wgpolicyk8s.io_policyreports.yaml"
	embedded, err := crdFiles.ReadFile("crds/policyreport/" + file)
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chart, err := os.ReadFile(filepath.Join(root, "deploy", "helm", "meshguard", "crds", file))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(embedded, chart) {
		t.Errorf("test/cluster/crds/policyreport/%s differs from the chart's: run hack/sync-crds.sh", file)
	}
	crds, err := decodeCRDs(file, embedded)
	if err != nil || len(crds) != 1 {
		t.Fatalf("decode: %v (%d CRDs)", err, len(crds))
	}
	served := false
	for _, v := range crds[0].Spec.Versions {
		served = served || (v.Name == "v1alpha2" && v.Served)
	}
	if crds[0].Spec.Group != "wgpolicyk8s.io" || crds[0].Spec.Names.Kind != "PolicyReport" || !served {
		t.Errorf("not the wgpolicyk8s.io/v1alpha2 PolicyReport CRD: %s %s", crds[0].Spec.Group, crds[0].Spec.Names.Kind)
	}
}
