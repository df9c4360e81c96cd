// Package injection tests sidecar injection end to end: a real
// kube-apiserver calls meshguard's /inject webhook over HTTPS (127.0.0.1),
// pods are created with the real kubectl, and the sample manifests are
// injected by the `meshguard inject` code path and accepted by the API server.
package injection

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/webhook"
)

// recorder remembers the namespaces the API server sent to /inject.
type recorder struct {
	mu  sync.Mutex
	nss map[string]int
}

func (r *recorder) seen(ns string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nss[ns]
}

// wrap records the request namespace of every AdmissionReview before
// passing the unchanged body on.
func (r *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ar struct {
			Request struct {
				Namespace string `json:"namespace"`
			} `json:"request"`
		}
		_ = json.Unmarshal(body, &ar)
		r.mu.Lock()
		r.nss[ar.Request.Namespace]++
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, req)
	})
}

const latePath = "/late"

// addLateContainer is a second mutating webhook that adds a container with
// an HTTP readiness probe to pods labelled late=true, after meshguard ran.
func addLateContainer(_ context.Context, req admission.Request) admission.Response {
	var p corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &p); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	for _, c := range p.Spec.Containers {
		if c.Name == "late" {
			return admission.Allowed("")
		}
	}
	late := corev1.Container{Name: "late", Image: "example.com/late:1",
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(9000)}}}}
	// Insert before istio-proxy (last), like an injector that keeps app containers together.
	idx := len(p.Spec.Containers)
	if idx > 0 && p.Spec.Containers[idx-1].Name == "istio-proxy" {
		idx--
	}
	return admission.Patched("", jsonpatch.JsonPatchOperation{Operation: "add", Path: fmt.Sprintf("/spec/containers/%d", idx), Value: late})
}

func lateWebhookConfiguration(cc webhook.ClientConfig) *admissionregistrationv1.MutatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	url := cc.BaseURL + latePath
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "zz-late-adder"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "late.adder.meshguard.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: cc.CABundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"late": "true"}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func pod(name string, labels, annotations map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n", name)
	writeMap := func(key string, m map[string]string) {
		if len(m) == 0 {
			return
		}
		fmt.Fprintf(&b, "  %s:\n", key)
		for k, v := range m {
			fmt.Fprintf(&b, "    %s: %q\n", k, v)
		}
	}
	writeMap("labels", labels)
	writeMap("annotations", annotations)
	b.WriteString(`spec:
  containers:
  - name: app
    image: example.com/app:1
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet: {path: /ready, port: http}
`)
	return b.String()
}

// reinjectionIsNoop: a reinvocation sees the stored pod, after API-server
// defaulting; injecting it again must change nothing.
func reinjectionIsNoop(t *testing.T, p *corev1.Pod) {
	t.Helper()
	again, err := injector.Inject(p, p.Namespace, config.Default(), injector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Patch) != 0 {
		b, _ := json.Marshal(again.Patch)
		t.Fatalf("re-injecting the stored pod %s/%s yields %d ops: %s", p.Namespace, p.Name, len(again.Patch), b)
	}
}

func names(cs []corev1.Container) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return strings.Join(out, ",")
}

func TestInjectionE2E(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	rec := &recorder{nss: map[string]int{}}
	log := testr.New(t)
	store := webhook.NewConfigStore(config.Default())
	srv := cluster.ServeWebhooks(t, func(s ctrlwebhook.Server) {
		s.Register(webhook.InjectPath, rec.wrap(webhook.NewInjectHTTPHandler(&webhook.InjectHandler{Config: store, Log: log, ProxyConfigs: c.Client, Namespaces: c.Client}, 0)))
		s.Register(latePath, &admission.Webhook{Handler: admission.HandlerFunc(addLateContainer)})
	})
	cc := srv.ClientConfig
	cc.OwnNamespace = "meshguard-system"
	if err := c.Client.Create(ctx, webhook.MutatingWebhookConfiguration(cc)); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	if err := c.Client.Create(ctx, lateWebhookConfiguration(srv.ClientConfig)); err != nil {
		t.Fatalf("create late MutatingWebhookConfiguration: %v", err)
	}

	cluster.CreateNamespace(t, c, "meshguard-system", map[string]string{"istio-injection": "enabled"})
	cluster.CreateNamespace(t, c, "mesh", map[string]string{"istio-injection": "enabled"})
	cluster.CreateNamespace(t, c, "plain", nil)
	// Worst case for kube-system: labelled for injection, yet never touched.
	if out, err := c.Kubectl(ctx, "", "label", "namespace", "kube-system", "istio-injection=enabled", "--overwrite"); err != nil {
		t.Fatalf("%v %s", err, out)
	}

	// The webhook configuration takes effect asynchronously: wait until a
	// server-side dry run in the labelled namespace comes back injected.
	if err := cluster.Eventually(30*time.Second, func() error {
		out, err := c.Kubectl(ctx, pod("probe", nil, nil), "create", "-n", "mesh", "--dry-run=server", "-o", "yaml", "-f", "-")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "name: istio-proxy") {
			return fmt.Errorf("not injected yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("webhook never became active: %v", err)
	}

	get := func(t *testing.T, ns, name string) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	create := func(t *testing.T, ns, manifest string) string {
		t.Helper()
		out, err := c.Kubectl(ctx, manifest, "create", "-n", ns, "-f", "-")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("labelled namespace gets sidecar and init", func(t *testing.T) {
		create(t, "mesh", pod("web", map[string]string{"app": "web"}, nil))
		p := get(t, "mesh", "web")
		if names(p.Spec.Containers) != "app,istio-proxy" || names(p.Spec.InitContainers) != "istio-init" {
			t.Fatalf("containers %q init %q", names(p.Spec.Containers), names(p.Spec.InitContainers))
		}
		if rec.seen("mesh") == 0 {
			t.Fatal("recorder saw no request for namespace mesh; the never-called checks below would be vacuous")
		}
		if p.Annotations[injector.AnnotationStatus] == "" || p.Labels[injector.LabelTLSMode] != "istio" {
			t.Fatalf("annotations %v labels %v", p.Annotations, p.Labels)
		}
		rp := p.Spec.Containers[0].ReadinessProbe
		if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Port.IntValue() != 15020 || rp.HTTPGet.Path != "/app-health/app/readyz" {
			t.Fatalf("app probe not rewritten: %+v", rp)
		}
	})

	t.Run("unlabelled namespace untouched", func(t *testing.T) {
		create(t, "plain", pod("web", nil, nil))
		p := get(t, "plain", "web")
		if names(p.Spec.Containers) != "app" || len(p.Spec.InitContainers) != 0 || p.Annotations[injector.AnnotationStatus] != "" {
			t.Fatalf("pod was modified: containers %q annotations %v", names(p.Spec.Containers), p.Annotations)
		}
	})

	for _, tc := range []struct {
		name           string
		labels, annots map[string]string
	}{
		{"opt-out label", map[string]string{"sidecar.istio.io/inject": "false"}, nil},
		{"opt-out annotation", nil, map[string]string{"sidecar.istio.io/inject": "false"}},
	} {
		t.Run(tc.name+" untouched", func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			create(t, "mesh", pod(name, tc.labels, tc.annots))
			p := get(t, "mesh", name)
			if names(p.Spec.Containers) != "app" || len(p.Spec.InitContainers) != 0 {
				t.Fatalf("pod was injected: %q", names(p.Spec.Containers))
			}
		})
	}

	t.Run("server dry-run shows the injection and stores nothing", func(t *testing.T) {
		out, err := c.Kubectl(ctx, pod("dry", nil, nil), "create", "-n", "mesh", "--dry-run=server", "-o", "yaml", "-f", "-")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"name: istio-proxy", "name: istio-init", "sidecar.istio.io/status"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry-run output lacks %q", want)
			}
		}
		if _, err := c.Kubectl(ctx, "", "get", "pod", "dry", "-n", "mesh"); err == nil {
			t.Fatal("dry-run pod was stored")
		}
	})

	t.Run("own namespace never injected", func(t *testing.T) {
		create(t, "meshguard-system", pod("meshguard", nil, nil))
		if p := get(t, "meshguard-system", "meshguard"); names(p.Spec.Containers) != "app" {
			t.Fatalf("meshguard's own pod injected: %q", names(p.Spec.Containers))
		}
		if n := rec.seen("meshguard-system"); n != 0 {
			t.Fatalf("webhook called %d times for its own namespace", n)
		}
	})

	t.Run("kube-system never touched", func(t *testing.T) {
		create(t, "kube-system", pod("sys", map[string]string{"sidecar.istio.io/inject": "true"}, nil))
		if p := get(t, "kube-system", "sys"); names(p.Spec.Containers) != "app" {
			t.Fatalf("kube-system pod injected: %q", names(p.Spec.Containers))
		}
		if n := rec.seen("kube-system"); n != 0 {
			t.Fatalf("webhook called %d times for kube-system", n)
		}
	})

	t.Run("gateway template by pod label in an unlabelled namespace", func(t *testing.T) {
		cluster.CreateNamespace(t, c, "istio-ingress", nil)
		manifest, err := os.ReadFile("testdata/gateway-pod.yaml")
		if err != nil {
			t.Fatal(err)
		}
		create(t, "istio-ingress", string(manifest))
		p := get(t, "istio-ingress", "ingressgateway")
		if names(p.Spec.Containers) != "istio-proxy" || len(p.Spec.InitContainers) != 0 {
			t.Fatalf("containers %q init %q, want only istio-proxy", names(p.Spec.Containers), names(p.Spec.InitContainers))
		}
		proxy := p.Spec.Containers[0]
		if proxy.Image != "registry.istio.io/testing/proxyv2:latest" || len(proxy.Args) < 2 || proxy.Args[1] != "router" {
			t.Fatalf("image %q args %q, want the configured image and proxy router", proxy.Image, proxy.Args)
		}
		if sc := proxy.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1337 {
			t.Fatalf("the Deployment's securityContext was not kept: %+v", sc)
		}
		if _, ok := p.Labels[injector.LabelTLSMode]; ok || p.Annotations[injector.AnnotationStatus] == "" {
			t.Fatalf("labels %v annotations %v", p.Labels, p.Annotations)
		}
		reinjectionIsNoop(t, p)
	})

	t.Run("ProxyConfig resources: namespace and workload levels", func(t *testing.T) {
		cluster.CreateNamespace(t, c, "tuned", map[string]string{"istio-injection": "enabled"})
		const crs = `apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: ns-wide, namespace: tuned}
spec:
  concurrency: 3
  environmentVariables: {LEVEL: namespace, NS_ONLY: "1"}
---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: web-only, namespace: tuned}
spec:
  selector: {matchLabels: {app: web}}
  environmentVariables: {LEVEL: workload}
`
		if out, err := c.Kubectl(ctx, crs, "apply", "-f", "-"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, tc := range []struct{ pod, app, level string }{{"tuned-web", "web", "workload"}, {"tuned-db", "db", "namespace"}} {
			create(t, "tuned", pod(tc.pod, map[string]string{"app": tc.app}, nil))
			env := map[string]string{}
			for _, e := range get(t, "tuned", tc.pod).Spec.Containers[1].Env {
				env[e.Name] = e.Value
			}
			if !strings.Contains(env["PROXY_CONFIG"], `"concurrency":3`) || env["LEVEL"] != tc.level || env["NS_ONLY"] != "1" {
				t.Errorf("%s: PROXY_CONFIG %s LEVEL %q NS_ONLY %q, want concurrency 3 from the namespace and LEVEL=%s",
					tc.pod, env["PROXY_CONFIG"], env["LEVEL"], env["NS_ONLY"], tc.level)
			}
		}
	})

	t.Run("OpenShift namespace UID range", func(t *testing.T) {
		cluster.CreateNamespace(t, c, "shift", map[string]string{"istio-injection": "enabled"})
		if out, err := c.Kubectl(ctx, "", "annotate", "namespace", "shift",
			injector.AnnotationOpenShiftUIDRange+"=1000620000/10000", injector.AnnotationOpenShiftSupplementalGroups+"=1000640000/10000"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// Not on OpenShift (the default values), the annotations are not
		// read: Istio's injector reads the namespace only with
		// PLATFORM=openshift.
		create(t, "shift", pod("plain", nil, nil))
		if sc := get(t, "shift", "plain").Spec.Containers[1].SecurityContext; sc == nil || *sc.RunAsUser != 1337 {
			t.Fatalf("istio-proxy securityContext %+v off OpenShift, want UID 1337", sc)
		}
		openshift, err := config.Load(nil, []byte("global: {platform: openshift}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Update(func() (*config.Snapshot, error) { return openshift, nil }); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := store.Update(func() (*config.Snapshot, error) { return config.Default(), nil }); err != nil {
				t.Fatal(err)
			}
		}()
		create(t, "shift", pod("ranged", nil, nil))
		p := get(t, "shift", "ranged")
		sc := p.Spec.Containers[1].SecurityContext
		if sc == nil || *sc.RunAsUser != 1000629999 || *sc.RunAsGroup != 1000649999 {
			t.Fatalf("istio-proxy securityContext %+v, want 1000629999:1000649999", sc)
		}
		if args := strings.Join(p.Spec.InitContainers[0].Args, " "); !strings.Contains(args, "-u 1000629999") {
			t.Fatalf("istio-init args %q do not exclude the proxy's UID", args)
		}
	})

	t.Run("pre-injected pod is not injected twice", func(t *testing.T) {
		res, err := kubeinject.InjectData([]byte(pod("pre", nil, nil)), config.Default())
		if err != nil {
			t.Fatal(err)
		}
		create(t, "mesh", string(res.Output))
		p := get(t, "mesh", "pre")
		if names(p.Spec.Containers) != "app,istio-proxy" || names(p.Spec.InitContainers) != "istio-init" {
			t.Fatalf("containers %q init %q", names(p.Spec.Containers), names(p.Spec.InitContainers))
		}
		reinjectionIsNoop(t, p)
	})

	t.Run("reinvocation after another webhook adds a container", func(t *testing.T) {
		create(t, "mesh", pod("reinvoked", map[string]string{"late": "true"}, nil))
		p := get(t, "mesh", "reinvoked")
		// Webhooks run in name order: meshguard-sidecar-injector, then
		// zz-late-adder, then meshguard again (reinvocationPolicy IfNeeded).
		if names(p.Spec.Containers) != "app,late,istio-proxy" {
			t.Fatalf("containers %q, want app,late,istio-proxy", names(p.Spec.Containers))
		}
		late := p.Spec.Containers[1]
		if rp := late.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/app-health/late/readyz" {
			t.Fatalf("late container's probe not rewritten: %+v", late.ReadinessProbe)
		}
		var probers, apps string
		for _, e := range p.Spec.Containers[2].Env {
			switch e.Name {
			case "ISTIO_KUBE_APP_PROBERS":
				probers = e.Value
			case "ISTIO_META_APP_CONTAINERS":
				apps = e.Value
			}
		}
		if !strings.Contains(probers, "/app-health/late/readyz") || !strings.Contains(probers, "/app-health/app/readyz") || apps != "app,late" {
			t.Fatalf("probers %s, app containers %q", probers, apps)
		}
		// The API server's ServiceAccount plugin mounts the token into every
		// container, the injected ones too when it runs again after a
		// webhook's patch; meshguard's reinvocation keeps those mounts, so
		// the pod ends as Istio's (reinvocationPolicy Never) does.
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			mounted := false
			for _, m := range c.VolumeMounts {
				mounted = mounted || m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount"
			}
			if !mounted {
				t.Errorf("container %s has no ServiceAccount token mount: %+v", c.Name, c.VolumeMounts)
			}
		}
	})

	// Pod-level overrides are guarded by the values' meshguard allow-list
	// (empty here): an image annotation is ignored and the API server relays
	// the warning to kubectl; a privileged override denies the pod.
	t.Run("pod-level image override ignored with a warning", func(t *testing.T) {
		out := create(t, "mesh", pod("imgoverride", nil, map[string]string{injector.AnnotationProxyImage: "evil.example/proxy:1"}))
		if !strings.Contains(out, "Warning: annotation sidecar.istio.io/proxyImage ignored") || !strings.Contains(out, "meshguard.allowedProxyImages") {
			t.Fatalf("kubectl output lacks the warning:\n%s", out)
		}
		p := get(t, "mesh", "imgoverride")
		want := "registry.istio.io/testing/proxyv2:latest"
		if len(p.Spec.Containers) != 2 || p.Spec.Containers[1].Image != want || p.Spec.InitContainers[0].Image != want {
			t.Fatalf("images not the configured one: %+v", p.Spec)
		}
	})

	t.Run("privileged override denied", func(t *testing.T) {
		manifest := pod("privoverride", nil, nil) + "  - name: istio-proxy\n    image: auto\n    securityContext: {privileged: true}\n"
		out, err := c.Kubectl(ctx, manifest, "create", "-n", "mesh", "-f", "-")
		if err == nil {
			t.Fatalf("privileged istio-proxy override admitted:\n%s", out)
		}
		for _, want := range []string{"denied the request", `user-declared container \"istio-proxy\"`, "securityContext.privileged=true", "allowPrivilegedOverrides"} {
			if !strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), strings.ReplaceAll(want, `\"`, `"`)) {
				t.Errorf("denial %q lacks %q", err, want)
			}
		}
		if _, err := c.Kubectl(ctx, "", "get", "pod", "privoverride", "-n", "mesh"); err == nil {
			t.Fatal("denied pod was stored")
		}
	})

	t.Run("samples through meshguard inject are accepted", func(t *testing.T) {
		cluster.CreateNamespace(t, c, "samples", nil)
		cfg, err := config.LoadFiles("", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"testdata/productpage.yaml", "testdata/todo.yaml"} {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := kubeinject.InjectData(in, cfg)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if out, err := c.Kubectl(ctx, string(res.Output), "apply", "-n", "samples", "--dry-run=server", "-f", "-"); err != nil {
				t.Fatalf("%s dry-run: %v\n%s", f, err, out)
			}
			if out, err := c.Kubectl(ctx, string(res.Output), "apply", "-n", "samples", "-f", "-"); err != nil {
				t.Fatalf("%s apply: %v\n%s", f, err, out)
			}
		}
		for _, name := range []string{"productpage-v1", "todo"} {
			d := &appsv1.Deployment{}
			if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "samples", Name: name}, d); err != nil {
				t.Fatal(err)
			}
			tpl := d.Spec.Template
			if !strings.HasSuffix(names(tpl.Spec.Containers), ",istio-proxy") || names(tpl.Spec.InitContainers) != "istio-init" {
				t.Fatalf("%s template containers %q init %q", name, names(tpl.Spec.Containers), names(tpl.Spec.InitContainers))
			}
			if tpl.Annotations["prometheus.io/port"] != "15020" {
				t.Errorf("%s prometheus annotations not merged: %v", name, tpl.Annotations)
			}
		}
		// Every kind meshguard inject handles is accepted after injection.
		all, err := os.ReadFile("../../../injector/kubeinject/testdata/all-kinds.yaml")
		if err != nil {
			t.Fatal(err)
		}
		res, err := kubeinject.InjectData(all, cfg)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Kubectl(ctx, string(res.Output), "apply", "-n", "samples", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Fatalf("all kinds dry-run: %v\n%s", err, out)
		}
		if strings.Count(out, "(server dry run)") != 9 {
			t.Fatalf("not every document accepted:\n%s", out)
		}
		svc := &corev1.Service{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "samples", Name: "productpage"}, svc); err != nil {
			t.Fatalf("service passed through: %v", err)
		}
	})
}
