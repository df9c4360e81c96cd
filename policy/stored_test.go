package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	"k8s.io/apimachinery/pkg/util/json"
)

// storedJSON is an object as the API server returns it: metadata it fills
// in, managedFields and status beside the spec.
func storedJSON(t *testing.T, kind, name, spec string) map[string]any {
	t.Helper()
	doc := fmt.Sprintf(`{"apiVersion": "security.istio.io/v1beta1", "kind": %q,
	  "metadata": {"name": %q, "namespace": "foo", "uid": "u-1", "resourceVersion": "7", "generation": 1,
	    "creationTimestamp": "2026-12-05T00:00:00Z",
	    "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "security.istio.io/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
	  "spec": %s, "status": {}}`, kind, name, spec)
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecodeStoredKeepsWhatTheTypedDecoderDrops: a stored policy with a
// field meshguard's API version does not know (a newer CRD's) fails closed
// naming the field; decoded only into its typed form, which drops the field
// as Istio's client does, the same ALLOW would admit more than written.
func TestDecodeStoredKeepsWhatTheTypedDecoderDrops(t *testing.T) {
	const allowSleep = `{"selector": {"matchLabels": {"app": "web"}}, "action": "ALLOW",
	  "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/foo/sa/sleep"]%s}}]}]}`
	compile := func(set *Set) *Snapshot {
		s, err := Compile(context.Background(), Mesh{}, set, 1)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	allowed := func(s *Snapshot, r *Request) Verdict {
		v, err := s.CheckRequest(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	known, err := DecodeStored("AuthorizationPolicy", storedJSON(t, "AuthorizationPolicy", "allow-sleep", fmt.Sprintf(allowSleep, "")))
	if err != nil || known.Invalid != "" {
		t.Fatalf("a valid stored policy: %v, Invalid %q", err, known.Invalid)
	}
	ap := known.Object.(*secv1.AuthorizationPolicy)
	if ap.ManagedFields != nil || ap.UID != "u-1" || ap.ResourceVersion != "7" || len(ap.Spec.Rules) != 1 {
		t.Fatalf("decoded %+v: want managedFields dropped, the rest kept", ap)
	}
	set := &Set{}
	set.AddStored(known)
	s := compile(set)
	if v := allowed(s, http(from(pFoo))); !v.Allowed {
		t.Errorf("sleep: %+v, want allowed", v)
	}
	if v := allowed(s, http(from(pBar))); v.Allowed {
		t.Errorf("api from bar: %+v, want denied", v)
	}

	future, err := DecodeStored("AuthorizationPolicy", storedJSON(t, "AuthorizationPolicy", "allow-sleep", fmt.Sprintf(allowSleep, `, "futureField": ["x"]`)))
	if err != nil {
		t.Fatal(err)
	}
	const field = "spec.rules[0].from[0].source.futureField"
	if !strings.Contains(future.Invalid, field) {
		t.Fatalf("Invalid %q, want it to name %s", future.Invalid, field)
	}
	set = &Set{}
	set.AddStored(future)
	v := allowed(compile(set), http(from(pFoo)))
	if v.Allowed || v.Rule != FailClosedRule || !strings.Contains(v.Reason, field) {
		t.Errorf("verdict %+v, want a fail-closed denial naming %s", v, field)
	}
	// The typed form alone has lost the field: it would allow.
	typedOnly := &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{future.Object.(*secv1.AuthorizationPolicy)}}
	if v := allowed(compile(typedOnly), http(from(pFoo))); !v.Allowed {
		t.Fatalf("typed form: %+v; the test no longer shows the dropped field", v)
	}

	// Stored, but not decodable by istio.io/api (a port key with a leading
	// zero): still named, so it fails closed instead of vanishing.
	pa, err := DecodeStored("PeerAuthentication", storedJSON(t, "PeerAuthentication", "ports",
		`{"selector": {"matchLabels": {"app": "web"}}, "portLevelMtls": {"080": {"mode": "DISABLE"}}}`))
	if err != nil || !strings.Contains(pa.Invalid, "spec.portLevelMtls[080]") || pa.Object.GetName() != "ports" || pa.Object.GetNamespace() != "foo" {
		t.Fatalf("PeerAuthentication: %v, %+v", err, pa)
	}
	set = &Set{}
	set.AddStored(pa)
	if v := allowed(compile(set), http(from(pFoo))); v.Allowed || v.Rule != FailClosedRule {
		t.Errorf("undecodable PeerAuthentication: %+v, want a fail-closed denial", v)
	}

	if _, err := DecodeStored("AuthorizationPolicy", storedJSON(t, "PeerAuthentication", "x", `{}`)); err == nil {
		t.Error("a PeerAuthentication decoded as an AuthorizationPolicy")
	}
}
