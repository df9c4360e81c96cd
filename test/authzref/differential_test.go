package authzref

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

const (
	seed        = 20261204
	sets        = 500
	reqsPerSet  = 20
	maxClasses  = 30               // distinct disagreement classes printed
	shrinkTime  = 30 * time.Second // budget for shrinking
	minAllowPct = 15
)

// Longer runs, other seeds: go test ./test/authzref -run TestDifferential
// -args -authzref.seed=N -authzref.sets=M
var (
	seedFlag = flag.Int64("authzref.seed", seed, "TestDifferential: the generator's seed")
	setsFlag = flag.Int("authzref.sets", sets, "TestDifferential: policy sets drawn, "+fmt.Sprint(reqsPerSet)+" requests each")
)

func agree(ref, mg Verdict) bool {
	if (ref.Status == 400) != (mg.Status == 400) {
		return false
	}
	return ref.Allowed == mg.Allowed
}

func show(v Verdict) string {
	if v.Status == 400 {
		return "400 bad request (" + v.Reason + ")"
	}
	if v.Allowed {
		return "ALLOW (" + v.Reason + ")"
	}
	return fmt.Sprintf("DENY %d (%s)", v.Status, v.Reason)
}

// runCase evaluates a case on both sides; ok=false when meshguard refused
// the policy set or failed internally.
func runCase(c Case) (ref, mg Verdict, err error) {
	snap, err := meshguardSnapshot(c.Set)
	if err != nil {
		return ref, mg, fmt.Errorf("meshguard rejected the policy set: %w", err)
	}
	mg, err = meshguardCheck(snap, c.Set.Mesh, c.Req)
	if err != nil {
		return ref, mg, fmt.Errorf("meshguard Check: %w", err)
	}
	return Evaluate(c.Set.Mesh, c.Set.APs, c.Set.PAs, c.Req), mg, nil
}

// TestDifferential compares meshguard's verdicts with the reference on
// random policy sets and requests (fixed seed), and shrinks each
// disagreement to a minimal case.
func TestDifferential(t *testing.T) {
	start := time.Now()
	g := NewGen(*seedFlag)
	var cases, allowed, bad int
	var failing []Case
	sni := map[string]int{}   // the connection.sni paths exercised (sniPath)
	proxied := map[bool]int{} // requests behind PROXY protocol, by whether a policy in force reads source.ip
	for range *setsFlag {
		s := g.PolicySet()
		snap, err := meshguardSnapshot(s)
		if err != nil {
			t.Errorf("meshguard rejected a valid generated policy set: %v\n%s", err, Case{Set: s}.Format())
			continue
		}
		for range reqsPerSet {
			r := g.Request()
			cases++
			ref := Evaluate(s.Mesh, s.APs, s.PAs, r)
			mg, err := meshguardCheck(snap, s.Mesh, r)
			if err != nil {
				t.Fatalf("meshguard Check: %v\n%s", err, Case{Set: s, Req: r}.Format())
			}
			if ref.Allowed {
				allowed++
			}
			if p := sniPath(s, r); p != "" {
				sni[p]++
			}
			if behindProxyProtocol(s.Mesh, r) {
				proxied[srcIPPolicyInForce(s.Mesh, s.APs, r.Dest)]++
			}
			if !agree(ref, mg) {
				bad++
				failing = append(failing, Case{Set: s, Req: r}.Clone())
			}
		}
	}
	t.Logf("seed %d: %d cases in %v: %d allowed by the reference, %d disagreements", *seedFlag, cases, time.Since(start).Round(time.Millisecond), allowed, bad)
	if pct := 100 * allowed / cases; pct < minAllowPct || pct > 100-minAllowPct {
		t.Errorf("generator bias off: %d%% of cases allowed; want both verdicts common", pct)
	}
	t.Logf("connection.sni paths under a policy matching on it: %v", sni)
	for _, p := range sniPaths {
		if sni[p] == 0 && *setsFlag >= sets { // a shorter run may miss one
			t.Errorf("no case took the connection.sni path %q under a policy matching on it; want every one exercised", p)
		}
	}
	t.Logf("requests behind PROXY protocol, by a policy in force reading source.ip: %v", proxied)
	if (proxied[true] == 0 || proxied[false] == 0) && *setsFlag >= sets {
		t.Errorf("requests behind PROXY protocol: %v; want some under a policy reading source.ip and some not", proxied)
	}
	seen := map[string]bool{}
	shrinkStart := time.Now()
	for i, c := range failing {
		if len(seen) >= maxClasses || time.Since(shrinkStart) > shrinkTime {
			t.Errorf("%d disagreements not shrunk (limit reached)", len(failing)-i)
			break
		}
		ref0, mg0, _ := runCase(c)
		want := show(ref0)[:4] + "/" + show(mg0)[:4]
		min := Shrink(c, func(c Case) bool {
			if !c.Set.Valid() {
				return false
			}
			ref, mg, err := runCase(c)
			return err == nil && !agree(ref, mg) && show(ref)[:4]+"/"+show(mg)[:4] == want
		})
		class := min.Class() + " " + want
		if seen[class] {
			continue
		}
		seen[class] = true
		ref, mg, _ := runCase(min)
		t.Errorf("disagreement class %s, minimal case:\n%s  reference (Istio semantics): %s\n  meshguard:                  %s", class, min.Format(), show(ref), show(mg))
	}
}

// sniPaths: how a CheckRequest carries the SNI (or not), each of which the
// differential test must exercise under a policy matching on connection.sni.
var sniPaths = []string{"tls_session", "TCP destination.service", "unknown: SIMPLE TLS", "unknown: mTLS",
	"unknown: tls-unknown extension", "plaintext"}

// sniPath names r's path among sniPaths when a policy in force on its
// workload matches on connection.sni, else "".
func sniPath(s Set, r Request) string {
	if !sniPolicyInForce(s.Mesh, s.APs, r.Dest) {
		return ""
	}
	tls := r.TLS || r.Principal != ""
	switch {
	case tls && r.TLSSession:
		return "tls_session"
	case r.TCP && r.SNI != "":
		return "TCP destination.service"
	case r.Principal != "":
		return "unknown: mTLS"
	case tls:
		return "unknown: SIMPLE TLS"
	case r.TLSUnknown:
		return "unknown: tls-unknown extension"
	default:
		return "plaintext"
	}
}
