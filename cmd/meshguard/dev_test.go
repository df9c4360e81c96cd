//go:build dev

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/webhook"
)

// `dev --revision canary` must create the canary's configurations (the names
// the certificate code patches, the canary's selectors), not the default's.
func TestDevClientConfigRevision(t *testing.T) {
	o := &serveOptions{webhookHost: "127.0.0.1", webhookPort: 9443, namespace: "mg"}
	o.certOpts.Revision = "canary"
	cc := devClientConfig(o, []byte("ca"))
	if cc.BaseURL != "https://127.0.0.1:9443" || cc.OwnNamespace != "mg" || string(cc.CABundle) != "ca" {
		t.Fatalf("client config %+v", cc)
	}
	m, v := webhook.MutatingWebhookConfiguration(cc), webhook.ValidatingWebhookConfiguration(cc)
	if m.Name != webhook.MutatingConfigNameFor("canary") || v.Name != webhook.ValidatingConfigNameFor("canary") || len(m.Webhooks) != 2 {
		t.Fatalf("dev --revision canary creates %s (%d entries) and %s", m.Name, len(m.Webhooks), v.Name)
	}
}

// TestDevRefusesInvalidFlagValues: dev takes serve's flags and refuses what
// serve refuses, naming the flag, before it starts a control plane (a
// negative --shutdown-timeout made Ctrl-C wait without bound); its own
// default --webhook-port 0 stays valid.
func TestDevRefusesInvalidFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--shutdown-timeout=-1s"}, "--shutdown-timeout"},
		{[]string{"--audit-qps=0"}, "--audit-qps"},
		{[]string{"--decision-log=loud"}, "--decision-log"},
		{[]string{"--tls-verify-client"}, "--tls-verify-client"},
		{[]string{"--webhook-port=70000"}, "--webhook-port"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"dev", "--k8s-bin", filepath.Join(t.TempDir(), "absent")}, tc.args...))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		if err := cmd.Execute(); err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("dev %v: err = %v, want it refused naming %s", tc.args, err, tc.flag)
		}
	}
}

func TestDevInstructionsRevision(t *testing.T) {
	var def, canary strings.Builder
	o := &serveOptions{}
	printDevInstructions(&def, "kc", "/repo/bin/k8s", o)
	o.certOpts.Revision = "canary"
	printDevInstructions(&canary, "kc", "", o)
	if !strings.Contains(def.String(), "label namespace demo istio-injection=enabled") || !strings.Contains(def.String(), "metadata: {name: bad, namespace: demo}") {
		t.Errorf("default revision instructions:\n%s", def.String())
	}
	// The commands use the kubectl make k8s-bin built, which is not on PATH.
	if !strings.Contains(def.String(), "\n  export PATH=/repo/bin/k8s:$PATH\n") || strings.Contains(canary.String(), "export PATH") {
		t.Errorf("PATH export: with a kubectl directory:\n%s\nwithout:\n%s", def.String(), canary.String())
	}
	if kubectlDir("kubectl") != "" || kubectlDir("/repo/bin/k8s/kubectl") != "/repo/bin/k8s" {
		t.Errorf("kubectlDir: %q, %q", kubectlDir("kubectl"), kubectlDir("/repo/bin/k8s/kubectl"))
	}
	if !strings.Contains(canary.String(), "label namespace demo istio.io/rev=canary") || !strings.Contains(canary.String(), "metadata: {name: bad, namespace: demo, labels: {istio.io/rev: canary}}") {
		t.Errorf("canary instructions:\n%s", canary.String())
	}
}

// TestDevHelpOneDefault: a flag whose default dev overrides shows dev's
// default only ("--cert-mode ... (default "files")"), not serve's
// description of its own besides it.
func TestDevHelpOneDefault(t *testing.T) {
	cmd := newRootCmd()
	var out strings.Builder
	cmd.SetArgs([]string{"dev", "--help"})
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "--cert-mode") {
			if strings.Count(line, "(default") != 1 || !strings.Contains(line, `(default "files")`) {
				t.Errorf("dev --help: %q, want dev's default only", line)
			}
			return
		}
	}
	t.Fatalf("no --cert-mode in dev --help:\n%s", out.String())
}
