package kubeinject

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
)

// TestReinjectWithoutContainers: Istio's native-sidecar injection of a pod
// whose only container is istio-proxy (golden only-proxy-container) leaves
// `containers: []`, with the status annotation listing no containers. Istio
// re-injects such a pod (pkg/kube/inject webhook.go injectPod: no check on
// the containers; stripPod, then reinsertOverrides brings istio-proxy back
// from proxy.istio.io/overrides) to the same pod. Re-injecting Istio's golden,
// and meshguard's own output, must give the golden on the typed and the
// generic path; a pod without containers that was never injected is still
// denied (docs/compatibility.md, pod without containers).
func TestReinjectWithoutContainers(t *testing.T) {
	dir := istioExtraDir()
	in, err := os.ReadFile(filepath.Join(dir, "cases", "only-proxy-container.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join(dir, "cases", "only-proxy-container.yaml.injected"))
	if err != nil {
		t.Fatal(err)
	}
	if golden, err = toTemplateOf86c9f01(golden); err != nil {
		t.Fatal(err)
	}
	stock, err := config.Inputs{Values: []byte(`{"global":{"nativeSidecars":true}}`)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, generic := range []bool{false, true} {
		cfg := *stock
		tp := *stock.Templates
		tp.AlwaysGeneric = generic
		cfg.Templates = &tp
		first, err := InjectData(in, &cfg)
		if err != nil {
			t.Fatalf("generic %v: first injection: %v", generic, err)
		}
		for name, src := range map[string][]byte{"Istio's golden": golden, "meshguard's output": first.Output} {
			res, err := InjectData(src, &cfg)
			if err != nil {
				t.Errorf("generic %v: re-injecting %s: %v", generic, name, err)
				continue
			}
			if d, err := compareWorkloads(res.Output, golden); err != nil || len(d) > 0 {
				t.Errorf("generic %v: re-injecting %s differs from Istio's golden: %v %s", generic, name, err, strings.Join(d, "\n"))
			}
		}
	}

	// The status lists no containers and nothing is left to restore: still
	// injected (Istio), for each stock template and sidecar mode.
	for _, tmpl := range []string{"sidecar", "gateway", "grpc-simple"} {
		for _, native := range []bool{false, true} {
			cfg, err := config.Inputs{Values: []byte(fmt.Sprintf(`{"global":{"nativeSidecars":%v}}`, native))}.Load()
			if err != nil {
				t.Fatal(err)
			}
			doc := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {inject.istio.io/templates: %s, sidecar.istio.io/status: '{"initContainers":["istio-init"],"containers":null}'}
spec:
  containers: []
  initContainers: [{name: istio-init, image: x}]
`, tmpl)
			if _, err := InjectData([]byte(doc), cfg); err != nil {
				t.Errorf("template %s, native %v: %v", tmpl, native, err)
			}
		}
	}
	fresh := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"
	if _, err := InjectData([]byte(fresh), stock); err == nil || !strings.Contains(err.Error(), "field spec.containers: must not be empty") {
		t.Errorf("a pod without containers, never injected: error %v, want spec.containers: must not be empty", err)
	}
}
