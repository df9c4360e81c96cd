package injection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/test/conformance"
	"github.com/meshguard/meshguard/webhook"
)

// defaultInstallInputs is Istio's default install's injector inputs
// (test/conformance).
func defaultInstallInputs(t *testing.T) (cfg, values, mesh string) {
	t.Helper()
	c, v, m := conformance.IstioInstall(t)
	return string(c), string(v), string(m)
}

// withMarker edits the sidecar template to add env MESHGUARD_MARKER=marker.
func withMarker(t *testing.T, cfg, marker string) string {
	t.Helper()
	const anchor = "        - name: PILOT_CERT_PROVIDER\n"
	if !strings.Contains(cfg, anchor) {
		t.Fatal("sidecar template anchor not found")
	}
	return strings.Replace(cfg, anchor, "        - name: MESHGUARD_MARKER\n          value: \""+marker+"\"\n"+anchor, 1)
}

// TestIstioConfigMapsHotReload: the webhook reads Istio's ConfigMaps from
// the API server; editing the sidecar template in ConfigMap
// istio-sidecar-injector changes the next injected pod without a restart,
// and a broken edit is rejected while the last good config keeps serving.
func TestIstioConfigMapsHotReload(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := testr.New(t)

	cfg, values, mesh := defaultInstallInputs(t)
	cluster.CreateNamespace(t, c, "istio-system", nil)
	injectorCM := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-sidecar-injector"},
		Data:       map[string]string{"config": withMarker(t, cfg, "v1"), "values": values},
	}
	meshCM := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio"},
		Data:       map[string]string{"mesh": mesh},
	}
	for _, cm := range []*corev1.ConfigMap{injectorCM, meshCM} {
		if err := c.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}

	maps := webhook.IstioConfigMaps{Namespace: "istio-system", Reader: c.Client}
	snap, err := maps.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store := webhook.NewConfigStore(snap)
	var mu sync.Mutex
	var reloadErrs []error
	watcher, err := webhook.NewIstioConfigMapWatcher(maps, c.Config, store, 50*time.Millisecond, log, func(err error) {
		if err != nil {
			mu.Lock()
			reloadErrs = append(reloadErrs, err)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- watcher.Start(watchCtx) }()
	defer func() {
		stopWatch()
		if err := <-watchDone; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()

	srv := cluster.ServeWebhooks(t, func(s ctrlwebhook.Server) {
		s.Register(webhook.InjectPath, webhook.NewInjectHTTPHandler(&webhook.InjectHandler{Config: store, Log: log, ProxyConfigs: c.Client, Namespaces: c.Client}, 0))
	})
	cc := srv.ClientConfig
	cc.OwnNamespace = "meshguard-system"
	mwc := webhook.MutatingWebhookConfiguration(cc)
	mwc.Name = "meshguard-configmaps-e2e"
	if err := c.Client.Create(ctx, mwc); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	cluster.CreateNamespace(t, c, "tpl", map[string]string{"istio-injection": "enabled"})

	// marker is MESHGUARD_MARKER of a server-side dry-run pod's istio-proxy.
	marker := func() (string, error) {
		out, err := c.Kubectl(ctx, pod("probe", map[string]string{"app": "probe"}, nil), "create", "-n", "tpl", "--dry-run=server", "-o", "yaml", "-f", "-")
		if err != nil {
			return "", err
		}
		var p corev1.Pod
		if err := yaml.Unmarshal([]byte(out), &p); err != nil {
			return "", err
		}
		for _, ct := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if ct.Name != "istio-proxy" {
				continue
			}
			for _, e := range ct.Env {
				if e.Name == "MESHGUARD_MARKER" {
					return e.Value, nil
				}
			}
			return "", errors.New("istio-proxy has no MESHGUARD_MARKER")
		}
		return "", errors.New("not injected")
	}
	waitMarker := func(want string) {
		t.Helper()
		if err := cluster.Eventually(60*time.Second, func() error {
			got, err := marker()
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("marker %q, want %q", got, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	update := func(cfg string) {
		t.Helper()
		var cur corev1.ConfigMap
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "istio-system", Name: "istio-sidecar-injector"}, &cur); err != nil {
			t.Fatal(err)
		}
		cur.Data["config"] = cfg
		if err := c.Client.Update(ctx, &cur); err != nil {
			t.Fatal(err)
		}
	}

	waitMarker("v1")
	update(withMarker(t, cfg, "v2"))
	waitMarker("v2")

	// A template that does not parse: rejected, v2 keeps serving.
	update(withMarker(t, cfg, "v3") + "\n  broken: \"{{ .Unclosed\"\n")
	if err := cluster.Eventually(60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range reloadErrs {
			if strings.Contains(e.Error(), `template "broken"`) {
				return nil
			}
		}
		return fmt.Errorf("no reload error naming the broken template yet (%v)", reloadErrs)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := marker(); err != nil || got != "v2" {
		t.Fatalf("after a rejected edit: marker %q, err %v; want the last good v2", got, err)
	}
	// Repaired: the next good edit takes effect.
	update(withMarker(t, cfg, "v4"))
	waitMarker("v4")

	// Istio's grpc-agent template (proxyless gRPC with an agent, Istio's
	// samples/grpc-echo) from the same ConfigMap, through the API server: the
	// agent container and the app's bootstrap env as in Istio's grpc-agent
	// golden, and the app's probe kept, as the template's
	// rewriteAppHTTPProbers "false" asks.
	out, err := c.Kubectl(ctx, pod("grpc", map[string]string{"app": "grpc"}, map[string]string{"inject.istio.io/templates": "grpc-agent"}),
		"create", "-n", "tpl", "--dry-run=server", "-o", "yaml", "-f", "-")
	if err != nil {
		t.Fatalf("grpc-agent pod: %v", err)
	}
	var p corev1.Pod
	if err := yaml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	envOf := func(c corev1.Container, name string) string {
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
		return ""
	}
	var names []string
	for _, ct := range p.Spec.Containers {
		names = append(names, ct.Name)
	}
	if len(p.Spec.Containers) != 2 || names[0] != "app" || names[1] != "istio-proxy" || len(p.Spec.InitContainers) != 0 {
		t.Fatalf("grpc-agent: containers %v, init containers %d; want [app istio-proxy] and none", names, len(p.Spec.InitContainers))
	}
	app, agent := p.Spec.Containers[0], p.Spec.Containers[1]
	if envOf(agent, "ISTIO_META_GENERATOR") != "grpc" || envOf(agent, "DISABLE_ENVOY") != "true" {
		t.Errorf("grpc-agent: istio-proxy env %v lacks the agent's ISTIO_META_GENERATOR=grpc, DISABLE_ENVOY=true", agent.Env)
	}
	if envOf(app, "GRPC_XDS_BOOTSTRAP") != "/etc/istio/proxy/grpc-bootstrap.json" {
		t.Errorf("grpc-agent: app env %v lacks GRPC_XDS_BOOTSTRAP", app.Env)
	}
	if pr := app.ReadinessProbe; pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/ready" {
		t.Errorf("grpc-agent: the app's readiness probe was rewritten: %+v", pr)
	}
}
