package analysis

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
)

// TestImageAutoWithoutInjection: cases Istio's image-auto.yaml does not
// cover (Istio: pkg/config/analysis/analyzers/injection/image-auto.go at
// 0a617ca985f9, ImageAutoAnalyzer.Analyze): the webhooks of a default
// install (matchExpressions), webhooks not Istio's, selectors not written or
// not parsing, init containers, and Pods in injected namespaces.
func TestImageAutoWithoutInjection(t *testing.T) {
	const (
		deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: gw, namespace: %NS%}
spec:
  selector: {matchLabels: {istio: gw}}
  template:
    metadata: {labels: {istio: gw%LABEL%}}
    spec:
      containers:
      - {name: app, image: app}
      - {name: istio-proxy, image: auto}
`
		namespaces = `apiVersion: v1
kind: Namespace
metadata: {name: enabled, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: rev, labels: {istio.io/rev: default}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
`
		webhook = `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: other}
webhooks:
- name: %NAME%
  clientConfig: {url: "https://x"}
%SELECTOR%`
	)
	istio := istioInjectorWebhooks("istio-sidecar-injector", "istiod", "")
	dep := func(ns, label string) string {
		return replaceAll(deployment, "%NS%", ns, "%LABEL%", label)
	}
	hook := func(name, selector string) string {
		return replaceAll(webhook, "%NAME%", name, "%SELECTOR%", selector)
	}
	const warnField = "spec.template.spec.containers[1].image"
	for _, tc := range []struct {
		name string
		yaml []string
		want []string // "code namespace/name field"
	}{
		{"injected by namespace label", []string{istio, namespaces, dep("enabled", "")}, nil},
		{"injected by revision label", []string{istio, namespaces, dep("rev", "")}, nil},
		{"injected by object label", []string{istio, namespaces, dep("plain", `, "sidecar.istio.io/inject": "true"`)}, nil},
		{"opted out in an injected namespace", []string{istio, namespaces, dep("enabled", `, "sidecar.istio.io/inject": "false"`)},
			[]string{"IST0146 enabled/gw " + warnField}},
		{"namespace without labels", []string{istio, namespaces, dep("plain", "")}, []string{"IST0146 plain/gw " + warnField}},
		{"no Namespace object", []string{istio, dep("enabled", "")}, []string{"IST0146 enabled/gw " + warnField}},
		{"no webhooks", []string{namespaces, dep("enabled", "")}, []string{"IST0146 enabled/gw " + warnField}},
		// Only webhooks whose name ends in istio.io count.
		{"webhook not Istio's", []string{namespaces, hook("inject.example.com", ""), dep("plain", "")},
			[]string{"IST0146 plain/gw " + warnField}},
		// Selectors not written match everything.
		{"webhook without selectors", []string{namespaces, hook("inject.istio.io", ""), dep("plain", "")}, nil},
		// A selector that does not parse matches nothing.
		{"webhook selector not parsing", []string{namespaces,
			hook("inject.istio.io", "  objectSelector: {matchExpressions: [{key: x, operator: Bogus}]}\n"), dep("plain", "")},
			[]string{"IST0146 plain/gw " + warnField}},
		// A Pod with image: auto is an Error even where a webhook selects it.
		{"pod in injected namespace", []string{istio, namespaces, `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: enabled}
spec: {containers: [{name: app, image: app}, {name: istio-proxy, image: auto}]}
`}, []string{"IST0147 enabled/p spec.containers[1].image"}},
		// Init containers and other names are not read.
		{"init container and other name", []string{namespaces, `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: plain}
spec:
  initContainers: [{name: istio-proxy, image: auto}]
  containers: [{name: proxy, image: auto}, {name: istio-proxy, image: proxyv2}]
`}, nil},
	} {
		var in Input
		for _, y := range tc.yaml {
			docs, err := manifest.Split([]byte(y))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for _, d := range docs {
				if known, err := in.AddKubernetesObject(d.Object, "default"); !known || err != nil {
					t.Fatalf("%s: known %v, %v", tc.name, known, err)
				}
			}
		}
		var got []string
		for _, m := range Analyze(in) {
			if m.Code == ImageAutoWithoutInjectionWarning || m.Code == ImageAutoWithoutInjectionError {
				got = append(got, m.Code+" "+m.Namespace+"/"+m.Object+" "+m.Field)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// replaceAll replaces each old, new pair of kv in s.
func replaceAll(s string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		s = strings.ReplaceAll(s, kv[i], kv[i+1])
	}
	return s
}
