package injector

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/injector/config"
)

// Reasons reported by Decide; they are metric label values, keep them stable.
const (
	ReasonHostNetwork      = "host_network"
	ReasonIgnoredNamespace = "ignored_namespace"
	ReasonOptOut           = "opt_out"
	ReasonOptIn            = "opt_in"
	ReasonNeverInject      = "never_inject_selector"
	ReasonAlwaysInject     = "always_inject_selector"
	ReasonPolicyEnabled    = "policy_enabled"
	ReasonPolicyDisabled   = "policy_disabled"
)

// IgnoredNamespaces are never injected (Istio's pkg/kube/inject/initializer.go).
var IgnoredNamespaces = map[string]bool{
	"kube-system": true, "kube-public": true, "kube-node-lease": true, "local-path-storage": true,
}

// Decision says whether a pod gets a sidecar and why.
type Decision struct {
	Inject   bool
	Reason   string
	Warnings []string
}

// Decide applies Istio's injectRequired rules in order (pkg/kube/inject/inject.go); the first
// conclusive rule wins. namespace is the request's namespace.
func Decide(pod *corev1.Pod, namespace string, cfg *config.Snapshot) Decision {
	if pod.Spec.HostNetwork {
		return Decision{Reason: ReasonHostNetwork}
	}
	if IgnoredNamespaces[namespace] {
		return Decision{Reason: ReasonIgnoredNamespace}
	}
	var d Decision
	value, found := pod.Labels[AnnotationInject]
	source := "label"
	if !found {
		value, source = pod.Annotations[AnnotationInject], "annotation"
	}
	switch value { // exactly: Istio's injectRequired neither folds case nor reads YAML booleans
	case "true":
		return Decision{Inject: true, Reason: ReasonOptIn}
	case "false":
		return Decision{Reason: ReasonOptOut}
	case "":
	default:
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s %s %q is not true or false; ignored, using the default policy", source, AnnotationInject, value))
	}
	set := labels.Set(pod.Labels)
	for _, sel := range cfg.NeverInject {
		if !sel.Empty() && sel.Matches(set) {
			d.Reason = ReasonNeverInject
			return d
		}
	}
	for _, sel := range cfg.AlwaysInject {
		if !sel.Empty() && sel.Matches(set) {
			d.Inject, d.Reason = true, ReasonAlwaysInject
			return d
		}
	}
	if cfg.Values.Global.Proxy.AutoInject == "enabled" {
		d.Inject, d.Reason = true, ReasonPolicyEnabled
	} else {
		d.Reason = ReasonPolicyDisabled
	}
	return d
}
