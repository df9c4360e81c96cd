package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A Service and a VirtualService whose second route is never used: one
// Warning (IST0130), nothing at Error.
const flagsWarningOnly = cliService + `spec:
  ports: [{port: 80, name: http}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
`

// As flagsWarningOnly, with a duplicate match in the first rule: an Info
// (IST0131) too.
const flagsInfoAndWarning = cliService + `spec:
  ports: [{port: 80, name: http}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}}, {uri: {prefix: /a}}]
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
`

// --output-threshold filters the messages printed (every format), as
// istioctl analyze's outputMessages (istioctl/pkg/analyze/analyze.go Analyze:
// FilterOutLowerThan(outputThreshold.Level), default Info); the "No
// validation issues found" line follows the printed list, and the exit status
// the unfiltered one (errorIfMessagesExceedThreshold(result.Messages)).
func TestAnalyzeOutputThreshold(t *testing.T) {
	dir := t.TempDir()
	warn := writeFile(t, dir, "warn.yaml", flagsWarningOnly)
	both := writeFile(t, dir, "both.yaml", flagsInfoAndWarning)
	const (
		unused   = "Warning [IST0130] (VirtualService default/reviews "
		dupMatch = "Info [IST0131] (VirtualService default/reviews "
		found    = "Error: Analyzers found issues when analyzing namespace: default.\n" +
			"See https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.\n"
	)
	noIssues := "\u2714 No validation issues found when analyzing " + warn + ".\n"
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		outHas    []string
		outHasNot []string
		stdout    *string // exactly, when set
		stderr    string  // exactly
	}{
		{name: "default Info prints the Warning", args: []string{warn}, code: 0, outHas: []string{unused}},
		{name: "Info and Warning, default", args: []string{both}, code: 0, outHas: []string{unused, dupMatch}},
		{name: "Info and Warning, Warning", args: []string{"--output-threshold", "Warning", both}, code: 0,
			outHas: []string{unused}, outHasNot: []string{dupMatch}},
		{name: "any case", args: []string{"--output-threshold", "wArNiNg", both}, code: 0,
			outHas: []string{unused}, outHasNot: []string{dupMatch}},
		// Nothing printed: istioctl says no issue was found, and the
		// exit status is still the unfiltered list's (0: no Error).
		{name: "Warning only, Error", args: []string{"--output-threshold", "Error", warn}, code: 0,
			stdout: new(string), stderr: noIssues},
		// Nothing printed, yet the Warning reaches --failure-threshold:
		// istioctl prints its no-issues line and then its issues error.
		{name: "failure Warning, output Error", args: []string{"--failure-threshold", "Warning", "--output-threshold", "Error", warn},
			code: exitAnalyzeFoundIssues, stdout: new(string), stderr: noIssues + found},
		{name: "failure Warning, output Info", args: []string{"--failure-threshold", "Warning", warn},
			code: exitAnalyzeFoundIssues, outHas: []string{unused}, stderr: found},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"analyze"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out, errOut)
			}
			for _, w := range tc.outHas {
				if !strings.Contains(out, w) {
					t.Errorf("stdout %q lacks %q", out, w)
				}
			}
			for _, w := range tc.outHasNot {
				if strings.Contains(out, w) {
					t.Errorf("stdout %q has %q, below --output-threshold", out, w)
				}
			}
			if tc.stdout != nil && out != *tc.stdout {
				t.Errorf("stdout %q, want %q", out, *tc.stdout)
			}
			if errOut != tc.stderr {
				t.Errorf("stderr %q, want %q", errOut, tc.stderr)
			}
		})
	}
}

// -o json / -o yaml print the filtered list too (istioctl formats
// outputMessages whatever the format); meshguard's exit status is the same
// as the log format's (docs/compatibility.md).
func TestAnalyzeOutputThresholdJSON(t *testing.T) {
	dir := t.TempDir()
	warn := writeFile(t, dir, "warn.yaml", flagsWarningOnly)
	both := writeFile(t, dir, "both.yaml", flagsInfoAndWarning)
	for _, tc := range []struct {
		args  []string
		code  int
		codes []string
	}{
		{[]string{"-o", "json", both}, 0, []string{"IST0130", "IST0131"}},
		{[]string{"-o", "json", "--output-threshold", "Warning", both}, 0, []string{"IST0130"}},
		{[]string{"-o", "json", "--output-threshold", "Error", warn}, 0, []string{}},
		{[]string{"-o", "json", "--output-threshold", "Error", "--failure-threshold", "Warning", warn}, exitAnalyzeFoundIssues, []string{}},
		{[]string{"-o", "yaml", "--output-threshold", "Error", "--failure-threshold", "Warning", warn}, exitAnalyzeFoundIssues, []string{}},
	} {
		code, out, errOut := runCLI(t, append([]string{"analyze"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tc.args, code, tc.code, errOut)
		}
		if tc.args[1] == "yaml" {
			if out != "[]\n" {
				t.Errorf("%q: stdout %q, want an empty YAML list", tc.args, out)
			}
			continue
		}
		var msgs []struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal([]byte(out), &msgs); err != nil || msgs == nil {
			t.Errorf("%q: stdout %q is not a JSON list: %v", tc.args, out, err)
			continue
		}
		got := []string{}
		for _, m := range msgs {
			got = append(got, m.Code)
		}
		if strings.Join(got, ",") != strings.Join(tc.codes, ",") {
			t.Errorf("%q: codes %v, want %v", tc.args, got, tc.codes)
		}
	}
}

// A level that does not parse is a usage error, as istioctl's
// MessageThreshold.Set refuses it while flags are parsed (exit 64).
func TestAnalyzeOutputThresholdBadValue(t *testing.T) {
	f := writeFile(t, t.TempDir(), "warn.yaml", flagsWarningOnly)
	code, out, errOut := runCLI(t, "analyze", "--output-threshold", "Fatal", f)
	if code != exitAnalyzeUsage || out != "" || !strings.Contains(errOut, `invalid argument "Fatal" for "--output-threshold"`) ||
		!strings.Contains(errOut, "Info, Warning or Error") {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d naming the flag and the levels", code, out, errOut, exitAnalyzeUsage)
	}
}

// kubeconfigServer writes a kubeconfig naming a server that counts the
// requests it gets (and refuses them), and points KUBECONFIG at it; no
// in-cluster config is found.
func kubeconfigServer(t *testing.T) (path string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"no RBAC"}`))
	}))
	t.Cleanup(srv.Close)
	path = writeFile(t, t.TempDir(), "kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+srv.URL+`"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: t}}]
`)
	t.Setenv("KUBECONFIG", path)
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // rest.InClusterConfig: not in a cluster
	return path, requests
}

// -k/--use-kube as istioctl's (istioctl/pkg/analyze/analyze.go Analyze:
// "--use-kube=false to analyze files only"): --use-kube=false never contacts
// a cluster, whatever KUBECONFIG says; -k (--use-kube=true) analyses the
// cluster of the kubeconfig in the environment, as --kubeconfig names one.
// Without the flag, a cluster is read only with --kubeconfig (meshguard's
// default, docs/compatibility.md).
func TestAnalyzeUseKube(t *testing.T) {
	kubeconfig, requests := kubeconfigServer(t)
	f := writeFile(t, t.TempDir(), "warn.yaml", flagsWarningOnly)
	for _, tc := range []struct {
		args    []string
		code    int
		cluster bool   // the server was asked
		has     string // in stdout or stderr
	}{
		{[]string{"--use-kube=false", f}, 0, false, "Warning [IST0130]"},
		{[]string{"-k=false", f}, 0, false, "Warning [IST0130]"},
		{[]string{f}, 0, false, "Warning [IST0130]"},
		{[]string{"--use-kube=false", "--failure-threshold", "Warning", f}, exitAnalyzeFoundIssues, false, "Analyzers found issues"},
		// Files only and no file: nothing to analyse (istioctl: "at least
		// one file and/or Kubernetes source must be provided").
		{[]string{"--use-kube=false"}, 1, false, "nothing to analyze"},
		// Asked for, the cluster is read: this one refuses (exit 1, as
		// istioctl for a cluster it cannot read).
		{[]string{"-k", f}, 1, true, "Error: cluster:"},
		{[]string{"--use-kube", f}, 1, true, "Error: cluster:"},
		{[]string{"--use-kube=true"}, 1, true, "Error: cluster:"},
		{[]string{"--kubeconfig", kubeconfig, f}, 1, true, "Error: cluster:"},
		{[]string{"--use-kube=true", "--kubeconfig", kubeconfig, f}, 1, true, "Error: cluster:"},
		// Contradictory: files only, and a cluster named.
		{[]string{"--use-kube=false", "--kubeconfig", kubeconfig, f}, exitAnalyzeUsage, false, "--kubeconfig"},
		{[]string{"--use-kube=sometimes", f}, exitAnalyzeUsage, false, `invalid argument "sometimes" for "-k, --use-kube"`},
	} {
		requests.Store(0)
		code, out, errOut := runCLI(t, append([]string{"analyze"}, tc.args...)...)
		asked := requests.Load() > 0
		if code != tc.code || asked != tc.cluster || !strings.Contains(out+errOut, tc.has) {
			t.Errorf("%q: exit %d, cluster asked %v (%d requests), stdout %q, stderr %q; want exit %d, cluster asked %v, output with %q",
				tc.args, code, asked, requests.Load(), out, errOut, tc.code, tc.cluster, tc.has)
		}
	}
}

// -A/--all-namespaces as istioctl's (istioctl/pkg/analyze/analyze.go:
// allNamespaces blanks selectedNamespace; analyzeTargetAsString "all
// namespaces"): messages of every namespace are reported, also with -n,
// which still names the namespace of objects naming none.
func TestAnalyzeAllNamespaces(t *testing.T) {
	// Offline the files' messages of every namespace are reported in any
	// case; -A names the target as istioctl does.
	shop := writeFile(t, t.TempDir(), "shop.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\n"+
		"spec: {hosts: [reviews.example.com], gateways: [nogw], http: [{route: [{destination: {host: reviews.example.com}}]}]}\n")
	for _, args := range [][]string{{"-A", shop}, {"--all-namespaces", "-n", "other", shop}} {
		code, out, errOut := runCLI(t, append([]string{"analyze"}, args...)...)
		if code != exitAnalyzeFoundIssues || !strings.Contains(out, "(VirtualService shop/reviews ") ||
			!strings.Contains(errOut, "Error: Analyzers found issues when analyzing all namespaces.\n") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// From a cluster, -A overrides -n's scope.
	vs := func(ns string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": "vs", "namespace": ns},
			"spec": map[string]any{"hosts": []any{"web.example.com"}, "gateways": []any{"nogw"},
				"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "web.example.com"}}}}}}}}
	}
	client, mapper := fakeCluster(t, existingNamespace("shop"), vs("shop"), vs("other"))
	for _, tc := range []struct {
		o    analyzeOptions
		want []string
	}{
		{analyzeOptions{namespace: "shop"}, []string{"shop"}},
		{analyzeOptions{namespace: "shop", allNamespaces: true}, []string{"other", "shop"}},
		{analyzeOptions{namespace: "default", clusterAllNamespaces: true}, []string{"other", "shop"}},
	} {
		tc.o.cluster, tc.o.mapper = client, mapper
		var out, errOut bytes.Buffer
		tc.o.output, tc.o.failureThreshold = "log", "Error"
		code := runAnalyze(t.Context(), tc.o, nil, &out, &errOut)
		var got []string
		for _, ns := range []string{"other", "shop"} {
			if strings.Contains(out.String(), "(VirtualService "+ns+"/vs ") {
				got = append(got, ns)
			}
		}
		target := "namespace: " + tc.o.namespace
		if tc.o.allNamespaces || tc.o.clusterAllNamespaces {
			target = "all namespaces"
		}
		if code != exitAnalyzeFoundIssues || strings.Join(got, ",") != strings.Join(tc.want, ",") ||
			!strings.Contains(errOut.String(), "when analyzing "+target+".\n") {
			t.Errorf("%+v: exit %d, namespaces reported %v, want %v; stdout %q stderr %q", tc.o, code, got, tc.want, out.String(), errOut.String())
		}
	}
}
