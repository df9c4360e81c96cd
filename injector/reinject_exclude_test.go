package injector

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

// TestReinjectExcludedStatusPort: re-injecting a pod whose
// traffic.sidecar.istio.io/excludeInboundPorts lists the previous status
// port (with the CNI plugin the first injection writes it there itself).
// What Istio gives: stripPod (pkg/kube/inject/inject.go) removes only the
// containers, volumes and pull secrets the old sidecar.istio.io/status
// lists and, on its own port, the Prometheus annotations, so the
// annotation stays as the pod has it; the template then computes
// istio-init's (istio-validation's) "-d" and, with CNI, the annotation
// again from it: "15090,15021," + excludeInboundPort(status port, the
// pod's annotation) (injection-template.yaml; pkg/kube/inject/template.go
// excludeInboundPort appends the port only when no item equals it, so the
// port is kept once, and a port since changed is added after the old one).
// The expected values below are excludeInboundPort's, applied twice.
func TestReinjectExcludedStatusPort(t *testing.T) {
	for _, c := range []struct {
		name    string
		values  string
		own     map[string]string // the pod's annotations before the first injection
		again   map[string]string // annotations added before re-injecting
		exclude string            // the annotation after re-injection ("" = absent)
		dArg    string            // "-d" after re-injection
	}{
		{"CNI writes the status port: kept once", `{"pilot":{"cni":{"enabled":true}}}`, nil, nil,
			"15020", "15090,15021,15020"},
		{"CNI, the pod lists the status port itself", `{"pilot":{"cni":{"enabled":true}}}`,
			map[string]string{AnnotationExcludeInboundPorts: "15020"}, nil, "15020", "15090,15021,15020"},
		{"CNI, the pod lists another port", `{"pilot":{"cni":{"enabled":true}}}`,
			map[string]string{AnnotationExcludeInboundPorts: "8080"}, nil, "8080,15020", "15090,15021,8080,15020"},
		{"CNI, a status port since changed is added after the old one", `{"pilot":{"cni":{"enabled":true}}}`, nil,
			map[string]string{AnnotationStatusPort: "15030"}, "15020,15030", "15090,15021,15020,15030"},
		{"no CNI, the pod lists the status port", `{}`,
			map[string]string{AnnotationExcludeInboundPorts: "15020"}, nil, "15020", "15090,15021,15020"},
		{"no CNI, the pod lists it after a space", `{}`,
			map[string]string{AnnotationExcludeInboundPorts: "8080, 15020"}, nil, "8080, 15020", "15090,15021,8080,15020,15020"},
	} {
		cfg, err := config.Inputs{Values: []byte(c.values)}.Load()
		if err != nil {
			t.Fatal(err)
		}
		// What Istio's template gives on re-injection, from the annotation
		// the first injection left.
		first := c.own[AnnotationExcludeInboundPorts]
		if slices.Contains([]string{`{"pilot":{"cni":{"enabled":true}}}`}, c.values) {
			first = template.ExcludeInboundPort("15020", first)
		}
		status := "15020"
		if p, ok := c.again[AnnotationStatusPort]; ok {
			status = p
		}
		if got := template.ExcludeInboundPort(status, first); "15090,15021,"+got != c.dArg {
			t.Fatalf("%s: the table's -d %q is not Istio's excludeInboundPort: %q", c.name, c.dArg, "15090,15021,"+got)
		}
		for _, generic := range []bool{false, true} {
			snap := cfg
			if generic {
				snap = forceGeneric(cfg)
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			}
			for k, v := range c.own {
				pod.Annotations[k] = v
			}
			res, err := Inject(pod, "default", snap, Options{})
			if err != nil {
				t.Fatalf("%s (generic %v): %v", c.name, generic, err)
			}
			again := res.Pod.DeepCopy()
			for k, v := range c.again {
				again.Annotations[k] = v
			}
			res, err = Inject(again, "default", snap, Options{})
			if err != nil {
				t.Fatalf("%s (generic %v): re-injecting: %v", c.name, generic, err)
			}
			got, ok := res.Pod.Annotations[AnnotationExcludeInboundPorts]
			if (c.exclude == "") == ok || got != c.exclude {
				t.Errorf("%s (generic %v): %s = %q (present %v), want %q", c.name, generic, AnnotationExcludeInboundPorts, got, ok, c.exclude)
			}
			if d := dArg(res.Pod); d != c.dArg {
				t.Errorf("%s (generic %v): -d %q, want %q", c.name, generic, d, c.dArg)
			}
		}
	}
}

// dArg is the "-d" argument of istio-init or istio-validation.
func dArg(pod *corev1.Pod) string {
	for _, c := range pod.Spec.InitContainers {
		if i := slices.Index(c.Args, "-d"); i >= 0 && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
	}
	return ""
}

// TestReinjectAppScrapeOnAnExcludedPort: the pod's own excludeInboundPorts
// lists the status port before another port ("15020,9102"), so istio-init's
// "-d" is "15090,15021,15020,9102": excludeInboundPort appends nothing and
// its last port is the app's 9102, not the status port. The app scrapes
// 9102 at /stats/prometheus itself with the merge off. Istio's stripPod
// (pkg/kube/inject/inject.go) clears the Prometheus annotations only when
// prometheus.io/port is the mesh's defaultConfig.statusPort (15020), so on
// re-injection they stay the app's: with the merge still off as they are,
// with it now on recorded in ISTIO_PROMETHEUS_ANNOTATIONS by
// applyPrometheusMerge (webhook.go) and pointed at 15020. meshguard took
// -d's last port for the previous status port and the app's annotations
// for the merge's, and dropped them.
func TestReinjectAppScrapeOnAnExcludedPort(t *testing.T) {
	for _, c := range []struct {
		name     string
		exclude  string
		mergeOn  bool   // the merge turned on before re-injecting
		port     string // prometheus.io/port after re-injection
		recorded string // ISTIO_PROMETHEUS_ANNOTATIONS after re-injection
	}{
		{"merge still off", "15020,9102", false, "9102", ""},
		{"merge now on", "15020,9102", true, "15020", `{"scrape":"true","path":"/stats/prometheus","port":"9102"}`},
		{"merge still off, status port listed alone", "15020", false, "9102", ""},
		{"merge still off, status port listed last", "9102,15020", false, "9102", ""},
	} {
		for _, path := range []string{"typed", "generic"} {
			run := typedAndGeneric[path]
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			pod.Annotations = map[string]string{AnnotationPromScrape: "true", AnnotationPromPort: "9102", AnnotationPromPath: "/stats/prometheus",
				AnnotationMergeMetrics: "false", AnnotationExcludeInboundPorts: c.exclude}
			first, err := run(pod, "app", reinjectCfg(t), Options{})
			if err != nil {
				t.Fatalf("%s %s: first injection: %v", c.name, path, err)
			}
			again := first.Pod.DeepCopy()
			if c.mergeOn {
				delete(again.Annotations, AnnotationMergeMetrics)
			}
			res, err := run(again, "app", reinjectCfg(t), Options{})
			if err != nil {
				t.Fatalf("%s %s: re-injection: %v", c.name, path, err)
			}
			a := res.Pod.Annotations
			if a[AnnotationPromPort] != c.port || a[AnnotationPromPath] != "/stats/prometheus" || a[AnnotationPromScrape] != "true" {
				t.Errorf("%s %s: prometheus.io/{port,path,scrape} %q %q %q, want %q /stats/prometheus true", c.name, path,
					a[AnnotationPromPort], a[AnnotationPromPath], a[AnnotationPromScrape], c.port)
			}
			if v, _ := proxyEnvVar(res.Pod, envPromAnnotations); v != c.recorded {
				t.Errorf("%s %s: %s=%q, want %q", c.name, path, envPromAnnotations, v, c.recorded)
			}
		}
	}
}
