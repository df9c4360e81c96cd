package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	secapi "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pod10011 is a Pod ns/name with labels at 10.0.1.1 (webPod's IP), in phase
// phase; terminating sets its deletionTimestamp.
func pod10011(ns, name string, labels map[string]string, phase corev1.PodPhase, terminating bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Status: corev1.PodStatus{PodIP: "10.0.1.1", Phase: phase}}
	if terminating {
		now := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		p.DeletionTimestamp = &now
	}
	return p
}

// TestPodIPClash: two live Pods holding one IP (an IP reused while the
// informer still shows the old Pod Running, e.g. a lost node) whose namespace
// or labels differ. Istio's sidecar knows its own workload (its namespace and
// labels reach istiod in the proxy's node metadata, and istiod's Pod cache
// keeps every Pod of an IP, pilot/pkg/serviceregistry/kube/controller/pod.go
// PodCache.getPodsByIP, never picking one); meshguard can only infer the
// workload from the destination IP, so it cannot know which Pod Envoy
// serves. Picking one by list order (the informer cache's order is not
// fixed) let a plaintext request to a STRICT workload through as the other,
// PERMISSIVE one. The IP is dropped from the index instead: the request is
// decided as one to an unknown destination (Snapshot.undecidable), denied
// wherever the policies in force depend on the workload's labels. Every row
// runs with the Pods in both orders.
func TestPodIPClash(t *testing.T) {
	dbStrict := pa("foo", "db-strict", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: db}}\nmtls: {mode: STRICT}")
	webStrict := pa("foo", "web-strict", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}")
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	running := corev1.PodRunning
	cases := []struct {
		name     string
		policies string
		pods     []*corev1.Pod
		allowed  bool
		reason   string // a substring of the verdict's reason
		mode     string // the verdict's mode when the workload is known
		warn     string // a substring of a snapshot warning ("" : none)
	}{
		// h124_ipclash_test.go: order web,db denied "mTLS required", order db,web allowed PERMISSIVE.
		{"different labels, STRICT on one: ambiguous, denied", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "db-1", db, running, false)},
			false, "10.0.1.1 unknown", "", "10.0.1.1: also used by"},
		{"different namespaces, same labels: ambiguous, denied", webStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("bar", "web-1", web, running, false)},
			false, "10.0.1.1 unknown", "", "10.0.1.1: also used by"},
		{"Pending and Running, different labels: ambiguous, denied", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, corev1.PodPending, false), pod10011("foo", "db-1", db, running, false)},
			false, "10.0.1.1 unknown", "", "10.0.1.1: also used by"},
		{"a third Pod like the first does not bring the IP back", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "db-1", db, running, false),
				pod10011("foo", "web-2", web, running, false)},
			false, "10.0.1.1 unknown", "", "10.0.1.1: also used by"},
		{"ambiguous, no policies: nothing depends on the workload, allowed", "",
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "db-1", db, running, false)},
			true, "", "PERMISSIVE", "10.0.1.1: also used by"},
		{"identical namespace and labels: the IP stays", webStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "web-2", web, running, false)},
			false, "mTLS required", "STRICT", ""},
		{"identical namespace and labels, STRICT elsewhere: the IP stays", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "web-2", web, running, false)},
			true, "", "PERMISSIVE", ""},
		// Today's rule, kept: a running Pod wins over a terminating one.
		{"terminating db, running web: web", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "db-1", db, running, true)},
			true, "", "PERMISSIVE", ""},
		{"terminating web, running db: db", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, true), pod10011("foo", "db-1", db, running, false)},
			false, "mTLS required", "STRICT", ""},
		// Today's rule, kept: a finished Pod is left out (istiod's PodCache.onEvent).
		{"finished db, running web: web", dbStrict,
			[]*corev1.Pod{pod10011("foo", "web-1", web, running, false), pod10011("foo", "db-1", db, corev1.PodSucceeded, false)},
			true, "", "PERMISSIVE", ""},
		{"two running Pods clash over a terminating one: ambiguous", dbStrict,
			[]*corev1.Pod{pod10011("foo", "old-1", web, running, true), pod10011("foo", "web-1", web, running, false),
				pod10011("foo", "db-1", db, running, false)},
			false, "10.0.1.1 unknown", "", "10.0.1.1: also used by"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, rev := range []bool{false, true} {
				pods := append([]*corev1.Pod(nil), c.pods...)
				if rev {
					for i, j := 0, len(pods)-1; i < j; i, j = i+1, j-1 {
						pods[i], pods[j] = pods[j], pods[i]
					}
				}
				s := compileCase(t, Mesh{}, c.policies, pods...)
				v, err := s.Check(context.Background(), envoyRequest(http()))
				if err != nil {
					t.Fatal(err)
				}
				if v.Allowed != c.allowed || !strings.Contains(v.Reason, c.reason) || (c.mode != "" && v.Mode != c.mode) {
					t.Errorf("reversed=%v: got allowed=%v reason=%q mode=%s, want allowed=%v reason ~%q mode %q; warnings %q",
						rev, v.Allowed, v.Reason, v.Mode, c.allowed, c.reason, c.mode, s.Warnings)
				}
				found := false
				for _, w := range s.Warnings {
					if strings.Contains(w, "status.podIP") {
						found = c.warn != "" && strings.Contains(w, c.warn)
						if !found {
							t.Errorf("reversed=%v: unexpected warning %q", rev, w)
						}
					}
				}
				if c.warn != "" && !found {
					t.Errorf("reversed=%v: no warning ~%q in %q", rev, c.warn, s.Warnings)
				}
			}
		})
	}
}

// TestPolicyAgeFullTimeRange: PeerAuthentication age order over the whole
// range of a creationTimestamp, not only the years int64 nanoseconds cover
// (1678-2262). Istio orders by time.Time (pkg/config/model.go
// sortConfigByCreationTime: CreationTimestamp.Compare, then name, then
// namespace) and composes from the oldest mesh, namespace and workload
// PeerAuthentication (pilot/pkg/security/authn/policy_applier.go
// ComposePeerAuthentication: CreationTimestamp.Before, over the configs
// pilot/pkg/model/authentication.go gathers for the workload).
func TestPolicyAgeFullTimeRange(t *testing.T) {
	const y2026 = "2026-01-01T00:00:00Z"
	cases := []struct {
		name, pols string
		allowed    bool
	}{
		// h124_scratch_test.go "1600 timestamp is oldest": meshguard picked foo/new.
		{"1600 PERMISSIVE older than 2026 STRICT", pa("foo", "old", "1600-01-01T00:00:00Z", "mtls: {mode: PERMISSIVE}") +
			pa("foo", "new", y2026, "mtls: {mode: STRICT}"), true},
		{"1600 STRICT older than 2026 PERMISSIVE", pa("foo", "old", "1600-01-01T00:00:00Z", "mtls: {mode: STRICT}") +
			pa("foo", "new", y2026, "mtls: {mode: PERMISSIVE}"), false},
		{"2026 PERMISSIVE older than 2300 STRICT", pa("foo", "z-old", y2026, "mtls: {mode: PERMISSIVE}") +
			pa("foo", "a-new", "2300-01-01T00:00:00Z", "mtls: {mode: STRICT}"), true},
		{"2026 STRICT older than 2300 PERMISSIVE", pa("foo", "z-old", y2026, "mtls: {mode: STRICT}") +
			pa("foo", "a-new", "2300-01-01T00:00:00Z", "mtls: {mode: PERMISSIVE}"), false},
		{"1600 vs 1601, workload level", pa("foo", "z-old", "1600-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}") +
			pa("foo", "a-new", "1601-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}"), false},
		{"same 1600 time: tie by name (a wins)", pa("foo", "b", "1600-01-01T00:00:00Z", "mtls: {mode: STRICT}") +
			pa("foo", "a", "1600-01-01T00:00:00Z", "mtls: {mode: PERMISSIVE}"), true},
		{"same 2300 time: tie by name (a wins)", pa("foo", "b", "2300-01-01T00:00:00Z", "mtls: {mode: PERMISSIVE}") +
			pa("foo", "a", "2300-01-01T00:00:00Z", "mtls: {mode: STRICT}"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{}, c.pols, webPod())
			for _, via := range []string{"attributes", "CheckRequest"} {
				var v Verdict
				var err error
				if via == "attributes" {
					v, err = s.CheckRequest(context.Background(), http())
				} else {
					v, err = s.Check(context.Background(), envoyRequest(http()))
				}
				if err != nil {
					t.Fatal(err)
				}
				if v.Allowed != c.allowed {
					t.Errorf("%s: got allowed=%v (%s, mode %s by %s), want %v; warnings %q", via, v.Allowed, v.Reason, v.Mode, v.ModePolicy, c.allowed, s.Warnings)
				}
			}
		})
	}
}

// TestTypedNullPortLevelMtls: a portLevelMtls entry whose value is null is
// rejected on the raw paths (AddYAML, DecodeStored); a Set built in code
// with a nil entry gets the same verdict (the JSON round trip of the typed
// value used to turn nil into {}, which validates).
func TestTypedNullPortLevelMtls(t *testing.T) {
	raw := pa("foo", "w", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nportLevelMtls: {\"8080\": null}")
	_, rawErr := (&Set{}).AddYAML("x", []byte(raw))
	if rawErr == nil {
		t.Fatal("AddYAML accepted a null portLevelMtls entry")
	}
	p := &secv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "foo"}}
	p.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "web"}}
	p.Spec.PortLevelMtls = map[uint32]*secapi.PeerAuthentication_MutualTLS{8080: nil}
	got := validateTyped("security.istio.io/v1", "PeerAuthentication", p)
	if got == "" || !strings.Contains(got, "spec.portLevelMtls") || !strings.Contains(rawErr.Error(), got) {
		t.Errorf("validateTyped = %q, want the raw path's verdict (%v)", got, rawErr)
	}
	// A null beside a real entry is pruned on the raw paths and the object
	// is valid: so is the typed value.
	mixed := pa("foo", "w", "2026-01-01T00:00:00Z", "selector: {matchLabels: {app: web}}\nportLevelMtls: {\"8080\": null, \"9090\": {mode: STRICT}}")
	if _, err := (&Set{}).AddYAML("x", []byte(mixed)); err != nil {
		t.Fatalf("AddYAML, null beside a real entry: %v", err)
	}
	for name, ports := range map[string]map[uint32]*secapi.PeerAuthentication_MutualTLS{
		"null beside a real entry": {8080: nil, 9090: {Mode: secapi.PeerAuthentication_MutualTLS_STRICT}},
		"one real entry":           {8080: {Mode: secapi.PeerAuthentication_MutualTLS_DISABLE}},
	} {
		ok := p.DeepCopy()
		ok.Spec.PortLevelMtls = ports
		if r := validateTyped("security.istio.io/v1", "PeerAuthentication", ok); r != "" {
			t.Errorf("%s: valid typed PeerAuthentication refused: %q", name, r)
		}
	}

	// Through Compile and Check: the stored policy fails closed for the
	// workload it selects.
	set := &Set{PeerAuthentications: []*secv1.PeerAuthentication{p}, Pods: []*corev1.Pod{webPod()}}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Check(context.Background(), envoyRequest(http(from(pFoo))))
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || !strings.Contains(v.Reason, "PeerAuthentication foo/w cannot be evaluated") || !strings.Contains(v.Reason, "spec.portLevelMtls") {
		t.Errorf("got %+v, want a fail-closed denial naming foo/w and spec.portLevelMtls", v)
	}
}
