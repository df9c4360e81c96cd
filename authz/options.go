package authz

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/validation"
)

// Options configure the ext_authz service.
type Options struct {
	Addr string // gRPC listen address, default ":9000"
	// HTTPAddr serves Envoy's HTTP ext_authz protocol (Istio's
	// envoyExtAuthzHttp provider) when set; off by default.
	HTTPAddr       string
	HTTPPathPrefix string // the provider's pathPrefix, stripped before evaluation
	PolicyDir      string // offline mode: policies, Pods and *.rego from this directory (watched)
	RegoDir        string // in-cluster mode: extra user Rego modules (e.g. a mounted ConfigMap)
	RootNamespace  string // mesh root namespace, default istio-system
	FailOpen       bool   // a user modules' evaluation error: the policies without them decide instead of 503

	// Revision is the istio.io/rev this instance serves ("" = default): a
	// policy labelled for another revision is not enforced, as istiod of
	// this revision does not read it (policy.InRevision). serve's
	// --revision; AddRevisionFlag for the commands without it.
	Revision string

	TrustDomain        string
	TrustDomainAliases []string
	PathNormalization  string
	NumTrustedProxies  int
	// GatewayProxyProtocol: the mesh config's defaultConfig.gatewayTopology
	// sets proxyProtocol (policy.Mesh.GatewayProxyProtocol). Not a flag.
	GatewayProxyProtocol bool
	// JWTMetadata says whether Envoy forwards jwt_authn's dynamic metadata
	// to ext_authz: "absent" (default, "" in code: a gRPC CheckRequest
	// without it has an unknown JWT) or "forwarded" (without it, no token);
	// policy.Mesh.JWTMetadataForwarded.
	JWTMetadata string

	DecisionLog       string // full, sampled, off
	DecisionLogSample int    // with sampled: log 1 of N decisions (denials always)

	MaxRecvMsgSize int
	// MaxRequestMemory bounds the gRPC request messages being read at once,
	// server-wide: each call reserves MaxRecvMsgSize of it before its
	// message is read, waiting while it is taken (callBudget). Zero is the
	// default.
	MaxRequestMemory int64
	// HTTPMaxHeaderBytes bounds an HTTP ext_authz request's headers (which
	// carry the original request's). Zero is the default.
	HTTPMaxHeaderBytes int
	// MaxConnections caps the client connections open at once on the gRPC
	// port and, separately, on the HTTP port: at the cap, new clients wait
	// in the kernel's accept queue until one closes. Zero is the default.
	MaxConnections   int
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	Reflection       bool
	Debounce         time.Duration // coalesce policy changes before recompiling
	// RebuildPriority is "low" (default: a rebuild beside a serving
	// snapshot runs at nice 19, internal/background) or "normal".
	RebuildPriority string

	// DiscoverySelectors: meshConfig.discoverySelectors, as parsed once
	// where the mesh config is validated (WithMeshConfig). From the API
	// server, the policies of namespaces they leave out are dropped, as
	// istiod drops them; a --policy-dir has no Namespaces and ignores them
	// (docs/operations.md). Not a flag.
	DiscoverySelectors meshconfig.DiscoverySelectors
	// onDiscovery, when set, is given the discovery selectors of every mesh
	// config accepted after start-up and reports whether they changed
	// (Setup: kubeSource.SetDiscoverySelectors).
	onDiscovery func(meshconfig.DiscoverySelectors) bool

	// MeshConfigPath, when set, is the mesh config file whose settings
	// (WithMeshConfig) are reloaded on change and recompiled into the policy
	// snapshot; MeshFlagSet reports the flags that override it. Not flags.
	MeshConfigPath string
	MeshFlagSet    func(name string) bool
	// MeshConfigs, when set instead of MeshConfigPath, delivers every mesh
	// config the injector accepts (serve: from --mesh-config or Istio's
	// ConfigMap istio), applied as a reloaded file would be: ext_authz
	// follows the mesh config injection uses. Not a flag.
	MeshConfigs <-chan *meshv1alpha1.MeshConfig
	// OnMeshConfig, when set, is given every mesh config read from
	// MeshConfigPath that ext_authz accepts (serve without webhooks: the
	// audit follows the file ext_authz decides with). Not a flag.
	OnMeshConfig func(*meshv1alpha1.MeshConfig)

	// OnReloadError, when set, is called after every rejected policy update
	// (serve records a Kubernetes Event with it). Not a flag.
	OnReloadError func(error)

	// Draining, when set, is closed when the process starts draining (serve's
	// --shutdown-delay): gRPC health turns NOT_SERVING, as /readyz fails,
	// while Checks are still answered. Not a flag.
	Draining <-chan struct{}

	// ShutdownTimeout bounds the graceful stop of the gRPC and HTTP servers
	// once the context ends (serve's --shutdown-timeout); in-flight calls
	// still running then are cut. Default 10 s. Not a flag.
	ShutdownTimeout time.Duration
}

// The values of --authz-jwt-metadata.
const (
	JWTMetadataAbsent    = "absent"
	JWTMetadataForwarded = "forwarded"
)

const jwtMetadataHelp = `whether Envoy forwards jwt_authn's dynamic metadata (the verified JWT) in gRPC CheckRequests: ` +
	`absent: it does not (Istio's CUSTOM provider runs ext_authz before jwt_authn and forwards no metadata), so a CheckRequest ` +
	`without it has an unknown JWT and is denied (403) where the enforced policies of its namespace match on requestPrincipals ` +
	`or request.auth.*; forwarded: Envoy runs ext_authz after jwt_authn with metadata_context_namespaces: ` +
	`[envoy.filters.http.jwt_authn] (an EnvoyFilter; docs/operations.md), so a CheckRequest without it has no token. ` +
	`HTTP ext_authz never carries the JWT, whatever this says`

// DefaultOptions returns the defaults AddFlags registers.
func DefaultOptions() Options {
	return Options{
		Addr: ":9000", RootNamespace: "istio-system", TrustDomain: "cluster.local", PathNormalization: "BASE",
		JWTMetadata: JWTMetadataAbsent, DecisionLog: "sampled", DecisionLogSample: 100, MaxRecvMsgSize: 4 << 20,
		KeepaliveTime: 2 * time.Hour, KeepaliveTimeout: 20 * time.Second, Debounce: 100 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second, RebuildPriority: "low", MaxConnections: DefaultMaxConnections,
		MaxRequestMemory: DefaultMaxRequestMemory, HTTPMaxHeaderBytes: DefaultHTTPMaxHeaderBytes,
	}
}

// AddSemanticsFlags registers the options that change verdicts (the mesh
// settings policy.Mesh carries), shared by the server and `authz check`.
func (o *Options) AddSemanticsFlags(fs *pflag.FlagSet) {
	d := DefaultOptions()
	fs.StringVar(&o.RootNamespace, "root-namespace", d.RootNamespace, "mesh root namespace: its policies apply mesh-wide (MeshConfig rootNamespace)")
	fs.StringVar(&o.TrustDomain, "trust-domain", d.TrustDomain, "mesh trust domain (MeshConfig trustDomain)")
	fs.StringSliceVar(&o.TrustDomainAliases, "trust-domain-aliases", nil, "trust domain aliases (MeshConfig trustDomainAliases)")
	fs.StringVar(&o.PathNormalization, "path-normalization", d.PathNormalization, "NONE, BASE (= DEFAULT), MERGE_SLASHES or DECODE_AND_MERGE_SLASHES (MeshConfig pathNormalization)")
	fs.StringVar(&o.JWTMetadata, "authz-jwt-metadata", d.JWTMetadata, jwtMetadataHelp)
	fs.IntVar(&o.NumTrustedProxies, "num-trusted-proxies", 0, "X-Forwarded-For hops a gateway trusts when deriving remote.ip unless its Pod's proxy.istio.io/config sets gatewayTopology (default: MeshConfig defaultConfig.gatewayTopology.numTrustedProxies); sidecars trust none, as in Istio")
}

// revisionHelp is --revision's help for `authz serve` and `authz check`.
const revisionHelp = "istio.io/rev whose policies are enforced (empty = default revision): a policy labelled istio.io/rev for another revision is skipped, as that revision's istiod alone reads it"

// AddRevisionFlag registers --revision (Revision), for the commands that do
// not have it already (serve's --revision names its webhooks too).
func (o *Options) AddRevisionFlag(fs *pflag.FlagSet) {
	fs.StringVar(&o.Revision, "revision", "", revisionHelp)
}

// AddFlags registers the options; call on a zero Options or DefaultOptions().
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	d := DefaultOptions()
	fs.StringVar(&o.Addr, "authz-addr", d.Addr, "ext_authz gRPC listen address")
	fs.StringVar(&o.HTTPAddr, "authz-http-addr", "", "ext_authz HTTP listen address (Istio envoyExtAuthzHttp provider), e.g. :9001; empty: off")
	fs.StringVar(&o.HTTPPathPrefix, "authz-http-path-prefix", "", "the envoyExtAuthzHttp pathPrefix: stripped from the request path before evaluation")
	fs.StringVar(&o.PolicyDir, "policy-dir", "", "read AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Pod YAML and *.rego from this directory (watched) instead of the API server")
	fs.StringVar(&o.RegoDir, "authz-rego-dir", "", "directory of user Rego modules (package meshguard.user) added to the built-in semantics")
	fs.BoolVar(&o.FailOpen, "fail-open", false, "when user Rego modules fail to evaluate a request, answer it with the ALLOW/DENY policies alone instead of 503 (a DENY still denies; other internal errors stay 503)")
	o.AddSemanticsFlags(fs)
	fs.StringVar(&o.DecisionLog, "decision-log", d.DecisionLog, "decision logging: full, sampled or off")
	fs.IntVar(&o.DecisionLogSample, "decision-log-sample", d.DecisionLogSample, "with --decision-log=sampled, log one in N allowed decisions (denials are always logged)")
	fs.IntVar(&o.MaxRecvMsgSize, "authz-max-recv-msg-size", d.MaxRecvMsgSize, "maximum CheckRequest size in bytes")
	fs.Int64Var(&o.MaxRequestMemory, "authz-max-request-memory", d.MaxRequestMemory, "bytes of CheckRequests the ext_authz gRPC port reads at once, over all connections: each call reserves --authz-max-recv-msg-size of it before its message is read and waits while it is taken (docs/reliability.md)")
	fs.IntVar(&o.HTTPMaxHeaderBytes, "authz-http-max-header-bytes", d.HTTPMaxHeaderBytes, "maximum header bytes of a request on the ext_authz HTTP port (they carry the original request's headers, at most Envoy's max_request_headers_kb, 60 KiB by default); larger is answered 431")
	fs.IntVar(&o.MaxConnections, "authz-max-connections", d.MaxConnections, "client connections open at once on the ext_authz gRPC port, and as many on the HTTP port; further clients wait until one closes (docs/reliability.md)")
	fs.DurationVar(&o.KeepaliveTime, "authz-keepalive-time", d.KeepaliveTime, "gRPC server keepalive ping interval")
	fs.DurationVar(&o.KeepaliveTimeout, "authz-keepalive-timeout", d.KeepaliveTimeout, "gRPC server keepalive ping timeout")
	fs.BoolVar(&o.Reflection, "authz-reflection", d.Reflection, "register gRPC server reflection (off by default, as OPA-Envoy's enable-reflection: it lists the port's services to any client)")
	fs.DurationVar(&o.Debounce, "authz-reload-debounce", d.Debounce, "coalesce policy changes for this long before recompiling")
	fs.StringVar(&o.RebuildPriority, "authz-rebuild-priority", d.RebuildPriority, "low: rebuild policy snapshots beside a serving one at nice 19, so requests keep the CPU; normal: at the process's priority (where other work at normal priority shares the CPU and could delay a low-priority rebuild)")
}

func (o *Options) withDefaults() Options {
	d := DefaultOptions()
	x := *o
	if x.Addr == "" {
		x.Addr = d.Addr
	}
	if x.RootNamespace == "" {
		x.RootNamespace = d.RootNamespace
	}
	if x.DecisionLog == "" {
		x.DecisionLog = d.DecisionLog
	}
	if x.DecisionLogSample <= 0 {
		x.DecisionLogSample = d.DecisionLogSample
	}
	if x.MaxRecvMsgSize <= 0 {
		x.MaxRecvMsgSize = d.MaxRecvMsgSize
	}
	if x.MaxRequestMemory <= 0 {
		x.MaxRequestMemory = d.MaxRequestMemory
	}
	if x.HTTPMaxHeaderBytes <= 0 {
		x.HTTPMaxHeaderBytes = d.HTTPMaxHeaderBytes
	}
	if x.MaxConnections <= 0 {
		x.MaxConnections = d.MaxConnections
	}
	if x.KeepaliveTime <= 0 {
		x.KeepaliveTime = d.KeepaliveTime
	}
	if x.KeepaliveTimeout <= 0 {
		x.KeepaliveTimeout = d.KeepaliveTimeout
	}
	if x.Debounce <= 0 {
		x.Debounce = d.Debounce
	}
	if x.ShutdownTimeout <= 0 {
		x.ShutdownTimeout = d.ShutdownTimeout
	}
	if x.RebuildPriority == "" {
		x.RebuildPriority = d.RebuildPriority
	}
	return x
}

// Validate reports bad flag values naming the flag.
func (o *Options) Validate() error {
	switch o.DecisionLog {
	case "", "full", "sampled", "off":
	default:
		return fmt.Errorf("--decision-log %q: want full, sampled or off", o.DecisionLog)
	}
	if _, err := policy.ParsePathNormalization(o.PathNormalization); err != nil {
		return fmt.Errorf("--path-normalization %w", err)
	}
	switch o.JWTMetadata {
	case "", JWTMetadataAbsent, JWTMetadataForwarded:
	default:
		return fmt.Errorf("--authz-jwt-metadata %q: want %s or %s", o.JWTMetadata, JWTMetadataAbsent, JWTMetadataForwarded)
	}
	switch o.RebuildPriority {
	case "", "low", "normal":
	default:
		return fmt.Errorf("--authz-rebuild-priority %q: want low or normal", o.RebuildPriority)
	}
	if o.HTTPPathPrefix != "" && (!strings.HasPrefix(o.HTTPPathPrefix, "/") || strings.ContainsAny(o.HTTPPathPrefix, "?#")) {
		return fmt.Errorf("--authz-http-path-prefix %q: must begin with / and contain no ? or #", o.HTTPPathPrefix)
	}
	// The mesh config's rule (Istio's ValidateTrustDomain): an empty alias
	// would make principals of an empty trust domain match, a malformed one
	// match nothing. An unset --trust-domain (Options built in code) is the
	// mesh's default.
	if o.TrustDomain != "" {
		if err := validation.TrustDomain(o.TrustDomain); err != nil {
			return fmt.Errorf("--trust-domain %q: %w", o.TrustDomain, err)
		}
	}
	for _, a := range o.TrustDomainAliases {
		if err := validation.TrustDomain(a); err != nil {
			return fmt.Errorf("--trust-domain-aliases %q: %w", a, err)
		}
	}
	// A revision is a label value (istio.io/rev=<revision>): another
	// could never match, so only unlabelled policies would be enforced.
	if errs := k8svalidation.IsValidLabelValue(o.Revision); len(errs) > 0 {
		return fmt.Errorf("--revision %q: not a label value: %s", o.Revision, strings.Join(errs, "; "))
	}
	if o.NumTrustedProxies < 0 {
		return fmt.Errorf("--num-trusted-proxies %d: must be >= 0", o.NumTrustedProxies)
	}
	// Zero takes the default (withDefaults); a negative value is a mistake,
	// not a request for the default.
	for _, n := range []struct {
		flag string
		v    int64
	}{{"--decision-log-sample", int64(o.DecisionLogSample)}, {"--authz-max-recv-msg-size", int64(o.MaxRecvMsgSize)},
		{"--authz-max-connections", int64(o.MaxConnections)}, {"--authz-max-request-memory", o.MaxRequestMemory},
		{"--authz-http-max-header-bytes", int64(o.HTTPMaxHeaderBytes)},
		{"--authz-keepalive-time", int64(o.KeepaliveTime)}, {"--authz-keepalive-timeout", int64(o.KeepaliveTimeout)},
		{"--authz-reload-debounce", int64(o.Debounce)}} {
		if n.v < 0 {
			return fmt.Errorf("%s: must not be negative", n.flag)
		}
	}
	// A budget below one message would let no call read its message.
	if w := o.withDefaults(); w.MaxRequestMemory < int64(w.MaxRecvMsgSize) {
		return fmt.Errorf("--authz-max-request-memory %d: below --authz-max-recv-msg-size %d, no CheckRequest could be read", w.MaxRequestMemory, w.MaxRecvMsgSize)
	}
	return nil
}

// Mesh returns the policy semantics settings.
func (o *Options) Mesh() policy.Mesh {
	return policy.Mesh{RootNamespace: o.RootNamespace, TrustDomain: o.TrustDomain, TrustDomainAliases: o.TrustDomainAliases,
		PathNormalization: o.PathNormalization, NumTrustedProxies: o.NumTrustedProxies, GatewayProxyProtocol: o.GatewayProxyProtocol,
		JWTMetadataForwarded: o.JWTMetadata == JWTMetadataForwarded}
}
