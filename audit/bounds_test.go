package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/orgrules"
)

// TestReportsBounded: 8,000 violations in one namespace (4,000
// VirtualServices with two findings each) give a report etcd takes: errors
// listed first, the rest counted in the summary and the omitted annotation.
func TestReportsBounded(t *testing.T) {
	var vs []Violation
	for i := range 4000 {
		ref := ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: fmt.Sprintf("vs-%d", i), UID: fmt.Sprintf("uid-%d", i)}
		vs = append(vs,
			Violation{Object: ref, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Warning, Field: "spec.gateways[0]",
				Message: "Referenced gateway not found: \"shop/missing-gateway-with-a-long-name\""},
			Violation{Object: ref, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Field: "spec.http[0].route[0].destination.host",
				Message: "Referenced host not found: \"missing-host.shop.svc.cluster.local\""})
	}
	r := Reports(vs, time.Unix(1000, 0))["shop"]
	b, err := json.Marshal(r.Object)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 3<<19 { // 1.5 MiB
		t.Fatalf("report of %d bytes: over etcd's object limit", len(b))
	}
	results := r.Object["results"].([]any)
	omitted, _ := strconv.Atoi(r.GetAnnotations()[OmittedAnnotation])
	if omitted == 0 || len(results)+omitted != len(vs) {
		t.Errorf("%d results listed, %d omitted, of %d", len(results), omitted, len(vs))
	}
	if s := r.Object["summary"].(map[string]any); s["fail"] != int64(4000) || s["warn"] != int64(4000) {
		t.Errorf("summary %v: want every violation counted", s)
	}
	if first := results[0].(map[string]any); first["result"] != "fail" {
		t.Errorf("first result %v: errors come first", first["result"])
	}
	if small := Reports(vs[:2], time.Unix(1000, 0))["shop"]; small.GetAnnotations()[OmittedAnnotation] != "" {
		t.Errorf("a small report carries %s", OmittedAnnotation)
	}
}

// TestReportsBoundedEscapedMessages: a report's size is its JSON's, escapes
// included: messages of quotes, "<" or control characters (a rule printing
// json.marshal(input.object)) take up to six bytes a character there, and
// must not make a report etcd refuses.
func TestReportsBoundedEscapedMessages(t *testing.T) {
	for _, unit := range []string{`"`, "<", "\x01"} {
		var vs []Violation
		for i := range 4 {
			ref := ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: fmt.Sprintf("vs-%d", i)}
			vs = append(vs, Violation{Object: ref, Code: analysis.OrgRule, Rule: "OrganisationRule", Level: analysis.Error, Message: strings.Repeat(unit, 150_000)})
		}
		r := Reports(vs, time.Unix(1000, 0))["shop"]
		b, err := json.Marshal(r.Object)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxReportBytes+4096 {
			t.Errorf("messages of %q: report of %d bytes, over MaxReportBytes (%d)", unit, len(b), MaxReportBytes)
		}
		listed := len(r.Object["results"].([]any))
		if omitted, _ := strconv.Atoi(r.GetAnnotations()[OmittedAnnotation]); listed+omitted != len(vs) || listed == 0 {
			t.Errorf("messages of %q: %d listed, %d omitted, of %d", unit, listed, omitted, len(vs))
		}
	}
}

// TestEventNoteBounded: an Event's note stays within the API server's 1,024
// bytes, cut at a character boundary.
func TestEventNoteBounded(t *testing.T) {
	for _, s := range []string{"short", strings.Repeat("é", 700), strings.Repeat("x", 1024), strings.Repeat("x", 1023) + "é"} {
		n := EventNote(s)
		if len(n) > maxEventNote || !utf8.ValidString(n) || (len(s) <= maxEventNote) != (n == s) {
			t.Errorf("EventNote(%d bytes) = %d bytes, valid UTF-8 %v", len(s), len(n), utf8.ValidString(n))
		}
	}
}

// TestRunSkippedUntilRulesReady: while the organisation rules have not
// loaded, a run touches nothing (here: no API client at all), so the
// reports keep their findings instead of losing the rules' ones.
func TestRunSkippedUntilRulesReady(t *testing.T) {
	a := &Auditor{Interval: time.Minute, Log: logr.Discard(), RulesReady: func() error { return errors.New("not loaded") }}
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("skipped run: %v", err)
	}
}

// TestSkippedRunRetriedOnceRulesLoad: a run skipped for the organisation
// rules is tried again within rulesRetry, not an Interval (10 min in the
// chart) later: the leader's first run usually comes before the rules'
// ConfigMaps are listed.
func TestSkippedRunRetriedOnceRulesLoad(t *testing.T) {
	defer func(d time.Duration) { rulesRetry = d }(rulesRetry)
	rulesRetry = 10 * time.Millisecond
	var calls atomic.Int32
	a := &Auditor{Interval: time.Hour, Log: logr.Discard(), RulesReady: func() error {
		calls.Add(1)
		return errors.New("not loaded")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n < 4 {
		t.Errorf("rules checked %d times in 500ms with a 10ms retry: the skipped run waited for the hourly tick", n)
	}
}

// TestRuleEvaluationBounded: a rule that would run for minutes is cut at
// orgrules.EvalTimeout and becomes the object's error.
func TestRuleEvaluationBounded(t *testing.T) {
	defer func(d time.Duration) { orgrules.EvalTimeout = d }(orgrules.EvalTimeout)
	orgrules.EvalTimeout = 200 * time.Millisecond
	rules, err := orgrules.Compile(context.Background(), []orgrules.Module{{Name: "slow.rego",
		Source: "package meshguard.validation\ndeny contains \"n\" if { some i in numbers.range(1, 100000000); i < 0 }\n"}})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := Check(context.Background(), Snapshot{Objects: []Object{object(t, "u-dr", reviewsDR)}}, rules)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(vs, func(v Violation) bool {
		return v.Code == analysis.OrgRule && v.RuleError && strings.Contains(v.Message, "did not finish within 200ms")
	}) {
		t.Errorf("violations %+v, want the timeout as the object's MG0001 error", vs)
	}
}
