package validation

import (
	"sync"

	"github.com/google/cel-go/cel"
	telemetry "istio.io/api/telemetry/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateTelemetry implements Istio's ValidateTelemetry
// (pkg/config/validation/validation.go). Beyond Istio (docs/compatibility.md
// "Stricter than Istio"):
// metrics[].reportingInterval is checked as a duration (>= 1ms, ms precision);
// Istio's webhook leaves that to the CRD.
func validateTelemetry(_ metav1.ObjectMeta, t *telemetry.Telemetry, f *Findings) {
	sp := field.NewPath("spec")
	khPolicyTargets(sp, t.GetSelector(), t.GetTargetRef(), t.GetTargetRefs(), f)

	tp := sp.Child("tracing")
	if len(t.GetTracing()) > 1 {
		f.Warn(tp, nil, "multiple tracing is not currently supported: only the first entry is used")
	}
	for i, tr := range t.GetTracing() {
		telTracing(tp.Index(i), tr, f)
	}
	for i, m := range t.GetMetrics() {
		telMetrics(sp.Child("metrics").Index(i), m, f)
	}
	for i, al := range t.GetAccessLogging() {
		ap := sp.Child("accessLogging").Index(i)
		if al == nil {
			f.Required(ap, "accessLogging entry must not be null")
			continue
		}
		telProviders(ap.Child("providers"), al.GetProviders(), f)
		if flt := al.GetFilter(); flt != nil {
			telFilter(ap.Child("filter", "expression"), flt.GetExpression(), f)
		}
	}
}

func telProviders(p *field.Path, providers []*telemetry.ProviderRef, f *Findings) {
	for i, pr := range providers {
		if pr.GetName() == "" {
			f.Required(p.Index(i).Child("name"), "provider name must not be empty")
		}
	}
}

func telTracing(p *field.Path, tr *telemetry.Tracing, f *Findings) {
	if tr == nil {
		f.Required(p, "tracing entry must not be null")
		return
	}
	telProviders(p.Child("providers"), tr.GetProviders(), f)
	if len(tr.GetProviders()) > 1 {
		f.Warn(p.Child("providers"), nil, "multiple providers is not currently supported: only the first is used")
	}
	if r := tr.GetRandomSamplingPercentage(); r != nil && (r.GetValue() < 0 || r.GetValue() > 100) {
		f.Error(p.Child("randomSamplingPercentage"), r.GetValue(), "randomSamplingPercentage must be in range [0.0, 100.0]")
	}
	cp := p.Child("customTags")
	for _, name := range sortedKeys(tr.GetCustomTags()) {
		kp := cp.Key(name)
		if name == "" {
			f.Error(kp, name, "tag name must not be empty")
		}
		tag := tr.GetCustomTags()[name]
		if tag == nil {
			f.Required(kp, "custom tag must not be null")
			continue
		}
		switch v := tag.GetType().(type) {
		case nil:
			// Istio accepts a tag without a type (validateTelemetryTracing has no default case) and ignores it.
			f.Warn(kp, name, "custom tag sets none of literal, environment, header or formatter: it has no effect")
		case *telemetry.Tracing_CustomTag_Literal:
			if v.Literal.GetValue() == "" {
				f.Required(kp.Child("literal", "value"), "literal tag value must not be empty")
			}
		case *telemetry.Tracing_CustomTag_Header:
			if v.Header.GetName() == "" {
				f.Required(kp.Child("header", "name"), "header tag name must not be empty")
			}
		case *telemetry.Tracing_CustomTag_Environment:
			if v.Environment.GetName() == "" {
				f.Required(kp.Child("environment", "name"), "environment tag name must not be empty")
			}
		case *telemetry.Tracing_CustomTag_Formatter:
			if v.Formatter.GetValue() == "" {
				f.Required(kp.Child("formatter", "value"), "formatter tag value must not be empty")
			}
		}
	}
}

func telMetrics(p *field.Path, m *telemetry.Metrics, f *Findings) {
	if m == nil {
		f.Required(p, "metrics entry must not be null")
		return
	}
	telProviders(p.Child("providers"), m.GetProviders(), f)
	validateDuration(p.Child("reportingInterval"), m.GetReportingInterval(), f)
	for i, o := range m.GetOverrides() {
		op := p.Child("overrides").Index(i)
		if o == nil {
			f.Required(op, "metrics override must not be null")
			continue
		}
		if cm, ok := o.GetMatch().GetMetricMatch().(*telemetry.MetricSelector_CustomMetric); ok && cm.CustomMetric == "" {
			f.Required(op.Child("match", "customMetric"), "customMetric must not be empty")
		}
		tp := op.Child("tagOverrides")
		for _, name := range sortedKeys(o.GetTagOverrides()) {
			kp := tp.Key(name)
			if name == "" {
				f.Warn(kp, name, "empty tag name: the override has no effect")
			}
			to := o.GetTagOverrides()[name]
			if to == nil {
				f.Required(kp, "tag override must not be null")
				continue
			}
			switch to.GetOperation() {
			case telemetry.MetricsOverrides_TagOverride_UPSERT:
				if to.GetValue() == "" {
					f.Required(kp.Child("value"), "value must be set when operation is UPSERT")
				}
			case telemetry.MetricsOverrides_TagOverride_REMOVE:
				if to.GetValue() != "" {
					f.Error(kp.Child("value"), to.GetValue(), "value must not be set when operation is REMOVE")
				}
			}
		}
	}
}

var (
	telCELOnce sync.Once
	telCELEnv  *cel.Env
	telCELErr  error
)

// telFilter checks that an access log filter parses as CEL. Only parsing:
// the attributes Envoy offers are not declared, as in Istio
// (pkg/config/validation/validation_istiod.go validateTelemetryFilter).
func telFilter(p *field.Path, expr string, f *Findings) {
	telCELOnce.Do(func() { telCELEnv, telCELErr = cel.NewEnv() })
	if telCELErr != nil {
		f.Error(p, nil, "internal error: cannot build CEL environment: "+telCELErr.Error())
		return
	}
	if _, iss := telCELEnv.Parse(expr); iss != nil && iss.Err() != nil {
		f.Error(p, expr, "invalid CEL expression: "+iss.Err().Error())
	}
}
