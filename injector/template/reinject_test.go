package template_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector"
)

// TestGenericReinjectionIsStable: injecting an already injected pod again
// (a webhook reinvocation) with the same config gives the same pod, with
// the probes and the Prometheus merge of the first injection kept (Istio
// stripPod, mergeOrAppendProbers). (A pod's own istio-proxy customisation is
// not re-applied on re-injection by Istio's reapplyOverwrittenContainers,
// which skips containers the status annotation lists: not checked here.)
func TestGenericReinjectionIsStable(t *testing.T) {
	dir := injectionDir(t)
	install := defaultInstall(t, dir)
	for _, native := range []bool{false, true} {
		cfg := withNative(install, native, true)
		for _, name := range []string{"hello-probes.yaml", "prometheus-scrape2.yaml", "user-volume.yaml", "multi-init.yaml", "resource_annotations.yaml"} {
			t.Run(fmt.Sprintf("%s/native=%v", name, native), func(t *testing.T) {
				raw, err := os.ReadFile(filepath.Join(dir, "cases", name))
				if err != nil {
					t.Fatal(err)
				}
				var d struct {
					Kind     string         `json:"kind"`
					Metadata map[string]any `json:"metadata"`
					Spec     struct {
						Template corev1.PodTemplateSpec `json:"template"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal(raw, &d); err != nil {
					t.Fatal(err)
				}
				pod := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
				if d.Kind == "Pod" {
					if err := yaml.Unmarshal(raw, pod); err != nil {
						t.Fatal(err)
					}
				}
				pod.Namespace = "default"
				first, err := injector.InjectGeneric(pod, "default", cfg, injector.Options{})
				if err != nil {
					t.Fatal(err)
				}
				second, err := injector.InjectGeneric(first.Pod, "default", cfg, injector.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if len(second.Patch) != 0 {
					var ops []string
					for _, op := range second.Patch {
						ops = append(ops, op.Operation+" "+op.Path)
					}
					t.Errorf("re-injection patch is not empty: %s", strings.Join(ops, "; "))
				}
			})
		}
	}
}
