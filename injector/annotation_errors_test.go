package injector

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestAnnotationErrorsIstioText: each annotation ParseAnnotations rejects is
// one *AnnotationError (inside the webhook's *FieldError) carrying the key,
// the value, the webhook's text (unchanged: the pod is denied with it) and,
// for the annotations of Istio's AnnotationValidation table whose value
// Istio rejects too, Istio's validator's text. The Istio texts are those of
// istio/istio pkg/kube/inject/validate.go at 0098d99f8e43 (validateInterceptionMode,
// validateStatusPort, validateUInt32, ValidateIncludeIPRanges,
// ValidateExcludeIPRanges, ValidateIncludeInboundPorts,
// ValidateExcludeInboundPorts, ValidateExcludeOutboundPorts, validateBool,
// validateProxyConfig), which Istio's annotation analyzer prints in IST0125
// (pkg/config/analysis/analyzers/annotations/annotations.go at 0a617ca985f9).
func TestAnnotationErrorsIstioText(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		webhook    string // the whole error of ParseAnnotations; "" not pinned
		istio      string // Istio's text; "" when Istio accepts the value or does not validate the annotation
	}{
		{AnnotationInterceptionMode, "redirect",
			`annotation sidecar.istio.io/interceptionMode: "redirect" is not REDIRECT, TPROXY or NONE`,
			`interceptionMode invalid, use REDIRECT,TPROXY,NONE: redirect`},
		{AnnotationStatusPort, "65536",
			`annotation status.sidecar.istio.io/port: "65536" is not a port number`,
			`excludeInboundPorts invalid: failed parsing port '65536': strconv.ParseUint: parsing "65536": value out of range`},
		{AnnotationStatusPort, " x ",
			`annotation status.sidecar.istio.io/port: " x " is not a port number`,
			`excludeInboundPorts invalid: failed parsing port ' x ': strconv.ParseUint: parsing "x": invalid syntax`},
		// Istio's validators accept these spellings; meshguard denies them
		// (not canonical: its template would read another number).
		{AnnotationStatusPort, " 15030",
			`annotation status.sidecar.istio.io/port: " 15030" is not written canonically (want "15030": no sign, spaces or leading zeros)`, ""},
		{AnnotationStatusPort, "00",
			`annotation status.sidecar.istio.io/port: "00" is not written canonically (want "0": no sign, spaces or leading zeros)`, ""},
		{AnnotationReadinessDelay, "010",
			`annotation readiness.status.sidecar.istio.io/initialDelaySeconds: "010" is not written canonically (want "10": no sign, spaces or leading zeros)`, ""},
		// Istio rejects these too: its text.
		{AnnotationStatusPort, "+15030",
			`annotation status.sidecar.istio.io/port: "+15030" is not a port number`,
			`excludeInboundPorts invalid: failed parsing port '+15030': strconv.ParseUint: parsing "+15030": invalid syntax`},
		{AnnotationReadinessPeriod, "+10",
			`annotation readiness.status.sidecar.istio.io/periodSeconds: "+10" is not a non-negative integer`,
			`strconv.ParseUint: parsing "+10": invalid syntax`},
		{AnnotationReadinessDelay, "-5",
			`annotation readiness.status.sidecar.istio.io/initialDelaySeconds: "-5" is not a non-negative integer`,
			`strconv.ParseUint: parsing "-5": invalid syntax`},
		{AnnotationReadinessPeriod, "4294967296",
			`annotation readiness.status.sidecar.istio.io/periodSeconds: "4294967296" is not a non-negative integer`,
			`strconv.ParseUint: parsing "4294967296": value out of range`},
		// Istio's validateUInt32 accepts it; meshguard denies it (int32 probe field).
		{AnnotationReadinessFailure, "2147483648",
			`annotation readiness.status.sidecar.istio.io/failureThreshold: "2147483648" is not a non-negative integer`, ""},
		{AnnotationIncludeOutboundIPs, "10.0.0.0/8,10.0.0.0",
			`annotation traffic.sidecar.istio.io/includeOutboundIPRanges: "10.0.0.0" is not a CIDR`,
			`includeIPRanges invalid: failed parsing cidr '10.0.0.0': netip.ParsePrefix("10.0.0.0"): no '/'`},
		{AnnotationExcludeOutboundIPs, "*",
			`annotation traffic.sidecar.istio.io/excludeOutboundIPRanges: "*" is not a CIDR`,
			`excludeIPRanges invalid: failed parsing cidr '*': netip.ParsePrefix("*"): no '/'`},
		{AnnotationIncludeInboundPorts, "http",
			`annotation traffic.sidecar.istio.io/includeInboundPorts: "http" is not a port number`,
			`includeInboundPorts invalid: failed parsing port 'http': failed parsing port 'http': strconv.ParseUint: parsing "http": invalid syntax`},
		{AnnotationExcludeInboundPorts, "80,,81",
			`annotation traffic.sidecar.istio.io/excludeInboundPorts: "" is not a port number`,
			`excludeInboundPorts invalid: failed parsing port '': failed parsing port '': strconv.ParseUint: parsing "": invalid syntax`},
		{AnnotationExcludeOutboundPorts, " 80, 9x ",
			`annotation traffic.sidecar.istio.io/excludeOutboundPorts: " 9x" is not a port number`,
			`excludeOutboundPorts invalid: failed parsing port ' 9x': failed parsing port ' 9x': strconv.ParseUint: parsing "9x": invalid syntax`},
		{AnnotationMergeMetrics, "yes",
			`annotation prometheus.istio.io/merge-metrics: "yes" is not a boolean`,
			`strconv.ParseBool: parsing "yes": invalid syntax`},
		// Annotations Istio does not validate: no Istio text.
		{AnnotationIncludeOutboundPorts, "https",
			`annotation traffic.sidecar.istio.io/includeOutboundPorts: "https" is not a port number`, ""},
		{AnnotationReadinessAppPorts, "-1",
			`annotation readiness.status.sidecar.istio.io/applicationPorts: "-1" is not a port number`, ""},
		{AnnotationExcludeInterfaces, "a/b",
			`annotation traffic.sidecar.istio.io/excludeInterfaces: "a/b" is not an interface name`, ""},
		{AnnotationInjectTemplates, "sidecar, gateway",
			`annotation inject.istio.io/templates: templates "sidecar" and "gateway" cannot be combined`, ""},
		{AnnotationProxyCPU, "lots", "", ""},
		{AnnotationUserVolume, "{", "", ""},
		{AnnotationPromScrapeTargets, "15090", "", ""},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			_, err := ParseAnnotations(map[string]string{tc.key: tc.value})
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.webhook != "" && err.Error() != tc.webhook {
				t.Errorf("webhook text\n%s\nwant\n%s", err, tc.webhook)
			}
			byKey := AnnotationErrors(err)
			if got := slices.Collect(maps.Keys(byKey)); !slices.Equal(got, []string{tc.key}) {
				t.Fatalf("AnnotationErrors keys %q, want only %s", got, tc.key)
			}
			if byKey[tc.key].Error() != err.Error() {
				t.Errorf("AnnotationErrors[%s] = %q, want the webhook's %q", tc.key, byKey[tc.key], err)
			}
			var ae *AnnotationError
			if !errors.As(err, &ae) {
				t.Fatalf("%v is not an *AnnotationError", err)
			}
			if ae.Key != tc.key || ae.Value != tc.value {
				t.Errorf("Key, Value = %q, %q", ae.Key, ae.Value)
			}
			if want := "annotation " + tc.key + ": " + ae.Error(); err.Error() != want {
				t.Errorf("webhook text %q is not the field and AnnotationError's %q", err, want)
			}
			switch {
			case tc.istio == "" && ae.Istio != nil:
				t.Errorf("Istio = %q, want none", ae.Istio)
			case tc.istio != "" && (ae.Istio == nil || ae.Istio.Error() != tc.istio):
				t.Errorf("Istio = %v\nwant    %s", ae.Istio, tc.istio)
			}
		})
	}
}

// TestAnnotationErrorsProxyConfig: Istio's validateProxyConfig prefixes a
// value that does not apply with "failed to convert to apply proxy config:
// " and returns the validation's error for one that applies but is invalid;
// the reasons themselves are meshguard's parser's and validation's words.
func TestAnnotationErrorsProxyConfig(t *testing.T) {
	for _, tc := range []struct{ value, prefix, contains string }{
		{"concurrency: [", "failed to convert to apply proxy config: ", ""},
		{"noSuchField: 1", "failed to convert to apply proxy config: ", "noSuchField"},
		{"drainDuration: 1.5s", "", "seconds precision"},
	} {
		_, err := ParseAnnotations(map[string]string{AnnotationProxyConfig: tc.value})
		var ae *AnnotationError
		if !errors.As(err, &ae) || ae.Istio == nil {
			t.Errorf("%q: %v, want an AnnotationError with Istio's text", tc.value, err)
			continue
		}
		if got, want := ae.Istio.Error(), tc.prefix+ae.Err.Error(); got != want {
			t.Errorf("%q: Istio text %q, want %q", tc.value, got, want)
		}
		if !strings.Contains(ae.Istio.Error(), tc.contains) {
			t.Errorf("%q: Istio text %q lacks %q", tc.value, ae.Istio, tc.contains)
		}
	}
}

// TestAnnotationErrorsSeveral: one AnnotationError per rejected annotation,
// by key, the same annotations Fields names; none for other errors or nil.
func TestAnnotationErrorsSeveral(t *testing.T) {
	_, err := ParseAnnotations(map[string]string{
		AnnotationStatusPort: "x", AnnotationMergeMetrics: "maybe", AnnotationProxyCPU: "lots", AnnotationLogLevel: "debug",
	})
	byKey := AnnotationErrors(err)
	var fields []string
	for k := range byKey {
		fields = append(fields, "annotation "+k)
	}
	if want := Fields(err); !slices.Equal(slices.Sorted(slices.Values(fields)), slices.Sorted(slices.Values(want))) || len(want) != 3 {
		t.Errorf("AnnotationErrors keys %q, Fields %q", fields, want)
	}
	if len(AnnotationErrors(nil)) != 0 || len(AnnotationErrors(fieldErr("annotation x", errors.New("y")))) != 0 {
		t.Error("AnnotationErrors of nil or of a FieldError without an AnnotationError is not empty")
	}
}
