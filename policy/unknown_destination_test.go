package policy

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUnknownDestination: a request to an address missing from the Pod
// index. Istio's sidecar always knows its namespace and labels; meshguard
// evaluates such a request only when the policies in force cannot depend
// on what it lacks (the namespace without mTLS, the labels always), and
// denies it otherwise instead of skipping the policies that would select
// the workload.
func TestUnknownDestination(t *testing.T) {
	const (
		rootDenyX   = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-x, namespace: istio-system}\nspec:\n  action: DENY\n  rules: [{to: [{operation: {paths: [/x]}}]}]\n---\n"
		rootSelAll  = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: web, namespace: istio-system}\nspec:\n  selector: {matchLabels: {app: web}}\n  rules: [{}]\n---\n"
		fooDenyX    = "action: DENY\nrules: [{to: [{operation: {paths: [/x]}}]}]"
		fooSelDeny  = "selector: {matchLabels: {app: web}}\naction: DENY\nrules: [{}]"
		fooAuditAll = "selector: {matchLabels: {app: web}}\naction: AUDIT\nrules: [{}]"
	)
	cases := []struct {
		name     string
		policies string
		dstNS    string // namespace in destination.principal ("" = plaintext)
		path     string
		status   int
		policy   string
		reason   string
	}{
		{"no policies", "", "", "/y", 200, "", ""},
		{"root namespace-wide policies only: evaluated", rootDenyX, "", "/x", 403, "istio-system/deny-x", ""},
		{"root namespace-wide policies only: allowed", rootDenyX, "", "/y", 200, "", ""},
		{"a namespace has policies, no namespace known", ap("foo", "d", fooDenyX), "", "/y", 403, "", "no namespace in destination.principal"},
		{"namespace known, namespace-wide policy: evaluated", ap("foo", "d", fooDenyX), "foo", "/x", 403, "foo/d", ""},
		{"namespace known, namespace-wide policy: allowed", ap("foo", "d", fooDenyX), "foo", "/y", 200, "", ""},
		{"namespace known, another namespace's policies", ap("foo", "d", fooDenyX), "bar", "/x", 200, "", ""},
		{"selector DENY in the namespace", ap("foo", "d", fooSelDeny), "foo", "/y", 403, "", "select workloads by label"},
		{"selector DENY in another namespace", ap("foo", "d", fooSelDeny), "bar", "/y", 200, "", ""},
		{"selector AUDIT only: never decides", ap("foo", "a", fooAuditAll), "foo", "/y", 200, "", ""},
		{"root selector ALLOW applies everywhere", rootSelAll, "bar", "/y", 403, "", "select workloads by label"},
		{"workload PeerAuthentication in the namespace", pa("foo", "strict", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}"),
			"foo", "/y", 403, "", "select workloads by label"},
		{"namespace PeerAuthentication: evaluated", pa("foo", "strict", "2026-01-01T00:00:00Z", "mtls: {mode: STRICT}"),
			"foo", "/y", 200, "", ""},
		// DISABLE hides the peer identity from a sidecar but not from a
		// gateway's pods, which only the labels tell apart.
		{"namespace DISABLE PeerAuthentication", pa("foo", "off", "2026-01-01T00:00:00Z", "mtls: {mode: DISABLE}"),
			"foo", "/y", 403, "", "select workloads by label"},
		{"mesh DISABLE PeerAuthentication", pa("istio-system", "off", "2026-01-01T00:00:00Z", "mtls: {mode: DISABLE}"),
			"bar", "/y", 403, "", "select workloads by label"},
		{"port-level DISABLE PeerAuthentication", pa("foo", "w", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: db}}\nportLevelMtls:\n  8080: {mode: DISABLE}"),
			"foo", "/y", 403, "", "select workloads by label"},
		{"another namespace's DISABLE PeerAuthentication", pa("foo", "off", "2026-01-01T00:00:00Z", "mtls: {mode: DISABLE}"),
			"bar", "/y", 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{}, c.policies, webPod())
			r := unknownDestinationReq(c.dstNS, c.path)
			v, err := s.Check(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != c.status || v.Policy != c.policy || !strings.Contains(v.Reason, c.reason) {
				t.Errorf("verdict %+v, want status %d policy %q reason containing %q", v, c.status, c.policy, c.reason)
			}
			// The Pod known: always evaluated.
			r.Attributes.Destination.Address.GetSocketAddress().Address = "10.0.1.1"
			if v, err := s.Check(context.Background(), r); err != nil || strings.Contains(v.Reason, "unknown") {
				t.Errorf("known Pod: %+v %v", v, err)
			}
		})
	}
}

// unknownDestinationReq: a request to 10.9.9.9, an IP no Pod has, over
// mTLS with the destination in namespace dstNS, or plaintext when it is "".
func unknownDestinationReq(dstNS, path string) *authv3.CheckRequest {
	r := checkReq("", "10.0.0.5", "10.9.9.9", 8080, "GET", path, nil)
	if dstNS != "" {
		r.Attributes.Source.Principal = "spiffe://cluster.local/ns/client/sa/c"
		r.Attributes.Destination.Principal = "spiffe://cluster.local/ns/" + dstNS + "/sa/web"
	}
	return r
}

// TestPodIndexKeepsTerminatingPods: a terminating Pod still serves, so it
// stays known; a running Pod with the same IP takes it over, in either
// order of the list.
func TestPodIndexKeepsTerminatingPods(t *testing.T) {
	old := webPod()
	old.Name, old.Labels = "old", map[string]string{"app": "old"}
	now := metav1.Now()
	old.DeletionTimestamp = &now
	if idx, _, _ := podIndex([]*corev1.Pod{old}); idx["10.0.1.1"] == nil || idx["10.0.1.1"].labels["app"] != "old" {
		t.Fatalf("terminating Pod alone: %+v", idx["10.0.1.1"])
	}
	for _, pods := range [][]*corev1.Pod{{old, webPod()}, {webPod(), old}} {
		idx, warn, _ := podIndex(pods)
		if w := idx["10.0.1.1"]; w == nil || w.labels["app"] != "web" || len(warn) != 0 {
			t.Errorf("running and terminating Pod on one IP: %+v, warnings %q", w, warn)
		}
	}
}

// TestPodIndexSkipsFinishedPods: a Pod that has Succeeded or Failed keeps
// its status.podIP, but its containers have stopped and the IP may already
// belong to a new Pod; istiod's Pod cache keeps only Pending and Running Pods
// by IP (pilot/pkg/serviceregistry/kube/controller/pod.go onEvent). A
// finished Job Pod listed after the web Pod that now has its IP gave the
// requests to web the Job's labels, and the DENY selecting web was skipped.
func TestPodIndexSkipsFinishedPods(t *testing.T) {
	const denyWeb = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-web, namespace: foo}\n" +
		"spec:\n  selector: {matchLabels: {app: web}}\n  action: DENY\n  rules: [{}]\n"
	for _, phase := range []corev1.PodPhase{corev1.PodSucceeded, corev1.PodFailed} {
		job := webPod()
		job.Name, job.Labels, job.Status.Phase = "job-1", map[string]string{"app": "job"}, phase
		if idx, _, _ := podIndex([]*corev1.Pod{job}); idx["10.0.1.1"] != nil {
			t.Errorf("%s Pod alone: indexed as %+v", phase, idx["10.0.1.1"])
		}
		for _, pods := range [][]*corev1.Pod{{job, webPod()}, {webPod(), job}} {
			set := &Set{Pods: pods}
			if _, err := set.AddYAML("p", []byte(denyWeb)); err != nil {
				t.Fatal(err)
			}
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Check(context.Background(), checkReq("", "10.0.0.5", "10.0.1.1", 8080, "GET", "/", nil))
			if err != nil || v.Allowed || v.Policy != "foo/deny-web" {
				t.Errorf("%s Pod %s listed with web-1 on its IP: %+v, %v; want denied by foo/deny-web", phase, pods[0].Name, v, err)
			}
		}
	}
}

// TestUnknownDestinationUserModules: a user module whose deny depends on
// the destination's labels (or namespace) cannot be evaluated for a Pod
// missing from the index: without labels its deny would not fire.
func TestUnknownDestinationUserModules(t *testing.T) {
	const head = "package meshguard.user\n"
	cases := []struct {
		name   string
		module string
		dstNS  string
		status int // for the unknown destination
		reason string
	}{
		{"reads labels", `deny contains "web" if input.labels.app == "web"`, "foo", 403, "a user Rego module reads the workload's labels"},
		{"reads labels, plaintext", `deny contains "web" if input.labels.app == "web"`, "", 403, "no namespace"},
		{"reads router (from the Pod, as the labels)", `deny contains "sidecar" if not input.router`, "foo", 403, "a user Rego module reads the workload's labels"},
		{"reads the namespace, namespace known: evaluated", `deny contains "foo" if input.ns == "foo"`, "foo", 403, "foo"},
		{"reads the namespace, namespace known elsewhere", `deny contains "foo" if input.ns == "foo"`, "bar", 200, ""},
		{"reads the namespace, plaintext", `deny contains "foo" if input.ns == "foo"`, "", 403, "no namespace"},
		{"reads the view, plaintext", `deny contains "v" if input.view == "*"`, "", 403, "no namespace"},
		{"reads only the request", `deny contains "x" if input.path == "/x"`, "", 200, ""},
		{"input as a whole", "deny contains \"web\" if {\n\tx := input\n\tx.labels.app == \"web\"\n}", "foo", 403, "a user Rego module reads the workload's labels"},
		{"computed key", "deny contains \"web\" if {\n\tsome k\n\tk == \"labels\"\n\tinput[k].app == \"web\"\n}", "foo", 403, "a user Rego module reads the workload's labels"},
		{"import", "import input.labels as l\ndeny contains \"web\" if l.app == \"web\"", "foo", 403, "a user Rego module reads the workload's labels"},
		{"the generated package", `deny contains "d" if data.meshguard.authz.mtls`, "foo", 403, "a user Rego module reads the workload's labels"},
		{"composite head", `deny contains "c" if {"a": input}.a.labels.app == "web"`, "foo", 403, "a user Rego module reads the workload's labels"},
		{"rule head reference", "h[input.labels.app].hit := true\ndeny contains \"web\" if h.web.hit", "foo", 403, "a user Rego module reads the workload's labels"},
		{"rule head reference, multi-value", "h[input.labels.app] contains \"x\"\ndeny contains \"web\" if h.web[\"x\"]", "foo", 403, "a user Rego module reads the workload's labels"},
		{"rule head reference, namespace, plaintext", "h[input.ns].hit := true\ndeny contains \"foo\" if h.foo.hit", "", 403, "no namespace"},
		{"key computed from input", `deny contains "h" if input.headers[input.labels.app] == "1"`, "foo", 403, "a user Rego module reads the workload's labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := &Set{UserModules: map[string]string{"u.rego": head + c.module + "\n"}}
			set.Pods = append(set.Pods, webPod())
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Check(context.Background(), unknownDestinationReq(c.dstNS, "/y"))
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != c.status || !strings.Contains(v.Reason, c.reason) {
				t.Errorf("verdict %+v, want status %d, reason containing %q", v, c.status, c.reason)
			}
		})
	}
}

// TestUserDestinationReadsWholeData: data as a value (here a rule no
// verdict uses: from deny it would be recursive, which OPA refuses) counts
// as reading everything.
func TestUserDestinationReadsWholeData(t *testing.T) {
	m := ast.MustParseModuleWithOpts("package meshguard.user\nall_data := data\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
	if got := userDestinationReads(m); got != readsAll {
		t.Errorf("reads %b, want namespace, labels and the JWT", got)
	}
	m = ast.MustParseModuleWithOpts("package meshguard.user\nown := data.meshguard.user.x\nx := input.path\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
	if got := userDestinationReads(m); got != 0 {
		t.Errorf("reads %b, want nothing of the destination", got)
	}
}
