package kubeinject

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
)

// proxyEnv returns the istio-proxy env of the first injected workload in out
// (a generic walk, so it serves every kind including List items).
func proxyEnv(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(out, &obj); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["name"] == "istio-proxy" {
				for _, e := range x["env"].([]any) {
					m := e.(map[string]any)
					if s, ok := m["value"].(string); ok {
						env[m["name"].(string)] = s
					}
				}
				return
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(obj)
	if len(env) == 0 {
		t.Fatalf("no istio-proxy in:\n%s", out)
	}
	return env
}

// TestInjectKindsAndOwners checks the workload identity Istio gives each kind
// (Istio pkg/kube/inject GetDeployMetaFromPod and kube-inject IntoObject).
func TestInjectKindsAndOwners(t *testing.T) {
	tests := []struct {
		name, in            string
		workload, owner, cn string
	}{
		{"pod owned by a Deployment's ReplicaSet", `apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2-5d8f8b6b4c-x7k2p
  namespace: bookinfo
  labels: {pod-template-hash: 5d8f8b6b4c}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: reviews-v2-5d8f8b6b4c, controller: true, uid: u}
spec:
  containers: [{name: app, image: a}]
`, "reviews-v2", "kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v2", "reviews-v2"},
		{"pod owned by a CronJob's Job", `apiVersion: v1
kind: Pod
metadata:
  name: backup-28000000-abcde
  ownerReferences:
  - {apiVersion: batch/v1, kind: Job, name: backup-28000000, controller: true, uid: u}
spec:
  containers: [{name: app, image: a}]
`, "backup", "kubernetes://apis/batch/v1/namespaces/default/cronjobs/backup", "backup"},
		{"pod owned by a DeploymentConfig's ReplicationController", `apiVersion: v1
kind: Pod
metadata:
  name: web-3-abcde
  labels: {deploymentconfig: web}
  ownerReferences:
  - {apiVersion: v1, kind: ReplicationController, name: web-3, controller: true, uid: u}
spec:
  containers: [{name: app, image: a}]
`, "web", "kubernetes://apis/apps.openshift.io/v1/namespaces/default/deploymentconfigs/web", "web"},
		{"bare pod", `apiVersion: v1
kind: Pod
metadata: {name: solo}
spec:
  containers: [{name: app, image: a}]
`, "solo", "kubernetes://apis/v1/namespaces/default/pods/solo", "solo"},
		{"ReplicationController", `apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  template:
    metadata: {labels: {app: rc}}
    spec:
      containers: [{name: app, image: a}]
`, "rc", "kubernetes://apis/v1/namespaces/default/replicationcontrollers/rc", "rc"},
		{"DeploymentConfig inside a v1 List", `apiVersion: v1
kind: List
items:
- apiVersion: apps.openshift.io/v1
  kind: DeploymentConfig
  metadata: {name: dc, namespace: shop}
  spec:
    template:
      metadata: {labels: {app: dc}}
      spec:
        containers: [{name: app, image: a}]
`, "dc", "kubernetes://apis/apps.openshift.io/v1/namespaces/shop/deploymentconfigs/dc", "dc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := InjectData([]byte(tt.in), config.Default())
			if err != nil {
				t.Fatal(err)
			}
			env := proxyEnv(t, res.Output)
			if env["ISTIO_META_WORKLOAD_NAME"] != tt.workload {
				t.Errorf("ISTIO_META_WORKLOAD_NAME = %q, want %q", env["ISTIO_META_WORKLOAD_NAME"], tt.workload)
			}
			if env["ISTIO_META_OWNER"] != tt.owner {
				t.Errorf("ISTIO_META_OWNER = %q, want %q", env["ISTIO_META_OWNER"], tt.owner)
			}
			if !bytes.Contains(res.Output, []byte("service.istio.io/canonical-name: "+tt.cn)) {
				t.Errorf("canonical-name label is not %q:\n%s", tt.cn, res.Output)
			}
		})
	}
}

func TestInjectNotesKindsPassedThrough(t *testing.T) {
	in := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n"
	res, err := InjectData([]byte(in), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != in {
		t.Errorf("Service changed:\n%s", res.Output)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "Service web (v1): not a kind meshguard injects; passed through unchanged") {
		t.Errorf("notes = %q, want one naming the Service", res.Notes)
	}
	// An unnamed object: the kind, then its API version, one space apart.
	res, err = InjectData([]byte("apiVersion: apps/v1\nkind: DeploymentList\nitems: []\n"), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], ": DeploymentList (apps/v1): not a kind") {
		t.Errorf("notes = %q, want one naming the DeploymentList", res.Notes)
	}
}

// TestInjectKeepsTemplateNamespace: a pod template's own metadata.namespace
// is written back as it was (Istio's IntoObject copies the injected pod's
// metadata, taken from the template, back onto it); the workload's namespace
// is not added to a template without one.
func TestInjectKeepsTemplateNamespace(t *testing.T) {
	for _, tmplNS := range []string{"", "shop"} {
		in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: shop}\nspec:\n  selector: {matchLabels: {app: d}}\n" +
			"  template:\n    metadata: {namespace: \"" + tmplNS + "\", labels: {app: d}}\n    spec: {containers: [{name: c, image: i}]}\n"
		res, err := InjectData([]byte(in), config.Default())
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Spec struct {
				Template struct {
					Metadata struct{ Namespace string }
				}
			}
		}
		if err := yaml.Unmarshal(res.Output, &d); err != nil {
			t.Fatal(err)
		}
		if got := d.Spec.Template.Metadata.Namespace; got != tmplNS {
			t.Errorf("template namespace %q: written as %q", tmplNS, got)
		}
	}
}

// TestInjectCronJobDecidesOnThePodTemplate pins a deliberate difference
// (docs/compatibility.md): istioctl kube-inject (pkg/kube/inject/inject.go
// IntoObject) takes a CronJob's spec.jobTemplate.metadata as the pod's
// metadata, so an opt-out there skips injection; meshguard decides on
// spec.jobTemplate.spec.template.metadata, the metadata the Job's pods carry
// and the webhook sees, and says so in a note when the Job's metadata sets
// sidecar.istio.io/inject.
func TestInjectCronJobDecidesOnThePodTemplate(t *testing.T) {
	const cronJob = `apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "* * * * *"
  jobTemplate:
    metadata:
      %s: {sidecar.istio.io/inject: "false"}
    spec:
      template:
        metadata:
          %s: {app: cj}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: i}]
`
	const jobNote = `CronJob cj: spec.jobTemplate.metadata sets sidecar.istio.io/inject, which the Job's pods do not carry; the pod template's metadata decides, as for the webhook`
	for _, tc := range []struct {
		name, jobMeta, podMeta string
		injected               bool
		note                   string
	}{
		{"opt-out annotation on the Job", "annotations", "labels", true, jobNote},
		{"opt-out label on the Job", "labels", "annotations", true, jobNote},
		{"opt-out on the pod template", "annotations", "labels", false, "CronJob cj: skipped (opt_out)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fmt.Sprintf(cronJob, tc.jobMeta, tc.podMeta)
			if !tc.injected { // the opt-out moves to the pod template
				in = strings.Replace(in, "{app: cj}", `{sidecar.istio.io/inject: "false"}`, 1)
				in = strings.Replace(in, `{sidecar.istio.io/inject: "false"}`, "{team: a}", 1)
			}
			res, err := InjectData([]byte(in), config.Default())
			if err != nil {
				t.Fatal(err)
			}
			var cj batchv1.CronJob
			if err := yaml.UnmarshalStrict(res.Output, &cj); err != nil {
				t.Fatal(err)
			}
			tmpl := cj.Spec.JobTemplate.Spec.Template
			if got := tmpl.Annotations["sidecar.istio.io/status"] != ""; got != tc.injected {
				t.Errorf("pod template injected: %v, want %v:\n%s", got, tc.injected, res.Output)
			}
			if cj.Spec.JobTemplate.Annotations["sidecar.istio.io/status"] != "" || cj.Spec.JobTemplate.Labels["security.istio.io/tlsMode"] != "" {
				t.Errorf("the Job's metadata was written:\n%s", res.Output)
			}
			if !strings.Contains(strings.Join(res.Notes, "\n"), tc.note) {
				t.Errorf("notes %q, want one containing %q", res.Notes, tc.note)
			}
		})
	}
}
