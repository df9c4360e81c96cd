package injector

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/injector/config"
)

// TestReinjectUndoesPostProcess: re-injecting an injected pod (a webhook
// reinvocation, `meshguard inject` on its own output) after a setting
// changed starts from the pod as the app wrote it (undoPostProcess, on the
// typed and the generic path alike): probes and hooks the first injection
// rewrote get their own targets back, and the Prometheus annotations its
// merge wrote are undone (Istio's pkg/kube/inject/inject.go stripPod clears
// them when prometheus.io/port is the mesh's defaultConfig.statusPort;
// istio/istio 00af2c5549d5b4b48b3c32fd2d3ceca59ea79f5b).
//
// Where meshguard differs from Istio on purpose: Istio's RunTemplate merges
// the templates onto the injected pod itself (mergedPod = params.pod) and
// applyRewrite runs only when rewriting is on (webhook.go, istio/istio
// 011dc326e977d2919a193b7a555057b1b7daaa2b), so with rewriting now off (or
// status port 0) it keeps the probes rewritten to /app-health/… on the old
// status port; with port 0 nothing serves them and the pod never gets ready.
// meshguard gives the app its probes back.
func TestReinjectUndoesPostProcess(t *testing.T) {
	httpGet := func(path string, port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}}
	}
	appProbes := func(pod *corev1.Pod) {
		pod.Spec.Containers[0].ReadinessProbe = httpGet("/r", intstr.FromInt(8080))
	}
	// Every kind the rewrite handles: a named HTTPS port, tcpSocket, grpc,
	// an HTTP preStop hook (with a host) and a TCP postStart hook.
	allKinds := func(pod *corev1.Pod) {
		c := &pod.Spec.Containers[0]
		c.ReadinessProbe = httpGet("/r", intstr.FromString("http"))
		c.ReadinessProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
		c.ReadinessProbe.TimeoutSeconds = 3
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(8080)}}}
		c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}}}
		c.Lifecycle = &corev1.Lifecycle{
			PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromInt(8080), Host: "localhost"}},
			PostStart: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(8080)}},
		}
	}
	// allKindsAsWritten is allKinds with the named port as the number
	// ISTIO_KUBE_APP_PROBERS records for it (as Istio's DumpAppProbers).
	allKindsAsWritten := func() corev1.Container {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		allKinds(pod)
		c := pod.Spec.Containers[0]
		c.ReadinessProbe.HTTPGet.Port = intstr.FromInt(8080)
		return c
	}()
	appScrape := func(pod *corev1.Pod) {
		pod.Annotations = map[string]string{AnnotationPromScrape: "true", AnnotationPromPort: "9090", AnnotationPromPath: "/m"}
	}
	asWritten := func(t *testing.T, path string, res *Result) {
		t.Helper()
		app := podContainer(res.Pod, "hello")
		if got, want := app.ReadinessProbe, httpGet("/r", intstr.FromInt(8080)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: readiness probe %+v, want the app's %+v", path, got.HTTPGet, want.HTTPGet)
		}
	}
	noProbersOnTyped := func(t *testing.T, path string, res *Result) {
		t.Helper()
		// The generic path keeps the old proxy's env (the templates merge
		// onto it, as Istio's); nothing calls those paths any more.
		if v, ok := proxyEnvVar(res.Pod, envAppProbers); path == "typed" && ok {
			t.Errorf("%s: %s=%s with nothing rewritten", path, envAppProbers, v)
		}
	}
	scrape := func(port string, recorded string) func(*testing.T, string, *Result) {
		return func(t *testing.T, path string, res *Result) {
			t.Helper()
			a := res.Pod.Annotations
			if port == "" {
				for k := range a {
					if strings.HasPrefix(k, "prometheus.io/") {
						t.Errorf("%s: %s=%q left on a pod whose status server is off", path, k, a[k])
					}
				}
			} else if a[AnnotationPromPort] != port || a[AnnotationPromPath] != "/stats/prometheus" || a[AnnotationPromScrape] != "true" {
				t.Errorf("%s: prometheus.io/{port,path,scrape} %q %q %q, want %q /stats/prometheus true", path,
					a[AnnotationPromPort], a[AnnotationPromPath], a[AnnotationPromScrape], port)
			}
			n, v := 0, ""
			for _, e := range podContainer(res.Pod, ProxyContainerName).Env {
				if e.Name == envPromAnnotations {
					n, v = n+1, e.Value
				}
			}
			if n > 1 || v != recorded {
				t.Errorf("%s: %d %s, value %q; want the app's %q once", path, n, envPromAnnotations, v, recorded)
			}
		}
	}
	appAnnotations := func(t *testing.T, path string, res *Result) {
		t.Helper()
		a := res.Pod.Annotations
		if a[AnnotationPromPort] != "9090" || a[AnnotationPromPath] != "/m" || a[AnnotationPromScrape] != "true" {
			t.Errorf("%s: prometheus.io/port %q path %q scrape %q, want the app's 9090 /m true", path, a[AnnotationPromPort], a[AnnotationPromPath], a[AnnotationPromScrape])
		}
	}
	withAnnotations := func(kv ...string) func(*corev1.Pod) {
		return func(pod *corev1.Pod) {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			for i := 0; i+1 < len(kv); i += 2 {
				pod.Annotations[kv[i]] = kv[i+1]
			}
		}
	}
	type row struct {
		name  string
		app   func(*corev1.Pod) // the app's pod before the first injection
		again map[string]string // annotations set before re-injecting
		check []func(*testing.T, string, *Result)
	}
	// statusPortRows change the status port between the two injections.
	type statusPortRow struct {
		row
		drop []string // annotations removed before re-injecting
		mesh string   // the mesh config of the re-injection ("": the default)
	}
	var rows []statusPortRow
	for _, r := range []row{
		{"rewriting now off: the app's probe back", appProbes, map[string]string{AnnotationRewriteProbes: "false"},
			[]func(*testing.T, string, *Result){asWritten, noProbersOnTyped}},
		{"status port now 0: the app's probe back", appProbes, map[string]string{AnnotationStatusPort: "0"},
			[]func(*testing.T, string, *Result){asWritten, noProbersOnTyped}},
		{"rewriting now off: every probe and hook kind back", allKinds, map[string]string{AnnotationRewriteProbes: "false"},
			[]func(*testing.T, string, *Result){func(t *testing.T, path string, res *Result) {
				app := podContainer(res.Pod, "hello")
				for _, f := range []struct {
					name      string
					got, want any
				}{
					{"readinessProbe", app.ReadinessProbe, allKindsAsWritten.ReadinessProbe},
					{"livenessProbe", app.LivenessProbe, allKindsAsWritten.LivenessProbe},
					{"startupProbe", app.StartupProbe, allKindsAsWritten.StartupProbe},
					{"lifecycle", app.Lifecycle, allKindsAsWritten.Lifecycle},
				} {
					if !reflect.DeepEqual(f.got, f.want) {
						a, _ := json.Marshal(f.got)
						b, _ := json.Marshal(f.want)
						t.Errorf("%s: %s %s, want the app's %s", path, f.name, a, b)
					}
				}
			}, noProbersOnTyped}},
		{"status port now 15030: probes rewritten there, probers keep the app's target", appProbes, map[string]string{AnnotationStatusPort: "15030"},
			[]func(*testing.T, string, *Result){func(t *testing.T, path string, res *Result) {
				if got, want := podContainer(res.Pod, "hello").ReadinessProbe, httpGet("/app-health/hello/readyz", intstr.FromInt(15030)); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: readiness probe %+v, want %+v", path, got.HTTPGet, want.HTTPGet)
				}
				if v, _ := proxyEnvVar(res.Pod, envAppProbers); v != `{"/app-health/hello/readyz":{"httpGet":{"path":"/r","port":8080}}}` {
					t.Errorf("%s: %s=%s, want the app's target 8080 /r", path, envAppProbers, v)
				}
			}, scrape("15030", "")}},
		// the merge's own prometheus.io/port "15020" was
		// taken for the app's and denied as a sidecar port.
		{"no scrape config, status port now 15030", nil, map[string]string{AnnotationStatusPort: "15030"},
			[]func(*testing.T, string, *Result){scrape("15030", "")}},
		{"no scrape config, proxy.istio.io/config statusPort 15030", nil, map[string]string{AnnotationProxyConfig: "statusPort: 15030"},
			[]func(*testing.T, string, *Result){scrape("15030", "")}},
		{"no scrape config, status port now 0: no merge left", nil, map[string]string{AnnotationStatusPort: "0"},
			[]func(*testing.T, string, *Result){scrape("", "")}},
		{"the app's scrape config, status port now 15030", appScrape, map[string]string{AnnotationStatusPort: "15030"},
			[]func(*testing.T, string, *Result){scrape("15030", `{"scrape":"true","path":"/m","port":"9090"}`)}},
		{"the app's scrape targets, status port now 15030: kept in the record", func(pod *corev1.Pod) {
			pod.Annotations = map[string]string{AnnotationPromScrapeTargets: "9090:/m,9091"}
		}, map[string]string{AnnotationStatusPort: "15030"},
			[]func(*testing.T, string, *Result){scrape("15030", `{"scrape":"","path":"/m","port":"9090","targets":[{"port":"9090","path":"/m"},{"port":"9091","path":""}]}`)}},
		{"the app's scrape config, merge now off: the app's annotations back", appScrape, map[string]string{AnnotationMergeMetrics: "false"},
			[]func(*testing.T, string, *Result){appAnnotations}},
		{"the app's scrape config, status port now 0: the app's annotations back", appScrape, map[string]string{AnnotationStatusPort: "0"},
			[]func(*testing.T, string, *Result){appAnnotations}},
	} {
		rows = append(rows, statusPortRow{row: r})
	}
	rows = append(rows, []statusPortRow{
		// The merge's own annotations point at the
		// status port of the previous injection, which is not the one in
		// force now when the status port changed since; they were taken for
		// the app's (mergeWritten). (a) The status port annotation is
		// removed: Istio's merge never used it (webhook.go
		// applyPrometheusMerge reads req.meshConfig's
		// defaultConfig.statusPort; istio/istio
		// 011dc326e977d2919a193b7a555057b1b7daaa2b), so its stripPod clears
		// its own 15020 and re-injection gives what meshguard now gives. (b)
		// The mesh's defaultConfig.statusPort changes: Istio's stripPod
		// compares with the new port only and keeps the old annotations;
		// applyPrometheusMerge then records
		// {"scrape":"true","path":"/stats/prometheus","port":"15020"} as the
		// app's in ISTIO_PROMETHEUS_ANNOTATIONS, a port nothing serves any
		// more. meshguard denied it as a sidecar port; it now records
		// nothing, on purpose unlike Istio.
		{row{"no scrape config, status port annotation 15030 removed", withAnnotations(AnnotationStatusPort, "15030"), nil,
			[]func(*testing.T, string, *Result){scrape("15020", "")}}, []string{AnnotationStatusPort}, ""},
		{row{"no scrape config, proxy.istio.io/config statusPort 15030 removed", withAnnotations(AnnotationProxyConfig, "statusPort: 15030"), nil,
			[]func(*testing.T, string, *Result){scrape("15020", "")}}, []string{AnnotationProxyConfig}, ""},
		{row{"no scrape config, mesh defaultConfig.statusPort now 15030", nil, nil,
			[]func(*testing.T, string, *Result){scrape("15030", "")}}, nil, "defaultConfig:\n  statusPort: 15030\n"},
		{row{"no scrape config, status port annotation 15030 removed, mesh statusPort now 15040", withAnnotations(AnnotationStatusPort, "15030"), nil,
			[]func(*testing.T, string, *Result){scrape("15040", "")}}, []string{AnnotationStatusPort}, "defaultConfig:\n  statusPort: 15040\n"},
		{row{"the app's scrape config, mesh defaultConfig.statusPort now 15030", appScrape, nil,
			[]func(*testing.T, string, *Result){scrape("15030", `{"scrape":"true","path":"/m","port":"9090"}`)}}, nil, "defaultConfig:\n  statusPort: 15030\n"},
		// The app's own annotations, left alone by a first injection whose
		// merge was off, stay the app's when the merge is on again.
		{row{"the app's scrape config, merge was off, now on: recorded as the app's",
			withAnnotations(AnnotationPromScrape, "true", AnnotationPromPort, "9090", AnnotationPromPath, "/m", AnnotationMergeMetrics, "false"), nil,
			[]func(*testing.T, string, *Result){scrape("15020", `{"scrape":"true","path":"/m","port":"9090"}`)}}, []string{AnnotationMergeMetrics}, ""},
		// The app's own annotations of the merge's shape, on a port its
		// container declares, left alone by a first injection without a
		// status server: a reinvocation leaves them (mergeWritten).
		{row{"the app's /stats/prometheus on its declared port 8080, status port 0: kept",
			withAnnotations(AnnotationPromScrape, "true", AnnotationPromPort, "8080", AnnotationPromPath, "/stats/prometheus", AnnotationStatusPort, "0"), nil,
			[]func(*testing.T, string, *Result){func(t *testing.T, path string, res *Result) {
				a := res.Pod.Annotations
				if a[AnnotationPromPort] != "8080" || a[AnnotationPromPath] != "/stats/prometheus" || a[AnnotationPromScrape] != "true" {
					t.Errorf("%s: prometheus.io/port %q path %q scrape %q, want the app's 8080 /stats/prometheus true", path,
						a[AnnotationPromPort], a[AnnotationPromPath], a[AnnotationPromScrape])
				}
			}}}, nil, ""},
		{row{"the app's /stats/prometheus on its declared port 8080, merge was off, now on: recorded as the app's",
			withAnnotations(AnnotationPromScrape, "true", AnnotationPromPort, "8080", AnnotationPromPath, "/stats/prometheus", AnnotationMergeMetrics, "false"), nil,
			[]func(*testing.T, string, *Result){scrape("15020", `{"scrape":"true","path":"/stats/prometheus","port":"8080"}`)}}, []string{AnnotationMergeMetrics}, ""},
	}...)
	// With the merge off the app scrapes a port of
	// the merge's shape itself (Envoy's own 15090, or 9102 no container
	// declares); nothing wrote them but the app and nothing writes them
	// back, so a reinvocation keeps them. Istio's stripPod clears them only
	// when prometheus.io/port is the mesh's defaultConfig.statusPort
	// (pkg/kube/inject/inject.go stripPod, istio/istio
	// 00af2c5549d5b4b48b3c32fd2d3ceca59ea79f5b): kept there too. meshguard
	// clears them when the port is the status port the previous injection
	// recorded (previous.statusPorts), here 15020.
	for _, port := range []string{"15090", "9102"} {
		for _, again := range []map[string]string{nil, {AnnotationStatusPort: "15030"}} {
			name := "merge off, the app scrapes " + port + " /stats/prometheus itself: kept"
			if again != nil {
				name = "merge off, the app scrapes " + port + " /stats/prometheus itself, status port now 15030: kept"
			}
			rows = append(rows, statusPortRow{row: row{name,
				withAnnotations(AnnotationPromScrape, "true", AnnotationPromPort, port, AnnotationPromPath, "/stats/prometheus", AnnotationMergeMetrics, "false"), again,
				[]func(*testing.T, string, *Result){func(t *testing.T, path string, res *Result) {
					a := res.Pod.Annotations
					if a[AnnotationPromPort] != port || a[AnnotationPromPath] != "/stats/prometheus" || a[AnnotationPromScrape] != "true" {
						t.Errorf("%s: prometheus.io/port %q path %q scrape %q, want the app's %s /stats/prometheus true", path,
							a[AnnotationPromPort], a[AnnotationPromPath], a[AnnotationPromScrape], port)
					}
					if v, ok := proxyEnvVar(res.Pod, envPromAnnotations); ok {
						t.Errorf("%s: %s=%s with the merge off", path, envPromAnnotations, v)
					}
				}}}})
		}
	}
	for _, tc := range rows {
		for _, path := range []string{"typed", "generic"} {
			run := typedAndGeneric[path]
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			if tc.app != nil {
				tc.app(pod)
			}
			first, err := run(pod, "app", reinjectCfg(t), Options{})
			if err != nil {
				t.Fatalf("%s %s: first injection: %v", tc.name, path, err)
			}
			again := first.Pod.DeepCopy()
			for k, v := range tc.again {
				again.Annotations[k] = v
			}
			for _, k := range tc.drop {
				delete(again.Annotations, k)
			}
			cfg := reinjectCfg(t)
			if tc.mesh != "" {
				if cfg, err = (config.Inputs{Mesh: []byte(tc.mesh)}).Load(); err != nil {
					t.Fatal(err)
				}
			}
			res, err := run(again, "app", cfg, Options{})
			if err != nil {
				t.Errorf("%s %s: re-injection: %v", tc.name, path, err)
				continue
			}
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				for _, check := range tc.check {
					check(t, path, res)
				}
			})
		}
	}
}

func podContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return &corev1.Container{Name: name + " (missing)"}
}

func proxyEnvVar(pod *corev1.Pod, name string) (string, bool) {
	for _, e := range podContainer(pod, ProxyContainerName).Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func reinjectCfg(t *testing.T) *config.Snapshot {
	t.Helper()
	cfg, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReinjectRecordFromListedProxy: both renderers read the previous
// injection's record (ISTIO_PROMETHEUS_ANNOTATIONS, ISTIO_KUBE_APP_PROBERS)
// from the same place, the istio-proxy its sidecar.istio.io/status lists
// (previous.fromInjected); an istio-proxy it does not list is the pod's own,
// not a record. A minor divergence: the template path read it
// from any istio-proxy. Here the status no longer lists istio-proxy and the
// merge is now off: the record is not restored, so the merge's annotations
// (port 15020, the mesh's status port) are cleared as Istio's stripPod does
// and none is left, on both paths.
func TestReinjectRecordFromListedProxy(t *testing.T) {
	for _, path := range []string{"typed", "generic"} {
		run := typedAndGeneric[path]
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		pod.Annotations = map[string]string{AnnotationPromScrape: "true", AnnotationPromPort: "9090", AnnotationPromPath: "/m"}
		first, err := run(pod, "app", reinjectCfg(t), Options{})
		if err != nil {
			t.Fatalf("%s: first injection: %v", path, err)
		}
		again := first.Pod.DeepCopy()
		again.Annotations[AnnotationStatus] = `{"initContainers":["istio-init"],"containers":[],"volumes":[],"imagePullSecrets":null,"revision":"default"}`
		again.Annotations[AnnotationMergeMetrics] = "false"
		res, err := run(again, "app", reinjectCfg(t), Options{})
		if err != nil {
			t.Fatalf("%s: re-injection: %v", path, err)
		}
		for k, v := range res.Pod.Annotations {
			if strings.HasPrefix(k, "prometheus.io/") {
				t.Errorf("%s: %s=%q restored from an istio-proxy the status does not list", path, k, v)
			}
		}
	}
}

// TestExcludedStatusPort: the status port an istio-iptables "-d" argument
// names, as Istio's injection-template.yaml writes it ("15090,15021," then
// pkg/kube/inject/template.go excludeInboundPort, which appends the status
// port after the pod's own exclusions unless they list it).
func TestExcludedStatusPort(t *testing.T) {
	listedAs := func(s string) *string { return &s }
	for _, tc := range []struct {
		args []string
		own  *string // the pod's traffic.sidecar.istio.io/excludeInboundPorts
		want string
	}{
		{[]string{"istio-iptables", "-d", "15090,15021,15020", "--log_output_level=default:info"}, nil, "15020"},
		{[]string{"-d", "15090,15021,9102,15030"}, nil, "15030"},
		{[]string{"-d", "15090,15021,9102,15030"}, listedAs("9102"), "15030"},    // appended after the pod's own
		{[]string{"-d", "15090,15021,9102,15030"}, listedAs(" 9102"), "15030"},   // trimmed, then appended
		{[]string{"-d", "15090,15021,15020,9102"}, listedAs("15020,9102"), ""},   // listed already: the last port is the pod's
		{[]string{"-d", "15090,15021,9102,15020"}, listedAs("9102,15020"), ""},   // listed already (or CNI wrote it): unknown
		{[]string{"-d", "15090,15021,15020"}, listedAs("15020"), ""},             // as PROXY_CONFIG says anyway
		{[]string{"-d", "15090,15021,9102"}, listedAs("9102"), ""},               // status port 0
		{[]string{"-d", "15090,15021,15020, 9102"}, listedAs("15020, 9102"), ""}, // listed already, returned as written
		{[]string{"-d", "15090,15021,15020,15020"}, listedAs(" 15020"), "15020"}, // " 15020" is no item equal to 15020: appended
		{[]string{"-d", "15090,15021"}, nil, ""},                                 // status port 0, no exclusions
		{[]string{"-d", "15090,15021,"}, nil, ""},
		{[]string{"-d"}, nil, ""},
		{[]string{"istio-iptables", "-b", "*"}, nil, ""},
		{nil, nil, ""},
	} {
		own, listed := "", tc.own != nil
		if listed {
			own = *tc.own
		}
		if got := excludedStatusPort(tc.args, own, listed); got != tc.want {
			t.Errorf("excludedStatusPort(%q, %v %q) = %q, want %q", tc.args, listed, own, got, tc.want)
		}
	}
}
