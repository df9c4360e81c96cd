package policy

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestFailOpenFallback: with EnableFailOpenFallback, a snapshot with user
// modules carries the same policies evaluated without them, over its own
// shards (none compiled for it), also after an update that reused them;
// there is none without user modules or without the call.
func TestFailOpenFallback(t *testing.T) {
	ctx := context.Background()
	set := func(modules map[string]string) *Set {
		s := &Set{UserModules: modules}
		if _, err := s.AddYAML("p.yaml", []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
`)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	user := map[string]string{"u.rego": "package meshguard.user\nresponse_headers[\"x\"] := \"a\" if true\nresponse_headers[\"x\"] := \"b\" if true\n"}

	plain := NewEngine(Mesh{})
	snap, err := plain.Update(ctx, set(user))
	if err != nil {
		t.Fatal(err)
	}
	if snap.WithoutUserModules() != nil {
		t.Errorf("a fallback without EnableFailOpenFallback")
	}

	e := NewEngine(Mesh{})
	e.EnableFailOpenFallback()
	first, err := e.Update(ctx, set(user))
	if err != nil {
		t.Fatal(err)
	}
	fb := first.WithoutUserModules()
	if fb == nil || fb.Compiled != 0 || fb.Shards != first.Shards || fb.Version != first.Version {
		t.Fatalf("fallback %+v, want the snapshot's %d shards at version %d, none compiled", fb, first.Shards, first.Version)
	}
	r := &Request{Namespace: "foo", Path: "/admin/x", Method: "GET"}
	if _, err := first.CheckRequest(ctx, r); err == nil {
		t.Fatalf("the user module's conflict must be an evaluation error")
	}
	v, err := fb.CheckRequest(ctx, r)
	if err != nil || v.Allowed || v.Policy != "foo/deny-admin" {
		t.Errorf("fallback: %+v %v, want denied by foo/deny-admin", v, err)
	}
	second, err := e.Update(ctx, set(user))
	if err != nil {
		t.Fatal(err)
	}
	if second.Compiled != 0 {
		t.Errorf("unchanged update compiled %d shards, want them reused", second.Compiled)
	}
	if fb2 := second.WithoutUserModules(); fb2 == nil || fb2.Compiled != 0 || fb2.dflt != first.dflt || fb2.Version != second.Version {
		t.Errorf("unchanged update: fallback %+v, want the reused shard at version %d", fb2, second.Version)
	} else if v, err := fb2.CheckRequest(ctx, r); err != nil || v.Allowed || v.Policy != "foo/deny-admin" {
		t.Errorf("reused fallback: %+v %v, want denied by foo/deny-admin", v, err)
	}
	third, err := e.Update(ctx, set(nil))
	if err != nil {
		t.Fatal(err)
	}
	if third.WithoutUserModules() != nil {
		t.Errorf("a fallback for a snapshot without user modules")
	}
}

// BenchmarkFailOpenHeap10k: the live heap a 10,000-policy snapshot with a
// user module holds, without and with --fail-open's fallback (a second
// query over the same compiled module, failopen.go), as `live-MB` after a
// full collection: about the same. A figure for docs/compatibility.md, not
// a timed test.
func BenchmarkFailOpenHeap10k(b *testing.B) {
	user := map[string]string{"u.rego": "package meshguard.user\ndeny contains \"blocked\" if input.path == \"/blocked\"\n"}
	for _, fallback := range []bool{false, true} {
		name := "without-fallback"
		if fallback {
			name = "with-fallback"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				set := GenerateSet(10000, 100)
				set.UserModules = user
				e := NewEngine(Mesh{})
				if fallback {
					e.EnableFailOpenFallback()
				}
				before := liveHeap()
				snap, err := e.Update(context.Background(), set)
				if err != nil {
					b.Fatal(err)
				}
				if fallback != (snap.WithoutUserModules() != nil) {
					b.Fatalf("fallback compiled: %v, want %v", snap.WithoutUserModules() != nil, fallback)
				}
				b.ReportMetric(float64(liveHeap()-before)/(1<<20), "live-MB")
				runtime.KeepAlive(snap)
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFailOpenFallbackSharesCompiledPolicies: the --fail-open fallback is a
// second query over the snapshot's own compiled module (the generated
// verdict, which never reads data.meshguard.user), not the policies compiled
// again: it compiles nothing and holds the snapshot's shards. A user module
// whose evaluation fails (a strict builtin error on a client's header,
// UserEvalTimeout) does not touch it: for every request the fallback's
// verdict is the one of the same policies compiled without user modules,
// DENY, PeerAuthentication and reporting-only hits included.
func TestFailOpenFallbackSharesCompiledPolicies(t *testing.T) {
	defer func(d time.Duration) { UserEvalTimeout = d }(UserEvalTimeout)
	UserEvalTimeout = 500 * time.Millisecond // x-slow's loop takes seconds
	ctx := context.Background()
	policies := ap("foo", "deny-admin", "action: DENY\nrules:\n- to:\n  - operation: {paths: [\"/admin*\"]}") +
		ap("foo", "allow-index", "rules:\n- to:\n  - operation: {paths: [\"/index\"]}") +
		ap("foo", "audit-index", "action: AUDIT\nrules:\n- to:\n  - operation: {paths: [\"/index\"]}") +
		pa("foo", "strict-web", "2024-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls: {\"8080\": {mode: PERMISSIVE}}")
	// response_headers are evaluated whatever the decision, so the errors
	// also come with a DENY that matches.
	const user = "package meshguard.user\n\n" +
		"deny contains \"too large\" if to_number(input.headers[\"x-amount\"]) > 1000\n\n" +
		"response_headers[\"x-amount\"] := format_int(to_number(input.headers[\"x-amount\"]), 10)\n\n" +
		"response_headers[\"x-slow\"] := \"done\" if {\n\tinput.headers[\"x-slow\"] == \"1\"\n" +
		"\tsome i in numbers.range(1, 3000)\n\tsome j in numbers.range(1, 3000)\n\ti * j < 0\n}\n"
	set := &Set{Pods: []*corev1.Pod{webPod()}, UserModules: map[string]string{"u.rego": user}}
	if _, err := set.AddYAML(t.Name(), []byte(policies)); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Mesh{})
	e.EnableFailOpenFallback()
	snap, err := e.Update(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	fb := snap.WithoutUserModules()
	if fb == nil {
		t.Fatal("no fallback")
	}
	if fb.Compiled != 0 || fb.Generated != 0 || fb.Shards != snap.Shards || fb.dflt != snap.dflt || fb.views["foo"].sh != snap.views["foo"].sh {
		t.Errorf("fallback compiled %d, generated %d, %d shards (snapshot: %d), shares the snapshot's: %v; want none compiled, the same shards",
			fb.Compiled, fb.Generated, fb.Shards, snap.Shards, fb.dflt == snap.dflt && fb.views["foo"].sh == snap.views["foo"].sh)
	}
	without := *set
	without.UserModules = nil
	plain, err := Compile(ctx, Mesh{}, &without, snap.Version)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		req     *Request
		userErr string // what the snapshot's evaluation fails on, "" = it does not
		allowed bool
		policy  string
	}{
		{"DENY matches, builtin error", http(path("/admin/x"), hdr("x-amount", "lots")), "to_number", false, "foo/deny-admin"},
		{"ALLOW admits, builtin error", http(path("/index"), hdr("x-amount", "lots")), "to_number", true, "foo/allow-index"},
		{"no ALLOW admits, builtin error", http(path("/other"), hdr("x-amount", "lots")), "to_number", false, ""},
		{"mTLS required, builtin error", http(path("/index"), port(9090), hdr("x-amount", "lots")), "to_number", false, "foo/strict-web"},
		{"DENY matches, timeout", http(path("/admin/x"), hdr("x-slow", "1")), "user Rego modules did not finish", false, "foo/deny-admin"},
		{"ALLOW admits, timeout", http(path("/index"), hdr("x-slow", "1")), "user Rego modules did not finish", true, "foo/allow-index"},
		{"ALLOW admits, user module evaluates", http(path("/index"), hdr("x-amount", "5")), "", true, "foo/allow-index"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := snap.CheckRequest(ctx, c.req)
			if c.userErr != "" && (err == nil || !strings.Contains(err.Error(), c.userErr)) {
				t.Fatalf("snapshot: %+v %v, want an error naming %q", v, err, c.userErr)
			}
			if c.userErr == "" && err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			got, err := fb.CheckRequest(ctx, c.req)
			if err != nil {
				t.Fatalf("fallback: %v", err)
			}
			want, err := plain.CheckRequest(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fallback %+v\nwant      %+v (the policies without user modules)", got, want)
			}
			if got.Allowed != c.allowed || got.Policy != c.policy {
				t.Errorf("fallback: allowed %v by %q, want %v by %q", got.Allowed, got.Policy, c.allowed, c.policy)
			}
			if c.allowed && (len(got.Audit) != 1 || got.Audit[0].Policy != "foo/audit-index") {
				t.Errorf("fallback audit hits %+v, want foo/audit-index", got.Audit)
			}
		})
	}
}
