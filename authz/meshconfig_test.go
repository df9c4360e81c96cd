package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/policy"
)

// A change of the mesh config file (trustDomainAliases) reaches the verdicts
// without a restart: Istio matches a policy principal in the trust domain
// also under each alias (pilot/pkg/security/trustdomain bundle.go).
func TestMeshConfigChangeReachesVerdicts(t *testing.T) {
	const timeout = 30 * time.Second // generous; a lost file event still fails
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-sleep, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"cluster.local/ns/foo/sa/sleep\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mesh := filepath.Join(dir, "mesh", "mesh")
	if err := os.MkdirAll(filepath.Dir(mesh), 0o700); err != nil {
		t.Fatal(err)
	}
	// One rename from a directory that is not watched: one file event, so
	// a lost event is a lost reload, and never a half-written file.
	staging := t.TempDir()
	write := func(s string) {
		tmp := filepath.Join(staging, "mesh")
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, mesh); err != nil {
			t.Fatal(err)
		}
	}
	write("trustDomain: cluster.local\n")
	o := DefaultOptions()
	o.MeshConfigPath = mesh
	o.Debounce = 10 * time.Millisecond
	// The channels are buffered beyond what the test causes and fed without
	// blocking, so a failed test never blocks the watcher.
	accepted := make(chan *meshv1alpha1.MeshConfig, 16)
	o.OnMeshConfig = func(m *meshv1alpha1.MeshConfig) {
		select {
		case accepted <- m:
		default:
		}
	}
	rejected := make(chan error, 16)
	o.OnReloadError = func(err error) {
		select {
		case rejected <- err:
		default:
		}
	}
	rl := &Reloader{Engine: policy.NewEngine(o.Mesh()), Load: DirLoader(dir, "", logr.Discard()), Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := rl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// The policy recompiles the mesh watcher asks for (as Reloader.Run
	// does them), each reported once its snapshot is current.
	trigger := make(chan struct{}, 1)
	compiled := make(chan struct{}, 16)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-trigger:
				_ = rl.Reload(ctx)
				select {
				case compiled <- struct{}{}:
				default:
				}
			}
		}
	}()
	watched := make(chan error, 1)
	go func() { watched <- watchMeshConfig(ctx, o, rl.Engine, logr.Discard(), trigger) }()
	defer func() { cancel(); <-watched }()
	req := &policy.Request{Namespace: "foo", Principal: "spiffe://old.td/ns/foo/sa/sleep", Method: "GET", Path: "/"}
	allowed := func() bool {
		v, err := rl.Engine.Snapshot().CheckRequest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return v.Allowed
	}
	if allowed() {
		t.Fatal("old.td principal allowed without an alias")
	}
	// The watcher reads the file once it watches it: from then on, a write
	// is seen only through its file event.
	select {
	case <-accepted:
	case <-time.After(timeout):
		t.Fatal("the mesh config was not read once watched")
	}

	write("trustDomain: cluster.local\ntrustDomainAliases: [old.td]\n")
	// The verdict changes with the recompile the new settings ask for; a
	// recompile the initial read may have asked for does not count.
	deadline := time.After(timeout)
	for !allowed() {
		select {
		case <-compiled:
		case <-deadline:
			t.Fatal("the trustDomainAliases change did not reach the verdict")
		}
	}

	// A file that cannot be parsed is rejected through the same hook as a
	// rejected policy update (serve: a PolicyRejected Event), and the last
	// good settings keep deciding.
	write("trustDomainAliases: [unterminated\n")
	select {
	case err := <-rejected:
		if !strings.Contains(err.Error(), "mesh config") {
			t.Errorf("rejection %q does not name the mesh config", err)
		}
	case <-time.After(timeout):
		t.Fatal("the broken mesh config was not reported")
	}
	if !allowed() {
		t.Fatal("the rejected mesh config changed the verdict")
	}
}

// TestMeshConfigKeyRemovalRestoresDefault: a setting removed from the mesh
// config file returns to Istio's default on the next load, as the file was
// read at start-up into the options (a removed trust domain alias kept
// matching); a flag still overrides the file and the default.
func TestMeshConfigKeyRemovalRestoresDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mesh")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rootNamespace: mesh-root\ntrustDomain: new.td\ntrustDomainAliases: [old.td]\npathNormalization: {normalization: NONE}\n")
	m, err := meshconfig.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	o, err := DefaultOptions().WithMeshConfig(m, nil) // as authzFromMeshConfig leaves it at start-up
	if err != nil {
		t.Fatal(err)
	}
	o.MeshConfigPath = path
	first, err := loadMesh(o)
	if err != nil {
		t.Fatal(err)
	}
	if first.RootNamespace != "mesh-root" || len(first.TrustDomainAliases) != 1 {
		t.Fatalf("first load: %+v", first)
	}
	write("trustDomain: new.td\n")
	again, err := loadMesh(o)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultOptions()
	if again.RootNamespace != d.RootNamespace || len(again.TrustDomainAliases) != 0 || again.PathNormalization != d.PathNormalization {
		t.Errorf("after the keys were removed: %+v, want Istio's defaults (root %s, no aliases, %s)", again, d.RootNamespace, d.PathNormalization)
	}
	o.RootNamespace = "flag-root"
	o.MeshFlagSet = func(name string) bool { return name == "root-namespace" }
	if flagged, err := loadMesh(o); err != nil || flagged.RootNamespace != "flag-root" {
		t.Errorf("--root-namespace given: %+v %v", flagged, err)
	}
	// OnMeshConfig (serve without webhooks: the audit) gets each config
	// ext_authz accepts, and none it rejects.
	var given []string
	o.OnMeshConfig = func(m *meshv1alpha1.MeshConfig) { given = append(given, m.GetRootNamespace()) }
	write("rootNamespace: next-root\n")
	if _, err := loadMesh(o); err != nil {
		t.Fatal(err)
	}
	write("rootNamespace: next-root\npathNormalization: {normalization: 9}\n")
	if _, err := loadMesh(o); err == nil {
		t.Error("an unknown path normalization was accepted")
	}
	if len(given) != 1 || given[0] != "next-root" {
		t.Errorf("OnMeshConfig got root namespaces %q, want [next-root] (the accepted config only)", given)
	}
}

// TestMeshConfigsFollowTheInjector: with Istio's ConfigMaps (serve
// --istio-config-namespace) ext_authz takes each mesh config the injector
// accepted from ConfigMap istio (Options.MeshConfigs) as it takes a reloaded
// --mesh-config: an added trust domain alias reaches the verdicts, a removed
// one stops matching, and a flag still overrides.
func TestMeshConfigsFollowTheInjector(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-sleep, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"cluster.local/ns/foo/sa/sleep\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	meshes := make(chan *meshv1alpha1.MeshConfig)
	o := DefaultOptions()
	o.MeshConfigs = meshes
	o.Debounce = 10 * time.Millisecond
	rl := &Reloader{Engine: policy.NewEngine(o.Mesh()), Load: DirLoader(dir, "", logr.Discard()), Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{}, 1)
	go rl.Run(ctx, trigger, o.Debounce)
	go followMeshConfigs(ctx, o, rl.Engine, logr.Discard(), trigger)
	send := func(yaml string) {
		m, err := meshconfig.Parse([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		meshes <- m
	}
	req := &policy.Request{Namespace: "foo", Principal: "spiffe://old.td/ns/foo/sa/sleep", Method: "GET", Path: "/"}
	waitFor := func(want bool, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if s := rl.Engine.Snapshot(); s != nil {
				v, err := s.CheckRequest(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if v.Allowed == want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the verdict stayed allowed=%v", what, !want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(false, "no alias")
	send("trustDomainAliases: [old.td]\n")
	waitFor(true, "alias added in the injector's mesh config")
	send("trustDomain: cluster.local\n")
	waitFor(false, "alias removed")
	if got := rl.Engine.Mesh().RootNamespace; got != "istio-system" {
		t.Errorf("root namespace %q, want the default", got)
	}

	o.RootNamespace = "flag-root"
	o.MeshFlagSet = func(name string) bool { return name == "root-namespace" }
	if m, err := meshSettings(o, meshconfig.DefaultMeshConfig()); err != nil || m.RootNamespace != "flag-root" {
		t.Errorf("--root-namespace given: %+v %v", m, err)
	}
}

// TestMeshConfigGatewayTopology: a gateway's numTrustedProxies defaults to
// the mesh config's defaultConfig.gatewayTopology (its pilot-agent starts
// from defaultConfig, pilot/cmd/pilot-agent/config ConstructProxyConfig, and
// istiod sets xff_num_trusted_hops from it, pilot/pkg/networking/core
// gateway.go buildGatewayConnectionManager); removed, it is 0 again, and
// --num-trusted-proxies given overrides it as the other mesh flags do.
func TestMeshConfigGatewayTopology(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mesh")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o := DefaultOptions()
	o.MeshConfigPath = path
	for _, c := range []struct {
		name, mesh string
		flag       int // -1: not given
		want       int
	}{
		{"mesh default", "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}\n", -1, 2},
		{"other gatewayTopology fields only", "defaultConfig: {gatewayTopology: {forwardClientCertDetails: SANITIZE}}\n", -1, 0},
		{"removed", "trustDomain: cluster.local\n", -1, 0},
		{"flag overrides the mesh", "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}\n", 0, 0},
		{"flag without mesh value", "trustDomain: cluster.local\n", 3, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(c.mesh)
			o := o
			if c.flag >= 0 {
				o.NumTrustedProxies = c.flag
				o.MeshFlagSet = func(name string) bool { return name == "num-trusted-proxies" }
			}
			m, err := loadMesh(o)
			if err != nil {
				t.Fatal(err)
			}
			if m.NumTrustedProxies != c.want {
				t.Errorf("NumTrustedProxies = %d, want %d", m.NumTrustedProxies, c.want)
			}
			parsed, err := meshconfig.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			withMesh, err := o.WithMeshConfig(parsed, o.MeshFlagSet)
			if err != nil {
				t.Fatal(err)
			}
			if got := withMesh.NumTrustedProxies; got != c.want {
				t.Errorf("WithMeshConfig (start-up): NumTrustedProxies = %d, want %d", got, c.want)
			}
		})
	}
}
