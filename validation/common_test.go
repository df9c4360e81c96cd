package validation

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/internal/manifest"
)

// check runs one helper and compares error/warning presence and an optional message substring.
func check(t *testing.T, name string, run func(*field.Path, *Findings), wantErr, wantWarn bool, substr string) {
	t.Helper()
	var f Findings
	run(field.NewPath("spec", "x"), &f)
	if got := len(f.Errors) > 0; got != wantErr {
		t.Errorf("%s: errors=%v, want error=%v", name, f.Errors, wantErr)
	}
	if got := len(f.Warnings) > 0; got != wantWarn {
		t.Errorf("%s: warnings=%v, want warning=%v", name, f.Warnings, wantWarn)
	}
	all := append(append(field.ErrorList{}, f.Errors...), f.Warnings...)
	if substr != "" {
		found := false
		for _, e := range all {
			if strings.Contains(e.Error(), substr) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no finding contains %q: %v", name, substr, all)
		}
	}
	for _, e := range all {
		if !strings.HasPrefix(e.Field, "spec.x") {
			t.Errorf("%s: finding path %q does not start at the given path", name, e.Field)
		}
	}
}

func TestValidateFQDNAndWildcard(t *testing.T) {
	cases := []struct {
		host             string
		fqdnErr, wildErr bool
	}{
		{"reviews", false, false},
		{"reviews.default.svc.cluster.local", false, false},
		{"Reviews.Example.COM.", false, false},
		{"*.example.com", true, false},
		{"*", true, false},
		{"*foo.example.com", true, false},
		{"*-foo.example.com", true, false},
		{"foo.*.com", true, true},
		{"", true, true},
		{"1.2.3.4", true, true},
		{"a..b", true, true},
		{"-a.com", true, true},
		{strings.Repeat("a", 64) + ".com", true, true},
		{strings.Repeat("a.", 128) + "com", true, true},
		{"under_score.com", true, true},
	}
	for _, c := range cases {
		check(t, "fqdn "+c.host, func(p *field.Path, f *Findings) { validateFQDN(p, c.host, f) }, c.fqdnErr, false, "")
		check(t, "wildcard "+c.host, func(p *field.Path, f *Findings) { validateWildcardDomain(p, c.host, f) }, c.wildErr, false, "")
	}
}

func TestValidatePortAndName(t *testing.T) {
	for _, c := range []struct {
		port uint32
		err  bool
	}{{0, true}, {1, false}, {65535, false}, {65536, true}} {
		check(t, "port", func(p *field.Path, f *Findings) { validatePort(p, c.port, f) }, c.err, false, "")
	}
	for _, c := range []struct {
		name string
		err  bool
	}{{"http", false}, {"http-web", false}, {"HTTP", false}, {"", true}, {"http_web", true}, {"-x", true}, {strings.Repeat("a", 64), true}} {
		check(t, "port name "+c.name, func(p *field.Path, f *Findings) { validatePortName(p, c.name, f) }, c.err, false, "")
	}
}

func TestValidateLabels(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		err    bool
		substr string
	}{
		{"ok", map[string]string{"app": "reviews", "example.com/tier": "", "version": "v1.2_3"}, false, ""},
		{"bad key", map[string]string{"bad key!": "x"}, true, `invalid tag key: "bad key!"`},
		{"empty key", map[string]string{"": "x"}, true, "must not be empty"},
		{"long value (stricter than Istio)", map[string]string{"app": strings.Repeat("v", 64)}, true, "invalid tag value"},
		{"bad value", map[string]string{"app": "a b"}, true, "invalid tag value"},
	}
	for _, c := range cases {
		check(t, c.name, func(p *field.Path, f *Findings) { validateLabels(p, c.labels, f) }, c.err, false, c.substr)
	}
}

func TestValidateWorkloadSelector(t *testing.T) {
	cases := []struct {
		name      string
		sel       *typev1beta1.WorkloadSelector
		err, warn bool
		substr    string
	}{
		{"nil", nil, false, false, ""},
		{"ok", &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "x"}}, false, false, ""},
		{"no labels", &typev1beta1.WorkloadSelector{}, false, true, "without labels"},
		{"wildcard value", &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "x*"}}, true, false, `wildcard is not supported in selector: "app=x*"`},
		{"wildcard key", &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"a*": "x"}}, true, false, "wildcard"},
		{"empty key", &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"": "x"}}, true, false, "empty key"},
	}
	for _, c := range cases {
		check(t, c.name, func(p *field.Path, f *Findings) { validateWorkloadSelector(p, c.sel, f) }, c.err, c.warn, c.substr)
	}
}

func TestValidateDuration(t *testing.T) {
	cases := []struct {
		d      *durationpb.Duration
		err    bool
		substr string
	}{
		{durationpb.New(time.Second), false, ""},
		{durationpb.New(time.Millisecond), false, ""},
		{durationpb.New(0), true, "greater than 1ms"},
		{durationpb.New(500 * time.Microsecond), true, "greater than 1ms"},
		{durationpb.New(1500 * time.Microsecond), true, "ms precision"},
		{&durationpb.Duration{Seconds: 1, Nanos: -5}, true, "invalid duration"},
		{nil, false, ""},
	}
	for _, c := range cases {
		check(t, "duration", func(p *field.Path, f *Findings) { validateDuration(p, c.d, f) }, c.err, false, c.substr)
	}
}

func TestValidateIPAndCIDR(t *testing.T) {
	for _, c := range []struct {
		s           string
		cidrErr, ip bool
	}{
		{"10.0.0.1", false, true}, {"10.0.0.0/8", false, false}, {"::1", false, true}, {"2001:db8::/32", false, false},
		{"10.0.0.0/33", true, false}, {"foo", true, false}, {"", true, false}, {"1.2.3", true, false},
	} {
		check(t, "cidr "+c.s, func(p *field.Path, f *Findings) { validateCIDR(p, c.s, f) }, c.cidrErr, false, "")
		check(t, "ip "+c.s, func(p *field.Path, f *Findings) { validateIPAddress(p, c.s, f) }, !c.ip, false, "")
	}
}

func TestValidateNamespaceHost(t *testing.T) {
	cases := []struct {
		h                string
		sidecar, gateway bool // want error
	}{
		{"*/*", false, false},
		{"./reviews.default.svc.cluster.local", false, false},
		{"istio-system/*.example.com", false, false},
		{"~/*", false, true},
		{"~/foo.com", false, true},
		{"*/foo", true, true},
		{"foo.com", true, false},
		{"ns/1.2.3.4", true, false},
		{"Bad_NS/foo.com", true, true},
		{"ns/foo*.com", true, true},
		{"ns/", true, true},
		{"/foo.com", true, true},
	}
	for _, c := range cases {
		check(t, "sidecar "+c.h, func(p *field.Path, f *Findings) { validateNamespaceHost(p, c.h, f) }, c.sidecar, false, "")
		check(t, "gateway "+c.h, func(p *field.Path, f *Findings) { validateGatewayNamespaceHost(p, c.h, f) }, c.gateway, false, "")
	}
}

func TestValidateExportTo(t *testing.T) {
	cases := []struct {
		name string
		list []string
		se   bool
		err  bool
	}{
		{"empty", nil, false, false},
		{"dot and star ok alone", []string{"."}, false, false},
		{"namespaces", []string{"a", "b"}, false, false},
		{"star with others", []string{"*", "a"}, false, true},
		{"dot duplicates own namespace", []string{".", "ns"}, false, true},
		{"duplicate", []string{"a", "a"}, false, true},
		{"tilde on VS", []string{"~"}, false, true},
		{"tilde on SE alone", []string{"~"}, true, false},
		{"tilde on SE with others", []string{"~", "a"}, true, true},
		{"bad name", []string{"Bad_NS"}, false, true},
	}
	for _, c := range cases {
		check(t, c.name, func(p *field.Path, f *Findings) { validateExportTo(p, c.list, "ns", c.se, f) }, c.err, false, "")
	}
}

func TestFindingsAndPrintable(t *testing.T) {
	var f Findings
	f.Error(field.NewPath("spec", "a"), 5, "bad")
	f.Warn(field.NewPath("spec", "b"), nil, "hmm")
	f.Required(field.NewPath("spec", "c"), "needed")
	var g Findings
	g.Add(f)
	if len(g.Errors) != 2 || len(g.Warnings) != 1 || !g.HasErrors() {
		t.Fatalf("Add: got %d errors %d warnings", len(g.Errors), len(g.Warnings))
	}
	if got := g.Errors[0].Error(); got != "spec.a: Invalid value: 5: bad" {
		t.Errorf("rendering: %q", got)
	}
	if got := g.Errors[1].Error(); got != "spec.c: Required value: needed" {
		t.Errorf("rendering: %q", got)
	}
}

func TestSecondsForm(t *testing.T) {
	for in, want := range map[string]string{"1500ms": "1.5s", "1m": "60s", "5s": "5s", "0.5s": "0.5s", "0s": "0s", "1h2m3.004s": "3723.004s", "bogus": "bogus", "-500ms": "-0.5s"} {
		if got := secondsForm(in); got != want {
			t.Errorf("secondsForm(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeObject(t *testing.T) {
	for in, wantKind := range map[string]string{
		`{"kind":"A","apiVersion":"v1"}`: "A",
		"{kind: B, apiVersion: v1}":      "B",
		"kind: C\napiVersion: v1\n":      "C",
	} {
		obj, err := manifest.Decode([]byte(in))
		if err != nil || obj["kind"] != wantKind {
			t.Errorf("decodeObject(%q) = %v, %v; want kind %s", in, obj, err, wantKind)
		}
	}
	if _, err := manifest.Decode([]byte("[1, 2]")); err == nil {
		t.Error("a list must be rejected")
	}
	if obj, err := manifest.Decode([]byte(`{"n": 5}`)); err != nil || obj["n"] != int64(5) {
		t.Errorf("integers must decode as int64 like the API server: %#v %v", obj["n"], err)
	}
}
