package injector

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// TestPrometheusMerge checks Istio's applyPrometheusMerge rules
// (pkg/kube/inject/webhook.go) and the prometheus.istio.io/scrape-targets
// extension: which env is recorded, which annotations result, what is denied.
func TestPrometheusMerge(t *testing.T) {
	merged := map[string]string{AnnotationPromPort: "15020", AnnotationPromPath: "/stats/prometheus", AnnotationPromScrape: "true"}
	tests := []struct {
		name    string
		annos   map[string]string
		env     string // "" = no ISTIO_PROMETHEUS_ANNOTATIONS
		wantErr string
	}{
		{name: "no scrape config: merged annotations, no env", annos: nil},
		{name: "legacy annotations recorded", annos: map[string]string{AnnotationPromPort: "9090", AnnotationPromPath: "/m", AnnotationPromScrape: "true"},
			env: `{"scrape":"true","path":"/m","port":"9090"}`},
		{name: "Prometheus-normalised spelling read and cleared", annos: map[string]string{"prometheus.io.port": "9090"},
			env: `{"scrape":"","path":"","port":"9090"}`},
		{name: "scrape-targets: targets recorded, legacy fields from the first", annos: map[string]string{AnnotationPromScrapeTargets: "8080:/metrics, 9100:/stats"},
			env: `{"scrape":"","path":"/metrics","port":"8080","targets":[{"port":"8080","path":"/metrics"},{"port":"9100","path":"/stats"}]}`},
		{name: "scrape-targets port without path", annos: map[string]string{AnnotationPromScrapeTargets: "8080"},
			env: `{"scrape":"","path":"","port":"8080","targets":[{"port":"8080","path":""}]}`},
		{name: "scrape-targets reserved port denied", annos: map[string]string{AnnotationPromScrapeTargets: "8080:/m,15090:/m"},
			wantErr: "annotation prometheus.istio.io/scrape-targets: port 15090 is reserved by the sidecar"},
		{name: "scrape-targets not a port denied", annos: map[string]string{AnnotationPromScrapeTargets: "http:/m"},
			wantErr: `annotation prometheus.istio.io/scrape-targets: "http" is not a port number`},
		{name: "scrape-targets empty denied", annos: map[string]string{AnnotationPromScrapeTargets: " , "},
			wantErr: "lists no target"},
		{name: "scrape-targets path must be absolute", annos: map[string]string{AnnotationPromScrapeTargets: "8080:metrics"},
			wantErr: "must start with /"},
		{name: "prometheus.io/port out of range denied", annos: map[string]string{AnnotationPromPort: "70000"},
			wantErr: `annotation prometheus.io/port: "70000" is not a port number`},
		{name: "prometheus.io/port 0 denied", annos: map[string]string{AnnotationPromPort: "0"},
			wantErr: `annotation prometheus.io/port: "0" is not a port number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			for k, v := range tt.annos {
				pod.Annotations[k] = v
			}
			res, err := Inject(pod, "app", config.Default(), Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var proxy *corev1.Container
			for _, cs := range [][]corev1.Container{res.Pod.Spec.Containers, res.Pod.Spec.InitContainers} {
				for i := range cs {
					if cs[i].Name == ProxyContainerName {
						proxy = &cs[i]
					}
				}
			}
			got := ""
			for _, e := range proxy.Env {
				if e.Name == envPromAnnotations {
					got = e.Value
				}
			}
			if got != tt.env {
				t.Errorf("ISTIO_PROMETHEUS_ANNOTATIONS = %q, want %q", got, tt.env)
			}
			for k, v := range merged {
				if res.Pod.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, res.Pod.Annotations[k], v)
				}
			}
			for k := range res.Pod.Annotations {
				if n := promNorm(k); (n == promLabelPort || n == promLabelPath || n == promLabelScrape) && merged[k] == "" {
					t.Errorf("annotation %s (a Prometheus spelling) was not cleared", k)
				}
			}
			if v, ok := res.Pod.Annotations[AnnotationPromScrapeTargets]; ok {
				t.Errorf("annotation %s = %q left on the pod; Istio moves it into the env", AnnotationPromScrapeTargets, v)
			}
			// Re-injection restores the app's config from the env: same result.
			again, err := Inject(res.Pod.DeepCopy(), "app", config.Default(), Options{})
			if err != nil {
				t.Fatalf("re-injection: %v", err)
			}
			if g := promEnvOf(again.Pod); g != tt.env {
				t.Errorf("after re-injection ISTIO_PROMETHEUS_ANNOTATIONS = %q, want %q", g, tt.env)
			}
		})
	}
}

func promEnvOf(pod *corev1.Pod) string {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name != ProxyContainerName {
				continue
			}
			for _, e := range c.Env {
				if e.Name == envPromAnnotations {
					return e.Value
				}
			}
		}
	}
	return ""
}

// TestPrometheusScrapeOptOut: Istio's getPrometheusScrape
// (pkg/kube/inject/webhook.go) reads prometheus.io/scrape with
// strconv.ParseBool, so every spelling of false opts the pod out of the
// merge: its annotations stay as written and no env is recorded.
func TestPrometheusScrapeOptOut(t *testing.T) {
	for _, v := range []string{"false", "False", "FALSE", "0", "f"} {
		pod := loadPod(t, "testdata/golden/plain.in.yaml")
		pod.Annotations = map[string]string{AnnotationPromScrape: v, AnnotationPromPort: "9090"}
		res, err := Inject(pod, "app", config.Default(), Options{})
		if err != nil {
			t.Fatalf("scrape %q: %v", v, err)
		}
		if g := promEnvOf(res.Pod); g != "" {
			t.Errorf("scrape %q: ISTIO_PROMETHEUS_ANNOTATIONS = %q, want none", v, g)
		}
		if a := res.Pod.Annotations; a[AnnotationPromScrape] != v || a[AnnotationPromPort] != "9090" {
			t.Errorf("scrape %q: annotations %v, want the pod's own kept", v, a)
		}
	}
}

// TestPrometheusRecordedStatusPortDenied: on re-injection the app's scrape
// config comes back from the recorded ISTIO_PROMETHEUS_ANNOTATIONS; one that
// names the status port was not written by an injection (the merge denies
// it) and is denied as prometheus.io/port is (docs/compatibility.md), not
// mistaken for an already merged pod and passed through.
func TestPrometheusRecordedStatusPortDenied(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	pod.Annotations = map[string]string{AnnotationPromPort: "9090", AnnotationPromPath: "/m"}
	res, err := Inject(pod, "app", config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	again := res.Pod.DeepCopy()
	proxy := container(again, ProxyContainerName)
	for i := range proxy.Env {
		if proxy.Env[i].Name == envPromAnnotations {
			proxy.Env[i].Value = `{"scrape":"","path":"/m","port":"15020"}`
		}
	}
	_, err = Inject(again, "app", config.Default(), Options{})
	if err == nil || !strings.Contains(err.Error(), "annotation prometheus.io/port: port 15020 is reserved by the sidecar") {
		t.Fatalf("error = %v, want the recorded status port denied", err)
	}
}
