package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/internal/textcut"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/webhookconfig"
)

// Bounds of one run.
const (
	// PageSize is the Limit of every list call (paged with Continue).
	PageSize = 500
	// MaxObjects stops a run that would hold more stored mesh objects, or
	// more Services and gateway Pods, in memory.
	MaxObjects = 200_000
	// MaxEventsPerRun bounds the Events one run emits; the rest follow in later runs.
	MaxEventsPerRun = 500
	// EventReason is the reason of every audit Event.
	EventReason = "AuditViolation"
)

// Auditor runs the audit every Interval, on the leader only (it is a
// controller-runtime Runnable that needs leader election), in its own
// goroutine: admission never waits for it.
type Auditor struct {
	Client   dynamic.Interface
	Mapper   meta.RESTMapper
	Recorder events.EventRecorder
	// Rules returns the organisation rules in force (nil: none).
	Rules func() *orgrules.Rules
	// RulesReady, when set, fails until the organisation rules have loaded:
	// a run then is skipped, leaving the reports as they were, rather than
	// auditing without the rules (dropping their findings).
	RulesReady func() error
	Interval   time.Duration
	// QPS and Burst rate-limit the audit's own API calls (list pages, report writes).
	QPS   float32
	Burst int
	// Domain is the cluster DNS suffix.
	Domain string
	// Mesh, when set, returns the mesh config in force (the one meshguard's
	// injector and ext_authz serve with) for the analyzers that read it:
	// the root namespace, DNS auto-allocation, default providers. Unset:
	// Istio's default.
	Mesh func() *meshv1alpha1.MeshConfig
	// Revision is the istio.io/rev this instance serves ("" or "default":
	// the default one). The audit reads the mesh objects this revision's
	// control plane reads, those labelled for it and the unlabelled ones
	// (policy.InRevision, as istiod and `istioctl analyze --revision`):
	// references and conflicts are resolved among those only. A
	// non-default revision's webhook validates only objects labelled
	// istio.io/rev=<revision>, so its audit reports only those, in
	// PolicyReports of its own name (ReportNameFor).
	Revision string
	Log      logr.Logger

	mu       sync.Mutex
	limiter  flowcontrol.RateLimiter
	emitted  map[string]bool
	series   map[MetricKey]bool
	noReport bool // the PolicyReport CRD is not installed (logged once)
	// foreign holds the PolicyReports of meshguard's name that meshguard does
	// not manage (namespace/name/uid), each logged once (writeReports).
	foreign map[string]bool
}

// NeedLeaderElection: only the leader audits, writes reports and emits Events.
func (a *Auditor) NeedLeaderElection() bool { return true }

// rulesRetry is how soon a run skipped for the organisation rules is tried again.
var rulesRetry = time.Second

// Start audits once right away, then every Interval, until ctx ends. A
// failed run is logged and counted; the next one starts afresh. A run
// skipped because the organisation rules have not loaded yet (a new leader
// usually starts before their ConfigMaps are listed) is retried within
// rulesRetry, not an Interval later. When ctx ends (the Lease is lost) it
// forgets what it published (stepDown).
func (a *Auditor) Start(ctx context.Context) error {
	registerMetrics()
	defer a.stepDown()
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	for {
		if err := a.RunOnce(ctx); err != nil && ctx.Err() == nil {
			runErrors.Inc()
			a.Log.Error(err, "audit run failed")
		}
		next := t.C
		if a.RulesReady != nil && a.RulesReady() != nil {
			next = time.After(rulesRetry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-next:
		}
	}
}

// stepDown removes the metrics of the last run and forgets the Events
// emitted: once another replica leads, it reports the violations. Kept, the
// old leader's series would be summed with the new one's and still show the
// violations fixed since, and a replica leading again would not report the
// standing violations once as a new leader does (docs/governance.md).
func (a *Auditor) stepDown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.series {
		violations.DeleteLabelValues(k.Kind, k.Namespace, k.Rule)
	}
	a.series, a.emitted, a.foreign = nil, nil, nil
	audited.Set(0)
}

// RunOnce lists every stored mesh object, judges them (Check) and publishes
// the violations: metrics, Events for new ones, PolicyReports per namespace.
func (a *Auditor) RunOnce(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	registerMetrics()
	if a.limiter == nil {
		qps, burst := a.QPS, a.Burst
		if qps <= 0 {
			qps = 20
		}
		if burst <= 0 {
			burst = 10
		}
		a.limiter = flowcontrol.NewTokenBucketRateLimiter(qps, burst)
	}
	if a.RulesReady != nil {
		if err := a.RulesReady(); err != nil {
			a.Log.Info("audit run skipped until the organisation rules load", "reason", err.Error())
			return nil
		}
	}
	start := time.Now()
	snap, err := a.snapshot(ctx)
	if err != nil {
		return err
	}
	var rules *orgrules.Rules
	if a.Rules != nil {
		rules = a.Rules()
	}
	snap.Rest = DutyCycle(auditCPUShare)
	vs, err := Check(ctx, snap, rules)
	if err != nil {
		return err
	}
	vs = a.inScope(vs, snap)
	a.publishMetrics(vs, len(snap.Objects))
	a.emitEvents(vs)
	reportErr := a.writeReports(ctx, vs, start)
	duration.Observe(time.Since(start).Seconds())
	lastRun.SetToCurrentTime()
	a.Log.V(1).Info("audit run", "objects", len(snap.Objects), "violations", len(vs), "duration", time.Since(start))
	return reportErr
}

// inScope keeps the violations of the objects this revision's webhook
// validates: every object for the default revision, those labelled
// istio.io/rev=<revision> for another.
func (a *Auditor) inScope(vs []Violation, snap Snapshot) []Violation {
	if webhookconfig.IsDefaultRevision(a.Revision) {
		return vs
	}
	mine := map[ObjectRef]bool{}
	for _, o := range snap.Objects {
		md, _ := o.Raw["metadata"].(map[string]any)
		lbls, _ := md["labels"].(map[string]any)
		if rev, _ := lbls[policy.RevisionLabel].(string); rev == a.Revision {
			mine[o.Ref] = true
		}
	}
	return slices.DeleteFunc(vs, func(v Violation) bool { return !mine[v.Object] })
}

// list pages through one resource of namespace ("" all), rate-limited
// (Lister.Each).
func (a *Auditor) list(ctx context.Context, gvr schema.GroupVersionResource, namespace, selector string, each func(*unstructured.Unstructured) error) error {
	return a.lister().Each(ctx, gvr, namespace, selector, each)
}

// lister reads the cluster at the audit's rate (a.limiter).
func (a *Auditor) lister() Lister { return Lister{Client: a.Client, Limiter: a.limiter} }

var (
	errTooMany     = fmt.Errorf("more than %d stored mesh objects: audit stopped", MaxObjects)
	errTooManyKube = fmt.Errorf("more than %d Services and gateway Pods: audit stopped", MaxObjects)
)

// MeshResources are the resources of every mesh kind meshguard validates
// whose CRD the API server serves, at its preferred version: what the audit
// and `analyze --kubeconfig` list.
func MeshResources(mapper meta.RESTMapper) ([]schema.GroupVersionResource, error) {
	var out []schema.GroupVersionResource
	for _, gk := range validation.KnownKinds() {
		m, err := mapper.RESTMapping(gk)
		if meta.IsNoMatchError(err) {
			continue // CRD not installed: nothing of this kind is stored
		}
		if err != nil {
			return nil, fmt.Errorf("mapping %s: %w", gk, err)
		}
		out = append(out, m.Resource)
	}
	return out, nil
}

// snapshot lists every mesh kind meshguard validates whose CRD the API
// server serves (at its preferred version), the Pods the Gateways, Sidecars
// and AuthorizationPolicies select, and then what the objects refer to: the
// Services and the Namespaces.
func (a *Auditor) snapshot(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{Namespaces: map[string]map[string]string{}, Domain: a.Domain}
	if a.Mesh != nil {
		snap.Mesh = a.Mesh()
	}
	resources, err := MeshResources(a.Mapper)
	if err != nil {
		return Snapshot{}, err
	}
	for _, gvr := range resources {
		err = a.list(ctx, gvr, "", "", func(u *unstructured.Unstructured) error {
			if len(snap.Objects) >= MaxObjects {
				return errTooMany
			}
			// managedFields are often most of a small object's bytes and
			// nothing in the audit reads them (the manager's caches drop them
			// too: managerCacheOptions). The rest stays: the organisation
			// rules read the whole object (input.object), annotations
			// included.
			unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
			// Another revision's object is not this revision's to read
			// (Istio: crdclient's Revision filter; istioctl analyze
			// --revision reads the cluster through it).
			if !policy.InRevision(u.GetLabels(), a.Revision) {
				return nil
			}
			snap.Objects = append(snap.Objects, Object{
				Ref: ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), UID: string(u.GetUID())},
				Raw: u.Object,
			})
			return nil
		})
		if apierrors.IsNotFound(err) {
			continue // removed between discovery and listing
		}
		if err != nil {
			return Snapshot{}, err
		}
	}
	// Namespaces after the objects (and before the Pods, whose namespace's
	// injection label says whether they are in the mesh): listed first, a
	// namespace created while the objects were listed would be missing, and the rules would judge its objects
	// without its labels (where the webhook answers 503). Listed after, every
	// listed object's namespace is there unless it has been deleted since,
	// and with it the object (its namespace's deletion removes it first), so
	// such an object is left out rather than judged without labels.
	if err := a.list(ctx, corev1.SchemeGroupVersion.WithResource("namespaces"), "", "", func(u *unstructured.Unstructured) error {
		snap.Namespaces[u.GetName()] = u.GetLabels()
		return nil
	}); err != nil {
		return Snapshot{}, err
	}
	// The Pods the analyzers over workloads need (analysis.PodQueries, as
	// `meshguard analyze --kubeconfig` lists them), each Pod once. The
	// objects of the selecting kinds are validated here for their selectors,
	// once: Check reuses the result.
	selecting, err := judgeSelecting(ctx, snap.Objects, DutyCycle(auditCPUShare))
	if err != nil {
		return Snapshot{}, err
	}
	addPod := func(u *unstructured.Unstructured) error {
		if len(snap.Kube) >= MaxObjects {
			return errTooManyKube
		}
		// What the analyzers read of a pod (analysis.Workload): labels,
		// annotations, the containers' and init containers' names and
		// images (util.PodInMesh, IST0103) and hostNetwork (IST0103).
		spec := map[string]any{}
		for _, field := range []string{"containers", "initContainers"} {
			cs, _, _ := unstructured.NestedSlice(u.Object, "spec", field)
			var trimmed []any
			for _, c := range cs {
				if c, ok := c.(map[string]any); ok {
					trimmed = append(trimmed, map[string]any{"name": c["name"], "image": c["image"]})
				}
			}
			if trimmed != nil {
				spec[field] = trimmed
			}
		}
		if hostNetwork, _, _ := unstructured.NestedBool(u.Object, "spec", "hostNetwork"); hostNetwork {
			spec["hostNetwork"] = true
		}
		snap.Kube = append(snap.Kube, map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace(), "labels": toAny(u.GetLabels()),
				"annotations": toAny(u.GetAnnotations())},
			"spec": spec})
		return nil
	}
	queries := analysis.PodQueries(&analysis.Input{Objects: selecting, Mesh: snap.Mesh})
	if err := a.lister().SelectedPods(ctx, queries, snap.Namespaces, addPod); err != nil {
		return Snapshot{}, err
	}
	// Services after the objects that refer to them, for the same reason as
	// the Namespaces above: listed first, a Service created with its
	// VirtualService while the objects were listed was missing, and the
	// reference reported (IST0101) for that run; one deleted meanwhile is
	// missing and a reference to it reported.
	if err := a.list(ctx, corev1.SchemeGroupVersion.WithResource("services"), "", "", func(u *unstructured.Unstructured) error {
		if len(snap.Kube) >= MaxObjects {
			return errTooManyKube
		}
		snap.Kube = append(snap.Kube, trimService(u)) // names for the references, specs for IST0162
		return nil
	}); err != nil {
		return Snapshot{}, err
	}
	snap.Objects = slices.DeleteFunc(snap.Objects, func(o Object) bool {
		_, ok := snap.Namespaces[o.Ref.Namespace]
		return !ok
	})
	return snap, nil
}

// judgeSelecting validates the objects of the selecting kinds (Gateway,
// Sidecar, Telemetry, AuthorizationPolicy) in place (Object.judged, which
// Check reuses) and returns the valid ones for analysis.PodQueries. As
// Check's loops, it stops when ctx ends (a lost Lease: the leader's Lease
// bound, cmd/meshguard watchLease, gives the audit until the Lease may pass
// to another replica, not the time to validate every policy) and calls rest, if set, after every restEvery objects.
func judgeSelecting(ctx context.Context, objs []Object, rest func(context.Context)) ([]analysis.Object, error) {
	var selecting []analysis.Object
	n := 0
	for i, o := range objs {
		switch o.Ref.Kind {
		case "Gateway", "Sidecar", "Telemetry", "AuthorizationPolicy":
		default:
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if rest != nil && n%restEvery == restEvery-1 {
			rest(ctx)
		}
		n++
		res := o.validate(ctx)
		objs[i].judged = &res
		if res.Valid() && res.Spec() != nil {
			selecting = append(selecting, analysis.Object{Kind: o.Ref.Kind, Namespace: o.Ref.Namespace, Name: o.Ref.Name, Spec: res.Spec()})
		}
	}
	return selecting, nil
}

// trimService is what the analyzers read of a Service (analysis.Input.
// AddKubernetesObject: KubeService, and the labels and annotations of
// annotations.go's kubeMetadata): name, namespace, labels, annotations but
// kubectl's last-applied-configuration (a JSON copy of the whole Service
// that no analyzer reads; the Service's own findings are not the audit's,
// kubeKinds), and spec.selector, spec.type and the ports' name, port,
// targetPort, protocol and appProtocol.
func trimService(u *unstructured.Unstructured) map[string]any {
	annotations := u.GetAnnotations()
	delete(annotations, lastApplied)
	metadata := map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()}
	if l := u.GetLabels(); l != nil {
		metadata["labels"] = toAny(l)
	}
	if len(annotations) > 0 {
		metadata["annotations"] = toAny(annotations)
	}
	spec := map[string]any{}
	in, _ := u.Object["spec"].(map[string]any)
	for _, field := range []string{"selector", "type"} {
		if v, ok := in[field]; ok {
			spec[field] = v
		}
	}
	if ports, ok := in["ports"].([]any); ok {
		trimmed := make([]any, 0, len(ports))
		for _, port := range ports {
			p, ok := port.(map[string]any)
			if !ok {
				trimmed = append(trimmed, port) // decoded (and refused) as the API server returned it
				continue
			}
			q := map[string]any{}
			for _, field := range []string{"name", "port", "targetPort", "protocol", "appProtocol"} {
				if v, ok := p[field]; ok {
					q[field] = v
				}
			}
			trimmed = append(trimmed, q)
		}
		spec["ports"] = trimmed
	}
	return map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
}

// lastApplied is the annotation `kubectl apply` keeps its last input in.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (a *Auditor) publishMetrics(vs []Violation, objects int) {
	counts := Counts(vs)
	for k := range a.series {
		if _, ok := counts[k]; !ok {
			violations.DeleteLabelValues(k.Kind, k.Namespace, k.Rule)
		}
	}
	a.series = make(map[MetricKey]bool, len(counts))
	for k, n := range counts {
		violations.WithLabelValues(k.Kind, k.Namespace, k.Rule).Set(float64(n))
		a.series[k] = true
	}
	audited.Set(float64(objects))
}

// emitEvents records a Warning Event on each object for each violation not
// reported before (NewEvents), so a standing violation gives one Event, not
// one per period.
func (a *Auditor) emitEvents(vs []Violation) {
	if a.Recorder == nil {
		return
	}
	emit, remember := NewEvents(a.emitted, vs, MaxEventsPerRun)
	a.emitted = remember
	for _, v := range emit {
		regarding := &unstructured.Unstructured{}
		regarding.SetAPIVersion(v.Object.APIVersion)
		regarding.SetKind(v.Object.Kind)
		regarding.SetNamespace(v.Object.Namespace)
		regarding.SetName(v.Object.Name)
		regarding.SetUID(typesUID(v.Object.UID))
		note := EventNote(v.Text())
		a.Recorder.Eventf(regarding, nil, corev1.EventTypeWarning, EventReason, EventAction("Audit", note), "%s", note)
	}
}

// maxEventNote is the API server's limit on an Event's note
// (events.k8s.io/v1 validation: 1,024 bytes); a longer one is refused, and
// the Event lost.
const maxEventNote = 1024

// EventNote shortens s to maxEventNote bytes at a character boundary, ending
// in "…" when cut (the audit's whole text is in the PolicyReport). Every
// Event meshguard records goes through it.
func EventNote(s string) string {
	if len(s) <= maxEventNote {
		return s
	}
	const ellipsis = "…"
	return textcut.Prefix(s, maxEventNote-len(ellipsis)) + ellipsis
}

// EventAction is the action of an Event with this note: action and a hash
// of the note. client-go's events recorder keys a series by type, reason,
// action, reporting controller and instance, regarding and related object,
// not by the note (k8s.io/client-go/tools/events getKey): an Event that
// differs from one recorded in the last six minutes only by its note
// becomes a count in that one's series, and its note is never written (a
// second violation on an object, a reload rejected for another error). With
// the note's hash in the key, each message gets an Event of its own and the
// same message repeated is still one series.
func EventAction(action, note string) string {
	h := fnv.New32a()
	h.Write([]byte(note))
	return fmt.Sprintf("%s-%08x", action, h.Sum32())
}

// writeReports creates, updates or deletes meshguard's PolicyReport in each
// namespace so that it lists exactly the current violations there; a report
// of its name that meshguard does not manage is left alone (nameTaken).
func (a *Auditor) writeReports(ctx context.Context, vs []Violation, now time.Time) error {
	existing := map[string]*unstructured.Unstructured{}
	name := ReportNameFor(a.Revision)
	ri := a.Client.Resource(PolicyReports)
	opts := metav1.ListOptions{Limit: PageSize, LabelSelector: ManagedByLabel + "=" + managedBy}
	for {
		if err := a.limiter.Wait(ctx); err != nil {
			return err
		}
		page, err := ri.List(ctx, opts)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			if !a.noReport {
				a.Log.Info("the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed: the audit writes no reports")
				a.noReport = true
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing PolicyReports: %w", err)
		}
		for i := range page.Items {
			if page.Items[i].GetName() == name {
				existing[page.Items[i].GetNamespace()] = &page.Items[i]
			}
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			break
		}
	}
	a.noReport = false
	var errs []error
	for ns, want := range Reports(vs, now) {
		want.SetName(name)
		have, ok := existing[ns]
		delete(existing, ns)
		if err := a.limiter.Wait(ctx); err != nil {
			return err
		}
		switch {
		case !ok:
			_, err := ri.Namespace(ns).Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = a.nameTaken(ctx, want)
			}
			errs = append(errs, wrap("creating PolicyReport "+ns, err))
		case !SameResults(have, want):
			want.SetResourceVersion(have.GetResourceVersion())
			_, err := ri.Namespace(ns).Update(ctx, want, metav1.UpdateOptions{})
			errs = append(errs, wrap("updating PolicyReport "+ns, err))
		}
	}
	for ns := range existing { // no violation left there
		if err := a.limiter.Wait(ctx); err != nil {
			return err
		}
		err := ri.Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			errs = append(errs, wrap("deleting PolicyReport "+ns, err))
		}
	}
	return errors.Join(errs...)
}

// nameTaken settles a create refused because a PolicyReport of want's name
// exists, which the run's list (by ManagedByLabel) did not return. Made by
// meshguard since the list (a previous leader's last write), it is brought
// up to date. Not labelled as meshguard's (made by hand, its label edited
// away, another tool's), it is left alone and logged once per object, and
// the run does not fail: failing would count an error and log every period
// until an operator acts, and overwriting or deleting it could destroy
// someone else's report. Its namespace gets no audit report meanwhile (the
// metrics and Events still report the violations; docs/governance.md).
// The look-up is a list by name, within the audit's list permission.
func (a *Auditor) nameTaken(ctx context.Context, want *unstructured.Unstructured) error {
	ns, name := want.GetNamespace(), want.GetName()
	if err := a.limiter.Wait(ctx); err != nil {
		return err
	}
	page, err := a.Client.Resource(PolicyReports).Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return fmt.Errorf("reading the existing PolicyReport %s: %w", name, err)
	}
	var have *unstructured.Unstructured
	for i := range page.Items {
		if page.Items[i].GetName() == name {
			have = &page.Items[i]
		}
	}
	switch {
	case have == nil:
		return fmt.Errorf("PolicyReport %s existed and is gone: written by the next run", name)
	case have.GetLabels()[ManagedByLabel] != managedBy:
		key := ns + "/" + name + "/" + string(have.GetUID())
		if !a.foreign[key] {
			if a.foreign == nil {
				a.foreign = map[string]bool{}
			}
			a.foreign[key] = true
			a.Log.Error(fmt.Errorf("PolicyReport %s/%s is not labelled %s=%s", ns, name, ManagedByLabel, managedBy),
				"the audit leaves a PolicyReport of its name that it does not manage alone: this namespace gets no audit report until it is deleted",
				"namespace", ns, "name", name)
		}
		return nil
	case SameResults(have, want):
		return nil
	}
	if err := a.limiter.Wait(ctx); err != nil {
		return err
	}
	want.SetResourceVersion(have.GetResourceVersion())
	_, err = a.Client.Resource(PolicyReports).Namespace(ns).Update(ctx, want, metav1.UpdateOptions{})
	return err
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// auditCPUShare is the share of one core an audit run may keep busy
// (DutyCycle): a 10,000-object run then takes about twice its CPU time in
// wall time, and admission's p99 stays where it is (BenchmarkAdmissionDuringAudit).
const auditCPUShare = 0.5
