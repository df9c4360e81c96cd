package main

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// vsTo is a VirtualService ns/name routing to host, with these labels.
func vsTo(ns, name, host string, labels map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name, "namespace": ns}
	if labels != nil {
		md["labels"] = labels
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": md,
		"spec": map[string]any{"hosts": []any{"a.example.com"},
			"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": host}}}}}}}}
}

func namespaceObj(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
}

// --revision, as istioctl analyze's (default "default"): the cluster's mesh
// objects labelled istio.io/rev for another revision are not read (Istio:
// AddRunningKubeSourceWithRevision's crdclient Revision, policy.InRevision's
// rule); unlabelled ones are every revision's. Objects of the files are
// read whatever their label (Istio's file KubeSource has no revision filter).
func TestAnalyzeClusterRevision(t *testing.T) {
	client, mapper := fakeCluster(t, namespaceObj("default"),
		vsTo("default", "canary-vs", "nosuch.default.svc.cluster.local", map[string]any{"istio.io/rev": "canary"}))
	o := analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}
	if got, exit, errOut := analyzeLines(t, o, "IST0101"); exit != 0 || len(got) != 0 {
		t.Errorf("default revision: exit %d, %q, want no message (the VirtualService is canary's)\n%s", exit, got, errOut)
	}
	o.revision = "canary"
	if got, exit, errOut := analyzeLines(t, o, "IST0101"); exit != exitAnalyzeFoundIssues || len(got) != 1 || !strings.Contains(got[0], "default/canary-vs") {
		t.Errorf("--revision canary: exit %d, %q, want IST0101 on default/canary-vs\n%s", exit, got, errOut)
	}
	o.revision = "default"
	o.files = []string{writeFile(t, t.TempDir(), "vs.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: file-vs, namespace: default, labels: {istio.io/rev: canary}}
spec:
  hosts: [a.example.com]
  http:
  - route:
    - destination: {host: nosuch.default.svc.cluster.local}
`)}
	if got, exit, errOut := analyzeLines(t, o, "IST0101"); exit != exitAnalyzeFoundIssues || len(got) != 1 || !strings.Contains(got[0], "default/file-vs") {
		t.Errorf("a file's canary object under the default revision: exit %d, %q, want IST0101 on default/file-vs\n%s", exit, got, errOut)
	}
}

// The same object in several files is one object, the last copy, as
// istioctl's file KubeSource stores it (pilot/pkg/config/file/store.go
// ApplyContent: a later copy updates the stored one, unless its text is the
// same, which keeps the earlier copy and its origin). Every copy was
// analysed, the earlier ones reported.
func TestAnalyzeDuplicateFileObjects(t *testing.T) {
	dir := t.TempDir()
	bad := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [a.example.com]
  http:
  - route:
    - destination: {host: nosuch.default.svc.cluster.local}
`
	a := writeFile(t, dir, "a.yaml", bad)
	fixed := writeFile(t, dir, "fixed.yaml", `apiVersion: v1
kind: Service
metadata: {name: ok}
spec:
  ports: [{port: 80, name: http}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [a.example.com]
  http:
  - route:
    - destination: {host: ok}
`)
	if got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{a, fixed}}, "IST0101"); exit != 0 || len(got) != 0 {
		t.Errorf("a.yaml then fixed.yaml: exit %d, %q, want none (the fixed copy replaces a.yaml's)\n%s", exit, got, errOut)
	}
	if got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{fixed, a}}, "IST0101"); exit != exitAnalyzeFoundIssues || len(got) != 1 || !strings.Contains(got[0], a+"#0") {
		t.Errorf("fixed.yaml then a.yaml: exit %d, %q, want IST0101 on %s#0 only\n%s", exit, got, a, errOut)
	}
	same := writeFile(t, dir, "same.yaml", bad)
	if got, _, errOut := analyzeLines(t, analyzeOptions{files: []string{a, same}}, "IST0101"); len(got) != 1 || !strings.Contains(got[0], a+"#0") {
		t.Errorf("two identical copies: %q, want one IST0101 naming the first, %s#0\n%s", got, a, errOut)
	}
}

// Objects of the files in the namespaces istioctl's analysis ignores
// (inject.IgnoredNamespaces: kube-system, kube-public, kube-node-lease,
// local-path-storage; istiod_analyze.go addReaderKubeSourceInternal's
// SetNamespacesFilter, after the default namespace is applied) are not
// analysed; from the cluster, the Namespaces, Services, Pods and Deployments
// of those namespaces are not read (AddRunningKubeSourceWithRevision's
// field selectors), the mesh objects are.
func TestAnalyzeIgnoredNamespaces(t *testing.T) {
	dir := t.TempDir()
	vs := func(ns string) string {
		return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs` + ns + `}
spec:
  hosts: [a.example.com]
  http:
  - route:
    - destination: {host: nosuch.default.svc.cluster.local}
`
	}
	for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"} {
		f := writeFile(t, dir, ns+".yaml", strings.Replace(vs(""), "{name: vs}", "{name: vs, namespace: "+ns+"}", 1))
		if got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{f}}, "IST0101"); exit != 0 || len(got) != 0 {
			t.Errorf("%s: exit %d, %q, want none (namespace ignored)\n%s", ns, exit, got, errOut)
		}
	}
	// -n names the namespace of the objects that name none: kube-system's are ignored.
	f := writeFile(t, dir, "nons.yaml", vs(""))
	if got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{f}, namespace: "kube-system"}, "IST0101"); exit != 0 || len(got) != 0 {
		t.Errorf("-n kube-system: exit %d, %q, want none\n%s", exit, got, errOut)
	}
	// From the cluster: kube-system's Service is not read (a reference to it is
	// reported), its VirtualService is.
	svc := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "dns", "namespace": "kube-system"}, "spec": map[string]any{"ports": []any{map[string]any{"port": int64(53), "name": "dns"}}}}}
	client, mapper := fakeCluster(t, namespaceObj("default"), namespaceObj("kube-system"), svc,
		vsTo("default", "to-dns", "dns.kube-system.svc.cluster.local", nil),
		vsTo("kube-system", "in-system", "nosuch.default.svc.cluster.local", nil))
	got, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0101")
	joined := strings.Join(got, "\n")
	if exit != exitAnalyzeFoundIssues || len(got) != 2 || !strings.Contains(joined, "default/to-dns") || !strings.Contains(joined, "kube-system/in-system") {
		t.Errorf("cluster: exit %d, %q, want IST0101 on default/to-dns and kube-system/in-system\n%s", exit, got, errOut)
	}
}

// istioctl analyze's flags that were "unknown flag" (64): --ignore-unknown
// (istioctl: unparsable input does not make the exit status 65),
// --color (accepted: meshguard's log output is never coloured), --timeout
// (bounds the run; a bad duration is a usage error), --multi-cluster (a
// usage error naming why: meshguard reads one cluster).
func TestAnalyzeIstioctlFlags(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "kind: [\n")
	ok := writeFile(t, dir, "ok.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n")
	for _, tc := range []struct {
		args []string
		code int
		has  string
	}{
		{[]string{bad}, exitAnalyzeDataError, "Some files couldn't be parsed."},
		{[]string{"--ignore-unknown", bad}, 0, "could not be parsed"},
		{[]string{"--color", ok}, 0, "No validation issues"},
		{[]string{"--color=false", ok}, 0, "No validation issues"},
		{[]string{"--timeout", "10s", ok}, 0, "No validation issues"},
		{[]string{"--timeout", "soon", ok}, exitAnalyzeUsage, `invalid argument "soon"`},
		{[]string{"--multi-cluster", ok}, exitAnalyzeUsage, "--multi-cluster"},
	} {
		code, out, errOut := runCLI(t, append([]string{"analyze"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.has) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, output with %q", tc.args, code, out, errOut, tc.code, tc.has)
		}
	}
	// A run past --timeout stops (exit 1) rather than reporting on what it read.
	o := analyzeOptions{files: []string{ok}, timeout: 1}
	if _, exit, errOut := analyzeLines(t, o, "IST0101"); exit != 1 || !strings.Contains(errOut, "--timeout") {
		t.Errorf("timeout 1ns: exit %d, stderr %q; want 1 naming --timeout", exit, errOut)
	}
}
