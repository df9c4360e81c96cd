package authzref

import (
	"fmt"
	"testing"

	secapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
)

// raSets draws RequestAuthentications writing or removing the generator's
// header names, in the namespaces and with the selectors its policies use.
func (g *Gen) raSet() []*secv1.RequestAuthentication {
	var out []*secv1.RequestAuthentication
	for i := range g.r.Intn(3) {
		ra := &secv1.RequestAuthentication{}
		ra.Name, ra.Namespace = fmt.Sprintf("ra-%d", i), g.pick([]string{"foo", "bar", Root})
		switch {
		case g.chance(0.3):
			ra.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: labelSels[g.r.Intn(len(labelSels))]}
		case g.chance(0.1):
			ra.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}
		}
		rule := &secapi.JWTRule{Issuer: "https://issuer.example.com", ForwardOriginalToken: g.chance(0.5)}
		if g.chance(0.6) {
			rule.OutputClaimToHeaders = []*secapi.ClaimToHeader{{Header: g.pick(headerNames), Claim: "groups"}}
		}
		if g.chance(0.2) {
			rule.OutputPayloadToHeader = g.pick(headerNames)
		}
		if g.chance(0.3) {
			rule.FromHeaders = []*secapi.JWTHeader{{Name: g.pick(headerNames)}}
		}
		ra.Spec.JwtRules = []*secapi.JWTRule{rule}
		out = append(out, ra)
	}
	return out
}

// TestReferenceJWTHeaders: meshguard agrees with the reference on requests
// whose JWT is unknown (meshguard.io/no-metadata), under generated
// RequestAuthentications: Istio's verdict, or a denial where an applying
// policy matches the JWT or a header jwt_authn changes. Both verdicts must
// occur, and some denials must come from the headers alone.
func TestReferenceJWTHeaders(t *testing.T) {
	g := NewGen(*seedFlag + 7)
	var cases, allowed, byHeader, bad int
	for range 150 {
		s, ras := g.PolicySet(), g.raSet()
		snap, err := meshguardSnapshotRA(s, ras)
		if err != nil {
			t.Fatalf("meshguard rejected a valid generated set: %v", err)
		}
		for range reqsPerSet {
			r := g.Request()
			r.JWTUnknown = !r.TCP // the extension is a per-route HTTP setting
			cases++
			ref := Evaluate(s.Mesh, s.APs, s.PAs, r)
			if ref.Status != 400 && jwtUnknownDenies(s.Mesh, s.APs, ras, r) {
				if ref.Allowed && !jwtUnknownDenies(s.Mesh, s.APs, nil, r) {
					byHeader++
				}
				ref = Verdict{Status: 403, Reason: "JWT or a header jwt_authn changes unknown, matched on by a policy in force (fail closed)"}
			}
			mg, err := meshguardCheck(snap, s.Mesh, r)
			if err != nil {
				t.Fatal(err)
			}
			if ref.Allowed {
				allowed++
			}
			if !agree(ref, mg) {
				bad++
				if bad <= 5 {
					t.Errorf("disagreement:\n%s  RequestAuthentications: %v\n  reference: %s\n  meshguard: %s", Case{Set: s, Req: r}.Format(), ras, show(ref), show(mg))
				}
			}
		}
	}
	t.Logf("%d cases, %d allowed by the reference, %d denied for a jwt_authn header alone, %d disagreements", cases, allowed, byHeader, bad)
	if allowed == 0 || allowed == cases || byHeader == 0 {
		t.Errorf("generator bias: %d allowed, %d denied by a header alone of %d; want every kind", allowed, byHeader, cases)
	}
}
