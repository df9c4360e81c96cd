package kubeinject

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/conformance"

	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
)

// The injection conformance test runs Istio's own injector goldens (55 cases of
// Istio's pkg/kube/inject TestInjection at Istio's default settings, kept in
// <repo>/../shared/conformance/injection) through the code path of
// `meshguard inject -f` and compares the result semantically per workload.
// The goldens are Istio's output, not ours: this is the oracle.

// conformanceException is one deliberate difference from Istio (each also
// listed in docs/compatibility.md): the differences of workload whose field
// starts with fieldPrefix are accepted, nothing else in the case is.
type conformanceException struct {
	workload, fieldPrefix, reason string
}

// staleClassicProxy is why merge-probers (testdata/istio-extra) differs: a
// classic sidecar re-injected as a native one.
const staleClassicProxy = "re-injecting a classic sidecar as a native one: Istio's webhook.go reapplyOverwrittenContainers " +
	"only skips containers the old sidecar.istio.io/status lists in the same list, so the old istio-proxy " +
	"(status: containers) is re-applied as a user override over the new native one and its stale fields " +
	"survive (old args, env, probe timings; ISTIO_META_APP_CONTAINERS/POD_PORTS without the containers " +
	"added since; after an upgrade even the old image); meshguard re-renders the proxy from the current template"

// conformanceExceptions, keyed by golden file. proxy-override and the two
// cronjob cases are left out of cases.tsv altogether (see the corpus README).
var conformanceExceptions = map[string][]conformanceException{
	"merge-probers.yaml.injected": func() []conformanceException {
		var out []conformanceException
		for _, f := range []string{"args", "env (names in order)", "env[JWT_POLICY]", "env[ISTIO_META_POD_PORTS]",
			"env[ISTIO_META_APP_CONTAINERS]", "lifecycle.postStart", "readinessProbe."} {
			out = append(out, conformanceException{workload: "Deployment/hello",
				fieldPrefix: "spec.template.spec.initContainers[istio-proxy]." + f, reason: staleClassicProxy})
		}
		return out
	}(),
	"status_annotations_zeroport.yaml.injected": {{
		workload: "Deployment/statusPort", fieldPrefix: "spec.template.metadata.annotations.prometheus.io/",
		reason: "status.sidecar.istio.io/port \"0\" disables pilot-agent's status server, so nothing would serve the " +
			"merged :15020/stats/prometheus Istio points Prometheus at; meshguard keeps the app's own scrape annotations",
	}},
}

// withoutExceptions drops the differences an exception accepts and reports
// exceptions that no longer match anything (they must then be removed).
func withoutExceptions(diffs []string, exceptions []conformanceException) (kept, stale []string) {
	used := make([]bool, len(exceptions))
	for _, d := range diffs {
		accepted := false
		for i, e := range exceptions {
			if strings.HasPrefix(d, e.workload+": "+e.fieldPrefix) {
				used[i], accepted = true, true
			}
		}
		if !accepted {
			kept = append(kept, d)
		}
	}
	for i, e := range exceptions {
		if !used[i] {
			stale = append(stale, fmt.Sprintf("%s %s* (%s)", e.workload, e.fieldPrefix, e.reason))
		}
	}
	return kept, stale
}

// injectionConformanceDir is Istio's injection test data (test/conformance).
func injectionConformanceDir(t *testing.T) string { return conformance.Dir(t, "injection") }

// conformanceSnapshot is Istio's default settings with native sidecars set
// explicitly (offline there is no kubelet version to decide from).
func conformanceSnapshot(t *testing.T, native bool) *config.Snapshot {
	t.Helper()
	s, err := config.Load(nil, []byte(fmt.Sprintf(`{"global":{"nativeSidecars":%t}}`, native)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// installSnapshot loads the three inputs of a default Istio install
// (istio-default-install/{config,values,mesh}) through the code path of
// `meshguard inject --injectConfigFile --valuesFile --meshConfigFile`, with
// native sidecars set explicitly. asConfigMaps wraps each as its ConfigMap.
func installSnapshot(t *testing.T, native, asConfigMaps bool) *config.Snapshot {
	t.Helper()
	cfg, values, mesh := conformance.IstioInstall(t)
	vb := conformance.EditGlobalValues(t, values, func(g map[string]any) { g["nativeSidecars"] = native })
	if asConfigMaps {
		cfg = configMapYAML(t, "istio-sidecar-injector", map[string]string{"config": string(cfg)})
		vb = configMapYAML(t, "istio-sidecar-injector", map[string]string{"values": string(vb)})
		mesh = configMapYAML(t, "istio", map[string]string{"mesh": string(mesh)})
	}
	s, err := config.Inputs{Config: cfg, Values: vb, Mesh: mesh}.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func configMapYAML(t *testing.T, name string, data map[string]string) []byte {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "istio-system"}, "data": data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInjectionConformance runs the goldens with Istio's defaults, with the
// default install's three input files, and with the same inputs as whole
// ConfigMaps: all must give Istio's pods.
func TestInjectionConformance(t *testing.T) {
	dir := injectionConformanceDir(t)
	for _, mode := range []struct {
		name  string
		snaps func(native bool) *config.Snapshot
	}{
		{"defaults", func(native bool) *config.Snapshot { return conformanceSnapshot(t, native) }},
		{"install-files", func(native bool) *config.Snapshot { return installSnapshot(t, native, false) }},
		{"install-configmaps", func(native bool) *config.Snapshot { return installSnapshot(t, native, true) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			runConformance(t, dir, map[bool]*config.Snapshot{true: mode.snaps(true), false: mode.snaps(false)})
		})
	}
}

// conformanceCaseCount is the number of cases ../shared's README promises:
// a shortened cases.tsv must fail, not quietly test less.
const conformanceCaseCount = 55

func runConformance(t *testing.T, dir string, snaps map[bool]*config.Snapshot) {
	cases := conformance.InjectionCases(t)
	if len(cases) != conformanceCaseCount {
		t.Fatalf("cases.tsv lists %d cases, want all %d of Istio's default-settings goldens", len(cases), conformanceCaseCount)
	}
	passed, failed := 0, 0
	for _, c := range cases {
		t.Run(c.Golden, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(dir, "cases", c.Input))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "cases", c.Golden))
			if err != nil {
				t.Fatal(err)
			}
			var diffs []string
			res, err := InjectData(in, snaps[c.Native])
			if err != nil {
				diffs = []string{fmt.Sprintf("inject failed: %v", err)}
			} else {
				diffs, err = compareWorkloads(res.Output, want)
				if err != nil {
					t.Fatal(err)
				}
			}
			if !matchesGolden(t, c.Golden, c.Native, diffs) {
				failed++
				return
			}
			passed++
		})
	}
	t.Logf("injection conformance: %d/%d cases match Istio (%d deliberate exceptions)", passed, len(cases), len(conformanceExceptions))
}

// matchesGolden reports diffs from Istio's golden, less the golden's listed
// deliberate differences (a listed difference that no longer occurs is an
// error too), and says whether none is left.
func matchesGolden(t *testing.T, golden string, native bool, diffs []string) bool {
	t.Helper()
	if ex, ok := conformanceExceptions[golden]; ok {
		var stale []string
		diffs, stale = withoutExceptions(diffs, ex)
		for _, s := range stale {
			t.Errorf("deliberate difference %s no longer occurs: remove the exception", s)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d differences from Istio's golden (native sidecars %v):\n%s", len(diffs), native, strings.Join(diffs, "\n"))
		return false
	}
	return true
}

// compareWorkloads compares an injected stream with Istio's golden by the
// conformance README's rules (test/conformance CompareStreams), images
// aside.
func compareWorkloads(got, want []byte) ([]string, error) {
	return conformance.CompareStreams(got, want, conformance.CompareOptions{})
}

// workloadsOf is test/conformance's Workloads (envbytes_test.go).
func workloadsOf(stream []byte) (map[string]any, error) { return conformance.Workloads(stream) }

// looksLikeJSON is test/conformance's LooksLikeJSON (envbytes_test.go).
func looksLikeJSON(s string) bool { return conformance.LooksLikeJSON(s) }

// TestEditedSidecarTemplateRendered: a customised sidecar template is
// honoured, never silently replaced by the built-in one: the pod differs
// from Istio's golden for the stock template by exactly the edit (one more
// env var on istio-proxy), in the config key and in
// values.sidecarInjectorWebhook.templates alike.
func TestEditedSidecarTemplateRendered(t *testing.T) {
	dir := injectionConformanceDir(t)
	cfg, err := os.ReadFile(filepath.Join(dir, "istio-default-install", "config"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	tpl := c["templates"].(map[string]any)
	sidecar := tpl["sidecar"].(string)
	const anchor = "    - name: PILOT_CERT_PROVIDER\n"
	if strings.Count(sidecar, anchor) != 1 {
		t.Fatalf("the stock sidecar template has %d %q lines, want 1", strings.Count(sidecar, anchor), anchor)
	}
	edited := strings.Replace(sidecar, anchor, "    - name: EDITED_BY_USER\n      value: \"yes\"\n"+anchor, 1)
	in, err := os.ReadFile(filepath.Join(dir, "cases", "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "cases", "hello.yaml.injected"))
	if err != nil {
		t.Fatal(err)
	}
	// Templates see the values as given (as in Istio): the install's values,
	// with native sidecars set as the golden has them.
	var native map[string]any
	valuesData, err := os.ReadFile(filepath.Join(dir, "istio-default-install", "values"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(valuesData, &native); err != nil {
		t.Fatal(err)
	}
	native["global"].(map[string]any)["nativeSidecars"] = true
	tpl["sidecar"] = edited
	editedCfg, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	nativeValues, err := json.Marshal(native)
	if err != nil {
		t.Fatal(err)
	}
	native["sidecarInjectorWebhook"].(map[string]any)["templates"] = map[string]any{"sidecar": edited}
	editedValues, err := json.Marshal(native)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		cfg, values []byte
	}{
		{"config.templates", editedCfg, nativeValues},
		{"values.sidecarInjectorWebhook.templates", cfg, editedValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := config.Inputs{Config: tc.cfg, Values: tc.values}.Load()
			if err != nil {
				t.Fatal(err)
			}
			res, err := InjectData(in, s)
			if err != nil {
				t.Fatal(err)
			}
			diffs, err := compareWorkloads(res.Output, want)
			if err != nil {
				t.Fatal(err)
			}
			// The comparer reports an added env var twice: in the env
			// names' order and as the var itself.
			onlyEdit := len(diffs) > 0
			for _, d := range diffs {
				onlyEdit = onlyEdit && strings.Contains(d, "EDITED_BY_USER")
			}
			if !onlyEdit {
				t.Fatalf("want exactly the edit (env EDITED_BY_USER) as the difference from the stock golden, got %d:\n%s",
					len(diffs), strings.Join(diffs, "\n"))
			}
		})
	}
}
