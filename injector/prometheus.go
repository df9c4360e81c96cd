package injector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// promConfig is ISTIO_PROMETHEUS_ANNOTATIONS (Istio PrometheusScrapeConfiguration).
type promConfig struct {
	Scrape string `json:"scrape"`
	Path   string `json:"path"`
	Port   string `json:"port"`
}

// Ports the sidecar uses without declaring them (istioReservedPorts, spec §2.5).
var reservedPorts = map[int]bool{15000: true, 15001: true, 15004: true, 15006: true, 15008: true, 15020: true, 15021: true, 15053: true, 15090: true}

// promNorm maps an annotation key to the label name Prometheus derives from it.
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
// scrape config (spec §2.9). prev is the config remembered by a previous injection.
func (p *params) mergePrometheus(pod *corev1.Pod, prev *promConfig) (*corev1.EnvVar, error) {
	a := pod.Annotations
	if p.meshStatus == 0 {
		return nil, nil
	}
	for k, v := range a {
		if promNorm(k) == "prometheus_io_scrape" && strings.EqualFold(v, "false") {
			return nil, nil
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
	if a[AnnotationPromPort] == sp {
		if prev == nil {
			return nil, nil // already merged by someone else; nothing to record
		}
	}
	cfg := promConfig{Scrape: a[AnnotationPromScrape], Path: a[AnnotationPromPath], Port: a[AnnotationPromPort]}
	if cfg.Port != "" {
		n, err := strconv.Atoi(cfg.Port)
		switch {
		case err != nil || n < 1 || n > 65535:
			return nil, fmt.Errorf("annotation %s: %q is not a port number", AnnotationPromPort, cfg.Port)
		case cfg.Port == sp || reservedPorts[n]:
			return nil, fmt.Errorf("annotation %s: port %d is reserved by the sidecar", AnnotationPromPort, n)
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	a[AnnotationPromPort] = sp
	a[AnnotationPromPath] = "/stats/prometheus"
	a[AnnotationPromScrape] = "true"
	return &corev1.EnvVar{Name: envPromAnnotations, Value: string(b)}, nil
}
