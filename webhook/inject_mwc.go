package webhook

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Suffix of every injection webhook entry name (Istio: sidecar-injector.istio.io).
const injectWebhookSuffix = "sidecar-injector.meshguard.io"

// MutatingWebhookConfiguration returns the sidecar injection configuration,
// shaped like Istio's chart
// (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml): the
// same selector matrix, CREATE of
// pods only, failurePolicy Fail, sideEffects None. Deliberate differences
// (docs/compatibility.md): reinvocationPolicy IfNeeded (injection is
// idempotent), an explicit timeout, and every entry excludes meshguard's own
// namespace, kube-system and kube-public so meshguard can never block itself
// or the control plane.
func MutatingWebhookConfiguration(cc ClientConfig) *admissionregistrationv1.MutatingWebhookConfiguration {
	rev := cc.Revision
	defaultRev := IsDefaultRevision(rev)
	name := MutatingConfigNameFor(rev)
	revValue := "default"
	if !defaultRev {
		revValue = rev
	}
	timeout := cc.TimeoutSeconds
	if timeout == 0 {
		timeout = 10
	}
	excluded := []string{"kube-system", "kube-public"}
	if cc.OwnNamespace != "" {
		excluded = append(excluded, cc.OwnNamespace)
	}
	notExcluded := metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded}
	req := func(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	const (
		injLabel = "istio-injection"
		revLabel = "istio.io/rev"
		podLabel = "sidecar.istio.io/inject"
	)
	entry := func(prefix string, ns, obj []metav1.LabelSelectorRequirement) admissionregistrationv1.MutatingWebhook {
		fail := admissionregistrationv1.Fail
		none := admissionregistrationv1.SideEffectClassNone
		reinv := admissionregistrationv1.IfNeededReinvocationPolicy
		t := timeout
		return admissionregistrationv1.MutatingWebhook{
			Name:         prefix + injectWebhookSuffix,
			ClientConfig: cc.For(InjectPath),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			ReinvocationPolicy:      &reinv,
			TimeoutSeconds:          &t,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: append(ns, notExcluded)},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: obj},
		}
	}
	optOut := req(podLabel, metav1.LabelSelectorOpNotIn, "false")
	hooks := []admissionregistrationv1.MutatingWebhook{
		entry("rev.namespace.",
			[]metav1.LabelSelectorRequirement{req(revLabel, metav1.LabelSelectorOpIn, revValue), req(injLabel, metav1.LabelSelectorOpDoesNotExist)},
			[]metav1.LabelSelectorRequirement{optOut}),
		entry("rev.object.",
			[]metav1.LabelSelectorRequirement{req(revLabel, metav1.LabelSelectorOpDoesNotExist), req(injLabel, metav1.LabelSelectorOpDoesNotExist)},
			[]metav1.LabelSelectorRequirement{optOut, req(revLabel, metav1.LabelSelectorOpIn, revValue)}),
	}
	if defaultRev {
		hooks = append(hooks,
			entry("namespace.",
				[]metav1.LabelSelectorRequirement{req(injLabel, metav1.LabelSelectorOpIn, "enabled")},
				[]metav1.LabelSelectorRequirement{optOut}),
			entry("object.",
				[]metav1.LabelSelectorRequirement{req(injLabel, metav1.LabelSelectorOpDoesNotExist), req(revLabel, metav1.LabelSelectorOpDoesNotExist)},
				[]metav1.LabelSelectorRequirement{req(podLabel, metav1.LabelSelectorOpIn, "true"), req(revLabel, metav1.LabelSelectorOpDoesNotExist)}),
		)
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{"app.kubernetes.io/name": "meshguard", "istio.io/rev": revValue},
			Annotations: cc.annotations(),
		},
		Webhooks: hooks,
	}
}
