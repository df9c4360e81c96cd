package analysis

import (
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
// The objects are in.Objects (the mesh objects validation accepts) and
// in.Kube (Namespaces, Services, Pods, Deployments). An object validation
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
	if len(suppress) == 0 {
		return msgs
	}
	out := msgs[:0]
	for _, m := range msgs {
		codes := suppress[key{m.Kind, m.Namespace, m.Object}]
		if !suppressedCode(codes, m.Code) {
			out = append(out, m)
		}
	}
	return out
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
