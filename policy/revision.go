package policy

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/webhookconfig"
)

// RevisionLabel names the control-plane revision an object is meant for.
const RevisionLabel = "istio.io/rev"

// InRevision reports whether the control plane of revision rev reads an
// object with these labels. It follows Istio's LabelsInRevision
// (pkg/config/model.go), which istiod's config client applies to every
// object it lists, gets or watches (pilot/pkg/config/kube/crdclient/client.go,
// Client.inRevision): an object without the label is read by every revision;
// one with it only by the revision it names, compared as written (a revision
// tag is not resolved, nor is "" anyone's name).
//
// rev "" is the default revision, "default": istiod's chart sets its REVISION
// to `.Values.revision | default "default"` (istio-discovery
// templates/deployment.yaml). An istiod run without REVISION reads every
// object; meshguard has no such mode (docs/compatibility.md).
func InRevision(labels map[string]string, rev string) bool {
	v, labelled := labels[RevisionLabel]
	if !labelled {
		return true // a global object
	}
	return v == revisionName(rev)
}

// revisionName is the label value of revision rev ("" = "default").
func revisionName(rev string) string {
	if webhookconfig.IsDefaultRevision(rev) {
		return "default"
	}
	return rev
}

// OutOfRevision names a policy a loader did not read because it is labelled
// for another revision (InRevision).
type OutOfRevision struct {
	Kind, Namespace, Name string
	Label                 string // its istio.io/rev value
	Revision              string // the revision loading ("default" for "")
}

func (o OutOfRevision) String() string {
	return fmt.Sprintf("%s %s/%s: labelled %s=%s, not for revision %s", o.Kind, o.Namespace, o.Name, RevisionLabel, o.Label, o.Revision)
}

// outOfRevision is why obj is not read by revision rev, ok false when it is.
func outOfRevision(kind string, obj metav1.Object, rev string) (OutOfRevision, bool) {
	labels := obj.GetLabels()
	if InRevision(labels, rev) {
		return OutOfRevision{}, false
	}
	return OutOfRevision{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Label: labels[RevisionLabel],
		Revision: revisionName(rev)}, true
}

// keepRevision drops the policies revision rev does not read, returning
// them. A policy directory's load applies it once every file is read, so the
// per-document memo and the one-object-per-name check see every document, as
// the API server holds every object whatever its label.
func (s *Set) keepRevision(rev string) []OutOfRevision {
	var out []OutOfRevision
	aps := keepInRevision(s, "AuthorizationPolicy", s.AuthorizationPolicies, rev, &out)
	pas := keepInRevision(s, "PeerAuthentication", s.PeerAuthentications, rev, &out)
	ras := keepInRevision(s, "RequestAuthentication", s.RequestAuthentications, rev, &out)
	if len(out) > 0 {
		s.AuthorizationPolicies, s.PeerAuthentications, s.RequestAuthentications = aps, pas, ras
	}
	return out
}

// keepInRevision is objs without those revision rev does not read, which
// it appends to out and whose verdicts it forgets; objs itself is unchanged.
func keepInRevision[T metav1.Object](s *Set, kind string, objs []T, rev string, out *[]OutOfRevision) []T {
	kept := objs[:0:0]
	for _, obj := range objs {
		if o, skip := outOfRevision(kind, obj, rev); skip {
			*out = append(*out, o)
			delete(s.verdicts, obj)
			continue
		}
		kept = append(kept, obj)
	}
	return kept
}
