package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	s := Default()
	if s.ProxyConfigEnv != "{}\n" {
		t.Errorf("default PROXY_CONFIG = %q, want {} and a newline", s.ProxyConfigEnv)
	}
	if s.Revision() != "default" || *s.Values.Global.Proxy.StatusPort != 15020 || s.Mesh.ProxyListenPort != 15001 {
		t.Errorf("unexpected defaults: rev=%s status=%d listen=%d", s.Revision(), *s.Values.Global.Proxy.StatusPort, s.Mesh.ProxyListenPort)
	}
}

// TestProxyConfigEnvKeepsTracing: Istio's default ProxyConfig has no tracer
// (since 1.22, istio/istio#49615), so a mesh defaultConfig naming the former
// default zipkin address is not a default, and PROXY_CONFIG keeps it as
// Istio's cleanProxyConfig (pkg/kube/inject/template.go, proto.Equal
// against the default's nil tracing) does.
func TestProxyConfigEnvKeepsTracing(t *testing.T) {
	s, err := Load([]byte("defaultConfig: {tracing: {zipkin: {address: zipkin.istio-system:9411}}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"tracing":{"zipkin":{"address":"zipkin.istio-system:9411"}}}` + "\n"; s.ProxyConfigEnv != want {
		t.Errorf("PROXY_CONFIG %q, want %q", s.ProxyConfigEnv, want)
	}
}

func TestLoadOverlaysMesh(t *testing.T) {
	s, err := Load([]byte("defaultConfig:\n  drainDuration: 30s\n  proxyMetadata: {A: b}\ntrustDomain: example.org\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mesh.DefaultConfig.StatusPort != 15020 {
		t.Errorf("defaults lost: statusPort %d", s.Mesh.DefaultConfig.StatusPort)
	}
	if !strings.Contains(s.ProxyConfigEnv, `"drainDuration":"30s"`) || strings.Contains(s.ProxyConfigEnv, "statusPort") {
		t.Errorf("PROXY_CONFIG %s should hold only non-default fields", s.ProxyConfigEnv)
	}
	if s.Mesh.TrustDomain != "example.org" {
		t.Errorf("trustDomain %q", s.Mesh.TrustDomain)
	}
}

func TestLoadOverridesWrappersAndMaps(t *testing.T) {
	s, err := Load([]byte("enablePrometheusMerge: false\ndefaultConfig:\n  holdApplicationUntilProxyStarts: false\n  proxyMetadata: {B: c}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mesh.GetEnablePrometheusMerge() == nil || s.Mesh.GetEnablePrometheusMerge().GetValue() {
		t.Error("enablePrometheusMerge: false did not override the default true")
	}
	if h := s.Mesh.DefaultConfig.GetHoldApplicationUntilProxyStarts(); h == nil || h.GetValue() {
		t.Error("holdApplicationUntilProxyStarts: false not kept")
	}
	pc, err := ParseProxyConfig(s.Mesh.DefaultConfig, "proxyMetadata: {A: b}\nholdApplicationUntilProxyStarts: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if pc.ProxyMetadata["A"] != "b" || pc.ProxyMetadata["B"] != "c" || !pc.GetHoldApplicationUntilProxyStarts().GetValue() || pc.StatusPort != 15020 {
		t.Errorf("annotation overlay: %v", pc)
	}
}

func TestLoadInvalid(t *testing.T) {
	cases := []struct {
		name, mesh, values, wantInErr string
	}{
		{"mesh yaml", "defaultConfig: [", "", "mesh config"},
		{"mesh unknown field", "noSuchField: 1", "", "mesh config"},
		{"mesh port", "proxyListenPort: 70000", "", "mesh.proxyListenPort"},
		{"values type", "", "global: {proxy: {statusPort: abc}}", "injector values"},
		{"autoInject", "", "global: {proxy: {autoInject: sometimes}}", "global.proxy.autoInject"},
		{"cidr", "", "global: {proxy: {excludeIPRanges: 10.0.0.0/40}}", "global.proxy.excludeIPRanges"},
		{"ports", "", "global: {proxy: {excludeInboundPorts: 'a,b'}}", "global.proxy.excludeInboundPorts"},
		{"pull policy", "", "global: {imagePullPolicy: Sometimes}", "global.imagePullPolicy"},
		{"selector", "", "sidecarInjectorWebhook: {neverInjectSelector: [{matchExpressions: [{key: a, operator: Bad}]}]}", "neverInjectSelector[0]"},
		{"bad glob", "", "meshguard: {allowedProxyImages: ['docker.io/istio/*', 'docker.io/[istio']}", "values.meshguard.allowedProxyImages[1]: \"docker.io/[istio\" is not a valid glob"},
		{"empty glob", "", "meshguard: {allowedProxyImages: ['']}", "values.meshguard.allowedProxyImages[0]: must not be empty"},
		{"space in glob", "", "meshguard: {allowedProxyImages: ['a/b *']}", "values.meshguard.allowedProxyImages[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.mesh), []byte(tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantInErr)
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	mp, vp := filepath.Join(dir, "mesh"), filepath.Join(dir, "values")
	if err := os.WriteFile(mp, []byte("trustDomain: a.b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vp, []byte(`{"revision":"canary"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadFiles(mp, vp)
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision() != "canary" || s.Mesh.TrustDomain != "a.b" {
		t.Fatalf("got rev %q td %q", s.Revision(), s.Mesh.TrustDomain)
	}
	if _, err := LoadFiles(filepath.Join(dir, "missing"), ""); err == nil || !strings.Contains(err.Error(), "reading mesh config") {
		t.Fatalf("missing file error: %v", err)
	}
}

// TestLoadFilesRefusesNonRegular: serve's files (--mesh-config,
// --injector-values) must be regular files: a FIFO would block start-up, or
// the reload goroutine for good, until something wrote to it.
func TestLoadFilesRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, mesh, values string }{
		{"mesh config", fifo, ""},
		{"injector values", "", fifo},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := LoadFiles(c.mesh, c.values)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), c.name) {
				t.Errorf("%s a FIFO: %v, want not a regular file, naming the input", c.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s a FIFO: LoadFiles blocked", c.name)
		}
	}
}

// TestLoadQuotedNumbers: Istio reads the values with protomarshal.ApplyYAML
// (pkg/kube/inject/webhook.go NewValuesConfig), whose jsonpb decoder strips
// the quotes of a string given for a number field and decodes the rest as a
// JSON number (github.com/golang/protobuf jsonpb unmarshalSingularValue,
// trimQuote): "15020" is 15020, while "abc", "1e3", "1.5" and "" are refused;
// a quoted boolean is refused (no trimming for bools).
func TestLoadQuotedNumbers(t *testing.T) {
	for _, c := range []struct {
		values string
		check  func(*Snapshot) bool
		err    string
	}{
		{values: `global: {proxy: {statusPort: "15021"}}`, check: func(s *Snapshot) bool { return *s.Values.Global.Proxy.StatusPort == 15021 }},
		{values: `{"global": {"proxy": {"statusPort": " 15021 "}}}`, check: func(s *Snapshot) bool { return *s.Values.Global.Proxy.StatusPort == 15021 }},
		{values: `global: {proxy: {readinessPeriodSeconds: "7", readinessFailureThreshold: '9', startupProbe: {failureThreshold: "11"}}}`, check: func(s *Snapshot) bool {
			p := s.Values.Global.Proxy
			return *p.ReadinessPeriodSeconds == 7 && *p.ReadinessFailureThreshold == 9 && *p.StartupProbe.FailureThreshold == 11
		}},
		{values: `global: {tag: 1.24, proxy: {statusPort: "15021"}}`, check: func(s *Snapshot) bool { return s.Values.Global.Tag == "1.24" }},
		{values: `global: {proxy: {statusPort: "abc"}}`, err: "statusPort"},
		{values: `global: {proxy: {statusPort: "1e3"}}`, err: "statusPort"},
		{values: `global: {proxy: {statusPort: "1.5"}}`, err: "statusPort"},
		{values: `global: {proxy: {statusPort: ""}}`, err: "statusPort"},
		{values: `global: {proxy: {statusPort: "true"}}`, err: "statusPort"},
		{values: `global: {proxy: {holdApplicationUntilProxyStarts: "true"}}`, err: "holdApplicationUntilProxyStarts"},
	} {
		s, err := Load(nil, []byte(c.values))
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one naming %s", c.values, err, c.err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.values, err)
		case !c.check(s):
			t.Errorf("%s: not read as Istio reads it: %+v", c.values, s.Values.Global.Proxy)
		}
		if _, err2 := (Inputs{Values: []byte(c.values)}).Load(); (err2 == nil) != (err == nil) {
			t.Errorf("%s: Load error %v, Inputs.Load error %v", c.values, err, err2)
		}
	}
}
