package kubeinject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/conformance"

	"k8s.io/apimachinery/pkg/api/resource"
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

// compareWorkloads parses two multi-document YAML streams (v1 Lists
// expanded), normalises every workload as the conformance README says and
// returns every difference as "workload: field: got X, want Y".
func compareWorkloads(got, want []byte) ([]string, error) {
	g, err := workloadsOf(got)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	w, err := workloadsOf(want)
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	var diffs []string
	for _, k := range unionKeys(g, w) {
		gv, gok := g[k]
		wv, wok := w[k]
		switch {
		case !gok:
			diffs = append(diffs, k+": missing from the output")
		case !wok:
			diffs = append(diffs, k+": not in the golden")
		default:
			diffValues(k, "", normalise("", gv), normalise("", wv), &diffs)
		}
	}
	return diffs, nil
}

func workloadsOf(stream []byte) (map[string]any, error) {
	out := map[string]any{}
	for i, doc := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil {
			continue
		}
		if err := addWorkload(out, obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return out, nil
}

func addWorkload(out map[string]any, obj map[string]any) error {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("%s item is not an object", kind)
			}
			if err := addWorkload(out, m); err != nil {
				return err
			}
		}
		return nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	key := kind + "/" + name
	if _, dup := out[key]; dup {
		return fmt.Errorf("workload %s appears twice", key)
	}
	out[key] = obj
	return nil
}

// normalise applies the README's rules to a value found at path (a dotted
// field path): images, creationTimestamp and status are ignored; scalar
// spellings ("8080" vs 8080) and quantity spellings (1000m vs 1) are equal;
// env values holding JSON are compared parsed; the sidecar.istio.io/status
// annotation is compared as JSON without "version"; nulls and empty lists
// equal absence; an empty object equals absence only for a struct-valued
// field (structValued), elsewhere it is a value (`emptyDir: {}`).
func normalise(path string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "image", "creationTimestamp":
				continue
			case "status":
				if path == "" { // the object's status, not a field named status elsewhere
					continue
				}
			}
			p := joinPath(path, k)
			if s, ok := val.(string); ok {
				switch {
				case k == "sidecar.istio.io/status" && strings.HasSuffix(path, "annotations"):
					val = parsedJSON(s, "version")
				case k == "value" && looksLikeJSON(s):
					val = parsedJSON(s, "")
				case isQuantityField(path, k):
					if q, err := resource.ParseQuantity(s); err == nil {
						val = q.String()
					}
				}
			} else if f, ok := val.(float64); ok && isQuantityField(path, k) {
				val = resource.NewMilliQuantity(int64(f*1000), resource.DecimalSI).String()
			}
			if val == nil {
				continue // null is absence
			}
			n := normalise(p, val)
			if isEmptyValue(n) && (!isEmptyObject(val) || structValued[k]) {
				continue
			}
			out[k] = n
		}
		return out
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, normalise(path+"[]", e))
		}
		return out
	case nil:
		return nil
	default:
		return fmt.Sprint(x) // "8080" and 8080, true and "true" are the same spelling
	}
}

// structValued are the fields whose Go type in the Kubernetes API is a
// struct, not a pointer (Container.Resources, DeploymentSpec.Strategy,
// DaemonSet/StatefulSet updateStrategy, the OpenShift strategy's resources):
// they cannot be absent, `{}` is how an empty one is written, so `{}` and
// absence are one spelling there.
var structValued = map[string]bool{"resources": true, "strategy": true, "updateStrategy": true}

// isEmptyObject: elsewhere `{}` is a value, not absence (`emptyDir: {}` is a
// volume source; a volume without one is not the same object).
func isEmptyObject(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func isQuantityField(path, key string) bool {
	return key == "divisor" || strings.HasSuffix(path, ".limits") || strings.HasSuffix(path, ".requests") ||
		path == "limits" || path == "requests"
}

func looksLikeJSON(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")
}

// parsedJSON parses s (dropping field drop of a top-level object); a value
// that is not JSON stays a string.
func parsedJSON(s, drop string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	if m, ok := v.(map[string]any); ok && drop != "" {
		delete(m, drop)
	}
	return v
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// diffValues appends one line per difference. Lists of named objects
// (containers, env, volumes, ports, mounts) are compared by name, and their
// order separately; other lists by position.
func diffValues(workload, path string, got, want any, diffs *[]string) {
	add := func(field string, g, w any) {
		*diffs = append(*diffs, fmt.Sprintf("%s: %s: got %s, want %s", workload, field, show(g), show(w)))
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			add(path, got, want)
			return
		}
		for _, k := range unionKeys(g, w) {
			diffValues(workload, joinPath(path, k), g[k], w[k], diffs)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			add(path, got, want)
			return
		}
		gn, gNamed := names(g)
		wn, wNamed := names(w)
		if gNamed && wNamed {
			if strings.Join(gn, ",") != strings.Join(wn, ",") {
				add(path+" (names in order)", gn, wn)
			}
			gm, wm := byName(g), byName(w)
			for _, n := range wn {
				diffValues(workload, fmt.Sprintf("%s[%s]", path, n), gm[n], wm[n], diffs)
			}
			for _, n := range gn {
				if _, ok := wm[n]; !ok {
					add(fmt.Sprintf("%s[%s]", path, n), gm[n], nil)
				}
			}
			return
		}
		if len(g) != len(w) {
			add(path, got, want)
			return
		}
		for i := range w {
			diffValues(workload, fmt.Sprintf("%s[%d]", path, i), g[i], w[i], diffs)
		}
	default:
		if fmt.Sprint(got) != fmt.Sprint(want) || (got == nil) != (want == nil) {
			add(path, got, want)
		}
	}
}

// names returns the "name" of every element when all are objects with a
// distinct name.
func names(l []any) ([]string, bool) {
	out := make([]string, 0, len(l))
	seen := map[string]bool{}
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || seen[n] {
			return nil, false
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, len(out) > 0
}

func byName(l []any) map[string]any {
	out := make(map[string]any, len(l))
	for _, e := range l {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func show(v any) string {
	if v == nil {
		return "<absent>"
	}
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// TestCompareWorkloads shows the comparer ignores what the README says does
// not matter and catches what does.
func TestCompareWorkloads(t *testing.T) {
	base := `apiVersion: v1
kind: Pod
metadata:
  name: p
  creationTimestamp: null
  annotations:
    sidecar.istio.io/status: '{"version":"abc","containers":["istio-proxy"]}'
spec:
  containers:
  - name: app
    image: a:1
    ports:
    - containerPort: 8080
    resources: {}
  - name: istio-proxy
    image: proxy:1
    env:
    - name: J
      value: '{"a":1,"b":2}'
    resources:
      limits:
        cpu: "1"
  volumes:
  - name: v
    emptyDir: {}
status: {}
`
	tests := []struct {
		name      string
		got       string
		wantDiffs []string // substrings, one per expected difference
	}{
		{"identical", base, nil},
		{"ignored: image, status, version, spellings, key order, empty objects", `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    sidecar.istio.io/status: '{"containers":["istio-proxy"],"version":"zzz"}'
spec:
  containers:
  - name: app
    image: other
    ports:
    - containerPort: "8080"
  - name: istio-proxy
    env:
    - name: J
      value: '{"b":2, "a":1}'
    resources:
      limits:
        cpu: 1000m
  volumes:
  - name: v
    emptyDir: {}
`, nil},
		{"env value differs", strings.Replace(base, `'{"a":1,"b":2}'`, `'{"a":1,"b":3}'`, 1),
			[]string{`Pod/p: spec.containers[istio-proxy].env[J].value.b: got "3", want "2"`}},
		{"container order differs", strings.Replace(strings.Replace(base, "- name: app", "- name: tmp", 1), "- name: istio-proxy", "- name: app", 1),
			[]string{"names in order"}},
		{"extra env var", strings.Replace(base, "    - name: J\n", "    - name: X\n      value: x\n    - name: J\n", 1),
			[]string{"env (names in order)", `env[X]`}},
		{"status annotation differs", strings.Replace(base, `"containers":["istio-proxy"]`, `"containers":["x"]`, 1),
			[]string{`sidecar.istio.io/status.containers[0]: got "x", want "istio-proxy"`}},
		{"emptyDir {} is not a volume without a source", strings.Replace(base, "    emptyDir: {}\n", "", 1),
			[]string{"spec.volumes[v].emptyDir: got <absent>, want {}"}},
		{"workload missing", strings.Replace(base, "name: p\n", "name: q\n", 1),
			[]string{"Pod/p: missing from the output", "Pod/q: not in the golden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diffs, err := compareWorkloads([]byte(tt.got), []byte(base))
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(diffs, "\n")
			if len(tt.wantDiffs) == 0 && len(diffs) > 0 {
				t.Fatalf("want no difference, got:\n%s", all)
			}
			if len(tt.wantDiffs) > 0 && len(diffs) == 0 {
				t.Fatal("comparer found no difference")
			}
			for _, w := range tt.wantDiffs {
				if !strings.Contains(all, w) {
					t.Errorf("differences do not mention %q:\n%s", w, all)
				}
			}
		})
	}
}

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

// unionKeys is the sorted union of the keys of got and want.
func unionKeys[V any](got, want map[string]V) []string {
	keys := make([]string, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
