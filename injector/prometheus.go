package injector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// promConfig is ISTIO_PROMETHEUS_ANNOTATIONS (Istio's pilot-agent
// status.PrometheusScrapeConfiguration, with the Targets list that
// prometheus.istio.io/scrape-targets fills).
type promConfig struct {
	Scrape  string         `json:"scrape"`
	Path    string         `json:"path"`
	Port    string         `json:"port"`
	Targets []scrapeTarget `json:"targets,omitempty"`
}

// scrapeTarget is one "port:path" entry of prometheus.istio.io/scrape-targets.
type scrapeTarget struct {
	Port string `json:"port"`
	Path string `json:"path"`
}

func (c *promConfig) isEmpty() bool {
	return c.Scrape == "" && c.Path == "" && c.Port == "" && len(c.Targets) == 0
}

// Ports the sidecar uses without declaring them (Istio's istioReservedPorts).
var reservedPorts = map[int]bool{15000: true, 15001: true, 15004: true, 15006: true, 15008: true, 15020: true, 15021: true, 15053: true, 15090: true}

// Prometheus label names of the annotations Istio's merge reads
// (pkg/kube/inject/webhook.go: prometheus_io_scrape etc.).
const (
	promLabelScrape = "prometheus_io_scrape"
	promLabelPort   = "prometheus_io_port"
	promLabelPath   = "prometheus_io_path"
)

// promNorm maps an annotation key to the label name Prometheus derives from
// it (strutil.SanitizeLabelName), so prometheus.io.scrape counts as
// prometheus.io/scrape.
func promNorm(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// mergePrometheus points the pod's Prometheus annotations at pilot-agent's
// merged metrics endpoint and returns the env var recording the app's own
// scrape config, or nil when that config is empty (Istio webhook.go
// applyPrometheusMerge: scrape != emptyScrape). prev is the config
// remembered by a previous injection (already restored onto the pod).
func (p *params) mergePrometheus(pod *corev1.Pod, prev *promConfig) (*corev1.EnvVar, error) {
	a := pod.Annotations
	if p.meshStatus == 0 {
		// No status server, so nothing serves the merged endpoint: keep the
		// app's own scrape config (a deliberate difference, docs/compatibility.md).
		return nil, nil
	}
	var cfg promConfig
	portSet := false
	for k, v := range a {
		switch promNorm(k) {
		case promLabelScrape:
			if b, err := strconv.ParseBool(v); err == nil && !b {
				return nil, nil // Istio getPrometheusScrape: the pod opted out
			}
			cfg.Scrape = v
		case promLabelPort:
			cfg.Port, portSet = v, true
		case promLabelPath:
			cfg.Path = v
		}
	}
	enabled := p.cfg.Mesh.GetEnablePrometheusMerge() == nil || p.cfg.Mesh.GetEnablePrometheusMerge().GetValue()
	if s, ok := a[AnnotationMergeMetrics]; ok {
		enabled, _ = strconv.ParseBool(s) // validated in resolveParams
	}
	if !enabled {
		return nil, nil
	}
	sp := strconv.Itoa(int(p.meshStatus))
	if portSet && cfg.Port == sp && prev == nil {
		return nil, nil // already merged (re-injection or the user's choice)
	}
	if raw, ok := a[AnnotationPromScrapeTargets]; ok {
		targets, err := parseScrapeTargets(raw, sp)
		if err != nil {
			return nil, err
		}
		cfg.Targets = targets
		if len(targets) > 0 { // the legacy fields come from the first target
			cfg.Port, cfg.Path = targets[0].Port, targets[0].Path
		}
	}
	if cfg.Port != "" {
		if err := checkScrapePort(AnnotationPromPort, cfg.Port, sp); err != nil {
			return nil, err
		}
	}
	var env *corev1.EnvVar
	if !cfg.isEmpty() {
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		env = &corev1.EnvVar{Name: envPromAnnotations, Value: string(b)}
	}
	// Every spelling Prometheus reads is cleared, then Istio's three are set
	// (Istio clearPrometheusAnnotations).
	for k := range a {
		switch promNorm(k) {
		case promLabelScrape, promLabelPort, promLabelPath:
			delete(a, k)
		}
	}
	a[AnnotationPromPort] = sp
	a[AnnotationPromPath] = "/stats/prometheus"
	a[AnnotationPromScrape] = "true"
	return env, nil
}

// maxScrapeTargets bounds prometheus.istio.io/scrape-targets.
const maxScrapeTargets = 64

// parseScrapeTargets parses prometheus.istio.io/scrape-targets, a
// comma-separated list of "port" or "port:path", validating each port like
// prometheus.io/port.
func parseScrapeTargets(raw, statusPort string) ([]scrapeTarget, error) {
	var out []scrapeTarget
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		port, path, _ := strings.Cut(item, ":")
		if err := checkScrapePort(AnnotationPromScrapeTargets, port, statusPort); err != nil {
			return nil, err
		}
		if path != "" && !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("annotation %s: path %q of target %q must start with /", AnnotationPromScrapeTargets, path, item)
		}
		out = append(out, scrapeTarget{Port: port, Path: path})
		if len(out) > maxScrapeTargets {
			return nil, fmt.Errorf("annotation %s: more than %d targets", AnnotationPromScrapeTargets, maxScrapeTargets)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("annotation %s: %q lists no target", AnnotationPromScrapeTargets, raw)
	}
	return out, nil
}

func checkScrapePort(annotation, port, statusPort string) error {
	n, err := strconv.Atoi(port)
	switch {
	case err != nil || n < 1 || n > 65535:
		return fmt.Errorf("annotation %s: %q is not a port number", annotation, port)
	case port == statusPort || reservedPorts[n]:
		return fmt.Errorf("annotation %s: port %d is reserved by the sidecar", annotation, n)
	}
	return nil
}
