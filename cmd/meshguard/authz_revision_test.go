package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A DENY labelled for the canary revision: istiod of the default revision
// never reads it (policy.InRevision), so `authz check` enforces it only
// with --revision canary, and says what it skipped otherwise.
func TestAuthzCheckRevision(t *testing.T) {
	dir := t.TempDir()
	policies := strings.Replace(authzTestPolicies, "metadata: {name: deny-admin, namespace: foo}",
		"metadata: {name: deny-admin, namespace: foo, labels: {istio.io/rev: canary}}", 1)
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policies), 0o644); err != nil {
		t.Fatal(err)
	}
	req := filepath.Join(t.TempDir(), "req.json")
	if err := os.WriteFile(req, []byte(authzRequest("/admin/x")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args        []string
		wantAllowed bool
		wantSkipped bool
	}{
		{nil, true, true},
		{[]string{"--revision", "default"}, true, true},
		{[]string{"--revision", "canary"}, false, false},
	} {
		code, out, errOut := runCLI(t, append([]string{"authz", "check", "--policy-dir", dir, "--request", req}, c.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", c.args, code, errOut)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: output %q (stderr %q): %v", c.args, out, errOut, err)
		}
		if v["allowed"] != c.wantAllowed {
			t.Errorf("%v: verdict %v, want allowed=%v", c.args, v, c.wantAllowed)
		}
		if skipped := strings.Contains(errOut, "skipped: AuthorizationPolicy foo/deny-admin: labelled istio.io/rev=canary"); skipped != c.wantSkipped {
			t.Errorf("%v: stderr %q, want the skip reported: %v", c.args, errOut, c.wantSkipped)
		}
	}
}

func TestAuthzRevisionFlagRejectsNonLabel(t *testing.T) {
	for _, sub := range [][]string{
		{"authz", "check", "--policy-dir", t.TempDir(), "--request", "-"},
		{"authz", "serve", "--policy-dir", t.TempDir(), "--authz-addr", "127.0.0.1:0"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append(sub, "--revision", "Canary/x"))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		cmd.SetIn(strings.NewReader(authzRequest("/")))
		err := cmd.Execute()
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "--revision") {
			t.Errorf("%v: err = %v, want exit 2 naming --revision", sub[:2], err)
		}
	}
}

// serve's one --revision names its webhooks and is the revision whose
// policies its ext_authz enforces.
func TestServeRevisionReachesAuthz(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{{nil, ""}, {[]string{"--revision", "canary"}, "canary"}} {
		o := &serveOptions{}
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if err := o.check(); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if o.authzOpts.Revision != c.want {
			t.Errorf("%v: ext_authz revision %q, want %q", c.args, o.authzOpts.Revision, c.want)
		}
	}
	o := &serveOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"--revision", "bad/rev"}); err != nil {
		t.Fatal(err)
	}
	if err := o.check(); err == nil || !strings.Contains(err.Error(), "--revision") {
		t.Errorf("--revision bad/rev: %v, want an error naming --revision", err)
	}
}
