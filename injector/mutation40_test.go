package injector

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// TestMutation40NotInjectedStayInPlace: regular containers a pod names
// istio-init or istio-validation that the templates do not inject (mode NONE:
// neither) stay the pod's own, each where it stood. Istio's reapplyOverwrittenContainers
// (pkg/kube/inject/webhook.go) takes only names its templates inject, and its
// reorderPod moves istio-init/istio-validation only among init containers.
func TestMutation40NotInjectedStayInPlace(t *testing.T) {
	pod := istioTablePod("p", corev1.Container{Name: InitContainerName}, corev1.Container{Name: "app"},
		corev1.Container{Name: ValidationContainerName}, corev1.Container{Name: "other"})
	pod.Annotations = map[string]string{AnnotationInterceptionMode: "NONE"}
	want := []string{InitContainerName, "app", ValidationContainerName, "other", ProxyContainerName}
	native := false
	for path, run := range typedAndGeneric {
		cfg, err := config.Inputs{}.Load()
		if err != nil {
			t.Fatal(err)
		}
		res, err := run(pod.DeepCopy(), "app", cfg, Options{NativeSidecars: &native})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := containerNames(res.Pod.Spec.Containers); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: containers %v, want %v", path, got, want)
		}
		if len(res.Pod.Spec.InitContainers) != 0 {
			t.Errorf("%s: init containers %v, want none in mode NONE", path, res.Pod.Spec.InitContainers)
		}
	}
}

// TestMutation40RecordedNotInjectedDropped: an override recorded in
// proxy.istio.io/overrides by an earlier injection whose container these
// settings do not inject (istio-init in mode NONE) is not put into the pod:
// Istio's reapplyOverwrittenContainers (pkg/kube/inject/webhook.go) applies
// recorded overrides only to the containers its templates inject.
func TestMutation40RecordedNotInjectedDropped(t *testing.T) {
	pod := istioTablePod("p", corev1.Container{Name: "app"})
	pod.Annotations = map[string]string{AnnotationInterceptionMode: "NONE",
		AnnotationStatus:    `{"initContainers":["istio-init"],"containers":["istio-proxy"]}`,
		AnnotationOverrides: `{"initContainers":[{"name":"istio-init","image":"example.com/own-init:1"}]}`}
	native := false
	cfg, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	res, err := inject(pod, "app", cfg, Options{NativeSidecars: &native})
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range [][]corev1.Container{res.Pod.Spec.Containers, res.Pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == InitContainerName {
				t.Errorf("recorded istio-init put into the pod: %+v", c)
			}
		}
	}
}
