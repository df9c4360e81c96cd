package analysis

import (
	"fmt"
	"slices"
	"strings"

	"istio.io/api/annotation"
)

// suppressAnnotated drops the messages about an object whose
// galley.istio.io/analyze-suppress annotation names their code, as Istio's
// pkg/config/analysis/local/istiod_analyze.go filterMessages does (the
// annotation of the message's resource, m.Resource.Metadata.Annotations):
// the value is split at every ","; an element equal to the code, or "*",
// suppresses it. Elements are compared as written (" IST0107" with its
// space matches nothing), as Istio compares them.
//
// The objects are in.Objects (the mesh objects validation accepts), in.Kube
// (Namespaces, Services, Pods, Deployments) and the
// MutatingWebhookConfigurations. An object validation
// rejects is in neither: its IST0106 and other messages are always
// reported (meshguard's deliberate difference: Istio would honour the
// annotation of an object its schema analyzer rejects; meshguard's webhook
// denies such an object, and analyze must not pass what admission will
// refuse). Organisation-rule messages (MG0001) are not Analyze's and are
// never suppressed.
func suppressAnnotated(in *Input, msgs []Message) []Message {
	type key struct{ kind, ns, name string }
	suppress := map[key][]string{}
	note := func(o Object) {
		if v := o.Annotations[annotation.GalleyAnalyzeSuppress.Name]; v != "" {
			suppress[key{o.Kind, o.Namespace, o.Name}] = strings.Split(v, ",")
		}
	}
	for _, o := range in.Objects {
		note(o)
	}
	for _, o := range in.Kube {
		note(o)
	}
	for _, c := range in.MutatingWebhookConfigurations { // IST0139's objects
		note(Object{Kind: "MutatingWebhookConfiguration", Name: c.Name, Annotations: c.Annotations})
	}
	if len(suppress) == 0 && len(in.Suppressions) == 0 {
		return msgs
	}
	out := msgs[:0]
	for _, m := range msgs {
		codes := suppress[key{m.Kind, m.Namespace, m.Object}]
		if !suppressedCode(codes, m.Code) && !slices.ContainsFunc(in.Suppressions, func(s Suppression) bool { return s.matches(m) }) {
			out = append(out, m)
		}
	}
	return out
}

// Suppression is one `--suppress CODE=RESOURCE` of istioctl analyze
// (istioctl/pkg/analyze/analyze.go, applied by
// pkg/config/analysis/local/istiod_analyze.go filterMessages): the
// messages of Code about the objects whose name Resource matches.
type Suppression struct {
	Code string
	// Resource is matched against "Kind namespace/name" ("Kind name" for a
	// cluster-scoped object), the object as Message.String prints it:
	// Istio's Origin.FriendlyName (pkg/config/legacy/source/kube/origin.go
	// at istio/istio 0a617ca985f9, "The istioctl convention is <type>
	// [<namespace>/]<name>"), which filterMessages globs. The older
	// "Kind name.namespace" form that Istio's AnalysisSuppression comment
	// (istiod_analyze.go at 002ae4159600) still shows matches nothing in
	// istioctl, nor here. A "*" in it
	// matches any run of characters.
	Resource string
}

// ParseSuppression parses CODE=RESOURCE as istioctl does: exactly one "=".
// known reports whether the code is one meshguard can report (istioctl warns
// of an unknown code, and it then suppresses nothing).
func ParseSuppression(s string) (sup Suppression, known bool, err error) {
	parts := strings.Split(s, "=")
	if len(parts) != 2 {
		return Suppression{}, false, fmt.Errorf("%s is not a valid suppression value (CODE=RESOURCE, e.g. \"IST0101=VirtualService default/reviews\")", s)
	}
	_, known = Types[parts[0]]
	return Suppression{Code: parts[0], Resource: parts[1]}, known, nil
}

func (s Suppression) matches(m Message) bool {
	if s.Code != m.Code {
		return false
	}
	name := m.Object
	if m.Namespace != "" {
		name = m.Namespace + "/" + m.Object
	}
	return globMatch(s.Resource, m.Kind+" "+name)
}

// globMatch says whether subj matches pattern, where each "*" of pattern
// matches any run of characters (also empty) and the rest matches as
// written: the semantics of Glob of github.com/ryanuber/go-glob v1.0.0,
// which istioctl's filterMessages calls.
func globMatch(pattern, subj string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == subj
	}
	if !strings.HasPrefix(subj, parts[0]) {
		return false
	}
	subj = subj[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(subj, p)
		if i < 0 {
			return false
		}
		subj = subj[i+len(p):]
	}
	return strings.HasSuffix(subj, last)
}

// suppressedCode says whether the annotation's elements name code or "*".
func suppressedCode(codes []string, code string) bool {
	for _, c := range codes {
		if c == "*" || c == code {
			return true
		}
	}
	return false
}
