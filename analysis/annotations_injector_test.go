package analysis

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/injector"
)

// TestAnnotationChecksAreTheInjectors: one input table through both
// injector.ParseAnnotations (the webhook's rule) and annotationChecks
// (analyze): on a Pod, the annotations analyze reports invalid (IST0125) are
// exactly those the injector rejects, but for the ones Istio's analyzer
// judges otherwise first (unknown to istio.io/api: IST0108). The IST0125
// text is Istio's validator's (pkg/kube/inject/validate.go at istio/istio
// 0098d99f8e43, as Istio's annotations.go allowAnnotations prints it at
// 0a617ca985f9) where Istio rejects the value too, else the webhook's.
func TestAnnotationChecksAreTheInjectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		annos map[string]string
		want  map[string]string // IST0125 by annotation: Istio's text, or "" for the webhook's
	}{
		{"valid values", map[string]string{
			"sidecar.istio.io/interceptionMode": "NONE", "status.sidecar.istio.io/port": "0",
			"traffic.sidecar.istio.io/includeOutboundIPRanges": "*", "traffic.sidecar.istio.io/includeInboundPorts": " 80 , 81 ",
			"readiness.status.sidecar.istio.io/periodSeconds": "2147483647", "prometheus.istio.io/merge-metrics": "0",
			"proxy.istio.io/config": "concurrency: 2", "sidecar.istio.io/proxyCPU": "100m", "inject.istio.io/templates": "sidecar",
		}, nil},
		// Values Istio's template ignores when invalid: warnings, not errors.
		{"lenient values", map[string]string{"sidecar.istio.io/nativeSidecar": "sometimes", "sidecar.istio.io/rewriteAppHTTPProbers": "perhaps"}, nil},
		{"interception mode", map[string]string{"sidecar.istio.io/interceptionMode": "tproxy"},
			map[string]string{"sidecar.istio.io/interceptionMode": "interceptionMode invalid, use REDIRECT,TPROXY,NONE: tproxy"}},
		{"status port", map[string]string{"status.sidecar.istio.io/port": "65536"},
			map[string]string{"status.sidecar.istio.io/port": `excludeInboundPorts invalid: failed parsing port '65536': strconv.ParseUint: parsing "65536": value out of range`}},
		{"readiness", map[string]string{"readiness.status.sidecar.istio.io/initialDelaySeconds": "1.5"},
			map[string]string{"readiness.status.sidecar.istio.io/initialDelaySeconds": `strconv.ParseUint: parsing "1.5": invalid syntax`}},
		// Istio accepts a uint32; the injector denies what its int32 probe field cannot hold.
		{"readiness above int32", map[string]string{"readiness.status.sidecar.istio.io/failureThreshold": "4294967295"},
			map[string]string{"readiness.status.sidecar.istio.io/failureThreshold": ""}},
		{"CIDRs", map[string]string{"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/8,"},
			map[string]string{"traffic.sidecar.istio.io/excludeOutboundIPRanges": `excludeIPRanges invalid: failed parsing cidr '': netip.ParsePrefix(""): no '/'`}},
		{"inbound ports", map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": "80,+81"},
			map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": `includeInboundPorts invalid: failed parsing port '+81': failed parsing port '+81': strconv.ParseUint: parsing "+81": invalid syntax`}},
		{"merge-metrics", map[string]string{"prometheus.istio.io/merge-metrics": "on"},
			map[string]string{"prometheus.istio.io/merge-metrics": `strconv.ParseBool: parsing "on": invalid syntax`}},
		// Annotations Istio's analyzer knows but does not validate: meshguard's
		// injector denies these values, so analyze warns of them.
		{"not validated by Istio", map[string]string{
			"traffic.sidecar.istio.io/includeOutboundPorts": "*", "readiness.status.sidecar.istio.io/applicationPorts": "-1",
			"traffic.sidecar.istio.io/excludeInterfaces": "a/b", "traffic.sidecar.istio.io/kubevirtInterfaces": "averyveryverylongname",
			"sidecar.istio.io/proxyMemoryLimit": "1Gi\n", "sidecar.istio.io/userVolumeMount": "[1]", "inject.istio.io/templates": "grpc-agent",
		}, map[string]string{
			"traffic.sidecar.istio.io/includeOutboundPorts": "", "readiness.status.sidecar.istio.io/applicationPorts": "",
			"traffic.sidecar.istio.io/excludeInterfaces": "", "traffic.sidecar.istio.io/kubevirtInterfaces": "",
			"sidecar.istio.io/proxyMemoryLimit": "", "sidecar.istio.io/userVolumeMount": "", "inject.istio.io/templates": "",
		}},
		// Annotations unknown to istio.io/api: IST0108, their values unjudged.
		{"unknown to Istio", map[string]string{"traffic.sidecar.istio.io/applicationPorts": "x", "prometheus.istio.io/scrape-targets": "15090"}, nil},
		// The gateway template does not read userVolume: the webhook admits
		// the pod, so analyze does not warn (it did when it checked each
		// annotation alone).
		{"userVolume under the gateway template", map[string]string{"inject.istio.io/templates": "gateway", "sidecar.istio.io/userVolume": "{"}, nil},
		{"userVolume under the sidecar template", map[string]string{"sidecar.istio.io/userVolume": "{"},
			map[string]string{"sidecar.istio.io/userVolume": ""}},
		{"several", map[string]string{
			"sidecar.istio.io/interceptionMode": "BAD", "prometheus.istio.io/merge-metrics": "true",
			"traffic.sidecar.istio.io/excludeInboundPorts": "80,x", "sidecar.istio.io/proxyCPU": "lots",
		}, map[string]string{
			"sidecar.istio.io/interceptionMode":            "interceptionMode invalid, use REDIRECT,TPROXY,NONE: BAD",
			"traffic.sidecar.istio.io/excludeInboundPorts": `excludeInboundPorts invalid: failed parsing port 'x': failed parsing port 'x': strconv.ParseUint: parsing "x": invalid syntax`,
			"sidecar.istio.io/proxyCPU":                    "",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := injector.ParseAnnotations(tc.annos)
			rejected := injector.AnnotationErrors(err)
			byCode := map[string]map[string]string{} // code → annotation → message
			for _, m := range annotationChecks(&Input{Kube: []Object{{Kind: "Pod", Namespace: "a", Name: "p", Annotations: tc.annos}}}) {
				name := strings.TrimSuffix(strings.TrimPrefix(m.Field, "metadata.annotations["), "]")
				if byCode[m.Code] == nil {
					byCode[m.Code] = map[string]string{}
				}
				byCode[m.Code][name] = m.Message
			}
			invalid := byCode[InvalidAnnotation]
			// Every annotation analyze reports invalid, the injector rejects.
			for name := range invalid {
				if rejected[name] == nil {
					t.Errorf("%s: IST0125 but the injector accepts it", name)
				}
			}
			// Every annotation the injector rejects, analyze reports: as
			// invalid, or as unknown to Istio.
			for name := range rejected {
				if _, ok := invalid[name]; !ok && byCode[UnknownAnnotation][name] == "" {
					t.Errorf("%s: the injector rejects it (%v) but analyze reports neither IST0125 nor IST0108", name, rejected[name])
				}
			}
			if got := slices.Sorted(maps.Keys(invalid)); !slices.Equal(got, slices.Sorted(maps.Keys(tc.want))) {
				t.Fatalf("IST0125 for %q, want %q", got, slices.Sorted(maps.Keys(tc.want)))
			}
			for name, istio := range tc.want {
				text := istio
				if text == "" {
					text = rejected[name].Error()
				}
				if want := "Invalid annotation " + name + ": " + text; invalid[name] != want {
					t.Errorf("%s:\n got %s\nwant %s", name, invalid[name], want)
				}
			}
		})
	}
}
