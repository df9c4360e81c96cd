package injector

import (
	"slices"
	"strings"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestParseAnnotationsIstioRules checks each validated annotation against
// the verdicts of Istio's pkg/kube/inject/validate.go (validateAnnotations and
// the validators it maps annotations to): valid values parse, invalid ones
// are an error naming exactly that annotation. Where meshguard deliberately
// differs, the case says so (docs/compatibility.md, "Injection annotations").
func TestParseAnnotationsIstioRules(t *testing.T) {
	cases := []struct {
		key, value string
		valid      bool
		why        string // a deliberate difference from Istio's verdict
	}{
		// validateInterceptionMode: the three mode names, exactly.
		{AnnotationInterceptionMode, "REDIRECT", true, ""},
		{AnnotationInterceptionMode, "TPROXY", true, ""},
		{AnnotationInterceptionMode, "NONE", true, ""},
		{AnnotationInterceptionMode, "redirect", false, ""},
		{AnnotationInterceptionMode, "tproxy", false, ""},
		{AnnotationInterceptionMode, "", false, ""},
		// validateStatusPort: parsePort, a trimmed uint16 (0 disables).
		{AnnotationStatusPort, "15020", true, ""},
		{AnnotationStatusPort, " 15021 ", false, "not canonical: Istio's template copies the spaces into -d and --debug-port"},
		{AnnotationStatusPort, "00", false, "not canonical: Istio's template compares the raw string with \"0\""},
		{AnnotationStatusPort, "015030", false, "not canonical"},
		{AnnotationStatusPort, "+15030", false, ""},
		{AnnotationStatusPort, "0", true, ""},
		{AnnotationStatusPort, "65535", true, ""},
		{AnnotationStatusPort, "65536", false, ""},
		{AnnotationStatusPort, "-1", false, ""},
		{AnnotationStatusPort, "http", false, ""},
		// validateUInt32 for the three readiness settings.
		{AnnotationReadinessDelay, "0", true, ""},
		{AnnotationReadinessPeriod, "10", true, ""},
		{AnnotationReadinessFailure, "2147483647", true, ""},
		{AnnotationReadinessFailure, "2147483648", false, "the probe field is an int32: Istio's pod would not decode"},
		{AnnotationReadinessPeriod, "-5", false, ""},
		{AnnotationReadinessDelay, " 1", false, ""},
		{AnnotationReadinessDelay, "+1", false, ""},
		{AnnotationReadinessDelay, "010", false, "not canonical: Istio's template writes it unquoted, YAML 1.1 reads octal 8"},
		{AnnotationReadinessPeriod, "00", false, "not canonical"},
		{AnnotationReadinessFailure, "0100", false, "not canonical: octal 64 in Istio's pod"},
		{AnnotationReadinessDelay, "1.5", false, ""},
		// ValidateIncludeIPRanges / ValidateExcludeIPRanges: "*" (include
		// only), "" or netip prefixes separated by bare commas.
		{AnnotationIncludeOutboundIPs, "*", true, ""},
		{AnnotationIncludeOutboundIPs, "", true, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.0/8,172.16.0.0/12", true, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.1/8", true, ""},
		{AnnotationIncludeOutboundIPs, "fd00::/8", true, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.0/33", false, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.0", false, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.0/8, 172.16.0.0/12", false, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.0/8,", false, ""},
		{AnnotationIncludeOutboundIPs, " * ", false, ""},
		{AnnotationExcludeOutboundIPs, "", true, ""},
		{AnnotationExcludeOutboundIPs, "10.96.0.1/32", true, ""},
		{AnnotationExcludeOutboundIPs, "*", false, ""},
		// ValidateIncludeInboundPorts / ValidateExcludeInboundPorts /
		// ValidateExcludeOutboundPorts: "*" (include only) or parsePorts.
		{AnnotationIncludeInboundPorts, "*", true, ""},
		{AnnotationIncludeInboundPorts, "8080,9090", true, ""},
		{AnnotationIncludeInboundPorts, " 8080 , 9090 ", true, ""},
		{AnnotationIncludeInboundPorts, "", true, ""},
		{AnnotationIncludeInboundPorts, "http", false, ""},
		{AnnotationExcludeInboundPorts, "0", true, ""},
		{AnnotationExcludeInboundPorts, "70000", false, ""},
		{AnnotationExcludeInboundPorts, "80,,81", false, ""},
		{AnnotationExcludeInboundPorts, "*", false, ""},
		{AnnotationExcludeOutboundPorts, "3306,5432", true, ""},
		{AnnotationExcludeOutboundPorts, "-1", false, ""},
		{AnnotationExcludeOutboundPorts, "+80", false, ""},
		// Istio does not validate these; meshguard applies the port-list rule.
		{AnnotationIncludeOutboundPorts, "443", true, ""},
		{AnnotationIncludeOutboundPorts, "https", false, "istio-iptables would fail on it"},
		{AnnotationIncludeOutboundPorts, "*", false, "no wildcard: istio-iptables passes each item to --dport"},
		{AnnotationReadinessAppPorts, "-1", false, "validated like the other port lists"},
		{AnnotationTrafficAppPorts, "8080,8081", true, ""},
		{AnnotationTrafficAppPorts, "x", false, "validated like the other port lists"},
		{AnnotationExcludeInterfaces, "eth1,eth2", true, ""},
		{AnnotationExcludeInterfaces, "a/b", false, "not an interface name"},
		{AnnotationKubevirtInterfaces, "net1", true, ""},
		{AnnotationRerouteVirtual, "averyveryverylongname", false, "not an interface name"},
		// validateBool (strconv.ParseBool).
		{AnnotationMergeMetrics, "true", true, ""},
		{AnnotationMergeMetrics, "F", true, ""},
		{AnnotationMergeMetrics, "0", true, ""},
		{AnnotationMergeMetrics, "yes", false, ""},
		// validateProxyConfig: proxy.istio.io/config must parse as a ProxyConfig.
		{AnnotationProxyConfig, "concurrency: 2", true, ""},
		{AnnotationProxyConfig, "{holdApplicationUntilProxyStarts: true}", true, ""},
		{AnnotationProxyConfig, "concurrency: [", false, ""},
		{AnnotationProxyConfig, "noSuchField: 1", false, ""},
		// Resource quantities (Istio renders them into the pod, which must decode).
		{AnnotationProxyCPU, "100m", true, ""},
		{AnnotationProxyMemoryLimit, "1Gi", true, ""},
		{AnnotationProxyCPU, "lots", false, ""},
		{AnnotationProxyMemoryLimit, "1Gi\n", false, ""},
		// Templates meshguard builds (others are denied rather than ignored).
		{AnnotationInjectTemplates, "gateway", true, ""},
		{AnnotationInjectTemplates, "sidecar,sidecar", true, ""},
		{AnnotationInjectTemplates, "grpc-agent", false, "a template meshguard does not build"},
		{AnnotationInjectTemplates, "sidecar, gateway", false, "two templates at once"},
		// The sidecar template's userVolume / userVolumeMount (fromJSON).
		{AnnotationUserVolume, `{"v":{"emptyDir":{}}}`, true, ""},
		{AnnotationUserVolume, `[{"name":"v","emptyDir":{}}]`, true, ""},
		{AnnotationUserVolume, "{", false, ""},
		{AnnotationUserVolumeMount, `{"v":{"mountPath":"/v"}}`, true, ""},
		{AnnotationUserVolumeMount, `[1]`, false, ""},
		// prometheus.istio.io/scrape-targets.
		{AnnotationPromScrapeTargets, "8080:/metrics,9100", true, ""},
		{AnnotationPromScrapeTargets, "15090", false, "a port of the sidecar"},
		{AnnotationPromScrapeTargets, "8080:metrics", false, "a relative path"},
		{AnnotationPromScrapeTargets, " , ", false, "no target"},
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			a, err := ParseAnnotations(map[string]string{tc.key: tc.value})
			if tc.valid {
				if err != nil || a == nil {
					t.Fatalf("valid value rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid value accepted (%s)", tc.why)
			}
			if f := Fields(err); !slices.Equal(f, []string{"annotation " + tc.key}) {
				t.Fatalf("error %q names %q, want only the annotation", err, f)
			}
		})
	}
}

func TestParseAnnotationsTypedValues(t *testing.T) {
	a, err := ParseAnnotations(map[string]string{
		AnnotationInterceptionMode:  "TPROXY",
		AnnotationStatusPort:        "15021",
		AnnotationReadinessPeriod:   "7",
		AnnotationMergeMetrics:      "false",
		AnnotationNativeSidecar:     "true",
		AnnotationRewriteProbes:     "0",
		AnnotationProxyImage:        "proxyv2", // no "/": not an image name, ignored (Istio's template)
		AnnotationProxyImageType:    "distroless",
		AnnotationProxyCPU:          "100m",
		AnnotationProxyMemoryLimit:  "1Gi",
		AnnotationCapNetBind:        "True",
		AnnotationBootstrapOverride: "my-bootstrap",
		AnnotationProxyConfig:       "concurrency: 3",
		AnnotationUserVolume:        `{"b":{"emptyDir":{}},"a":{"emptyDir":{}}}`,
		AnnotationInjectTemplates:   " sidecar ",
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Template", a.Template, TemplateSidecar)
	check("InterceptionMode", a.InterceptionMode, some(meshv1alpha1.ProxyConfig_TPROXY))
	check("StatusPort", a.StatusPort, some(int32(15021)))
	check("ReadinessPeriodSeconds", a.ReadinessPeriodSeconds, some(int32(7)))
	check("ReadinessFailureThreshold", a.ReadinessFailureThreshold.Or(30), int32(30))
	check("MergeMetrics", a.MergeMetrics, some(false))
	check("NativeSidecar", a.NativeSidecar, some(true))
	check("RewriteAppHTTPProbers", a.RewriteAppHTTPProbers, some(false))
	check("ProxyImage.Set", a.ProxyImage.Set, false)
	check("ProxyImageType", a.ProxyImageType, some("distroless"))
	check("CapNetBindService", a.CapNetBindService, some("True")) // as written; only "true" turns it on (params.netBindService)
	check("BootstrapOverride", a.BootstrapOverride, some("my-bootstrap"))
	check("ProxyConfig.Concurrency", a.ProxyConfig.GetConcurrency().GetValue(), int32(3))
	if a.Resources == nil || !a.Resources.Requests.Cpu().Equal(resource.MustParse("100m")) ||
		!a.Resources.Limits.Memory().Equal(resource.MustParse("1Gi")) || len(a.Resources.Requests) != 1 || len(a.Resources.Limits) != 1 {
		t.Errorf("Resources = %+v, want only requests.cpu 100m and limits.memory 1Gi", a.Resources)
	}
	if names := []string{a.UserVolumes[0].Name, a.UserVolumes[1].Name}; !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("UserVolumes in order %v, want sorted by key", names)
	}
	if len(a.Warnings) != 0 {
		t.Errorf("warnings %q", a.Warnings)
	}

	none, err := ParseAnnotations(nil)
	if err != nil || none.Template != TemplateSidecar || none.Resources != nil || none.StatusPort.Set || none.ProxyConfig != nil {
		t.Fatalf("no annotations: %+v, %v", none, err)
	}
}

// Values Istio ignores when invalid are warnings, not errors.
func TestParseAnnotationsLenient(t *testing.T) {
	a, err := ParseAnnotations(map[string]string{AnnotationNativeSidecar: "sometimes", AnnotationRewriteProbes: "perhaps"})
	if err != nil {
		t.Fatal(err)
	}
	if a.RewriteAppHTTPProbers.Set {
		t.Errorf("invalid value was kept: %+v", a.RewriteAppHTTPProbers)
	}
	// Istio's template turns native sidecars on for any value but "false".
	if a.NativeSidecar != some(true) {
		t.Errorf("nativeSidecar %q: %+v, want native", "sometimes", a.NativeSidecar)
	}
	all := strings.Join(a.Warnings, "\n")
	for _, want := range []string{AnnotationNativeSidecar + ` "sometimes"`, AnnotationRewriteProbes + ` "perhaps"`} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings %q lack %q", all, want)
		}
	}
}

// Every bad annotation is reported, not only the first; the gateway template
// does not read userVolume, so its value is not parsed there.
func TestParseAnnotationsErrors(t *testing.T) {
	_, err := ParseAnnotations(map[string]string{
		AnnotationStatusPort: "x", AnnotationMergeMetrics: "maybe", AnnotationUserVolume: "{",
	})
	want := []string{"annotation " + AnnotationStatusPort, "annotation " + AnnotationMergeMetrics, "annotation " + AnnotationUserVolume}
	if got := Fields(err); !slices.Equal(got, want) {
		t.Fatalf("fields %q, want %q", got, want)
	}
	gw, err := ParseAnnotations(map[string]string{AnnotationInjectTemplates: TemplateGateway, AnnotationUserVolume: "{"})
	if err != nil || gw.Template != TemplateGateway || gw.UserVolumes != nil {
		t.Fatalf("gateway: %+v, %v", gw, err)
	}
}
