// Package audit re-checks the mesh config already stored in a cluster
// against the current rules (docs/governance.md "Audit of stored config"):
// single-object validation, the cross-resource analysis of package analysis
// and the organisation rules, over one snapshot of every stored object.
//
// This file is the pure core: a snapshot in, violations out, and what to
// publish for them (Events to emit, metric values, PolicyReports). run.go is
// the thin adapter that lists the API server and writes the results.
package audit

import (
	"context"
	"fmt"
	"slices"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

// ObjectRef names a stored object (the subject of an Event and a PolicyReport result).
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

func (r ObjectRef) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// Object is one stored mesh object: its reference and the whole object as
// the API server returned it.
type Object struct {
	Ref ObjectRef
	Raw map[string]any
	// judged is Raw's validation when the snapshot needed it already (the
	// selecting kinds, for analysis.PodQueries); Check validates the rest.
	judged *validation.Result
}

// validate is o's validation as the webhook does it for stored objects
// (validation.Options.APIServerAdmitted), done once per run.
func (o Object) validate(ctx context.Context) validation.Result {
	if o.judged != nil {
		return *o.judged
	}
	return validation.ValidateObject(ctx, o.Raw, validation.Options{DefaultNamespace: o.Ref.Namespace, APIServerAdmitted: true})
}

// Snapshot is everything one audit run judges.
type Snapshot struct {
	Objects []Object
	// Services are the Kubernetes Services references may name.
	Services []crossref.Key
	// Kube are Kubernetes objects for the analyzers that read workloads
	// (IST0162, IST0110, IST0127): Services with their spec and the Pods the
	// Gateways, Sidecars and AuthorizationPolicies select; with any, the
	// Pods are taken to be every workload those may select, as `meshguard
	// analyze --kubeconfig` takes a cluster's.
	Kube []map[string]any
	// Namespaces maps each namespace to its labels.
	Namespaces map[string]map[string]string
	// Domain is the cluster DNS suffix ("cluster.local" when empty).
	Domain string
	// Mesh is the mesh config the analyzers read (analysis.Input.Mesh; nil:
	// Istio's default).
	Mesh *meshv1alpha1.MeshConfig
	// Rest, if set, is called after every restEvery objects judged: the
	// adapter paces the audit there (DutyCycle), so that a run takes a
	// bounded share of the CPU and admission keeps its latency.
	Rest func(context.Context)
}

// restEvery is how many objects Check judges between two calls of Rest.
const restEvery = 50

// DutyCycle returns a Snapshot.Rest that keeps the caller's goroutine busy
// for at most share (0 < share ≤ 1) of the wall time: each rest lasts as
// long as the work since the previous one times (1-share)/share. The audit
// allocates heavily (validation of every stored object), and on a small
// node its GC work would otherwise land on the webhook's requests.
func DutyCycle(share float64) func(context.Context) {
	last := time.Now()
	return func(ctx context.Context) {
		pause := time.Duration(float64(time.Since(last)) * (1 - share) / share)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		last = time.Now()
	}
}

// Violation is one finding on one stored object, with the analyzer code
// (IST0101, IST0106, MG0001, ...) as its rule.
type Violation struct {
	Object  ObjectRef
	Code    string
	Rule    string // the code's Istio name (ReferencedResourceNotFound, ...) or OrganisationRule
	Level   analysis.Level
	Field   string
	Message string
	// RuleError: an organisation rule could not be evaluated on the object
	// (analysis.Message.RuleError).
	RuleError bool
}

// Text is the violation as one line: "[IST0101] field: message". The message
// of a validation finding (IST0106, IST0133) names its field already
// (analysis.ValidationMessages: "Schema validation error: field: ...").
func (v Violation) Text() string {
	s := "[" + v.Code + "] "
	if v.Field != "" && v.Code != analysis.SchemaValidationError && v.Code != analysis.SchemaWarning {
		s += v.Field + ": "
	}
	return s + v.Message
}

// Check judges every object of the snapshot: validation as the webhook does
// it for stored objects (validation.Options.APIServerAdmitted), the
// cross-resource analysis over the valid objects (analysis.Analyze) and,
// when rules is not nil, the organisation rules with namespace labels and
// referenced objects (orgrules.InputFor). Info messages are left out: the
// audit reports Warnings and Errors. The result is in `meshguard analyze`'s
// order, istioctl's (compareViolations: level, code, object, message).
func Check(ctx context.Context, snap Snapshot, rules *orgrules.Rules) ([]Violation, error) {
	in := analysis.Input{Services: snap.Services, Namespaces: snap.Namespaces, Domain: snap.Domain, AllWorkloads: len(snap.Kube) > 0, Mesh: snap.Mesh}
	for _, obj := range snap.Kube {
		if _, err := in.AddKubernetesObject(obj, ""); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	type judged struct {
		obj  Object
		ao   analysis.Object
		spec bool
	}
	refs := make(map[string]ObjectRef, len(snap.Objects))
	valid := make([]judged, 0, len(snap.Objects))
	rest := func(i int) {
		if snap.Rest != nil && i%restEvery == restEvery-1 {
			snap.Rest(ctx)
		}
	}
	for i, o := range snap.Objects {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rest(i)
		res := o.validate(ctx)
		if res.Skipped {
			continue
		}
		ao := analysis.Object{Kind: o.Ref.Kind, Namespace: o.Ref.Namespace, Name: o.Ref.Name, Spec: res.Spec(), Annotations: analysis.ObjectAnnotations(o.Raw)}
		refs[key(o.Ref.Kind, o.Ref.Namespace, o.Ref.Name)] = o.Ref
		in.Invalid = append(in.Invalid, analysis.ValidationMessages(ao, res.Errors, res.Warnings)...)
		if res.Valid() && res.Spec() != nil {
			in.Objects = append(in.Objects, ao)
		}
		valid = append(valid, judged{o, ao, res.Spec() != nil})
	}
	msgs := analysis.Analyze(in)
	if rules != nil {
		objs := make([]crossref.Object, len(in.Objects))
		for i, o := range in.Objects {
			objs[i] = crossref.Object{Kind: o.Kind, Key: crossref.Key{Namespace: o.Namespace, Name: o.Name}, Spec: o.Spec}
		}
		ix := crossref.IndexOf(snap.Domain, in.Services, snap.Namespaces, objs)
		for i, j := range valid {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rest(i)
			var v orgrules.Verdict
			ri, err := orgrules.InputFor(ix, j.ao.Kind, j.ao.Namespace, j.ao.Name, j.ao.Spec, j.obj.Raw, orgrules.Admission{})
			if err == nil {
				v, err = rules.Evaluate(ctx, ri) // bounded per object (orgrules.EvalTimeout)
			}
			msgs = append(msgs, analysis.OrgRuleMessages(j.ao, v, err)...)
		}
	}
	out := make([]Violation, 0, len(msgs))
	for _, m := range msgs {
		// The audit reports on the mesh's stored config; findings about a
		// Namespace's labels (IST0123, analysis/injection.go), a Service's
		// ports (IST0150, analysis/service.go) or the annotations of those,
		// Pods and Deployments (IST0107, IST0108, IST0125,
		// analysis/annotations.go) are for `meshguard analyze`, which prints
		// them, and have no object here.
		if m.Level < analysis.Warning || slices.Contains(kubeKinds, m.Kind) {
			continue
		}
		ref, ok := refs[key(m.Kind, m.Namespace, m.Object)]
		if !ok {
			return nil, fmt.Errorf("audit: message for %s %s/%s, which is not in the snapshot", m.Kind, m.Namespace, m.Object)
		}
		out = append(out, Violation{Object: ref, Code: m.Code, Rule: m.Name, Level: m.Level, Field: m.Field, Message: m.Message, RuleError: m.RuleError})
	}
	slices.SortFunc(out, compareViolations)
	return slices.CompactFunc(out, func(a, b Violation) bool { return compareViolations(a, b) == 0 }), nil
}

// kubeKinds are the kinds of analysis.Input.Kube, which the audit reads
// for workloads and does not report on.
var kubeKinds = []string{"Namespace", "Service", "Pod", "Deployment"}

func key(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

// compareViolations orders (and, for Check's de-duplication, identifies)
// violations as `meshguard analyze` orders its messages, with the one
// comparison both use (analysis.Compare, istioctl's order): level (Error
// first), code, object ("Kind/name/namespace"), message, field. An
// organisation rule's deny and warn of the same text are two findings.
func compareViolations(a, b Violation) int {
	return analysis.Compare(a.message(), b.message())
}

// message is v as the analysis message it came from (without its origin,
// which the audit's objects have none of).
func (v Violation) message() analysis.Message {
	return analysis.Message{Code: v.Code, Name: v.Rule, Level: v.Level, Kind: v.Object.Kind, Namespace: v.Object.Namespace,
		Object: v.Object.Name, Field: v.Field, Message: v.Message, RuleError: v.RuleError}
}

// EventKey identifies a violation for Event deduplication: the object (by
// UID, so a recreated object is a new subject) and the finding.
func EventKey(v Violation) string {
	return v.Object.UID + "\x00" + key(v.Object.Kind, v.Object.Namespace, v.Object.Name) + "\x00" + v.Text()
}

// NewEvents returns the violations to emit an Event for: those not emitted
// already (emitted holds their EventKeys), at most max of them (the rest wait
// for a later run). It returns the keys to remember: the emitted ones that
// still hold plus the new ones, so a violation that goes away and comes back
// is reported again.
func NewEvents(emitted map[string]bool, vs []Violation, max int) (emit []Violation, remember map[string]bool) {
	remember = make(map[string]bool, len(vs))
	for _, v := range vs {
		k := EventKey(v)
		switch {
		case emitted[k]:
			remember[k] = true
		case len(emit) < max && !remember[k]:
			emit = append(emit, v)
			remember[k] = true
		}
	}
	return emit, remember
}

// MetricKey is one series of meshguard_audit_violations.
type MetricKey struct{ Kind, Namespace, Rule string }

// Counts counts violations by kind, namespace and rule (the code).
func Counts(vs []Violation) map[MetricKey]int {
	out := map[MetricKey]int{}
	for _, v := range vs {
		out[MetricKey{v.Object.Kind, v.Object.Namespace, v.Code}]++
	}
	return out
}
