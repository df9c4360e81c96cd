package kubeinject

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/conformance"
)

// TestInjectedEnvBytesMatchGoldens: the conformance comparison parses env
// values holding JSON, as the conformance README allows; GitOps users diff
// meshguard's output against istioctl's byte for byte, so the sidecar's
// JSON-valued env vars (PROXY_CONFIG, ISTIO_META_POD_PORTS, …) must also be
// spelled exactly as Istio's template spells them (trailing newline of a `|`
// block, one port per line with a leading comma).
func TestInjectedEnvBytesMatchGoldens(t *testing.T) {
	dir := injectionConformanceDir(t)
	checked := 0
	for _, c := range conformance.InjectionCases(t) {
		if _, ok := conformanceExceptions[c.Golden]; ok {
			continue
		}
		t.Run(c.Golden, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(dir, "cases", c.Input))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "cases", c.Golden))
			if err != nil {
				t.Fatal(err)
			}
			res, err := InjectData(in, conformanceSnapshot(t, c.Native))
			if err != nil {
				t.Fatal(err)
			}
			got, err := jsonEnvOf(res.Output)
			if err != nil {
				t.Fatal(err)
			}
			exp, err := jsonEnvOf(want)
			if err != nil {
				t.Fatal(err)
			}
			checked += len(exp)
			for _, k := range conformance.UnionKeys(got, exp) {
				if got[k] != exp[k] {
					t.Errorf("%s: got %q, want %q", k, got[k], exp[k])
				}
			}
		})
	}
	if checked < 100 { // 2 per injected workload: a parsing slip would check nothing
		t.Errorf("only %d JSON-valued env values in the goldens were compared", checked)
	}
}

// jsonEnvOf returns the literal values of every JSON-valued env var of
// every container of every workload in stream, keyed "workload container env".
func jsonEnvOf(stream []byte) (map[string]string, error) {
	ws, err := workloadsOf(stream)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	keys := make([]string, 0, len(ws))
	for k := range ws {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec := templateSpec(ws[k].(map[string]any))
		for _, list := range []string{"initContainers", "containers"} {
			cs, _ := spec[list].([]any)
			for _, c := range cs {
				cm, _ := c.(map[string]any)
				env, _ := cm["env"].([]any)
				for _, e := range env {
					em, _ := e.(map[string]any)
					v, ok := em["value"].(string)
					if ok && looksLikeJSON(v) {
						out[fmt.Sprintf("%s %s %s", k, cm["name"], em["name"])] = v
					}
				}
			}
		}
	}
	return out, nil
}

// templateSpec is the pod spec of a Pod or of a workload's pod template.
func templateSpec(obj map[string]any) map[string]any {
	spec, _ := obj["spec"].(map[string]any)
	if strings.EqualFold(fmt.Sprint(obj["kind"]), "Pod") {
		return spec
	}
	for cur := spec; cur != nil; {
		tmpl, _ := cur["template"].(map[string]any)
		if tmpl == nil {
			// CronJob: spec.jobTemplate.spec.template
			jt, _ := cur["jobTemplate"].(map[string]any)
			if jt == nil {
				return nil
			}
			cur, _ = jt["spec"].(map[string]any)
			continue
		}
		s, _ := tmpl["spec"].(map[string]any)
		return s
	}
	return nil
}
