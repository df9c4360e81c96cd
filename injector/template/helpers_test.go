package template_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

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

// workloads maps "Kind name" to the normalised pod (metadata + spec) of each
// workload in a YAML stream, items of a List included. Normalising follows
// the conformance README: creationTimestamp and status dropped, quantities
// and numeric strings in one spelling, JSON-valued strings parsed, and
// (dropImages) images removed.
func workloads(t testing.TB, stream []byte, dropImages bool) map[string]any {
	t.Helper()
	out := map[string]any{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		addWorkloads(out, obj, dropImages)
	}
	return out
}

func addWorkloads(out map[string]any, obj map[string]any, dropImages bool) {
	if obj == nil {
		return
	}
	kind, _ := obj["kind"].(string)
	if kind == "List" {
		items, _ := obj["items"].([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			addWorkloads(out, m, dropImages)
		}
		return
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	var pod map[string]any
	spec, _ := obj["spec"].(map[string]any)
	switch kind {
	case "Pod":
		pod = map[string]any{"metadata": obj["metadata"], "spec": obj["spec"]}
	case "CronJob":
		jt, _ := spec["jobTemplate"].(map[string]any)
		js, _ := jt["spec"].(map[string]any)
		pod, _ = js["template"].(map[string]any)
	default:
		pod, _ = spec["template"].(map[string]any)
	}
	if pod == nil {
		return
	}
	out[kind+" "+name] = normalise(pod, "", dropImages)
}

var quantityPath = regexp.MustCompile(`\.resources\.(limits|requests)\.[^.]+$|\.divisor$`)

func normalise(v any, path string, dropImages bool) any {
	switch t := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range t {
			p := path + "." + k
			switch {
			case k == "creationTimestamp" || k == "status" && path == "":
				continue
			case k == "image" && dropImages:
				continue
			case k == "resources" && isEmptyMap(e):
				continue // `resources: {}` and no resources are one spelling
			case k == "sidecar.istio.io/status":
				if s, ok := e.(string); ok {
					var st map[string]any
					if json.Unmarshal([]byte(s), &st) == nil {
						delete(st, "version")
						m[k] = normalise(st, p, dropImages)
						continue
					}
				}
			}
			m[k] = normalise(e, p, dropImages)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = normalise(e, fmt.Sprintf("%s[%d]", path, i), dropImages)
		}
		return l
	case string:
		if quantityPath.MatchString(path) {
			if q, err := resource.ParseQuantity(t); err == nil {
				return "quantity:" + q.String()
			}
		}
		if n, err := strconv.ParseFloat(t, 64); err == nil && strings.TrimSpace(t) == t && t != "" {
			return n
		}
		if strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			var j any
			if json.Unmarshal([]byte(t), &j) == nil {
				return normalise(j, path, dropImages)
			}
		}
		return t
	case float64, int64, int:
		if quantityPath.MatchString(path) {
			q, err := resource.ParseQuantity(fmt.Sprint(t))
			if err == nil {
				return "quantity:" + q.String()
			}
		}
		f, _ := strconv.ParseFloat(fmt.Sprint(t), 64)
		return f
	}
	return v
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

// diff lists every difference between got and want as "path: got X, want Y".
func diff(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, show(got), show(want))}
		}
		keys := map[string]bool{}
		for k := range g {
			keys[k] = true
		}
		for k := range w {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			out = append(out, diff(path+"."+k, g[k], w[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, show(got), show(want))}
		}
		var out []string
		for i := 0; i < max(len(g), len(w)); i++ {
			var gi, wi any
			if i < len(g) {
				gi = g[i]
			}
			if i < len(w) {
				wi = w[i]
			}
			out = append(out, diff(fmt.Sprintf("%s[%d]%s", path, i, nameOf(wi, gi)), gi, wi)...)
		}
		return out
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || (got == nil) != (want == nil) {
		return []string{fmt.Sprintf("%s: got %s, want %s", path, show(got), show(want))}
	}
	return nil
}

func nameOf(items ...any) string {
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				return "(" + n + ")"
			}
		}
	}
	return ""
}

func show(v any) string {
	if v == nil {
		return "<absent>"
	}
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// compareWorkloads reports every difference between two injected streams,
// workload by workload.
func compareWorkloads(got, want map[string]any) []string {
	var out []string
	names := map[string]bool{}
	for k := range got {
		names[k] = true
	}
	for k := range want {
		names[k] = true
	}
	var sorted []string
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		for _, d := range diff("", got[k], want[k]) {
			out = append(out, k+": "+d)
		}
	}
	return out
}
