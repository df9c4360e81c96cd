package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// recordingServer is a loopback API server that refuses every request
// (403) and counts them: which cluster analyze asked.
func recordingServer(t *testing.T) (url string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"no RBAC"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

// kubeconfigFor is a kubeconfig whose contexts (name: server) are in order,
// the first current; a context "NAME@NS" has the namespace NS.
func kubeconfigFor(contexts ...[2]string) string {
	var clusters, ctxs []string
	for _, c := range contexts {
		name, ns, _ := strings.Cut(c[0], "@")
		clusters = append(clusters, `{name: `+name+`, cluster: {server: "`+c[1]+`"}}`)
		ctx := `{name: ` + name + `, context: {cluster: ` + name + `, user: u`
		if ns != "" {
			ctx += `, namespace: ` + ns
		}
		ctxs = append(ctxs, ctx+`}}`)
	}
	first, _, _ := strings.Cut(contexts[0][0], "@")
	return "apiVersion: v1\nkind: Config\nclusters: [" + strings.Join(clusters, ", ") + "]\ncontexts: [" + strings.Join(ctxs, ", ") +
		"]\ncurrent-context: " + first + "\nusers: [{name: u, user: {token: t}}]\n"
}

// analyze reads the cluster of istioctl's kubeconfig rules (Istio:
// istioctl/pkg/cli/option.go AddRootFlags, --kubeconfig/-c and --context;
// istioctl/pkg/cli/context.go newKubeClientWithRevision; pkg/kube/util.go
// BuildClientCmd, ConfigLoadingRules): --kubeconfig, else KUBECONFIG, else
// ~/.kube/config, the context of --context or the current one; the
// in-cluster config only as client-go's clientcmd falls back to it, when no
// kubeconfig gives a cluster. It took the in-cluster config first, and had
// no --context nor -c. A --kubeconfig that is missing or empty is an error
// (istioctl silently falls back to the other rules).
func TestAnalyzeKubeconfigRules(t *testing.T) {
	one, oneAsked := recordingServer(t)
	two, twoAsked := recordingServer(t)
	other, otherAsked := recordingServer(t)
	dir := t.TempDir()
	env := writeFile(t, dir, "env-kubeconfig", kubeconfigFor([2]string{"one", one}, [2]string{"two@shop", two}))
	flagged := writeFile(t, dir, "flag-kubeconfig", kubeconfigFor([2]string{"other", other}))
	empty := writeFile(t, dir, "empty-kubeconfig", "")
	f := writeFile(t, dir, "warn.yaml", flagsWarningOnly)
	home := t.TempDir() // no ~/.kube/config unless a case writes one
	// An in-cluster environment (no service account token here, so client-go
	// cannot take it): the kubeconfig is still the one read.
	t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "1")
	for _, tc := range []struct {
		name       string
		kubeconfig string // KUBECONFIG
		homeConfig string // ~/.kube/config's content, "" none
		args       []string
		code       int
		asked      string // "one", "two", "other" or "" none
		has        string // in stderr
	}{
		{"KUBECONFIG, current context", env, "", []string{"-k", f}, 1, "one", "Error: cluster:"},
		{"--context", env, "", []string{"-k", "--context", "two", f}, 1, "two", "Error: cluster:"},
		{"--context names a cluster to read", env, "", []string{"--context", "two", f}, 1, "two", "Error: cluster:"},
		{"--kubeconfig over KUBECONFIG", env, "", []string{"--kubeconfig", flagged, f}, 1, "other", "Error: cluster:"},
		{"-c is --kubeconfig", env, "", []string{"-c", flagged, f}, 1, "other", "Error: cluster:"},
		{"~/.kube/config", "", kubeconfigFor([2]string{"other", other}), []string{"-k", f}, 1, "other", "Error: cluster:"},
		{"unknown context", env, "", []string{"-k", "--context", "nope", f}, 1, "", `"nope"`},
		{"context of another file", env, "", []string{"-c", flagged, "--context", "two", f}, 1, "", `"two"`},
		{"empty --kubeconfig", env, "", []string{"--kubeconfig", empty, f}, 1, "", "empty"},
		{"missing --kubeconfig", env, "", []string{"--kubeconfig", filepath.Join(dir, "missing"), f}, 1, "", "missing"},
		{"--context and files only", env, "", []string{"--use-kube=false", "--context", "two", f}, exitAnalyzeUsage, "", "--context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.kubeconfig)
			// client-go reads ~/.kube/config from the path it computed at
			// start (clientcmd.RecommendedHomeFile), not from $HOME now.
			saved := clientcmd.RecommendedHomeFile
			clientcmd.RecommendedHomeFile = filepath.Join(home, "config")
			t.Cleanup(func() { clientcmd.RecommendedHomeFile = saved })
			if tc.homeConfig != "" {
				writeFile(t, home, "config", tc.homeConfig)
				t.Cleanup(func() { _ = os.Remove(filepath.Join(home, "config")) })
			}
			for _, r := range []*atomic.Int64{oneAsked, twoAsked, otherAsked} {
				r.Store(0)
			}
			code, _, errOut := runCLI(t, append([]string{"analyze"}, tc.args...)...)
			asked := map[string]bool{"one": oneAsked.Load() > 0, "two": twoAsked.Load() > 0, "other": otherAsked.Load() > 0}
			for name, a := range asked {
				if a != (name == tc.asked) {
					t.Errorf("%q: cluster %s asked: %v, want only %q", tc.args, name, a, tc.asked)
				}
			}
			if code != tc.code || !strings.Contains(errOut, tc.has) {
				t.Errorf("%q: exit %d, stderr %q; want exit %d, stderr with %q", tc.args, code, errOut, tc.code, tc.has)
			}
		})
	}
}

// With a cluster read, objects of the files that name no namespace are in
// the kubeconfig context's namespace when -n is not given, as istioctl's
// ctx.NamespaceOrDefault (istioctl/pkg/cli/option.go DefaultNamespace:
// the selected context's namespace, else "default"), as kubectl apply
// places them.
func TestAnalyzeClusterContextNamespace(t *testing.T) {
	dir := t.TempDir()
	kc := writeFile(t, dir, "kubeconfig", kubeconfigFor([2]string{"one", "https://127.0.0.1:1"}, [2]string{"two@shop", "https://127.0.0.1:1"}))
	t.Setenv("KUBECONFIG", "")
	for _, tc := range []struct {
		kubeconfig, context, want string
	}{
		{kc, "", "default"}, // the current context names none
		{kc, "two", "shop"},
	} {
		_, ns, err := clusterConfig(tc.kubeconfig, tc.context)
		if err != nil || ns != tc.want {
			t.Errorf("clusterConfig(%q, %q): namespace %q, %v; want %q", tc.kubeconfig, tc.context, ns, err, tc.want)
		}
	}
}
