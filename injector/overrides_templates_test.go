package injector

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// Containers a pod declares with the names a template injects, on every
// template the typed injector builds (sidecar classic and native, with and
// without CNI, mode NONE; gateway; grpc-simple), as Istio's webhook handles
// them (pkg/kube/inject/webhook.go reapplyOverwrittenContainers,
// reinsertOverrides, reorderPod; inject.go RunTemplate): only the names the
// template injects are overrides, the template is merged onto the pod and
// the pod's container over the result, and the overrides are recorded in
// proxy.istio.io/overrides. Each row runs through Inject on the typed path
// and on the generic renderer of the same stock templates (which follows
// Istio's code step by step), and the two pods must be equal; a typed
// re-injection must change nothing.

// overridesTemplatesCase is one pod under one setting.
type overridesTemplatesCase struct {
	name   string
	values string // injector values (JSON)
	pod    string // YAML
	// wantErr: both paths deny the pod with an error containing it.
	wantErr string
	// The container names in order, and the names recorded in
	// proxy.istio.io/overrides, comma-separated (wantRecorded "-": no
	// annotation).
	wantInit, wantContainers       []string
	wantRecorded, wantRecordedInit string
	// wantWarning: a typed-path warning containing it.
	wantWarning string
	check       func(t *testing.T, pod *corev1.Pod)
}

// The injector values of the rows.
const (
	valuesClassic    = `{"global":{"nativeSidecars":false}}`
	valuesNative     = `{"global":{"nativeSidecars":true}}`
	valuesClassicCNI = `{"global":{"nativeSidecars":false},"pilot":{"cni":{"enabled":true}}}`
	valuesNativeCNI  = `{"global":{"nativeSidecars":true},"pilot":{"cni":{"enabled":true}}}`
)

var overridesTemplatesCases = []overridesTemplatesCase{
	// sidecar: the user's istio-proxy env var that the template does not set
	// ends after the template's, where Istio's two merges put it (the
	// template onto the pod's container, then the pod's container over it).
	{name: "sidecar classic: istio-proxy env of the user's own comes after the template's", values: valuesClassic,
		pod:      `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-proxy, image: auto, env: [{name: FOO, value: bar}]}]}}`,
		wantInit: []string{InitContainerName}, wantContainers: []string{"app", ProxyContainerName}, wantRecorded: ProxyContainerName,
		check: wantEnvAfter(ProxyContainerName, "FOO", "PILOT_CERT_PROVIDER", "bar")},
	{name: "sidecar classic: a template env the user also sets keeps its place and the user's value", values: valuesClassic,
		pod:      `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-proxy, image: auto, env: [{name: FOO, value: bar}, {name: PILOT_CERT_PROVIDER, value: mine}]}]}}`,
		wantInit: []string{InitContainerName}, wantContainers: []string{"app", ProxyContainerName}, wantRecorded: ProxyContainerName,
		check: wantEnvAfter(ProxyContainerName, "CA_ADDR", "PILOT_CERT_PROVIDER", "istiod.istio-system.svc:15012")},
	{name: "sidecar classic: the user's env vars after a template env they also set stay after it (golden overrides)", values: valuesClassic,
		pod:      `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-proxy, image: auto, env: [{name: EXTRA, value: "1"}, {name: TRUST_DOMAIN, value: example.com}]}]}}`,
		wantInit: []string{InitContainerName}, wantContainers: []string{"app", ProxyContainerName}, wantRecorded: ProxyContainerName,
		check: wantEnvAfter(ProxyContainerName, "EXTRA", "ISTIO_META_MESH_ID", "1")},
	{name: "sidecar native: istio-proxy declared among the containers becomes the native sidecar", values: valuesNative,
		pod:      `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-proxy, image: auto, env: [{name: FOO, value: bar}]}]}}`,
		wantInit: []string{InitContainerName, ProxyContainerName}, wantContainers: []string{"app"}, wantRecordedInit: ProxyContainerName,
		check: wantEnvAfter(ProxyContainerName, "FOO", "PILOT_CERT_PROVIDER", "bar")},
	{name: "sidecar native CNI: istio-proxy declared among the init containers", values: valuesNativeCNI,
		pod:      `{metadata: {name: p}, spec: {initContainers: [{name: istio-proxy, image: auto, env: [{name: FOO, value: bar}]}], containers: [{name: app, image: a}]}}`,
		wantInit: []string{ValidationContainerName, ProxyContainerName}, wantContainers: []string{"app"}, wantRecordedInit: ProxyContainerName,
		check: wantEnvAfter(ProxyContainerName, "FOO", "PILOT_CERT_PROVIDER", "bar")},
	{name: "sidecar CNI: the pod's own istio-init among the containers stays", values: valuesClassicCNI,
		pod:      `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-init, image: own}]}}`,
		wantInit: []string{ValidationContainerName}, wantContainers: []string{"app", InitContainerName, ProxyContainerName}, wantRecorded: "-"},

	// An injected name declared in the other list: Istio merges the pod's
	// over the injected one and leaves the pod's where it is, so the name
	// is in the pod twice and the API server rejects it; both paths deny.
	{name: "sidecar classic: istio-proxy among the init containers", values: valuesClassic,
		pod:     `{metadata: {name: p}, spec: {initContainers: [{name: istio-proxy, image: auto}], containers: [{name: app, image: a}]}}`,
		wantErr: `"istio-proxy"`},
	{name: "sidecar classic, mode NONE: istio-proxy among the init containers", values: valuesClassic,
		pod:     `{metadata: {name: p, annotations: {sidecar.istio.io/interceptionMode: NONE}}, spec: {initContainers: [{name: istio-proxy, image: auto}], containers: [{name: app, image: a}]}}`,
		wantErr: `"istio-proxy"`},
	{name: "gateway: istio-proxy among the init containers", values: valuesNative,
		pod:     `{metadata: {name: p, annotations: {inject.istio.io/templates: gateway}}, spec: {initContainers: [{name: istio-proxy, image: auto}], containers: [{name: app, image: a}]}}`,
		wantErr: `"istio-proxy"`},
	{name: "sidecar native: istio-init among the containers", values: valuesNative,
		pod:     `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-init, image: own}]}}`,
		wantErr: `"istio-init"`},
	{name: "sidecar CNI: istio-validation among the containers", values: valuesClassicCNI,
		pod:     `{metadata: {name: p}, spec: {containers: [{name: app, image: a}, {name: istio-validation, image: own}]}}`,
		wantErr: `"istio-validation"`},

	// gateway injects istio-proxy only.
	{name: "gateway: the pod's own istio-init and istio-validation stay", values: valuesClassic,
		pod:      `{metadata: {name: p, annotations: {inject.istio.io/templates: gateway}}, spec: {initContainers: [{name: istio-validation, image: own}, {name: istio-init, image: own}], containers: [{name: istio-proxy, image: auto, env: [{name: FOO, value: bar}]}]}}`,
		wantInit: []string{ValidationContainerName, InitContainerName}, wantContainers: []string{ProxyContainerName}, wantRecorded: ProxyContainerName,
		check: wantEnvAfter(ProxyContainerName, "FOO", "PILOT_CERT_PROVIDER", "bar")},

	// grpc-simple injects grpc-bootstrap-init and every container of the
	// pod: istio-proxy, istio-init and istio-validation are the pod's own.
	{name: "grpc-simple: istio-proxy among the containers is an app container", values: valuesClassic,
		pod:            `{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {containers: [{name: app, image: a}, {name: istio-proxy, image: auto, env: [{name: FOO, value: bar}]}]}}`,
		wantInit:       []string{grpcBootstrapInit},
		wantContainers: []string{"app", ProxyContainerName}, wantRecorded: "app,istio-proxy",
		check: func(t *testing.T, pod *corev1.Pod) {
			wantEnvAfter(ProxyContainerName, "FOO", "GRPC_GO_LOG_SEVERITY_LEVEL", "bar")(t, pod)
			if c := template.FindContainer(ProxyContainerName, pod.Spec.Containers); c.Image != "auto" {
				t.Errorf("istio-proxy image %q, want the pod's own %q", c.Image, "auto")
			}
		}},
	{name: "grpc-simple: istio-init among the containers is an app container", values: valuesClassic,
		pod:      `{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {containers: [{name: app, image: a}, {name: istio-init, image: own}]}}`,
		wantInit: []string{grpcBootstrapInit}, wantContainers: []string{"app", InitContainerName}, wantRecorded: "app,istio-init",
		check: wantEnvAfter(InitContainerName, "GRPC_GO_LOG_SEVERITY_LEVEL", "GRPC_XDS_BOOTSTRAP", "info")},
	{name: "grpc-simple: the pod's own istio-validation, istio-init init containers stay untouched", values: valuesClassicCNI,
		pod:      `{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {initContainers: [{name: setup, image: s}, {name: istio-init, image: own, env: [{name: FOO, value: bar}]}, {name: istio-validation, image: own}], containers: [{name: app, image: a}]}}`,
		wantInit: []string{ValidationContainerName, grpcBootstrapInit, "setup", InitContainerName}, wantContainers: []string{"app"}, wantRecorded: "app",
		check: wantUntouched(InitContainerName, `{name: istio-init, image: own, env: [{name: FOO, value: bar}]}`)},
	{name: "grpc-simple native: the pod's own istio-proxy init container stays untouched, first", values: valuesNative,
		pod:      `{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {initContainers: [{name: setup, image: s}, {name: istio-proxy, image: own}], containers: [{name: app, image: a}]}}`,
		wantInit: []string{ProxyContainerName, grpcBootstrapInit, "setup"}, wantContainers: []string{"app"}, wantRecorded: "app",
		check: wantUntouched(ProxyContainerName, `{name: istio-proxy, image: own}`)},
	{name: "grpc-simple: the pod's grpc-bootstrap-init is merged where it stands and recorded", values: valuesClassic,
		pod:      `{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {initContainers: [{name: setup, image: s}, {name: grpc-bootstrap-init, image: example.com/own:1, env: [{name: FOO, value: bar}]}], containers: [{name: app, image: a}]}}`,
		wantInit: []string{"setup", grpcBootstrapInit}, wantContainers: []string{"app"}, wantRecorded: "app", wantRecordedInit: grpcBootstrapInit,
		wantWarning: `user-declared container "grpc-bootstrap-init" image ignored`,
		check: func(t *testing.T, pod *corev1.Pod) {
			wantEnvAfter(grpcBootstrapInit, "FOO", "ISTIO_NAMESPACE", "bar")(t, pod)
			if c := template.FindContainer(grpcBootstrapInit, pod.Spec.InitContainers); c.Image != "busybox:1.28" {
				t.Errorf("grpc-bootstrap-init image %q: the image allow-list keeps the injected one", c.Image)
			}
		}},
	{name: "grpc-simple: an app container's own GRPC_XDS_BOOTSTRAP and bootstrap mount win", values: valuesClassic,
		pod:      `{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {volumes: [{name: mine, emptyDir: {}}], containers: [{name: app, image: a, env: [{name: A, value: "1"}, {name: GRPC_XDS_BOOTSTRAP, value: /etc/own.json}], volumeMounts: [{name: mine, mountPath: /var/lib/grpc/data/}]}]}}`,
		wantInit: []string{grpcBootstrapInit}, wantContainers: []string{"app"}, wantRecorded: "app",
		check: func(t *testing.T, pod *corev1.Pod) {
			wantEnvAfter("app", "GRPC_XDS_BOOTSTRAP", "A", "/etc/own.json")(t, pod)
			if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "mine" {
				t.Errorf("app mounts %+v, want the pod's own volume at the bootstrap path", m)
			}
		}},
}

func TestOverridesOnEveryTemplate(t *testing.T) {
	for _, tc := range overridesTemplatesCases {
		t.Run(tc.name, func(t *testing.T) {
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict([]byte(tc.pod), &pod); err != nil {
				t.Fatal(err)
			}
			typed, err := config.Inputs{Values: []byte(tc.values)}.Load()
			if err != nil {
				t.Fatal(err)
			}
			results := map[string]*Result{}
			for path, cfg := range map[string]*config.Snapshot{"typed": typed, "generic": forceGeneric(typed)} {
				res, err := Inject(pod.DeepCopy(), "app", cfg, Options{})
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("%s: error %v, want one naming %s", path, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				results[path] = res
				if got := containerNames(res.Pod.Spec.InitContainers); !slices.Equal(got, tc.wantInit) {
					t.Errorf("%s: init containers %v, want %v", path, got, tc.wantInit)
				}
				if got := containerNames(res.Pod.Spec.Containers); !slices.Equal(got, tc.wantContainers) {
					t.Errorf("%s: containers %v, want %v", path, got, tc.wantContainers)
				}
				gotC, gotI := recordedNames(t, res.Pod)
				if gotC != tc.wantRecorded || gotI != tc.wantRecordedInit {
					t.Errorf("%s: recorded containers %q, init containers %q; want %q, %q", path, gotC, gotI, tc.wantRecorded, tc.wantRecordedInit)
				}
				if tc.check != nil {
					tc.check(t, res.Pod)
				}
			}
			if tc.wantErr != "" {
				return
			}
			if tc.wantWarning != "" && !slices.ContainsFunc(results["typed"].Warnings, func(w string) bool { return strings.Contains(w, tc.wantWarning) }) {
				t.Errorf("typed warnings %q, want one containing %q", results["typed"].Warnings, tc.wantWarning)
			}
			if d := jsonDiff("", podJSON(results["typed"].Pod), podJSON(results["generic"].Pod)); len(d) > 0 {
				t.Errorf("typed (got) and generic (want) differ:\n%s", strings.Join(d, "\n"))
			}
			// A re-injection (meshguard inject on its own output, a webhook
			// reinvocation) changes nothing on the typed path.
			again, err := Inject(results["typed"].Pod.DeepCopy(), "app", typed, Options{})
			if err != nil {
				t.Fatalf("typed re-injection: %v", err)
			}
			if len(again.Patch) > 0 {
				t.Errorf("typed re-injection patch: %+v", again.Patch)
			}
		})
	}
}

// typedAndGeneric are the two injection paths, the typed injector and the
// generic renderer of Istio's templates, for tests that hold both to a row.
var typedAndGeneric = map[string]func(*corev1.Pod, string, *config.Snapshot, Options) (*Result, error){"typed": inject, "generic": InjectGeneric}

func containerNames(cs []corev1.Container) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// recordedNames lists, comma-separated, the containers and init containers
// of proxy.istio.io/overrides; "-" and "" without the annotation.
func recordedNames(t *testing.T, pod *corev1.Pod) (containers, inits string) {
	t.Helper()
	raw, ok := pod.Annotations[AnnotationOverrides]
	if !ok {
		return "-", ""
	}
	var po proxyOverrides
	if err := json.Unmarshal([]byte(raw), &po); err != nil {
		t.Fatalf("%s: %v", AnnotationOverrides, err)
	}
	return strings.Join(containerNames(po.Containers), ","), strings.Join(containerNames(po.InitContainers), ",")
}

// wantEnvAfter: container name has env var env with value, after the env
// var before.
func wantEnvAfter(name, env, before, value string) func(*testing.T, *corev1.Pod) {
	return func(t *testing.T, pod *corev1.Pod) {
		t.Helper()
		c := template.FindSidecar(pod)
		if name != ProxyContainerName || c == nil {
			if c = template.FindContainer(name, pod.Spec.Containers); c == nil {
				c = template.FindContainer(name, pod.Spec.InitContainers)
			}
		}
		if c == nil {
			t.Fatalf("no container %q", name)
		}
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env })
		j := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == before })
		if i < 0 || j < 0 || i < j || c.Env[i].Value != value {
			t.Errorf("%s env: %s at %d, %s at %d, want %s=%q after %s: %+v", name, env, i, before, j, env, value, before, c.Env)
		}
	}
}

// wantUntouched: the pod's own init container name is exactly want (YAML).
func wantUntouched(name, want string) func(*testing.T, *corev1.Pod) {
	return func(t *testing.T, pod *corev1.Pod) {
		t.Helper()
		var c corev1.Container
		if err := yaml.UnmarshalStrict([]byte(want), &c); err != nil {
			t.Fatal(err)
		}
		if got := template.FindContainer(name, pod.Spec.InitContainers); got == nil || !reflect.DeepEqual(*got, c) {
			t.Errorf("%s: %+v, want the pod's own %+v untouched", name, got, c)
		}
	}
}

// TestRecordedOverrideNotInjectedNow: a pod injected with istio-init and a
// user's istio-init recorded in proxy.istio.io/overrides, re-injected with
// CNI (istio-validation instead). Istio re-injects into the pod as it is
// (RunTemplate merges onto params.pod, stripPod only feeds the templates),
// so the previous injection's istio-init, image and iptables rules
// included, stays as a plain init container that no status lists; the
// generic path does the same. The typed path drops it with a warning
// (docs/compatibility.md: a stale injected container would outlive every
// later injection).
func TestRecordedOverrideNotInjectedNow(t *testing.T) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(`{metadata: {name: p}, spec: {initContainers: [{name: istio-init, image: auto, env: [{name: FOO, value: bar}]}], containers: [{name: app, image: a}]}}`), &pod); err != nil {
		t.Fatal(err)
	}
	before, err := config.Inputs{Values: []byte(valuesClassic)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	after, err := config.Inputs{Values: []byte(valuesClassicCNI)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path        string
		before      *config.Snapshot
		after       *config.Snapshot
		wantInit    []string
		wantWarning bool
	}{
		{"typed", before, after, []string{ValidationContainerName}, true},
		{"generic", forceGeneric(before), forceGeneric(after), []string{ValidationContainerName, InitContainerName}, false},
	} {
		first, err := Inject(pod.DeepCopy(), "app", tc.before, Options{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := Inject(first.Pod.DeepCopy(), "app", tc.after, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := containerNames(again.Pod.Spec.InitContainers); !slices.Equal(got, tc.wantInit) {
			t.Errorf("%s: init containers %v, want %v", tc.path, got, tc.wantInit)
		}
		warned := slices.ContainsFunc(again.Warnings, func(w string) bool { return strings.Contains(w, `"istio-init" is not injected with these settings`) })
		if warned != tc.wantWarning {
			t.Errorf("%s: warnings %q, want the istio-init one: %v", tc.path, again.Warnings, tc.wantWarning)
		}
		if _, gotI := recordedNames(t, again.Pod); gotI != InitContainerName {
			t.Errorf("%s: recorded init containers %q, want the previous record kept", tc.path, gotI)
		}
	}
}

// TestGrpcSimpleReinjectedAsSidecarKeepsApps: a grpc-simple injection lists
// every app container in its status and records them in
// proxy.istio.io/overrides; re-injected with the sidecar template (the
// annotation removed, e.g. meshguard inject on an edited manifest), the app
// containers come back from the record, as Istio's reinsertOverrides puts
// them back (its re-injection never removes them: RunTemplate merges onto
// the pod as it is).
func TestGrpcSimpleReinjectedAsSidecarKeepsApps(t *testing.T) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(`{metadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple}}, spec: {containers: [{name: app, image: a, ports: [{containerPort: 8080}]}, {name: second, image: auto}]}}`), &pod); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Inputs{Values: []byte(valuesClassic)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for path, cfg := range map[string]*config.Snapshot{"typed": cfg, "generic": forceGeneric(cfg)} {
		first, err := Inject(pod.DeepCopy(), "app", cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		in := first.Pod.DeepCopy()
		delete(in.Annotations, AnnotationInjectTemplates)
		again, err := Inject(in, "app", cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := containerNames(again.Pod.Spec.Containers), []string{"app", "second", ProxyContainerName}; !slices.Equal(got, want) {
			t.Errorf("%s: containers %v, want %v (warnings %q)", path, got, want, again.Warnings)
			continue
		}
		if img := again.Pod.Spec.Containers[1].Image; img != "auto" {
			t.Errorf("%s: second's image %q, want the pod's %q", path, img, "auto")
		}
		if env := template.FindSidecar(again.Pod).Env; !slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
			return e.Name == "ISTIO_META_APP_CONTAINERS" && e.Value == "app,second"
		}) {
			t.Errorf("%s: istio-proxy env %+v, want ISTIO_META_APP_CONTAINERS=app,second", path, env)
		}
	}
}
