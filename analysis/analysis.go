// Package analysis runs meshguard's cross-resource checks over a whole set of
// objects (files or a cluster snapshot) and reports them as Istio analyzer
// messages (code, level, object, field), as `istioctl analyze` does. The
// checks themselves are validation/crossref's: the webhook and analyze share
// one implementation; this package only builds the index from the whole set
// and gives each finding its Istio code and level.
package analysis

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"

	injectorconfig "github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation/crossref"
)

// Level is an analyzer message level, ordered Info < Warning < Error as in
// Istio's pkg/config/analysis/diag/level.go.
type Level int

const (
	Info Level = iota
	Warning
	Error
)

func (l Level) String() string {
	switch l {
	case Error:
		return "Error"
	case Warning:
		return "Warning"
	}
	return "Info"
}

// MarshalText makes JSON output print the level by name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// ParseLevel reads a --failure-threshold value (case-insensitive).
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(s) {
	case "error":
		return Error, nil
	case "warning":
		return Warning, nil
	case "info":
		return Info, nil
	}
	return 0, fmt.Errorf("unknown level %q (Info, Warning or Error)", s)
}

// MessageType is one Istio analyzer message: code, name and level as in
// Istio's pkg/config/analysis/msg/messages.yaml.
type MessageType struct {
	Code  string
	Name  string
	Level Level
}

// SchemaValidationError is the code for an object that fails validation.
const SchemaValidationError = "IST0106"

// Types maps each code meshguard reports to its Istio name and level.
var Types = map[string]MessageType{
	crossref.CodeReferencedResourceNotFound:                {crossref.CodeReferencedResourceNotFound, "ReferencedResourceNotFound", Error},
	SchemaValidationError:                                  {SchemaValidationError, "SchemaValidationError", Error},
	crossref.CodeConflictingMeshGatewayVirtualServiceHosts: {crossref.CodeConflictingMeshGatewayVirtualServiceHosts, "ConflictingMeshGatewayVirtualServiceHosts", Error},
	crossref.CodeVirtualServiceDestinationPortSelector:     {crossref.CodeVirtualServiceDestinationPortSelector, "VirtualServiceDestinationPortSelectorRequired", Error},
	crossref.CodeVirtualServiceHostNotFoundInGateway:       {crossref.CodeVirtualServiceHostNotFoundInGateway, "VirtualServiceHostNotFoundInGateway", Warning},
	crossref.CodeConflictingGateways:                       {crossref.CodeConflictingGateways, "ConflictingGateways", Error},
	crossref.CodeUnknownDestinationRuleHost:                {crossref.CodeUnknownDestinationRuleHost, "UnknownDestinationRuleHost", Warning},
}

// Object is one mesh object of the set analysed, with its decoded spec.
type Object struct {
	Kind, Namespace, Name string
	Origin                string // where it came from (file#doc), for messages
	Spec                  proto.Message
	// Annotations are metadata.annotations (ObjectAnnotations): Analyze
	// honours their galley.istio.io/analyze-suppress (suppress.go), and the
	// annotation analyzer (annotations.go) reads those of Input.Kube.
	Annotations map[string]string
	// Labels are metadata.labels, set on Input.Kube's objects only (the
	// annotation analyzer reads the sidecar.istio.io/inject label).
	Labels map[string]string
}

// Input is the whole set: mesh objects, plus the Kubernetes Services and
// namespace labels they may refer to.
type Input struct {
	Objects  []Object
	Services []crossref.Key
	// Namespaces maps a namespace to its labels (may be nil).
	Namespaces map[string]map[string]string
	Domain     string
	// Invalid lists objects that failed single-object validation; they are
	// reported as IST0106 and left out of the cross-resource checks.
	Invalid []Message
	// Workloads and KubeServices feed the gateway port analyzer (IST0162):
	// the pods (or Deployment pod templates) Gateways select and the
	// Services selecting them. Without workloads the analyzer is not run.
	// The Sidecar and AuthorizationPolicy analyzers (IST0110, sidecar.go;
	// IST0127, authz.go) read Workloads too.
	Workloads    []Workload
	KubeServices []KubeService
	// AllWorkloads says Workloads holds every workload a Gateway, Sidecar or
	// AuthorizationPolicy may select (a cluster's pods): a selector matching
	// none is then IST0101 (Gateway, Sidecar) or IST0127 (policy), as
	// istioctl reports it.
	AllWorkloads bool
	// Mesh is the mesh config the analyzers read (Istio's MeshConfig, as
	// istioctl reads it from --meshConfigFile or the cluster's istio
	// ConfigMap); nil is Istio's default (meshconfig.DefaultMeshConfig).
	Mesh *meshv1alpha1.MeshConfig
	// Suppressions drop the messages of a code about the objects a pattern
	// names (istioctl analyze --suppress; suppress.go).
	Suppressions []Suppression
	// InjectorValues are the injector values (key "values") of the
	// istio-sidecar-injector[-<revision>] ConfigMaps AddKubernetesObject
	// added, by ConfigMap name as Istio's injection analyzers key them:
	// IST0148 (injection.go) and IST0158 (injectorimage.go) read them.
	InjectorValues map[string]*injectorconfig.Values
	// Kube is the metadata (kind, name, annotations, labels; no spec) of
	// every Namespace, Service, Pod and Deployment AddKubernetesObject
	// added, for the annotation analyzer and analyze-suppress.
	Kube []Object
	// MutatingWebhookConfigurations feed the webhook analyzer (IST0139,
	// webhooks.go).
	MutatingWebhookConfigurations []MutatingWebhookConfiguration
	// SecretNames are the names of the Secrets AddKubernetesObject added, by
	// namespace (names only: no Secret data is kept), for the gateway
	// Secret analyzer (IST0101 credentialName, gatewaysecret.go).
	SecretNames map[string][]string
	// AllSecrets says SecretNames holds every Secret of the namespaces
	// GatewaySecretNamespaces names (`meshguard analyze --kubeconfig` lists
	// their metadata): only then is a credentialName reported missing.
	AllSecrets bool

	// selections memoizes selectedBy for one Analyze run.
	selections map[string][]Workload
}

// newMessage is the message of code (its name and level from Types) about
// object o at fieldPath.
func newMessage(o Object, code, fieldPath, text string) Message {
	t := Types[code]
	return Message{Code: code, Name: t.Name, Level: t.Level, Kind: o.Kind, Namespace: o.Namespace, Object: o.Name,
		Origin: o.Origin, Field: fieldPath, Message: text}
}

// Message is one analyzer result.
type Message struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Level     Level  `json:"level"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Object    string `json:"object"`
	Origin    string `json:"origin,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
	// RuleError marks an organisation rule that could not be evaluated on
	// the object (an Error, fail closed): the audit's PolicyReport gives it
	// the result "error", not "fail".
	RuleError bool `json:"-"`
}

// String renders the message as istioctl analyze's log format does (Istio's
// pkg/config/analysis/diag/message.go Message.String): "Error [IST0101]
// (VirtualService ns/name origin) text", the text right after the origin (the
// field path is -o json's "field"). A cluster-scoped object (a Namespace)
// is "Kind name", as Istio's resource.Origin FriendlyName writes it.
func (m Message) String() string {
	name := m.Object
	if m.Namespace != "" {
		name = m.Namespace + "/" + m.Object
	}
	s := fmt.Sprintf("%s [%s] (%s %s", m.Level, m.Code, m.Kind, name)
	if m.Origin != "" {
		s += " " + m.Origin
	}
	return s + ") " + m.Message
}

// MaxCrossReferenceMessages bounds the cross-reference messages about one
// object (crossref.Index.CheckLimit); one more message per code, at its
// level, counts the rest of that code. Istio's analyzers report one per
// reference, and a VirtualService may repeat one gateway reference or
// destination tens of thousands of times: worded one by one (each IST0132
// lists up to 20 hosts), a 3 MiB stored object made GBs, in the audit's
// every run on the leader.
const MaxCrossReferenceMessages = 1000

// Analyze runs every cross-resource check on every object of in and returns
// the messages in istioctl's order (Sort).
func Analyze(in Input) []Message {
	ix := crossref.NewIndex(in.Domain)
	for _, s := range indexedServices(in.Services, in.KubeServices) {
		ix.SetKubeService(s, true)
	}
	for ns, labels := range in.Namespaces {
		ix.SetNamespace(ns, labels, true)
	}
	for _, o := range in.Objects {
		ix.Set(o.Kind, crossref.Key{Namespace: o.Namespace, Name: o.Name}, o.Spec)
	}
	ix.SetReady()
	in.selections = nil // in is Analyze's copy: the memo is this run's
	out := slices.Clone(in.Invalid)
	// IST0110, IST0111: Sidecars compared per namespace (sidecar.go);
	// IST0102, IST0123: the Namespaces' injection labels (injection.go);
	// IST0127, IST0101: AuthorizationPolicy selectors and namespaces (authz.go);
	// IST0134: ServiceEntry addresses (serviceentry.go); IST0157, IST0159,
	// IST0160, IST0101: Telemetries (telemetry.go); IST0118, IST0150: Service
	// port names (service.go); IST0177: ServiceEntry protocols per host and
	// port (serviceentryconflicts.go);
	// IST0002: deprecated VirtualService and Sidecar spec fields (deprecation.go);
	// IST0107, IST0108, IST0125, IST0135: the Kubernetes objects' Istio
	// annotations (annotations.go);
	// IST0103 (injection.go); IST0116, IST0137: Deployments' Services (deployment.go);
	// IST0149: JWT claim routes on gateways without RequestAuthentication (jwtclaimroute.go);
	// IST0167: Sidecars selecting ambient workloads or namespaces (ineffective.go);
	// IST0158: pods' proxy images against the injector ConfigMaps (injectorimage.go);
	// IST0144: pods and Deployments running as the proxy's UID 1337 (podsecurity.go);
	// IST0139: overlapping Istio injection webhooks, missing injector Services (webhooks.go).
	// IST0146, IST0147: `image: auto` workloads no Istio webhook injects (imageauto.go).
	// IST0165: VirtualServices naming Gateways generated for Gateway API listeners (internalgateway.go).
	// IST0138: Gateways sharing a server certificate (gatewaycerts.go).
	// IST0101: Gateway credentialNames naming no Secret of the pods' namespace (gatewaysecret.go).
	out = append(out, sidecarSelectors(&in)...)
	out = append(out, namespaceInjection(&in)...)
	out = append(out, authorizationPolicies(&in)...)
	out = append(out, serviceEntryAddresses(&in)...)
	out = append(out, telemetries(&in)...)
	out = append(out, servicePortNames(&in)...)
	out = append(out, serviceEntryProtocolConflicts(&in)...)
	out = append(out, deprecatedFields(&in)...)
	out = append(out, annotationChecks(&in)...)
	out = append(out, deploymentServices(&in)...)
	out = append(out, jwtClaimRoutes(&in)...)
	out = append(out, ineffectivePolicies(&in)...)
	out = append(out, proxyImageMismatches(&in)...)
	out = append(out, applicationUIDs(&in)...)
	out = append(out, invalidWebhooks(&in)...)
	out = append(out, imageAutoWithoutInjection(&in)...)
	out = append(out, referencedInternalGateways(&in)...)
	out = append(out, duplicateGatewayCertificates(&in)...)
	out = append(out, gatewaySecrets(&in)...)
	var gp *gatewayPorts // built for the first Gateway
	for _, o := range in.Objects {
		switch spec := o.Spec.(type) {
		case *networking.DestinationRule:
			out = append(out, noServerCertVerification(o, spec)...)
		case *networking.Gateway:
			if gp == nil {
				gp = newGatewayPorts(&in)
			}
			out = append(out, gatewayWorkloadPorts(&in, gp, o, spec)...)
		}
		fs, more := ix.CheckLimit(o.Kind, crossref.Key{Namespace: o.Namespace, Name: o.Name}, o.Spec, MaxCrossReferenceMessages)
		for _, f := range fs {
			t := crossRefType(f.Code)
			out = append(out, Message{Code: t.Code, Name: t.Name, Level: t.Level, Kind: o.Kind,
				Namespace: o.Namespace, Object: o.Name, Origin: o.Origin, Field: f.Field, Message: analyzerText(f.Code, f.Args, f.Message)})
		}
		// One message per code counted, at its level: an Error past the
		// bound still fails the run, and -S of one code leaves the others.
		for _, code := range slices.Sorted(maps.Keys(more)) {
			t := crossRefType(code)
			out = append(out, Message{Code: t.Code, Name: t.Name, Level: t.Level, Kind: o.Kind,
				Namespace: o.Namespace, Object: o.Name, Origin: o.Origin,
				Message: fmt.Sprintf("and %d more %s messages about this object, not listed (at most %d cross-reference messages per object)", more[code], code, MaxCrossReferenceMessages)})
		}
	}
	out = append(out, envoyFilterPatches(in.Objects)...) // across EnvoyFilters: analysis/envoyfilter.go
	// galley.istio.io/analyze-suppress, over every message: analysis/suppress.go
	out = suppressAnnotated(&in, out)
	Sort(out)
	return out
}

// crossRefType is the message type of a crossref finding's code: Istio's,
// or for a check without an Istio analyzer meshguard's own warning.
func crossRefType(code string) MessageType {
	if t, ok := Types[code]; ok {
		return t
	}
	return MessageType{Code: code, Name: "MeshguardCrossReference", Level: Warning}
}

// indexedServices are the Services references may name, with the ports and
// exportTo annotation of the KubeService of the same name when there is one
// (else known by name only: their ports are not checked).
func indexedServices(names []crossref.Key, specs []KubeService) []crossref.Service {
	byKey := make(map[crossref.Key]KubeService, len(specs))
	for _, ks := range specs {
		byKey[crossref.Key{Namespace: ks.Namespace, Name: ks.Name}] = ks
	}
	out := make([]crossref.Service, len(names))
	for i, k := range names {
		out[i] = crossref.Service{Key: k}
		if ks, ok := byKey[k]; ok {
			out[i].PortsKnown, out[i].ExportTo = true, ks.ExportTo
			for _, p := range ks.Ports {
				out[i].Ports = append(out[i].Ports, uint32(p.Port))
			}
		}
	}
	return out
}

// Sort orders messages as istioctl analyze does (Compare). `meshguard
// analyze` prints them in this order and the audit lists its violations in
// it (audit.Check), so both report alike.
func Sort(msgs []Message) {
	slices.SortStableFunc(msgs, Compare)
}

// Compare is istioctl analyze's order of messages (Istio's
// pkg/config/analysis/diag/messages.go Messages.Sort): by level (highest
// first), code, object as Origin.Comparator names it ("Kind/name/namespace":
// the name before the namespace), then the printed line (String); the field
// orders messages of equal lines, which Istio's dedup would have dropped.
// Equal messages compare 0: the audit deduplicates with it.
func Compare(a, b Message) int {
	if a.Level != b.Level {
		return cmp.Compare(b.Level, a.Level)
	}
	return cmp.Or(strings.Compare(a.Code, b.Code),
		strings.Compare(a.Kind+"/"+a.Object+"/"+a.Namespace, b.Kind+"/"+b.Object+"/"+b.Namespace),
		strings.Compare(a.String(), b.String()),
		strings.Compare(a.Field, b.Field))
}

// OrgRule is the code of an organisation rule's message: Istio has no
// analyzer for them, so meshguard uses its own prefix.
const OrgRule = "MG0001"

// OrgRuleMessages turns an organisation-rule verdict on o into messages:
// deny is Error, warn is Warning, and an evaluation error is an Error (fail closed).
func OrgRuleMessages(o Object, v orgrules.Verdict, err error) []Message {
	msg := func(l Level, text string) Message {
		return Message{Code: OrgRule, Name: "OrganisationRule", Level: l, Kind: o.Kind, Namespace: o.Namespace,
			Object: o.Name, Origin: o.Origin, Message: text}
	}
	if err != nil {
		m := msg(Error, err.Error())
		m.RuleError = true
		return []Message{m}
	}
	var out []Message
	for _, m := range v.Deny {
		out = append(out, msg(Error, m))
	}
	for _, m := range v.Warn {
		out = append(out, msg(Warning, m))
	}
	return out
}

// Exceeds reports whether any message is at or above threshold.
func Exceeds(msgs []Message, threshold Level) bool {
	return slices.ContainsFunc(msgs, func(m Message) bool { return m.Level >= threshold })
}
