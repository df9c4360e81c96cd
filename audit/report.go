package audit

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/webhookconfig"
)

// PolicyReport is the wgpolicyk8s.io/v1alpha2 kind the audit writes, one per
// namespace with violations: the schema Kyverno, policy-reporter and
// Gatekeeper's ecosystem read (the CRD is in the chart's crds/).
var PolicyReport = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}

// PolicyReports is PolicyReport's resource.
var PolicyReports = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

const (
	// ReportName is the name of meshguard's PolicyReport in each namespace
	// (the default revision's; ReportNameFor).
	ReportName = "meshguard-audit"
	// ManagedByLabel marks the reports meshguard owns (and may delete).
	ManagedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "meshguard"
	// Source is each result's source field.
	Source = "meshguard"
)

// ReportNameFor is the PolicyReport name of a revision's audit:
// "meshguard-audit-<rev>" for a non-default one, so that two installs (a
// canary beside the default) never overwrite or delete each other's reports.
func ReportNameFor(revision string) string {
	if webhookconfig.IsDefaultRevision(revision) {
		return ReportName
	}
	return ReportName + "-" + revision
}

// MaxReportBytes bounds the results one PolicyReport lists (their
// approximate JSON size): etcd takes objects up to 1.5 MiB, and a report it
// refuses would leave the namespace without any.
const MaxReportBytes = 1 << 20

// OmittedAnnotation, on a PolicyReport, counts the results left out to stay
// under MaxReportBytes (the summary still counts every one).
const OmittedAnnotation = "meshguard.io/results-omitted"

// Reports builds the PolicyReport of every namespace with violations: one
// result per violation (policy: the code, rule: its name, result fail for an
// Error, warn for a Warning and error for an organisation rule that could
// not be evaluated, scored but for warn, the object in resources, the field
// in properties) and the summary counts. now is every result's timestamp.
// Results are listed in `meshguard analyze`'s order (compareViolations:
// errors before warnings, then code and object); results past MaxReportBytes
// are counted in the summary and in OmittedAnnotation, not listed.
func Reports(vs []Violation, now time.Time) map[string]*unstructured.Unstructured {
	byNS := map[string][]Violation{}
	for _, v := range vs {
		byNS[v.Object.Namespace] = append(byNS[v.Object.Namespace], v)
	}
	out := make(map[string]*unstructured.Unstructured, len(byNS))
	for ns, nvs := range byNS {
		slices.SortStableFunc(nvs, compareViolations)
		results := make([]any, 0, len(nvs))
		summary := map[string]any{"pass": int64(0), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(0)}
		size, omitted := 0, 0
		for _, v := range nvs {
			// wg-policy v1alpha2 defines warn as a requirement not met by a
			// policy that is not scored (PolicyResult, PolicyReportSummary.
			// Warn), and Kyverno reports warn exactly for its unscored
			// policies: a Warning is warn and unscored, fail and error scored.
			result, severity, scored := "warn", "medium", false
			switch {
			case v.RuleError: // wg-policy's "error": the policy could not be evaluated
				result, severity, scored = "error", "high", true
			case v.Level == analysis.Error:
				result, severity, scored = "fail", "high", true
			}
			summary[result] = summary[result].(int64) + 1
			category := "Istio analyzer"
			switch v.Code {
			case analysis.OrgRule:
				category = "Organisation rule"
			case analysis.SchemaValidationError, analysis.SchemaWarning:
				category = "Validation"
			}
			r := map[string]any{
				"source":   Source,
				"policy":   v.Code,
				"rule":     v.Rule,
				"category": category,
				"result":   result,
				"severity": severity,
				"scored":   scored,
				"message":  v.Message,
				"resources": []any{map[string]any{
					"apiVersion": v.Object.APIVersion, "kind": v.Object.Kind,
					"namespace": v.Object.Namespace, "name": v.Object.Name, "uid": v.Object.UID,
				}},
				"timestamp": map[string]any{"seconds": now.Unix(), "nanos": int64(0)},
			}
			if v.Field != "" {
				r["properties"] = map[string]any{"field": v.Field}
			}
			// The result's size is its JSON's: escaping can make a message's
			// quotes or control characters up to six bytes each. Strings,
			// numbers and bools only: Marshal cannot fail.
			b, _ := json.Marshal(r)
			if size+len(b)+1 > MaxReportBytes {
				omitted++
				continue
			}
			size += len(b) + 1
			results = append(results, r)
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"summary": summary,
			"results": results,
		}}
		u.SetGroupVersionKind(PolicyReport)
		u.SetNamespace(ns)
		u.SetName(ReportName)
		u.SetLabels(map[string]string{ManagedByLabel: managedBy})
		if omitted > 0 {
			u.SetAnnotations(map[string]string{OmittedAnnotation: strconv.Itoa(omitted)})
		}
		out[ns] = u
	}
	return out
}

// SameResults reports whether two reports carry the same results and
// summary, ignoring the results' timestamps: an unchanged namespace is not
// rewritten every period.
func SameResults(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		rs, _ := u.Object["results"].([]any)
		out := make([]any, len(rs))
		for i, r := range rs {
			m, ok := r.(map[string]any)
			if !ok {
				out[i] = r
				continue
			}
			m = maps.Clone(m)
			delete(m, "timestamp")
			out[i] = m
		}
		return map[string]any{"results": out, "summary": u.Object["summary"]}
	}
	return equality.Semantic.DeepEqual(normalise(strip(a)), normalise(strip(b)))
}

// normalise makes numbers comparable across a JSON round trip (the API
// server returns int64, a fresh report may hold int64 or float64).
func normalise(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range slices.Sorted(maps.Keys(t)) {
			out[k] = normalise(t[k])
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = normalise(t[i])
		}
		return out
	case int64:
		return float64(t)
	case int:
		return float64(t)
	}
	return v
}
