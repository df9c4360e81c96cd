package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/test/binary"
	"github.com/meshguard/meshguard/webhook"
)

// TestArgsAcceptedByBinary builds meshguard and lets its own flag parser
// check every command line the packagings render: `serve <args> --help`
// fails on an unknown flag or a value of the wrong type, so the manifests
// cannot drift from the binary.
func TestArgsAcceptedByBinary(t *testing.T) {
	t.Parallel() // the slow two (a build, a control plane) overlap
	bin, err := binary.Path()
	if err != nil {
		t.Fatal(err)
	}
	ps := append(packagings(), helmPackaging("self", "", "--set", "authz.enabled=false", "--set", "serviceName=mg",
		"--set", "webhooks.injection.enabled=false", "--set", "webhooks.validation.enabled=false"),
		helmPackaging("cert-manager", "", "--set", "istioConfig.namespace=istio-system"))
	for _, p := range ps {
		t.Run(p.name, func(t *testing.T) {
			args := parse(t, p.render(t)).deployment(t).Spec.Template.Spec.Containers[0].Args
			out, err := run(t, bin, append(args, "--help")...)
			if err != nil {
				t.Fatalf("meshguard rejects the rendered command line %v: %v", args, err)
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("meshguard %v --help printed no usage:\n%s", args, out)
			}
			checkArgsWithBinaryOptions(t, args)
		})
	}
}

// checkArgsWithBinaryOptions parses a rendered command line with the flag
// sets of the binary's own options and runs their checks, cross-flag ones
// included, that `serve --help` does not reach: certs.Setup validates the
// certificate options (--cert-renew-before shorter than --cert-duration, ...)
// before it needs a cluster; authz.Options.Validate the ext_authz flags;
// labels.Parse is what the organisation rules parse the selector with.
func checkArgsWithBinaryOptions(t *testing.T, args []string) {
	t.Helper()
	parseInto := func(add func(*pflag.FlagSet)) {
		t.Helper()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.ParseErrorsAllowlist.UnknownFlags = true
		add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
	}
	var co certs.Options
	parseInto(co.AddFlags)
	if _, err := certs.Setup(context.Background(), nil, co, logr.Discard()); err == nil || !strings.Contains(err.Error(), "needs a Kubernetes connection") {
		t.Errorf("meshguard's certificate options refuse the rendered command line %v: %v", args, err)
	}
	ao := authz.DefaultOptions()
	parseInto(ao.AddFlags)
	if err := ao.Validate(); err != nil {
		t.Errorf("meshguard's ext_authz options refuse the rendered command line %v: %v", args, err)
	}
	var ro webhook.OrgRulesOptions
	parseInto(ro.AddFlags)
	if ro.ConfigMapSelector != "" {
		if _, err := labels.Parse(ro.ConfigMapSelector); err != nil {
			t.Errorf("--rego-configmap-selector %q does not parse: %v", ro.ConfigMapSelector, err)
		}
	}
}

// writeValues writes a values file, so a test passes strings exactly as a
// user's file would (no --set type guessing).
func writeValues(t *testing.T, values string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestChartPassesStringArgsIntact: every string value reaches the binary as
// one argument, byte for byte. Unquoted, "/ext: authz" rendered a YAML map
// (the Deployment did not decode), a newline in pathPrefix injected an extra
// --fail-open=true argument, and " #team-a" after a selector was dropped as a
// YAML comment, so the binary accepted a selector it would refuse.
func TestChartPassesStringArgsIntact(t *testing.T) {
	for _, p := range packagings() {
		if !strings.HasPrefix(p.name, "helm/") {
			continue
		}
		for i, line := range strings.Split(p.render(t), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "- --") {
				t.Errorf("%s line %d: argument not quoted: %s", p.name, i+1, line)
			}
		}
	}
	for _, certMode := range []string{"cert-manager", "self"} {
		t.Run(certMode, func(t *testing.T) {
			const prefix, selector = "/ext: authz", "meshguard.io/rules in (a, b), !legacy"
			vals := writeValues(t, "certMode: "+certMode+`
authz:
  http:
    enabled: true
    pathPrefix: "`+prefix+`"
governance:
  rulesConfigMapSelector: "`+selector+`"
`)
			args := parse(t, renderHelm(t, "-f", vals)).deployment(t).Spec.Template.Spec.Containers[0].Args
			for _, want := range []string{"--authz-http-path-prefix=" + prefix, "--rego-configmap-selector=" + selector, "--fail-open=false"} {
				if !slices.Contains(args, want) {
					t.Errorf("args lack %q: %q", want, args)
				}
			}
			checkArgsWithBinaryOptions(t, args)
		})
	}
	// Values the binary (or Istio, for pathPrefix) refuses do not render.
	for _, tc := range []struct{ values, wantInError string }{
		{"authz:\n  http:\n    enabled: true\n    pathPrefix: \"/ext\\n            - --fail-open=true\"\n", "pathPrefix"},
		{"authz:\n  http:\n    enabled: true\n    pathPrefix: \"/ext\\tauthz\"\n", "pathPrefix"},
		{"governance:\n  rulesConfigMapSelector: \"meshguard.io/rules=true #team-a\"\n", "rulesConfigMapSelector"},
		{"governance:\n  rulesConfigMapSelector: \"meshguard.io/rules=true\\n            - --fail-open=true\"\n", "rulesConfigMapSelector"},
	} {
		out, err := helmTemplate(t, "-f", writeValues(t, tc.values))
		if err == nil {
			var args []string
			if m := parse(t, out); len(m.find("Deployment")) == 1 {
				args = m.deployment(t).Spec.Template.Spec.Containers[0].Args
			}
			t.Errorf("values %q rendered; args %q", tc.values, args)
		} else if !strings.Contains(err.Error(), tc.wantInError) {
			t.Errorf("values %q: error does not name %s: %v", tc.values, tc.wantInError, err)
		}
	}
}

// TestChartRefusesRenewBeforeNotShorter: a renewBefore not shorter than its
// certificate's duration fails the render, in both certificate modes; it
// used to render, then every replica refused to start (certs.Options:
// --cert-renew-before must be shorter than --cert-duration), and
// cert-manager refuses such a Certificate too. The durations reach the
// binary in self mode as well, and what renders passes its checks.
func TestChartRefusesRenewBeforeNotShorter(t *testing.T) {
	for _, certMode := range []string{"cert-manager", "self"} {
		t.Run(certMode, func(t *testing.T) {
			for _, tc := range []struct{ duration, renewBefore, field string }{
				{"certManager.servingDuration=24h", "certManager.servingRenewBefore=48h", "certManager.servingRenewBefore"},
				{"certManager.servingDuration=24h", "certManager.servingRenewBefore=24h", "certManager.servingRenewBefore"},
				{"certManager.servingDuration=1h30m", "certManager.servingRenewBefore=90m", "certManager.servingRenewBefore"},
				{"certManager.caDuration=1h", "certManager.caRenewBefore=2h", "certManager.caRenewBefore"},
			} {
				out, err := helmTemplate(t, "--set", "certMode="+certMode, "--set", tc.duration, "--set", tc.renewBefore)
				if err == nil {
					args := parse(t, out).deployment(t).Spec.Template.Spec.Containers[0].Args
					t.Errorf("%s %s rendered: %q", tc.duration, tc.renewBefore, args)
				} else if !strings.Contains(err.Error(), tc.field+" ") || !strings.Contains(err.Error(), "must be shorter") {
					t.Errorf("%s %s: error does not name %s: %v", tc.duration, tc.renewBefore, tc.field, err)
				}
			}
			args := parse(t, renderHelm(t, "--set", "certMode="+certMode, "--set", "certManager.caDuration=8760h",
				"--set", "certManager.servingDuration=24h", "--set", "certManager.servingRenewBefore=8h")).
				deployment(t).Spec.Template.Spec.Containers[0].Args
			for _, want := range []string{"--cert-ca-duration=8760h", "--cert-duration=24h", "--cert-renew-before=8h"} {
				if !slices.Contains(args, want) {
					t.Errorf("args lack %s: %q", want, args)
				}
			}
			checkArgsWithBinaryOptions(t, args)
		})
	}
}
