package validation

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// kindValidator checks one kind's spec. meta gives name/namespace/labels/
// annotations; spec is the decoded istio.io/api message (the same Go type for
// every served version of the kind).
type kindValidator func(meta metav1.ObjectMeta, spec proto.Message, f *Findings)

// rawValidator checks a kind's spec as decoded JSON, before the proto decode,
// for rules the proto cannot express (e.g. an empty list vs an absent one).
type rawValidator func(meta metav1.ObjectMeta, spec map[string]any, f *Findings)

// kindEntry is everything validation knows about one kind: how to build its
// istio.io/api message (every served version decodes into the same Go type)
// and its rules.
type kindEntry struct {
	newSpec     func() proto.Message
	validate    kindValidator
	validateRaw rawValidator // nil for most kinds
}

// rules builds a kind's entry from its typed validator: the message type is
// taken from the validator's signature, so the two cannot disagree.
func rules[T proto.Message](v func(meta metav1.ObjectMeta, spec T, f *Findings)) kindEntry {
	newSpec := func() proto.Message {
		var zero T
		return zero.ProtoReflect().Type().New().Interface()
	}
	return kindEntry{
		newSpec: newSpec,
		validate: func(meta metav1.ObjectMeta, spec proto.Message, f *Findings) {
			typed, ok := spec.(T)
			if !ok {
				f.Error(field.NewPath("spec"), nil, fmt.Sprintf("internal error: spec has type %T", spec))
				return
			}
			v(meta, typed, f)
		},
	}
}

// withRaw adds a raw-spec validator to an entry.
func (e kindEntry) withRaw(v rawValidator) kindEntry {
	e.validateRaw = v
	return e
}

// kinds is the one table of validated kinds, keyed by group and kind (the
// layout of cert-manager's internal/apis/*/validation registrations, as a
// static table: no init(), no lock).
var kinds = map[schema.GroupKind]kindEntry{
	{Group: "networking.istio.io", Kind: "VirtualService"}:      rules[*networkingv1alpha3.VirtualService](validateVirtualService),
	{Group: "networking.istio.io", Kind: "DestinationRule"}:     rules[*networkingv1alpha3.DestinationRule](validateDestinationRule),
	{Group: "networking.istio.io", Kind: "Gateway"}:             rules[*networkingv1alpha3.Gateway](validateGateway),
	{Group: "networking.istio.io", Kind: "ServiceEntry"}:        rules[*networkingv1alpha3.ServiceEntry](validateServiceEntry),
	{Group: "networking.istio.io", Kind: "Sidecar"}:             rules[*networkingv1alpha3.Sidecar](validateSidecar),
	{Group: "networking.istio.io", Kind: "WorkloadEntry"}:       rules[*networkingv1alpha3.WorkloadEntry](validateWorkloadEntry),
	{Group: "networking.istio.io", Kind: "WorkloadGroup"}:       rules[*networkingv1alpha3.WorkloadGroup](validateWorkloadGroup),
	{Group: "networking.istio.io", Kind: "EnvoyFilter"}:         rules[*networkingv1alpha3.EnvoyFilter](validateEnvoyFilter),
	{Group: "networking.istio.io", Kind: "ProxyConfig"}:         rules[*networkingv1beta1.ProxyConfig](validateProxyConfig),
	{Group: "security.istio.io", Kind: "AuthorizationPolicy"}:   rules[*securityv1beta1.AuthorizationPolicy](validateAuthorizationPolicy).withRaw(validateAuthorizationPolicyRaw),
	{Group: "security.istio.io", Kind: "PeerAuthentication"}:    rules[*securityv1beta1.PeerAuthentication](validatePeerAuthentication).withRaw(validatePeerAuthenticationRaw),
	{Group: "security.istio.io", Kind: "RequestAuthentication"}: rules[*securityv1beta1.RequestAuthentication](validateRequestAuthentication),
	{Group: "telemetry.istio.io", Kind: "Telemetry"}:            rules[*telemetryv1alpha1.Telemetry](validateTelemetry),
	{Group: "extensions.istio.io", Kind: "WasmPlugin"}:          rules[*extensionsv1alpha1.WasmPlugin](validateWasmPlugin),
	{Group: "extensions.istio.io", Kind: "TrafficExtension"}:    rules[*extensionsv1alpha1.TrafficExtension](validateTrafficExtension),
}

// KnownKinds lists the Group/Kinds meshguard can validate, sorted.
func KnownKinds() []schema.GroupKind {
	out := make([]schema.GroupKind, 0, len(kinds))
	for gk := range kinds {
		out = append(out, gk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// RegisteredKinds lists the kinds with a spec validator, sorted.
func RegisteredKinds() []string {
	out := make([]string, 0, len(kinds))
	for gk := range kinds {
		out = append(out, gk.Kind)
	}
	sort.Strings(out)
	return out
}
