package injector

// Annotation and label keys read or written by injection (Istio's pkg/kube/inject and
// injection-template.yaml).
const (
	AnnotationInject            = "sidecar.istio.io/inject" // also a label, which wins
	AnnotationStatus            = "sidecar.istio.io/status"
	AnnotationInterceptionMode  = "sidecar.istio.io/interceptionMode"
	AnnotationProxyImage        = "sidecar.istio.io/proxyImage"
	AnnotationProxyImageType    = "sidecar.istio.io/proxyImageType"
	AnnotationProxyCPU          = "sidecar.istio.io/proxyCPU"
	AnnotationProxyMemory       = "sidecar.istio.io/proxyMemory"
	AnnotationProxyCPULimit     = "sidecar.istio.io/proxyCPULimit"
	AnnotationProxyMemoryLimit  = "sidecar.istio.io/proxyMemoryLimit"
	AnnotationLogLevel          = "sidecar.istio.io/logLevel"
	AnnotationComponentLog      = "sidecar.istio.io/componentLogLevel"
	AnnotationAgentLogLevel     = "sidecar.istio.io/agentLogLevel"
	AnnotationNativeSidecar     = "sidecar.istio.io/nativeSidecar"
	AnnotationRewriteProbes     = "sidecar.istio.io/rewriteAppHTTPProbers"
	AnnotationBootstrapOverride = "sidecar.istio.io/bootstrapOverride"
	AnnotationCapNetBind        = "sidecar.istio.io/capNetBindService"
	AnnotationUserVolume        = "sidecar.istio.io/userVolume"
	AnnotationUserVolumeMount   = "sidecar.istio.io/userVolumeMount"
	AnnotationStatusPort        = "status.sidecar.istio.io/port"
	AnnotationReadinessDelay    = "readiness.status.sidecar.istio.io/initialDelaySeconds"
	AnnotationReadinessPeriod   = "readiness.status.sidecar.istio.io/periodSeconds"
	AnnotationReadinessFailure  = "readiness.status.sidecar.istio.io/failureThreshold"
	// AnnotationReadinessAppPorts is Istio's (deprecated) list of application
	// ports; AnnotationTrafficAppPorts is the spelling users also write. Both
	// are validated as port lists so "-1" is denied rather than carried along.
	AnnotationReadinessAppPorts    = "readiness.status.sidecar.istio.io/applicationPorts"
	AnnotationTrafficAppPorts      = "traffic.sidecar.istio.io/applicationPorts"
	AnnotationIncludeOutboundIPs   = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	AnnotationExcludeOutboundIPs   = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	AnnotationIncludeInboundPorts  = "traffic.sidecar.istio.io/includeInboundPorts"
	AnnotationExcludeInboundPorts  = "traffic.sidecar.istio.io/excludeInboundPorts"
	AnnotationIncludeOutboundPorts = "traffic.sidecar.istio.io/includeOutboundPorts"
	AnnotationExcludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
	AnnotationKubevirtInterfaces   = "traffic.sidecar.istio.io/kubevirtInterfaces"
	AnnotationExcludeInterfaces    = "traffic.sidecar.istio.io/excludeInterfaces"
	AnnotationRerouteVirtual       = "istio.io/reroute-virtual-interfaces"
	AnnotationProxyConfig          = "proxy.istio.io/config"
	AnnotationMergeMetrics         = "prometheus.istio.io/merge-metrics"
	AnnotationRev                  = "istio.io/rev"
	AnnotationDefaultContainer     = "kubectl.kubernetes.io/default-container"
	AnnotationDefaultLogsContainer = "kubectl.kubernetes.io/default-logs-container"
	AnnotationPromScrape           = "prometheus.io/scrape"
	AnnotationPromPort             = "prometheus.io/port"
	AnnotationPromPath             = "prometheus.io/path"
	AnnotationPromScrapeTargets    = "prometheus.istio.io/scrape-targets"
	AnnotationInjectTemplates      = "inject.istio.io/templates"

	LabelTLSMode           = "security.istio.io/tlsMode"
	LabelCanonicalName     = "service.istio.io/canonical-name"
	LabelCanonicalRevision = "service.istio.io/canonical-revision"
	LabelWorkloadName      = "service.istio.io/workload-name"
	LabelNetwork           = "topology.istio.io/network"

	ProxyContainerName      = "istio-proxy"
	InitContainerName       = "istio-init"
	ValidationContainerName = "istio-validation"
)
