package policy

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	secapi "istio.io/api/security/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/test/authzref"
)

// The oracle for sharding is the one-module form (k = 1), which is what the
// semantics corpora and the authzref differential test pin against Istio's
// semantics: a sharded snapshot must give the same verdict, field by field.

// TestShardsAgreeWithOneShard: random policy sets and requests (authzref's
// generator: several namespaces, root-namespace policies, workload and
// namespace PeerAuthentications, reporting buckets) give identical verdicts
// sharded and as one module.
func TestShardsAgreeWithOneShard(t *testing.T) {
	ctx := context.Background()
	g := authzref.NewGen(20261204)
	multi := 0
	for i := 0; i < 150; i++ {
		gs := g.PolicySet()
		set := &Set{AuthorizationPolicies: gs.APs, PeerAuthentications: gs.PAs}
		mesh := Mesh{RootNamespace: gs.Mesh.RootNamespace, TrustDomain: gs.Mesh.TrustDomain, TrustDomainAliases: gs.Mesh.TrustDomainAliases}
		sharded, err := compileShards(ctx, nil, mesh, set, 1, maxShards)
		if err != nil {
			t.Fatalf("set %d: sharded: %v", i, err)
		}
		one, err := compileShards(ctx, nil, mesh, set, 1, 1)
		if err != nil {
			t.Fatalf("set %d: one shard: %v", i, err)
		}
		if one.Shards != 1 {
			t.Fatalf("set %d: k=1 gave %d shards", i, one.Shards)
		}
		if sharded.Shards > 1 {
			multi++
		}
		for j := 0; j < 30; j++ {
			r := refRequest(g.Request())
			got, want := checkBoth(ctx, t, sharded, one, r)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("set %d request %+v:\nsharded  %+v\none shard %+v", i, r, got, want)
			}
		}
	}
	if multi < 100 {
		t.Fatalf("only %d of 150 sets were split into several shards: the test does not exercise sharding", multi)
	}
}

// checkBoth is r's verdict from a and from b; an evaluation error fails t.
func checkBoth(ctx context.Context, t *testing.T, a, b *Snapshot, r *Request) (Verdict, Verdict) {
	t.Helper()
	va, err := a.CheckRequest(ctx, r)
	if err != nil {
		t.Fatalf("snapshot %d: %v", a.Version, err)
	}
	vb, err := b.CheckRequest(ctx, r)
	if err != nil {
		t.Fatalf("snapshot %d: %v", b.Version, err)
	}
	return va, vb
}

// refRequest is an authzref request as already-decoded attributes.
func refRequest(r authzref.Request) *Request {
	out := &Request{Namespace: r.Dest.Namespace, Labels: r.Dest.Labels, TCP: r.TCP, Principal: r.Principal,
		SrcIP: r.SrcIP, RemoteIP: r.SrcIP, DstIP: r.Dest.IP, DstPort: r.DstPort,
		Method: r.Method, Path: r.Path, Host: strings.ToLower(r.Host), Headers: r.Headers}
	if r.JWT != nil {
		s, err := r.JWT.Payload()
		if err != nil {
			panic(err)
		}
		out.JWT = s
	}
	return out
}

// gwRequest: GenerateSet's ALLOW policies admit the ingress gateway's GET
// /healthz with x-tenant shared on their workload.
func gwRequest(ns, app string) *Request {
	return &Request{Namespace: ns, Labels: map[string]string{"app": app}, Principal: "spiffe://cluster.local/ns/ingress/sa/gw",
		SrcIP: "10.0.0.5", RemoteIP: "10.0.0.5", DstIP: "10.0.1.1", DstPort: 8080, Method: "GET", Path: "/healthz",
		Host: "x", Headers: map[string]string{"x-tenant": "shared"}}
}

// TestRebuildCompilesOnlyChangedShard: rebuilding a 1,000-policy set
// generates and compiles nothing; renaming one policy of one namespace
// generates and compiles that namespace's shard only; the new
// snapshot names the renamed policy, and every other verdict is what a full
// compile of the changed set gives.
func TestRebuildCompilesOnlyChangedShard(t *testing.T) {
	ctx := context.Background()
	set := GenerateSet(1000, 100)
	s1, err := Compile(ctx, Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Compiled != s1.Shards || s1.Shards < 40 {
		t.Fatalf("first compile: %d of %d shards compiled; want all of about 64", s1.Compiled, s1.Shards)
	}
	same, err := CompileNext(ctx, s1, Mesh{}, set, 2)
	if err != nil {
		t.Fatal(err)
	}
	if same.Compiled != 0 || same.Generated != 0 || same.Shards != s1.Shards || same.Translated != 0 {
		t.Fatalf("unchanged set: %d of %d shards generated, %d compiled, %d policies translated; want 0, 0, 0", same.Generated, same.Shards, same.Compiled, same.Translated)
	}

	// ns-7/p-7 is the oldest ALLOW policy of ns-7 app-0.
	changed := &Set{AuthorizationPolicies: append([]*secv1.AuthorizationPolicy{}, set.AuthorizationPolicies...)}
	ap := set.AuthorizationPolicies[7].DeepCopy()
	if ap.Namespace != "ns-7" || ap.Name != "p-7" {
		t.Fatalf("GenerateSet changed: policy 7 is %s/%s", ap.Namespace, ap.Name)
	}
	ap.Name = "p-7-renamed"
	changed.AuthorizationPolicies[7] = ap
	s2, err := CompileNext(ctx, s1, Mesh{}, changed, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Compiled != 1 || s2.Generated != 1 || s2.Shards != s1.Shards || s2.Translated != 1 {
		t.Fatalf("one policy renamed: %d of %d shards generated, %d compiled, %d policies translated; want 1, 1, 1", s2.Generated, s2.Shards, s2.Compiled, s2.Translated)
	}
	_, sh7, _ := s2.view("ns-7")
	_, old7, _ := s1.view("ns-7")
	if sh7 == old7 {
		t.Fatalf("ns-7's shard was reused although its policy changed")
	}
	for i, sh := range s2.shards {
		if sh != nil && sh != sh7 && sh != s1.shards[i] {
			t.Errorf("shard %d was compiled again although none of its views changed", i)
		}
	}
	v, err := s2.CheckRequest(ctx, gwRequest("ns-7", "app-0"))
	if err != nil || !v.Allowed || v.Policy != "ns-7/p-7-renamed" || v.Version != 3 {
		t.Fatalf("ns-7 after the rename: %+v %v, want allowed by ns-7/p-7-renamed in snapshot 3", v, err)
	}
	if v, err := s1.CheckRequest(ctx, gwRequest("ns-7", "app-0")); err != nil || v.Policy != "ns-7/p-7" {
		t.Fatalf("the previous snapshot changed: %+v %v", v, err)
	}
	full, err := Compile(ctx, Mesh{}, changed, 3)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 101; n++ {
		for _, app := range []string{"app-0", "app-3", "none"} {
			ns := fmt.Sprintf("ns-%d", n)
			if n == 100 {
				ns = "elsewhere" // the default view "*"
			}
			for _, r := range []*Request{gwRequest(ns, app), func() *Request { r := gwRequest(ns, app); r.Path = "/admin"; return r }()} {
				got, want := checkBoth(ctx, t, s2, full, r)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s %s %s: incremental %+v, full compile %+v", ns, app, r.Path, got, want)
				}
				if n != 7 {
					before, _ := s1.CheckRequest(ctx, r)
					before.Version = got.Version
					if !reflect.DeepEqual(got, before) {
						t.Fatalf("%s %s %s: verdict changed by a rename in ns-7: %+v, was %+v", ns, app, r.Path, got, before)
					}
				}
			}
		}
	}
}

// TestMeshChangeRecompilesAllShards: a snapshot compiled with other mesh
// settings reuses no shard.
func TestMeshChangeRecompilesAllShards(t *testing.T) {
	ctx := context.Background()
	set := GenerateSet(300, 30)
	s1, err := Compile(ctx, Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mesh{{TrustDomain: "other.td"}, {PathNormalization: "MERGE_SLASHES"}, {TrustDomainAliases: []string{"old.td"}},
		{RootNamespace: "mesh-root"}, {NumTrustedProxies: 1}} {
		s2, err := CompileNext(ctx, s1, m, set, 2)
		if err != nil {
			t.Fatal(err)
		}
		if s2.Compiled != s2.Shards || s2.Shards != s1.Shards {
			t.Errorf("mesh %+v: %d of %d shards compiled, want all", m, s2.Compiled, s2.Shards)
		}
		for i, sh := range s2.shards {
			if sh != nil && sh == s1.shards[i] {
				t.Errorf("mesh %+v: shard %d reused from the previous mesh settings", m, i)
			}
		}
	}
}

// TestEngineReusesShards: Engine.Update compiles only what changed since its
// current snapshot; a failed update keeps the last good one.
func TestEngineReusesShards(t *testing.T) {
	ctx := context.Background()
	e := NewEngine(Mesh{})
	set := GenerateSet(200, 20)
	s1, err := e.Update(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := e.Update(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Compiled != 0 || s2.Version != s1.Version+1 {
		t.Fatalf("same set again: %d shards compiled (want 0), version %d after %d", s2.Compiled, s2.Version, s1.Version)
	}
	e.SetMesh(Mesh{TrustDomain: "other.td"})
	s3, err := e.Update(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	if s3.Compiled != s3.Shards {
		t.Fatalf("after a mesh change: %d of %d shards compiled, want all", s3.Compiled, s3.Shards)
	}
}

// TestValidationMemo: AddYAML does not validate a document again that it
// accepted before (byte-for-byte the same content), validates a changed
// one, and still rejects an invalid one with the same message each time.
func TestValidationMemo(t *testing.T) {
	ns := fmt.Sprintf("memo-%d", time.Now().UnixNano()) // not in the process-wide memo yet
	a := ap(ns, "a", "selector: {matchLabels: {app: web}}\nrules:\n- to:\n  - operation: {methods: [GET]}")
	b := ap(ns, "b", "action: DENY\nrules:\n- to:\n  - operation: {paths: [/admin]}")
	b2 := ap(ns, "b", "action: DENY\nrules:\n- to:\n  - operation: {paths: [/admin, /debug]}")
	load := func(docs string) (*Set, error) {
		s := &Set{}
		_, err := s.AddYAML("policies.yaml", []byte(docs))
		return s, err
	}
	s, err := load(a + b)
	if err != nil || s.docValidations != 2 || len(s.AuthorizationPolicies) != 2 {
		t.Fatalf("first load: %d validations, %d policies, %v; want 2, 2, nil", s.docValidations, len(s.AuthorizationPolicies), err)
	}
	if s, err = load(a + b); err != nil || s.docValidations != 0 || len(s.AuthorizationPolicies) != 2 {
		t.Fatalf("unchanged reload: %d validations, %d policies, %v; want 0, 2, nil", s.docValidations, len(s.AuthorizationPolicies), err)
	}
	if s, err = load(a + b2); err != nil || s.docValidations != 1 {
		t.Fatalf("one document changed: %d validations, %v; want 1, nil", s.docValidations, err)
	}
	// The same value as another type is another document.
	c := ap(ns, "c", "rules:\n- to:\n  - operation: {ports: [\"8080\"]}")
	if s, err = load(c); err != nil || s.docValidations != 1 {
		t.Fatalf("c: %d validations, %v", s.docValidations, err)
	}
	cInt := ap(ns, "c", "rules:\n- to:\n  - operation: {ports: [8080]}")
	_, errInt := load(cInt)
	if errInt == nil || !strings.Contains(errInt.Error(), "ports") {
		t.Fatalf("ports as integers: %v, want a rejection naming ports (the memo of the string form must not apply)", errInt)
	}
	bad := ap(ns, "bad", "action: BOGUS\nrules:\n- to:\n  - operation: {methods: [GET]}")
	_, err1 := load(a + bad)
	s, err2 := load(a + bad)
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
		t.Fatalf("invalid document: %v, then %v; want the same rejection twice", err1, err2)
	}
	if !strings.Contains(err1.Error(), "policies.yaml: document 1") || s.docValidations != 1 {
		t.Fatalf("invalid document: %v after %d validations; want it named and validated again", err1, s.docValidations)
	}
	obj, err := manifest.Decode([]byte(strings.TrimSuffix(bad, "---\n")))
	if err != nil {
		t.Fatal(err)
	}
	direct := validateDoc("policies.yaml: document 1", obj)
	if direct == nil || direct.Error() != err1.Error() {
		t.Fatalf("memoized path says %v, validateDoc says %v", err1, direct)
	}
}

// TestOlderReportPolicyElsewhereKeepsShards: the ages in reporting rules are
// ranks within the view, so a new oldest AUDIT policy in one namespace
// recompiles that namespace's shard only, and hits stay oldest first.
func TestOlderReportPolicyElsewhereKeepsShards(t *testing.T) {
	ctx := context.Background()
	nss := []string{"audit-a", "audit-b", "audit-c"}
	seen := map[int]bool{}
	for _, n := range nss {
		seen[shardOf(n, maxShards)] = true
	}
	if len(seen) != len(nss) || seen[shardOf(viewDefault, maxShards)] {
		t.Fatalf("test namespaces share a shard; pick others")
	}
	audit := func(ns, name string, sec int) *secv1.AuthorizationPolicy {
		set := &Set{}
		doc := fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: %s, creationTimestamp: %q}\nspec:\n  action: AUDIT\n  rules:\n  - to:\n    - operation: {methods: [GET]}\n",
			name, ns, time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC).Format(time.RFC3339))
		if _, err := set.AddYAML(name, []byte(doc)); err != nil {
			t.Fatal(err)
		}
		return set.AuthorizationPolicies[0]
	}
	set := &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{audit("audit-a", "p", 10), audit("audit-b", "p", 20), audit("audit-c", "p", 30)}}
	s1, err := Compile(ctx, Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	set.AuthorizationPolicies = append(set.AuthorizationPolicies, audit("audit-c", "old", 0))
	s2, err := CompileNext(ctx, s1, Mesh{}, set, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Compiled != 1 {
		t.Fatalf("an older AUDIT policy in audit-c: %d of %d shards compiled, want 1", s2.Compiled, s2.Shards)
	}
	get := &Request{Namespace: "audit-c", Method: "GET", Path: "/", Host: "x", SrcIP: "10.0.0.1", RemoteIP: "10.0.0.1", DstIP: "10.0.0.2", DstPort: 80}
	v, err := s2.CheckRequest(ctx, get)
	if err != nil || !reflect.DeepEqual(v.Audit, []Hit{{"audit-c/old", 0}, {"audit-c/p", 0}}) {
		t.Fatalf("audit-c: %+v %v, want hits audit-c/old then audit-c/p", v.Audit, err)
	}
	get.Namespace = "audit-a"
	if v, err := s2.CheckRequest(ctx, get); err != nil || !reflect.DeepEqual(v.Audit, []Hit{{"audit-a/p", 0}}) {
		t.Fatalf("audit-a: %+v %v", v.Audit, err)
	}
}

// TestInputKeyReuseMatchesFreshCompile: a shard reused by its inputs
// (shardInputKey, without generating its module) is never stale. Random
// policy sets are changed step by step (policies and PeerAuthentications
// replaced, added, removed, re-aged; mesh settings changed now and then),
// and after every step each shard of the incremental snapshot must carry
// exactly the module a compile from scratch generates; the verdicts of
// random requests must be the same.
func TestInputKeyReuseMatchesFreshCompile(t *testing.T) {
	ctx := context.Background()
	g := authzref.NewGen(20261205)
	base := g.PolicySet()
	mesh := Mesh{RootNamespace: base.Mesh.RootNamespace, TrustDomain: base.Mesh.TrustDomain, TrustDomainAliases: base.Mesh.TrustDomainAliases}
	// Every other AuthorizationPolicy has a UID and resourceVersion, as an
	// API-server object, the others none, as a policy file's (the
	// translation memo, translatememo.go, must not depend on either).
	uids := 0
	stamp := func(list []*secv1.AuthorizationPolicy) []*secv1.AuthorizationPolicy {
		out := make([]*secv1.AuthorizationPolicy, len(list))
		for i, ap := range list {
			if uids++; uids%2 == 0 {
				ap = ap.DeepCopy()
				ap.UID, ap.ResourceVersion = types.UID(fmt.Sprintf("uid-%d", uids)), "1"
			}
			out[i] = ap
		}
		return out
	}
	aps, pas := stamp(base.APs), base.PAs
	var prev *Snapshot
	reusedByInput, reusedTranslations, failedSteps, version := 0, 0, 0, uint64(0)
	check := func(step int, what string) {
		t.Helper()
		version++
		set := &Set{AuthorizationPolicies: aps, PeerAuthentications: pas}
		inc, err := CompileNext(ctx, prev, mesh, set, version)
		if err != nil {
			t.Fatalf("step %d (%s): incremental: %v", step, what, err)
		}
		fresh, err := Compile(ctx, mesh, set, version)
		if err != nil {
			t.Fatalf("step %d (%s): fresh: %v", step, what, err)
		}
		if fresh.Generated != fresh.Shards {
			t.Fatalf("step %d (%s): a compile from scratch generated %d of %d shards", step, what, fresh.Generated, fresh.Shards)
		}
		reusedByInput += inc.Shards - inc.Generated
		reusedTranslations += inc.Policies - inc.Translated
		if len(fresh.Failed) > 0 {
			failedSteps++
		}
		if !reflect.DeepEqual(inc.Warnings, fresh.Warnings) || !reflect.DeepEqual(inc.Failed, fresh.Failed) {
			t.Fatalf("step %d (%s): warnings or failed policies differ from a compile from scratch:\nincremental %q %+v\nfresh       %q %+v",
				step, what, inc.Warnings, inc.Failed, fresh.Warnings, fresh.Failed)
		}
		for i := range fresh.shards {
			f, n := fresh.shards[i], inc.shards[i]
			if (f == nil) != (n == nil) || f != nil && f.key != n.key {
				t.Fatalf("step %d (%s): shard %d differs from a compile from scratch (reused by inputs: %d of %d shards)", step, what, i, inc.Shards-inc.Generated, inc.Shards)
			}
		}
		for j := 0; j < 20; j++ {
			r := refRequest(g.Request())
			got, want := checkBoth(ctx, t, inc, fresh, r)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d (%s) request %+v:\nincremental %+v\nfresh       %+v", step, what, r, got, want)
			}
		}
		prev = inc
	}
	// replace swaps aps[i] for a changed copy (the objects are read-only);
	// an object with a UID keeps it and gets a new resourceVersion, as an
	// update through the API server does.
	replace := func(i int, change func(*secv1.AuthorizationPolicy)) {
		aps = append([]*secv1.AuthorizationPolicy(nil), aps...)
		c := aps[i].DeepCopy()
		change(c)
		if uid := aps[i].UID; uid != "" {
			rv, _ := strconv.Atoi(aps[i].ResourceVersion)
			c.UID, c.ResourceVersion = uid, strconv.Itoa(rv+1)
		}
		aps[i] = c
	}
	for step := 0; step < 140; step++ {
		other := g.PolicySet() // same namespaces and names pool: a source of changed objects
		switch step % 7 {
		case 0: // one policy replaced by another of the same name
			if len(aps) > 0 && len(other.APs) > 0 {
				replace(step%len(aps), func(c *secv1.AuthorizationPolicy) {
					ns, name := c.Namespace, c.Name
					other.APs[0].DeepCopyInto(c)
					c.Namespace, c.Name = ns, name
				})
			}
			check(step, "policy replaced")
		case 1: // policies added, one removed
			aps = append(append([]*secv1.AuthorizationPolicy(nil), aps...), stamp(other.APs)...)
			if len(aps) > 1 {
				aps = append(aps[:1], aps[2:]...)
			}
			check(step, "policies added and removed")
		case 2: // PeerAuthentications added
			pas = append(append([]*secv1.PeerAuthentication(nil), pas...), other.PAs...)
			check(step, "PeerAuthentications added")
		case 3: // a policy re-aged (older than all others)
			if len(aps) > 0 {
				replace(len(aps)-1, func(c *secv1.AuthorizationPolicy) {
					c.CreationTimestamp.Time = c.CreationTimestamp.Add(-240 * time.Hour)
				})
			}
			check(step, "policy re-aged")
		case 4: // nothing changed
			check(step, "nothing changed")
		case 5: // one value's sense flipped: only booleans of the model change
			if len(aps) > 0 {
				i := step % len(aps)
				vals := []string{"cluster.local/ns/a/sa/b", "prefix*"}
				replace(i, func(c *secv1.AuthorizationPolicy) {
					c.Spec.Action = secapi.AuthorizationPolicy_ALLOW
					c.Spec.Rules = []*secapi.Rule{{From: []*secapi.Rule_From{{Source: &secapi.Source{Principals: vals}}}}}
				})
				check(step, "principals")
				replace(i, func(c *secv1.AuthorizationPolicy) {
					c.Spec.Rules = []*secapi.Rule{{From: []*secapi.Rule_From{{Source: &secapi.Source{NotPrincipals: vals}}}}}
				})
				check(step, "notPrincipals")
				replace(i, func(c *secv1.AuthorizationPolicy) {
					c.Spec.Rules = []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Hosts: []string{"*"}}}}}}
				})
				check(step, "hosts *")
				replace(i, func(c *secv1.AuthorizationPolicy) {
					c.Spec.Rules = []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{NotHosts: []string{"*"}}}}}}
				})
				check(step, "notHosts *")
				replace(i, func(c *secv1.AuthorizationPolicy) {
					c.Spec.Rules = []*secapi.Rule{{When: []*secapi.Condition{{Key: "request.unknown", Values: []string{"x"}}}}}
				})
				check(step, "fails closed")
			}
		case 6: // mesh settings, or a whole new set
			if step%14 == 6 {
				// an unchanged policy whose translation depends on the trust-domain bundle
				if len(aps) > 0 {
					replace(0, func(c *secv1.AuthorizationPolicy) {
						c.Spec.Rules = []*secapi.Rule{{From: []*secapi.Rule_From{{Source: &secapi.Source{Principals: []string{"cluster.local/ns/a/sa/b"}}}}}}
					})
					check(step, "principals before the aliases change")
				}
				mesh.TrustDomainAliases = append(mesh.TrustDomainAliases, fmt.Sprintf("alias-%d.td", step))
			} else {
				aps, pas = stamp(other.APs), other.PAs
			}
			check(step, "mesh or whole set")
		}
	}
	if reusedTranslations < 500 || failedSteps == 0 {
		t.Fatalf("%d translations reused, %d steps with failed policies: the test does not exercise the memo", reusedTranslations, failedSteps)
	}
	if reusedByInput < 100 {
		t.Fatalf("only %d shards were reused by their inputs over the steps: the test does not exercise that path", reusedByInput)
	}
}
