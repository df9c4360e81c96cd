package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestHelmLint runs `helm lint --strict` (warnings fail) with the values of
// each supported configuration.
func TestHelmLint(t *testing.T) {
	chart := repoPath(t, "deploy", "helm", "meshguard")
	for _, set := range [][]string{
		nil,
		{"--set", "certMode=self"},
		{"--set", "revision=canary", "--set", "webhooks.injection.failurePolicy=Ignore", "--set", "authz.enabled=false"},
	} {
		name := strings.Join(set, " ")
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			args := append([]string{"lint", chart, "--strict", "--namespace", namespace, "--kube-version", kubeVersion}, set...)
			out, err := run(t, helmBin(t), args...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("helm lint output:\n%s", out)
			}
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("helm lint reported problems:\n%s", out)
			}
		})
	}
}

// TestChartRejectsBadValues: values.schema.json turns a typo or an unknown
// mode into an install-time error naming the field, instead of a broken
// deployment.
func TestChartRejectsBadValues(t *testing.T) {
	cases := []struct {
		set, wantInError string
	}{
		{"certMode=vault", "certMode"},
		{"webhooks.injection.failurePolicy=Sometimes", "failurePolicy"},
		{"webhooks.validation.failurePolicy=fail", "failurePolicy"},
		{"webhooks.injection.reinvocationPolicy=Always", "reinvocationPolicy"},
		{"webhooks.timeoutSeconds=31", "timeoutSeconds"},
		{"replicas=0", "replicas"},
		{"revision=Canary_1", "revision"},
		{"authz.port=9443", "port"},
		// 0 would render a flag meaning "the default", not "no connections".
		{"authz.maxConnections=0", "maxConnections"},
		{"webhooks.maxConnections=-1", "maxConnections"},
		{"replica=3", "replica"},
		{"topologySpread.whenUnsatisfiable=Maybe", "whenUnsatisfiable"},
		// The binary parses these with time.ParseDuration: an empty or
		// "90d" value rendered, then crash-looped every replica.
		{"certManager.caDuration=", "caDuration"},
		{"certManager.servingDuration=90d", "servingDuration"},
		{"certManager.caRenewBefore=1d", "caRenewBefore"},
		{"certManager.servingRenewBefore=soon", "servingRenewBefore"},
		// Anything but a count or a percentage renders a PDB the API server refuses.
		{"podDisruptionBudget.maxUnavailable=half", "maxUnavailable"},
		{"podDisruptionBudget.maxUnavailable=-1", "maxUnavailable"},
		// Istio's check of envoyExtAuthzHttp.pathPrefix (url.Parse) refuses a malformed escape.
		{"authz.http.pathPrefix=/ext%zz", "pathPrefix"},
	}
	for _, tc := range cases {
		t.Run(tc.set, func(t *testing.T) {
			out, err := helmTemplate(t, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s rendered:\n%.300s", tc.set, out)
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("error does not name %q: %v", tc.wantInError, err)
			}
		})
	}
}

// TestChartOptions checks the values that change the rendering.
func TestChartOptions(t *testing.T) {
	m := parse(t, renderHelm(t,
		"--set", "webhooks.injection.failurePolicy=Ignore",
		"--set", "webhooks.validation.enabled=false",
		"--set", "webhooks.timeoutSeconds=5",
		"--set", "authz.enabled=false",
		"--set", "replicas=3",
		"--set", "podDisruptionBudget.enabled=false",
		"--set", "image.tag=v9.9.9",
	))
	mwc := m.mutating(t)
	for _, w := range mwc.Webhooks {
		if string(*w.FailurePolicy) != "Ignore" || *w.TimeoutSeconds != 5 {
			t.Errorf("webhook %s: failurePolicy %s timeout %d, want Ignore 5", w.Name, *w.FailurePolicy, *w.TimeoutSeconds)
		}
	}
	if n := len(m.find("ValidatingWebhookConfiguration")); n != 0 {
		t.Errorf("validation disabled but %d ValidatingWebhookConfigurations rendered", n)
	}
	if n := len(m.find("PodDisruptionBudget")); n != 0 {
		t.Errorf("PDB disabled but %d rendered", n)
	}
	d := m.deployment(t)
	if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/meshguard/meshguard:v9.9.9" {
		t.Errorf("replicas %d image %s", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--authz=false") {
		t.Errorf("authz disabled but args %v lack --authz=false", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--authz-addr") {
			t.Errorf("authz disabled but %s passed", a)
		}
	}
	for _, p := range m.service(t).Spec.Ports {
		if p.Port == 9000 {
			t.Error("authz disabled but the Service exposes 9000")
		}
	}
}
