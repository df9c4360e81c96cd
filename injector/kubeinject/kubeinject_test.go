package kubeinject

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
)

func splitDocs(t *testing.T, b []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufioReader(b))
	var out [][]byte
	for {
		d, err := r.Read()
		if err != nil {
			break
		}
		out = append(out, d)
	}
	return out
}

func podSpecOf(t *testing.T, doc []byte) (kind string, spec *corev1.PodSpec, meta metav1.ObjectMeta) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatal(err)
	}
	switch tm.Kind {
	case "Pod":
		var o corev1.Pod
		mustStrict(t, doc, &o)
		return tm.Kind, &o.Spec, o.ObjectMeta
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		var o appsv1.Deployment // the template path is the same for all four
		_ = yaml.Unmarshal(doc, &o)
		return tm.Kind, &o.Spec.Template.Spec, o.Spec.Template.ObjectMeta
	case "Job":
		var o batchv1.Job
		mustStrict(t, doc, &o)
		return tm.Kind, &o.Spec.Template.Spec, o.Spec.Template.ObjectMeta
	case "CronJob":
		var o batchv1.CronJob
		mustStrict(t, doc, &o)
		return tm.Kind, &o.Spec.JobTemplate.Spec.Template.Spec, o.Spec.JobTemplate.Spec.Template.ObjectMeta
	}
	return tm.Kind, nil, metav1.ObjectMeta{}
}

func mustStrict(t *testing.T, doc []byte, o any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		t.Fatalf("output does not decode strictly: %v", err)
	}
}

func TestInjectAllKinds(t *testing.T) {
	in, err := os.ReadFile("testdata/all-kinds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := InjectData(in, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(t, res.Output)
	if len(docs) != 9 {
		t.Fatalf("%d output documents, want 9 (the comment-only one is dropped):\n%s", len(docs), res.Output)
	}
	wantInjected := map[string]bool{"Pod/pod": true, "Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true, "Job": true, "CronJob": true}
	for i, d := range docs {
		kind, spec, meta := podSpecOf(t, d)
		if spec == nil {
			if !strings.Contains(string(d), "name: untouched") {
				t.Errorf("doc %d: unexpected passthrough %s", i+1, d)
			}
			continue
		}
		key := kind
		if kind == "Pod" {
			key = "Pod/" + func() string { var p corev1.Pod; _ = yaml.Unmarshal(d, &p); return p.Name }()
		}
		injected := len(spec.Containers) == 2 && spec.Containers[1].Name == "istio-proxy" && meta.Annotations["sidecar.istio.io/status"] != ""
		if injected != wantInjected[key] {
			t.Errorf("doc %d (%s): injected=%v, want %v", i+1, key, injected, wantInjected[key])
		}
	}
	// Deployment owner is the Deployment itself, not guessed from the pod.
	if !strings.Contains(string(res.Output), "kubernetes://apis/apps/v1/namespaces/default/deployments/dep") {
		t.Error("ISTIO_META_OWNER of the Deployment not found")
	}
	// Documents are numbered as validate numbers them: the comment-only one
	// is not counted (manifest.SplitRaw).
	if !strings.Contains(strings.Join(res.Notes, "\n"), "document 9: Pod opted-out: skipped (opt_out)") {
		t.Errorf("notes %q lack the skip of document 9", res.Notes)
	}
	// Idempotent: injecting the output again gives the same output.
	again, err := InjectData(res.Output, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Output) != string(res.Output) {
		t.Errorf("re-injection changed the output:\n%s", again.Output)
	}
}

func TestInjectErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containerz: []\n", `document 1: Pod p: field spec.containerz: unknown field`},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: many\n", "document 1: Deployment d: field spec.replicas: cannot decode string as int32"},
		{"no containers", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {}}}\n", "document 2: Deployment d: field spec.template.spec.containers"},
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", "document 1: field kind"},
		{"missing name", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n", "field metadata.name"},
		{"not yaml", "a: [\n", "document 1"},
		// Istio's IntoObject recurses into a nested List; here each level
		// re-read and re-encoded the rest, so 3,000 levels (132 KB) took 8
		// minutes. Refused as manifest.Items refuses it.
		{"nested list", strings.Repeat(`{"apiVersion":"v1","kind":"List","items":[`, 100) + strings.Repeat("]}", 100), "document 1: items[0] of the List: a list inside a list is not supported"},
		// The per-document limit was the whole input's (8 MiB), so it never
		// applied; one object is bounded at the API server's 3 MiB.
		{"document over 3 MiB", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {a: " + strings.Repeat("x", 3<<20) + "}\n",
			"document 2: input too large: document of 3145793 bytes is over the 3145728-byte limit of one object"},
		{"bad annotation", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {traffic.sidecar.istio.io/excludeInboundPorts: x}\nspec: {containers: [{name: c, image: i}]}\n", "excludeInboundPorts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := InjectData([]byte(tc.in), config.Default())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestInjectPassthroughUnchanged(t *testing.T) {
	in := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s   # keep comment\nspec:\n  ports: [{port: 80}]\n"
	res, err := InjectData([]byte(in), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != in {
		t.Fatalf("passthrough changed:\n%q\nwant\n%q", res.Output, in)
	}
}

// TestInjectUTF16: a UTF-16 stream (with its byte order mark, as Windows
// PowerShell 5's > writes) is read as UTF-8 first, as kubectl reads it and as
// every other meshguard reader cuts a stream (manifest.SplitRaw). Cut as bytes,
// its "---" lines are no separators and the YAML parser returns the first
// object only: the second Pod was dropped from the output without a word.
func TestInjectUTF16(t *testing.T) {
	const pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i}]}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, image: i}]}\n"
	in := []byte{0xff, 0xfe}
	for _, r := range pods {
		in = append(in, byte(r), 0)
	}
	res, err := InjectData(in, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(t, res.Output)
	if len(docs) != 2 {
		t.Fatalf("%d output documents, want both Pods:\n%s", len(docs), res.Output)
	}
	for i, d := range docs {
		var p corev1.Pod
		mustStrict(t, d, &p)
		if want := []string{"a", "b"}[i]; p.Name != want || p.Annotations["sidecar.istio.io/status"] == "" {
			t.Errorf("document %d: pod %q injected %v, want %q injected", i+1, p.Name, p.Annotations["sidecar.istio.io/status"] != "", want)
		}
	}
}

func TestInjectList(t *testing.T) {
	in := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s}
  spec: {ports: [{port: 80}]}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d}
  spec:
    selector: {matchLabels: {app: d}}
    template:
      metadata: {labels: {app: d}}
      spec: {containers: [{name: c, image: i}]}
`
	res, err := InjectData([]byte(in), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string
		Items []map[string]any
	}
	if err := yaml.Unmarshal(res.Output, &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "List" || len(list.Items) != 2 || list.Items[0]["kind"] != "Service" {
		t.Fatalf("list shape changed:\n%s", res.Output)
	}
	if !strings.Contains(string(res.Output), "name: istio-proxy") {
		t.Fatalf("deployment in list not injected:\n%s", res.Output)
	}
	_, err = InjectData([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec: {containers: []}\n"), config.Default())
	if err == nil || !strings.Contains(err.Error(), "document 1: items[0] of the List: Pod p: field spec.containers") {
		t.Fatalf("error %v should name the item and field", err)
	}
}

// TestTemplateSeesTemplateMetadata: a custom template saw the workload's
// namespace as .ObjectMeta.Namespace. Istio's kube-inject renders the pod
// template's own metadata (pkg/kube/inject/inject.go IntoObject: the pod is
// built from the template's ObjectMeta and passed to injectPod unchanged;
// only the webhook, Webhook.inject, fills an empty namespace from the
// request), with the workload's in .DeploymentMeta: so a template's
// namespace is usually empty, and a bare Pod's is its own.
func TestTemplateSeesTemplateMetadata(t *testing.T) {
	const cfg = `policy: enabled
defaultTemplates: [probe]
templates:
  probe: |
    metadata:
      annotations:
        probe/ns: "{{ .ObjectMeta.Namespace }}"
        probe/deployment: "{{ .DeploymentMeta.Namespace }}/{{ .DeploymentMeta.Name }}"
        probe/kind: "{{ .TypeMeta.Kind }}"
`
	s, err := config.Inputs{Config: []byte(cfg)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	deployment := func(tmplNS string) string { return deploymentDoc(", namespace: shop", tmplNS) }
	for _, tc := range []struct {
		name, in       string
		ns, deployment string
		kind           string
	}{
		{"template without namespace", deployment(""), "", "shop/d", "Deployment"},
		{"template with its own namespace", deployment(", namespace: other"), "other", "shop/d", "Deployment"},
		{"bare Pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: app, image: nginx}]\n", "shop", "shop/p", "Pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := InjectData([]byte(tc.in), s)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitDocs(t, res.Output)
			if len(docs) != 1 {
				t.Fatalf("%d documents out, want 1:\n%s", len(docs), res.Output)
			}
			_, _, meta := podSpecOf(t, docs[0])
			want := map[string]string{"probe/ns": tc.ns, "probe/deployment": tc.deployment, "probe/kind": tc.kind}
			for k, v := range want {
				if got, ok := meta.Annotations[k]; !ok || got != v {
					t.Errorf("annotation %s = %q (set %v), want %q", k, got, ok, v)
				}
			}
			if meta.Namespace != tc.ns {
				t.Errorf("injected pod metadata.namespace %q, want %q (as given)", meta.Namespace, tc.ns)
			}
		})
	}
}

// TestNamespacelessWorkloadUsesTemplateNamespace: a workload without
// metadata.namespace was decided and injected with the empty namespace even
// when its pod template names one. Istio's IntoObject
// (pkg/kube/inject/inject.go) takes the template's namespace, else the
// workload's (`namespace := metadata.Namespace; if namespace == ""
// {namespace = deploymentMetadata.Namespace}`), and injectRequired reads the
// template's, so a template in kube-system is skipped; .DeploymentMeta (and
// ISTIO_META_OWNER) keep the workload's own, empty, namespace. A workload
// that has a namespace decides with it, where Istio takes the template's
// (docs/compatibility.md, a deliberate difference: it is where the pods run).
func TestNamespacelessWorkloadUsesTemplateNamespace(t *testing.T) {
	deployment := deploymentDoc
	for _, tc := range []struct {
		name, in string
		skipped  bool
		owner    string
	}{
		{"template in kube-system", deployment("", ", namespace: kube-system"), true, ""},
		{"template in shop", deployment("", ", namespace: shop"), false, "kubernetes://apis/apps/v1/namespaces/default/deployments/d"},
		{"workload namespace decides", deployment(", namespace: kube-system", ", namespace: shop"), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := InjectData([]byte(tc.in), config.Default())
			if err != nil {
				t.Fatal(err)
			}
			_, spec, _ := podSpecOf(t, splitDocs(t, res.Output)[0])
			var proxy *corev1.Container
			for i := range spec.Containers {
				if spec.Containers[i].Name == "istio-proxy" {
					proxy = &spec.Containers[i]
				}
			}
			if tc.skipped {
				if proxy != nil || !strings.Contains(strings.Join(res.Notes, "\n"), "ignored_namespace") {
					t.Fatalf("want skipped (ignored_namespace); notes %q\n%s", res.Notes, res.Output)
				}
				return
			}
			if proxy == nil {
				t.Fatalf("not injected; notes %q", res.Notes)
			}
			for _, e := range proxy.Env {
				if e.Name == "ISTIO_META_OWNER" && e.Value != tc.owner {
					t.Errorf("ISTIO_META_OWNER %q, want %q", e.Value, tc.owner)
				}
			}
		})
	}
}

// TestGenericReinjectionEnvOrderIsIstios: `kube-inject` run again on its own
// output with a template meshguard renders generically (grpc-agent) moves
// ISTIO_META_CLUSTER_ID/ISTIO_META_NETWORK after ISTIO_PROMETHEUS_ANNOTATIONS
// (and ISTIO_KUBE_APP_PROBERS, which grpc-agent does not write). That is
// Istio's order: RunTemplate
// (pkg/kube/inject/inject.go) merges the templates onto the injected pod
// itself (mergedPod = params.pod), so the previous proxy's Prometheus and
// prober envs stay where they were, then postProcessPod's updateClusterEnvs
// removes the cluster envs and appends them last, and applyPrometheusMerge
// adds nothing for a port already at 15020. A third run changes nothing.
func TestGenericReinjectionEnvOrderIsIstios(t *testing.T) {
	const in = `apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: shop}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata:
      labels: {app: a, topology.istio.io/network: n1}
      annotations:
        inject.istio.io/templates: grpc-agent
        prometheus.io/scrape: "true"
        prometheus.io/port: "9090"
    spec:
      containers:
      - name: app
        image: nginx
`
	cfg := installSnapshot(t, false, false)
	cfg.Values.Global.MultiCluster.ClusterName = "c1"
	order := func(out []byte) []string {
		_, spec, _ := podSpecOf(t, splitDocs(t, out)[0])
		var names []string
		for _, c := range spec.Containers {
			if c.Name != "istio-proxy" {
				continue
			}
			for _, e := range c.Env {
				switch e.Name {
				case "ISTIO_META_CLUSTER_ID", "ISTIO_META_NETWORK", "ISTIO_PROMETHEUS_ANNOTATIONS":
					names = append(names, e.Name)
				}
			}
		}
		return names
	}
	out := []byte(in)
	for i, want := range []string{
		"ISTIO_META_CLUSTER_ID ISTIO_META_NETWORK ISTIO_PROMETHEUS_ANNOTATIONS",
		"ISTIO_PROMETHEUS_ANNOTATIONS ISTIO_META_CLUSTER_ID ISTIO_META_NETWORK",
		"ISTIO_PROMETHEUS_ANNOTATIONS ISTIO_META_CLUSTER_ID ISTIO_META_NETWORK",
	} {
		res, err := InjectData(out, cfg)
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		out = res.Output
		if got := strings.Join(order(out), " "); got != want {
			t.Errorf("run %d: istio-proxy env order %s, want Istio's %s", i+1, got, want)
		}
	}
}

// deploymentDoc is Deployment d (one nginx container) with extra fields
// (", namespace: x") appended to its metadata and to its pod template's.
func deploymentDoc(meta, tmplMeta string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: d` + meta + `}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}` + tmplMeta + `}
    spec:
      containers: [{name: app, image: nginx}]
`
}
