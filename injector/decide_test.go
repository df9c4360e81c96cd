package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

func TestDecide(t *testing.T) {
	withSelectors, err := config.Load(nil, []byte(`
sidecarInjectorWebhook:
  neverInjectSelector:
  - matchLabels: {batch: "true"}
  - {}
  alwaysInjectSelector:
  - matchExpressions:
    - {key: mesh, operator: In, values: ["yes"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	disabled, err := config.Load(nil, []byte(`{"global":{"proxy":{"autoInject":"disabled"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	// Istio's injectRequired skips an empty selector ({}) in both lists
	// (`!selector.Empty() && selector.Matches`), so it never forces injection.
	disabledSelectors, err := config.Load(nil, []byte(`
global: {proxy: {autoInject: disabled}}
sidecarInjectorWebhook:
  alwaysInjectSelector:
  - {}
  - matchExpressions:
    - {key: mesh, operator: In, values: ["yes"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default()
	cases := []struct {
		name        string
		ns          string
		labels      map[string]string
		annos       map[string]string
		hostNetwork bool
		cfg         *config.Snapshot
		inject      bool
		reason      string
		warn        bool
	}{
		{name: "default policy", ns: "app", cfg: def, inject: true, reason: ReasonPolicyEnabled},
		{name: "hostNetwork beats opt-in", ns: "app", hostNetwork: true, labels: map[string]string{AnnotationInject: "true"}, cfg: def, reason: ReasonHostNetwork},
		{name: "kube-system", ns: "kube-system", labels: map[string]string{AnnotationInject: "true"}, cfg: def, reason: ReasonIgnoredNamespace},
		{name: "local-path-storage", ns: "local-path-storage", cfg: def, reason: ReasonIgnoredNamespace},
		// Istio's IgnoredNamespaces: kube-system, kube-public, kube-node-lease, local-path-storage.
		{name: "kube-public", ns: "kube-public", labels: map[string]string{AnnotationInject: "true"}, cfg: def, reason: ReasonIgnoredNamespace},
		{name: "kube-node-lease", ns: "kube-node-lease", cfg: def, reason: ReasonIgnoredNamespace},
		{name: "istio-system not special", ns: "istio-system", cfg: def, inject: true, reason: ReasonPolicyEnabled},
		{name: "label false", ns: "app", labels: map[string]string{AnnotationInject: "false"}, cfg: def, reason: ReasonOptOut},
		{name: "annotation false", ns: "app", annos: map[string]string{AnnotationInject: "false"}, cfg: def, reason: ReasonOptOut},
		{name: "label wins over annotation", ns: "app", labels: map[string]string{AnnotationInject: "true"}, annos: map[string]string{AnnotationInject: "false"}, cfg: disabled, inject: true, reason: ReasonOptIn},
		// Istio's injectRequired compares exactly: TRUE and False are neither, so the default policy decides.
		{name: "label TRUE is not true", ns: "app", labels: map[string]string{AnnotationInject: "TRUE"}, cfg: disabled, reason: ReasonPolicyDisabled, warn: true},
		{name: "label False is not false", ns: "app", labels: map[string]string{AnnotationInject: "False"}, cfg: def, inject: true, reason: ReasonPolicyEnabled, warn: true},
		{name: "invalid value warns and uses default", ns: "app", annos: map[string]string{AnnotationInject: "maybe"}, cfg: disabled, reason: ReasonPolicyDisabled, warn: true},
		{name: "never selector", ns: "app", labels: map[string]string{"batch": "true", "mesh": "yes"}, cfg: withSelectors, reason: ReasonNeverInject},
		{name: "opt-in beats never selector", ns: "app", labels: map[string]string{"batch": "true", AnnotationInject: "true"}, cfg: withSelectors, inject: true, reason: ReasonOptIn},
		{name: "always selector", ns: "app", labels: map[string]string{"mesh": "yes"}, cfg: withSelectors, inject: true, reason: ReasonAlwaysInject},
		{name: "always selector under disabled policy", ns: "app", labels: map[string]string{"mesh": "yes"}, cfg: disabledSelectors, inject: true, reason: ReasonAlwaysInject},
		{name: "empty always selector matches nothing", ns: "app", labels: map[string]string{"app": "x"}, cfg: disabledSelectors, reason: ReasonPolicyDisabled},
		{name: "policy disabled", ns: "app", cfg: disabled, reason: ReasonPolicyDisabled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: tc.labels, Annotations: tc.annos}}
			pod.Spec.HostNetwork = tc.hostNetwork
			d := Decide(pod, tc.ns, tc.cfg)
			if d.Inject != tc.inject || d.Reason != tc.reason || (len(d.Warnings) > 0) != tc.warn {
				t.Fatalf("got %+v, want inject=%v reason=%s warn=%v", d, tc.inject, tc.reason, tc.warn)
			}
		})
	}
}

func TestInferOwner(t *testing.T) {
	ctrl := true
	ref := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, Controller: &ctrl}}
	}
	cases := []struct {
		name string
		pod  metav1.ObjectMeta
		want Owner
	}{
		{"bare pod", metav1.ObjectMeta{Name: "p"}, Owner{"p", "ns", "Pod", "v1"}},
		{"deployment", metav1.ObjectMeta{Name: "web-5f-x", Labels: map[string]string{"pod-template-hash": "5f"}, OwnerReferences: ref("ReplicaSet", "web-5f")}, Owner{"web", "ns", "Deployment", "apps/v1"}},
		{"replicaset without hash", metav1.ObjectMeta{Name: "rs-x", OwnerReferences: ref("ReplicaSet", "rs")}, Owner{"rs", "ns", "ReplicaSet", "apps/v1"}},
		{"cronjob", metav1.ObjectMeta{Name: "j", OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "backup-28461234", Controller: &ctrl}}}, Owner{"backup", "ns", "CronJob", "batch/v1"}},
		{"plain job", metav1.ObjectMeta{Name: "j", OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "once", Controller: &ctrl}}}, Owner{"once", "ns", "Job", "batch/v1"}},
		{"statefulset", metav1.ObjectMeta{Name: "db-0", OwnerReferences: ref("StatefulSet", "db")}, Owner{"db", "ns", "StatefulSet", "apps/v1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := InferOwner(&corev1.Pod{ObjectMeta: tc.pod}, "ns"); got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
		})
	}
}
