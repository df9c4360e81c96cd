package policy

import (
	"fmt"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Stored is an AuthorizationPolicy, PeerAuthentication or
// RequestAuthentication as the API server
// stores it, decoded once from its JSON form (an informer's transform, see
// authz/kube.go). Object is the typed value (*secv1.AuthorizationPolicy or
// *secv1.PeerAuthentication, *secv1.RequestAuthentication); Invalid is why `meshguard validate` rejects the
// JSON form, "" when it accepts it.
//
// The verdict is taken on the JSON form because the typed decoder (istio.io/api's
// jsonpb, as in Istio) drops fields it does not know: a policy written for a
// newer CRD would otherwise be enforced without them, an ALLOW wider than
// written. It fails closed instead, naming the field (see failClosed).
type Stored struct {
	metav1.Object
	Invalid string
}

// DecodeStored decodes one stored object of kind (AuthorizationPolicy,
// PeerAuthentication or RequestAuthentication) from its JSON form as a map (a dynamic client's
// unstructured content). The checks are AddYAML's, on the same map shape, so
// the API server path and a policy directory agree. It deletes
// metadata.managedFields from obj first: nothing reads them, and the typed
// object keeps only the metadata authorization reads. The error is
// for a kind it does not decode; an object it cannot decode is Invalid.
func DecodeStored(kind string, obj map[string]any) (*Stored, error) {
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "managedFields")
	}
	var typed metav1.Object
	switch kind {
	case "AuthorizationPolicy":
		typed = &secv1.AuthorizationPolicy{}
	case "PeerAuthentication":
		typed = &secv1.PeerAuthentication{}
	case "RequestAuthentication":
		typed = &secv1.RequestAuthentication{}
	default:
		return nil, fmt.Errorf("stored %s: not a policy kind", kind)
	}
	if obj["kind"] != kind {
		return nil, fmt.Errorf("stored %s: kind %v", kind, obj["kind"])
	}
	invalid, checked := rejection(obj)
	st := &Stored{Object: typed, Invalid: invalid}
	// Decode the object validation checked (nulls pruned), as AddYAML does.
	if checked == nil {
		checked = obj // not identified: Invalid says why; keep the name
	}
	if err := decodeInto(storedName(kind, obj), checked, typed); err != nil {
		// The API server's decoder took it and ours did not: keep the name,
		// so the policy fails closed instead of vanishing.
		typed.SetName(metaString(obj, "name"))
		typed.SetNamespace(metaString(obj, "namespace"))
		// And its revision label, which decides whether it is read at all
		// (InRevision); labels the API server stored are strings.
		if rev, ok, _ := unstructured.NestedString(obj, "metadata", "labels", RevisionLabel); ok {
			typed.SetLabels(map[string]string{RevisionLabel: rev})
		}
		if st.Invalid == "" {
			st.Invalid = err.Error()
		}
	}
	// The informer keeps st for as long as the object exists: without the
	// metadata authorization never reads (keepReadMeta).
	switch o := typed.(type) {
	case *secv1.AuthorizationPolicy:
		keepReadMeta(&o.ObjectMeta)
	case *secv1.PeerAuthentication:
		keepReadMeta(&o.ObjectMeta)
	case *secv1.RequestAuthentication:
		keepReadMeta(&o.ObjectMeta)
	}
	return st, nil
}

func storedName(kind string, obj map[string]any) string {
	return fmt.Sprintf("%s %s/%s", kind, metaString(obj, "namespace"), metaString(obj, "name"))
}

// metaString is metadata.<key>, or "" when it is missing or not a string.
func metaString(obj map[string]any, key string) string {
	s, _, _ := unstructured.NestedString(obj, "metadata", key)
	return s
}

// AddStored adds objects DecodeStored returned, with their verdicts, as the
// default revision reads them (AddStoredIn).
func (s *Set) AddStored(objs ...*Stored) { s.AddStoredIn("", objs...) }

// AddStoredIn adds the objects revision rev reads ("" = default; InRevision),
// with their verdicts, and returns the others: they are neither enforced nor
// counted as invalid, as istiod of rev never reads them.
func (s *Set) AddStoredIn(rev string, objs ...*Stored) []OutOfRevision {
	var skipped []OutOfRevision
	for _, st := range objs {
		switch o := st.Object.(type) {
		case *secv1.AuthorizationPolicy:
			if out, skip := outOfRevision("AuthorizationPolicy", o, rev); skip {
				skipped = append(skipped, out)
				continue
			}
			s.AuthorizationPolicies = append(s.AuthorizationPolicies, o)
			s.setVerdict(o, st.Invalid)
		case *secv1.PeerAuthentication:
			if out, skip := outOfRevision("PeerAuthentication", o, rev); skip {
				skipped = append(skipped, out)
				continue
			}
			s.PeerAuthentications = append(s.PeerAuthentications, o)
			s.setVerdict(o, st.Invalid)
		case *secv1.RequestAuthentication:
			if out, skip := outOfRevision("RequestAuthentication", o, rev); skip {
				skipped = append(skipped, out)
				continue
			}
			s.RequestAuthentications = append(s.RequestAuthentications, o)
			s.setVerdict(o, st.Invalid)
		}
	}
	return skipped
}
