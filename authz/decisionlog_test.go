package authz

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	secapi "istio.io/api/security/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/policy"
)

// Sampled mode logs every non-allow and one in N allows, counted over the
// allows alone: denials between them do not shift which allow is logged
// (allows alternating with denials were never
// logged when the sampler read the shared request counter).
func TestDecisionLogSampledCountsAllowsOnly(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	engine := policy.NewEngine(policy.Mesh{})
	set := &policy.Set{}
	if _, err := set.AddYAML("p.yaml", []byte(denyAdmin)); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, Options{DecisionLog: "sampled", DecisionLogSample: 100}, log)
	for i := 0; i < 1000; i++ {
		for _, path := range []string{"/ok", "/admin"} { // allow, then deny
			if _, err := srv.Check(context.Background(), request(path)); err != nil {
				t.Fatal(err)
			}
		}
	}
	allows, denies := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, `"result"="allow"`):
			allows++
		case strings.Contains(l, `"result"="deny"`):
			denies++
		}
	}
	if allows != 10 || denies != 1000 {
		t.Errorf("sampled 1 in 100 of 1000 allows interleaved with 1000 denials: %d allow lines (want 10), %d deny lines (want 1000)", allows, denies)
	}
}

// The policy lists of a decision line (audit, custom, dry-run) name the
// first 8 matches and count the rest (auditMore): failed AUDIT, CUSTOM
// and dry-run policies match every request (2000
// matching AUDIT policies made a 546 KB line per request).
func TestDecisionLogPolicyListsBounded(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	engine := policy.NewEngine(policy.Mesh{RootNamespace: "istio-system"})
	var b strings.Builder
	b.WriteString(denyAdmin)
	for i := 0; i < 2000; i++ {
		name := fmt.Sprintf("a%04d-%s", i, strings.Repeat("x", 240))
		fmt.Fprintf(&b, "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: foo}\nspec:\n  action: AUDIT\n  rules:\n  - {}\n", name)
	}
	set := &policy.Set{}
	if _, err := set.AddYAML("p.yaml", []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, Options{DecisionLog: "full"}, log)
	if _, err := srv.Check(context.Background(), request("/ok")); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Fatalf("%d decision lines, want 1", len(lines))
	}
	l := lines[0]
	if len(l) > 8<<10 {
		t.Errorf("decision line of %d bytes (docs/operations.md: a few KiB): %.300s...", len(l), l)
	}
	if !strings.Contains(l, "foo/a0000-") || !strings.Contains(l, `"auditMore"=1992`) {
		t.Errorf("audit list does not name the first matches and count the rest: %.600s...", l)
	}
}

// A failed policy and a warning are logged when they are new or changed
// against the previous snapshot (all at the first), not at every rebuild
// (each Pod change rebuilds); the warning that repeats a failure is not
// logged beside it, and the error names the object once.
func TestReloadLogsFailuresOnceUntilChanged(t *testing.T) {
	badPorts := []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Ports: []string{"99999"}}}}}}
	bad := func(name string, ports []*secapi.Rule) *secv1.AuthorizationPolicy {
		p := &secv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "foo"}}
		p.Spec.Action, p.Spec.Rules = secapi.AuthorizationPolicy_AUDIT, ports
		return p
	}
	var set policy.Set
	for i := 0; i < 50; i++ {
		set.AuthorizationPolicies = append(set.AuthorizationPolicies, bad(fmt.Sprintf("bad-%d", i), badPorts))
	}
	var failures, warnings []string
	log := funcr.New(func(prefix, args string) {
		switch {
		case strings.Contains(args, "cannot be evaluated"):
			if strings.Contains(args, `"msg"="policy warning"`) {
				warnings = append(warnings, args)
			} else {
				failures = append(failures, args)
			}
		case strings.Contains(args, `"msg"="policy warning"`):
			warnings = append(warnings, args)
		}
	}, funcr.Options{})
	rl := &Reloader{Engine: policy.NewEngine(policy.Mesh{}), Log: log, NormalPriority: true,
		Load: func(context.Context) (*policy.Set, error) { s := set; return &s, nil }}
	reload := func() {
		t.Helper()
		if err := rl.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ { // pod churn: the same policies rebuilt
		reload()
	}
	if len(failures) != 50 || len(warnings) != 0 {
		t.Fatalf("50 failed policies over 10 identical rebuilds: %d failure lines (want 50), %d warning lines (want 0)", len(failures), len(warnings))
	}
	for _, l := range failures {
		if strings.Count(l, "AuthorizationPolicy foo/bad-") != 1 {
			t.Errorf("failure line names the object other than once: %s", l)
		}
	}
	// A new failure and a changed one are logged; the unchanged 48 are not.
	failures = nil
	set.AuthorizationPolicies = append(set.AuthorizationPolicies[:0:0], set.AuthorizationPolicies...)
	set.AuthorizationPolicies[0] = bad("bad-0", []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Ports: []string{"77777"}}}}}})
	set.AuthorizationPolicies = append(set.AuthorizationPolicies, bad("bad-new", badPorts))
	reload()
	if len(failures) != 2 || !strings.Contains(failures[0]+failures[1], "bad-new") || !strings.Contains(failures[0]+failures[1], "77777") {
		t.Errorf("one changed and one new failure: %d lines %q", len(failures), failures)
	}
	// One that goes away and comes back is new again.
	failures = nil
	set.AuthorizationPolicies = set.AuthorizationPolicies[:len(set.AuthorizationPolicies)-1]
	reload()
	set.AuthorizationPolicies = append(set.AuthorizationPolicies, bad("bad-new", badPorts))
	reload()
	if len(failures) != 1 || !strings.Contains(failures[0], "bad-new") {
		t.Errorf("a failure back after a snapshot without it: %d lines %q", len(failures), failures)
	}
}

// The reason of a denial by a policy failed closed names the policy once
// (policy's failedReason: a reason from meshguard
// validate's rules already started with the object).
func TestDecisionLogFailedReasonNamesPolicyOnce(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	engine := policy.NewEngine(policy.Mesh{})
	set := &policy.Set{}
	if _, err := set.AddYAML("p.yaml", []byte(denyAdmin)); err != nil {
		t.Fatal(err)
	}
	// As stored in the API server (before the webhook): meshguard validate
	// rejects the port, so the DENY fails closed.
	bad := &secv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad-ports", Namespace: "foo"}}
	bad.Spec.Action = secapi.AuthorizationPolicy_DENY
	bad.Spec.Rules = []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Ports: []string{"99999"}}}}}}
	set.AuthorizationPolicies = append(set.AuthorizationPolicies, bad)
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, Options{DecisionLog: "full"}, log)
	if _, err := srv.Check(context.Background(), request("/ok")); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], `"result"="deny"`) || !strings.Contains(lines[0], "cannot be evaluated") {
		t.Fatalf("want one denial by the failed policy: %q", lines)
	}
	if n := strings.Count(lines[0], "foo/bad-ports"); n != 2 { // "policy" and the reason
		t.Errorf("the policy named %d times (want 2: policy, reason): %s", n, lines[0])
	}
	// The snapshot's warning and failure name it once each as well.
	snap := engine.Snapshot()
	for _, w := range snap.Warnings {
		if n := strings.Count(w, "foo/bad-ports"); n > 1 {
			t.Errorf("warning names the policy %d times: %s", n, w)
		}
	}
	for _, f := range snap.Failed {
		if strings.Contains(f.Reason, "foo/bad-ports") {
			t.Errorf("failure reason repeats the object %s: %s", f.Object, f.Reason)
		}
	}
}
