package validation

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	udpaannotations "github.com/cncf/xds/go/udpa/annotations"
	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	// Envoy extension protos that EnvoyFilter patches commonly reference
	// through typed_config "@type" (filters, transport sockets, access
	// loggers, compressors): registered so patch values can be decoded and
	// checked (Istio's envoyfilter.ValidateEnvoyFilter does the same). Types outside this set get a warning, not an error.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/dynamic_modules/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/fluentd/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stats/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/decompressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/decompressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/decompressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/a2a/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/adaptive_concurrency/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/admission_control/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ai_protocol_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/alternate_protocols_cache/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/api_key_auth/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/aws_eventstream_parser/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/aws_lambda/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/aws_request_signing/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/bandwidth_limit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/bandwidth_share/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/body_size_limit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cache/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cache_v2/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cdn_loop/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/connect_grpc_bridge/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/credential_injector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/csrf/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/custom_response/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/decompressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_modules/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/file_server/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/file_system_buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/filter_chain/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/gcp_authn/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/geoip/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_field_extraction/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_http1_bridge/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_http1_reverse_bridge/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_json_reverse_transcoder/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_json_transcoder/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_stats/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_web/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/gzip/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_to_metadata/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ip_tagging/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/json_to_metadata/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/kill_request/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/mcp/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/mcp_json_rest_bridge/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/mcp_router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/on_demand/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/original_src/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/proto_api_scrubber/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/proto_message_extraction/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rate_limit_quota/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_metadata/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/sse_to_metadata/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/stateful_session/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/tap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/thrift_to_metadata/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/transform/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/dynamic_modules/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_src/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/set_filter_state/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/direct_response/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/dubbo_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/dynamic_modules/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/echo/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/generic_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/geoip/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/mongo_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/redis_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/reverse_tunnel/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/set_filter_state/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_bandwidth_limit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/thrift_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/zookeeper_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dynamic_modules/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/udp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
)

// efWarning is Istio's standing warning for every EnvoyFilter.
const efWarning = "EnvoyFilter exposes internal implementation details that may change at any time. " +
	"Prefer other APIs if possible, and exercise extreme caution, especially around upgrades."

// efHCM is the network filter that hosts HTTP filters.
const efHCM = "envoy.filters.network.http_connection_manager"

// efDeprecatedNames maps legacy filter names to their canonical names: the
// reverse of Istio's xds.DeprecatedFilterNames (pkg/config/xds), whose
// canonical names are go-control-plane's wellknown constants.
var efDeprecatedNames = map[string]string{
	"envoy.buffer":                  "envoy.filters.http.buffer",
	"envoy.cors":                    "envoy.filters.http.cors",
	"envoy.csrf":                    "envoy.filters.http.csrf",
	"envoy.http_dynamo_filter":      "envoy.filters.http.dynamo",
	"envoy.ext_authz":               "envoy.filters.http.ext_authz (or envoy.filters.network.ext_authz)",
	"envoy.fault":                   "envoy.filters.http.fault",
	"envoy.grpc_http1_bridge":       "envoy.filters.http.grpc_http1_bridge",
	"envoy.grpc_json_transcoder":    "envoy.filters.http.grpc_json_transcoder",
	"envoy.grpc_web":                "envoy.filters.http.grpc_web",
	"envoy.gzip":                    "envoy.filters.http.gzip",
	"envoy.health_check":            "envoy.filters.http.health_check",
	"envoy.ip_tagging":              "envoy.filters.http.ip_tagging",
	"envoy.lua":                     "envoy.filters.http.lua",
	"envoy.rate_limit":              "envoy.filters.http.ratelimit",
	"envoy.router":                  "envoy.filters.http.router",
	"envoy.squash":                  "envoy.filters.http.squash",
	"envoy.listener.http_inspector": "envoy.filters.listener.http_inspector",
	"envoy.listener.original_dst":   "envoy.filters.listener.original_dst",
	"envoy.listener.original_src":   "envoy.filters.listener.original_src",
	"envoy.listener.proxy_protocol": "envoy.filters.listener.proxy_protocol",
	"envoy.listener.tls_inspector":  "envoy.filters.listener.tls_inspector",
	"envoy.client_ssl_auth":         "envoy.filters.network.client_ssl_auth",
	"envoy.http_connection_manager": efHCM,
	"envoy.mongo_proxy":             "envoy.filters.network.mongo_proxy",
	"envoy.ratelimit":               "envoy.filters.network.ratelimit",
	"envoy.redis_proxy":             "envoy.filters.network.redis_proxy",
	"envoy.tcp_proxy":               "envoy.filters.network.tcp_proxy",
}

// efNewValue returns the xDS message a patch value must decode into.
func efNewValue(applyTo networking.EnvoyFilter_ApplyTo) proto.Message {
	switch applyTo {
	case networking.EnvoyFilter_LISTENER:
		return &listener.Listener{}
	case networking.EnvoyFilter_FILTER_CHAIN:
		return &listener.FilterChain{}
	case networking.EnvoyFilter_NETWORK_FILTER:
		return &listener.Filter{}
	case networking.EnvoyFilter_HTTP_FILTER:
		return &hcm.HttpFilter{}
	case networking.EnvoyFilter_ROUTE_CONFIGURATION:
		return &route.RouteConfiguration{}
	case networking.EnvoyFilter_VIRTUAL_HOST:
		return &route.VirtualHost{}
	case networking.EnvoyFilter_HTTP_ROUTE:
		return &route.Route{}
	case networking.EnvoyFilter_CLUSTER:
		return &cluster.Cluster{}
	case networking.EnvoyFilter_EXTENSION_CONFIG:
		return &core.TypedExtensionConfig{}
	case networking.EnvoyFilter_BOOTSTRAP:
		return &bootstrap.Bootstrap{}
	case networking.EnvoyFilter_LISTENER_FILTER:
		return &listener.ListenerFilter{}
	}
	return nil
}

// validateEnvoyFilter implements Istio's
// pkg/config/validation/envoyfilter/envoyfilter.go ValidateEnvoyFilter. Beyond Istio,
// complete objects (every operation but MERGE) also pass Envoy's own proto
// constraints, which Envoy would otherwise enforce by rejecting the config.
// Patches with context WAYPOINT get Istio's waypoint match rules
// (efWaypointMatch) and, beyond Istio, every patch check too. The CEL rules
// tying context WAYPOINT to a waypoint match are the CRD's (checked by the
// CRD layer).
func validateEnvoyFilter(_ metav1.ObjectMeta, ef *networking.EnvoyFilter, f *Findings) {
	sp := field.NewPath("spec")
	f.Warn(sp, nil, efWarning)
	khNetworkingSelector(sp.Child("workloadSelector"), ef.GetWorkloadSelector(), "envoy filter", f)
	for i, cp := range ef.GetConfigPatches() {
		efPatch(sp.Child("configPatches").Index(i), cp, f)
	}
}

func efPatch(p *field.Path, cp *networking.EnvoyFilter_EnvoyConfigObjectPatch, f *Findings) {
	if cp == nil {
		f.Required(p, "Envoy filter: null config patch")
		return
	}
	applyTo := cp.GetApplyTo()
	if cp.GetMatch().GetContext() == networking.EnvoyFilter_WAYPOINT {
		// Istio checks only these for a waypoint patch and skips the rest;
		// meshguard goes on (docs/compatibility.md): istiod's conversion
		// (pilot/pkg/model/envoyfilter.go) only logs a value it cannot build,
		// so the patch would not do what it says.
		efWaypointMatch(p, applyTo, cp.GetMatch().GetWaypoint(), f)
	}
	if applyTo == networking.EnvoyFilter_INVALID {
		f.Required(p.Child("applyTo"), "Envoy filter: missing applyTo")
	}
	patch := cp.GetPatch()
	if patch == nil {
		f.Required(p.Child("patch"), "Envoy filter: missing patch")
	} else {
		if patch.GetOperation() == networking.EnvoyFilter_Patch_INVALID {
			f.Required(p.Child("patch", "operation"), "Envoy filter: missing patch operation")
		}
		if patch.GetOperation() != networking.EnvoyFilter_Patch_REMOVE && patch.GetValue() == nil {
			f.Required(p.Child("patch", "value"), "Envoy filter: missing patch value for non-remove operation")
		}
	}
	efMatch(p.Child("match"), applyTo, cp.GetMatch(), f)
	if applyTo != networking.EnvoyFilter_INVALID && patch != nil && patch.GetValue() != nil &&
		patch.GetOperation() != networking.EnvoyFilter_Patch_REMOVE && patch.GetOperation() != networking.EnvoyFilter_Patch_INVALID {
		efValue(p.Child("patch", "value"), applyTo, patch, f)
	}
}

func efMatch(p *field.Path, applyTo networking.EnvoyFilter_ApplyTo, m *networking.EnvoyFilter_EnvoyConfigObjectMatch, f *Findings) {
	if m == nil {
		return
	}
	if pv := m.GetProxy().GetProxyVersion(); pv != "" {
		pvp := p.Child("proxy", "proxyVersion")
		if _, err := regexp.Compile(pv); err != nil {
			f.Error(pvp, pv, "Envoy filter: invalid regex for proxy version: "+err.Error())
		}
		if len(pv) > 1024 {
			f.Warn(pvp, nil, "Envoy filter: proxyVersion regex is longer than 1024 characters")
		}
	}
	if m.GetContext() == networking.EnvoyFilter_WAYPOINT {
		// The listener/route/cluster match classes do not apply: a waypoint
		// patch matches through match.waypoint (efWaypointMatch).
		return
	}
	switch applyTo {
	case networking.EnvoyFilter_LISTENER, networking.EnvoyFilter_FILTER_CHAIN, networking.EnvoyFilter_NETWORK_FILTER,
		networking.EnvoyFilter_HTTP_FILTER, networking.EnvoyFilter_LISTENER_FILTER:
		if m.GetObjectTypes() != nil && m.GetListener() == nil {
			f.Error(p, nil, "Envoy filter: applyTo for listener class objects cannot have non listener match")
			return
		}
		efListenerMatch(p.Child("listener"), applyTo, m.GetListener(), f)
	case networking.EnvoyFilter_ROUTE_CONFIGURATION, networking.EnvoyFilter_VIRTUAL_HOST, networking.EnvoyFilter_HTTP_ROUTE:
		if m.GetObjectTypes() != nil && m.GetRouteConfiguration() == nil {
			f.Error(p, nil, "Envoy filter: applyTo for http route class objects cannot have non route configuration match")
		}
	case networking.EnvoyFilter_CLUSTER:
		if m.GetObjectTypes() != nil && m.GetCluster() == nil {
			f.Error(p, nil, "Envoy filter: applyTo for cluster class objects cannot have non cluster match")
		}
	}
}

// efWaypointMatch is Istio's waypoint rules in validateEnvoyFilter
// (pkg/config/validation/envoyfilter/envoyfilter.go), with its messages: the
// applyTo kinds a waypoint cannot patch, and which of match.waypoint's filter
// and route each kind may use. Like Istio, it reports one problem per patch.
func efWaypointMatch(p *field.Path, applyTo networking.EnvoyFilter_ApplyTo, wm *networking.EnvoyFilter_WaypointMatch, f *Findings) {
	wp := p.Child("match", "waypoint")
	prefix := "Envoy filter: applyTo " + applyTo.String() + " for waypoint "
	switch applyTo {
	case networking.EnvoyFilter_LISTENER, networking.EnvoyFilter_LISTENER_FILTER,
		networking.EnvoyFilter_EXTENSION_CONFIG, networking.EnvoyFilter_BOOTSTRAP:
		f.Error(p.Child("applyTo"), applyTo.String(), "Envoy filter: applyTo "+applyTo.String()+" is not supported for waypoint")
	case networking.EnvoyFilter_HTTP_ROUTE, networking.EnvoyFilter_VIRTUAL_HOST, networking.EnvoyFilter_ROUTE_CONFIGURATION:
		if wm.GetFilter() != nil {
			f.Error(wp.Child("filter"), nil, prefix+"cannot have filter match")
		}
	case networking.EnvoyFilter_CLUSTER:
		switch {
		case wm.GetFilter() != nil:
			f.Error(wp.Child("filter"), nil, prefix+"cannot have filter match")
		case wm.GetRoute() != nil:
			f.Error(wp.Child("route"), nil, prefix+"cannot have route match")
		}
	case networking.EnvoyFilter_FILTER_CHAIN, networking.EnvoyFilter_NETWORK_FILTER:
		if wm.GetRoute() != nil {
			f.Error(wp.Child("route"), nil, prefix+"cannot have route match")
		}
	case networking.EnvoyFilter_HTTP_FILTER:
		fm := wm.GetFilter()
		switch {
		case fm == nil:
			f.Required(wp.Child("filter"), prefix+"must have filter match")
		case fm.GetName() != efHCM:
			// Exactly the canonical name: unlike a listener match, Istio does
			// not take the deprecated envoy.http_connection_manager here.
			f.Error(wp.Child("filter", "name"), fm.GetName(), prefix+"requires name with "+efHCM)
		case fm.GetSubFilter().GetName() == "":
			f.Required(wp.Child("filter", "subFilter", "name"), prefix+"must have subfilter name to match on")
		}
	}
}

func efListenerMatch(p *field.Path, applyTo networking.EnvoyFilter_ApplyTo, lm *networking.EnvoyFilter_ListenerMatch, f *Findings) {
	if lm == nil {
		return
	}
	if n := lm.GetListenerFilter(); n != "" {
		efDeprecatedName(p.Child("listenerFilter"), n, f)
	}
	filter := lm.GetFilterChain().GetFilter()
	if filter == nil {
		return
	}
	fp := p.Child("filterChain", "filter")
	if applyTo == networking.EnvoyFilter_LISTENER || applyTo == networking.EnvoyFilter_FILTER_CHAIN {
		f.Warn(fp, nil, "Envoy filter: filter match has no effect when used with "+applyTo.String())
	}
	if filter.GetName() == "" {
		f.Required(fp.Child("name"), "Envoy filter: filter match has no name to match on")
	} else {
		efDeprecatedName(fp.Child("name"), filter.GetName(), f)
	}
	if sub := filter.GetSubFilter(); sub != nil {
		sfp := fp.Child("subFilter")
		if applyTo != networking.EnvoyFilter_HTTP_FILTER {
			f.Error(sfp, nil, "Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only")
		}
		if filter.GetName() != efHCM && filter.GetName() != "envoy.http_connection_manager" {
			f.Error(sfp, nil, "Envoy filter: subfilter match requires filter match with "+efHCM)
		}
		if sub.GetName() != "" {
			efDeprecatedName(sfp.Child("name"), sub.GetName(), f)
		} else {
			f.Required(sfp.Child("name"), "Envoy filter: subfilter match has no name to match on")
		}
	}
}

func efDeprecatedName(p *field.Path, name string, f *Findings) {
	if repl, ok := efDeprecatedNames[name]; ok {
		f.Warn(p, name, fmt.Sprintf("Envoy filter: using deprecated filter name %q; use %q instead", name, repl))
	}
}

// efValue decodes the patch value into the xDS type for applyTo, strictly
// (unknown fields are errors), resolving typed_config types.
func efValue(p *field.Path, applyTo networking.EnvoyFilter_ApplyTo, patch *networking.EnvoyFilter_Patch, f *Findings) {
	msg := efNewValue(applyTo)
	if msg == nil {
		return
	}
	raw, err := protojson.Marshal(patch.GetValue())
	if err != nil {
		f.Error(p, nil, "Envoy filter: cannot encode patch value: "+err.Error())
		return
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		f.Error(p, nil, "Envoy filter: cannot encode patch value: "+err.Error())
		return
	}
	tree = efResolveTypes(p, tree, f)
	tree = efGoDurations(msg.ProtoReflect().Descriptor(), tree)
	raw, _ = json.Marshal(tree)
	// Istio decodes leniently and only warns about fields its Envoy API does not know
	// (they may belong to a newer Envoy): envoyfilter.go strict BuildXDSObjectFromStruct.
	// A strict decode that succeeds (the usual case) is the only one.
	if strictErr := protojson.Unmarshal(raw, msg); strictErr != nil {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, msg); err != nil {
			f.Error(p, nil, fmt.Sprintf("Envoy filter: patch value is not a valid %s: %v", msg.ProtoReflect().Descriptor().FullName(), err))
			return
		}
		f.Warn(p, nil, fmt.Sprintf("Envoy filter: patch value has fields unknown to meshguard's %s (not validated): %v", msg.ProtoReflect().Descriptor().FullName(), strictErr))
	}
	efDeprecations(p, msg.ProtoReflect(), map[string]bool{}, f)
	op := patch.GetOperation()
	// MERGE-style values are partial objects merged into generated config,
	// so only complete objects can be held to Envoy's constraints.
	partial := op == networking.EnvoyFilter_Patch_MERGE || op == networking.EnvoyFilter_Patch_MERGE_AND_REPLACE_LIST
	if !partial {
		efEnvoyConstraints(p, msg, f)
	}
	if missing := efMissingTypedConfig(msg.ProtoReflect()); len(missing) > 0 {
		f.Warn(p, nil, "Envoy filter: using deprecated types by name without typed_config; "+strings.Join(missing, ", "))
	}
	if applyTo == networking.EnvoyFilter_NETWORK_FILTER || applyTo == networking.EnvoyFilter_HTTP_FILTER ||
		applyTo == networking.EnvoyFilter_LISTENER_FILTER {
		if obj, ok := tree.(map[string]any); ok {
			if n, _ := obj["name"].(string); n != "" {
				efDeprecatedName(p.Child("name"), n, f)
			}
		}
	}
}

// efGoDurations rewrites Go-style duration strings ("500ms", "1m") wherever a
// google.protobuf.Duration is read in a patch value, typed_config contents
// included, to the seconds form protojson requires ("0.5s"). Istio decodes
// patch values with golang/protobuf jsonpb (envoyfilter.go validateEnvoyFilter
// via xds.BuildXDSObjectFromStruct and pkg/util/protomarshal Unmarshal, kept
// on jsonpb for golang/protobuf#1374), which reads a Duration with
// time.ParseDuration, and sends Envoy the decoded proto: such a value works.
// Strings time.ParseDuration rejects are left for the decoder to report.
// Well-known types other than Any and Duration (a Struct's keys are not
// fields) are not descended into.
func efGoDurations(md protoreflect.MessageDescriptor, v any) any {
	if md.FullName() == durationFullName {
		if s, ok := v.(string); ok {
			return secondsForm(s)
		}
		return v
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if md.FullName() == "google.protobuf.Any" {
		url, _ := obj["@type"].(string)
		mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
		if err != nil {
			return v
		}
		inner := mt.Descriptor()
		if inner.ParentFile().Package() == "google.protobuf" {
			// A well-known type in an Any carries its JSON form in "value".
			if val, ok := obj["value"]; ok {
				obj["value"] = efGoDurations(inner, val)
			}
			return v
		}
		md = inner
	} else if md.ParentFile().Package() == "google.protobuf" {
		return v
	}
	fields := md.Fields()
	for k, val := range obj {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k))
		}
		if fd == nil {
			continue
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				continue
			}
			if m, ok := val.(map[string]any); ok {
				for mk, mv := range m {
					m[mk] = efGoDurations(fd.MapValue().Message(), mv)
				}
			}
		case fd.Kind() != protoreflect.MessageKind:
		case fd.IsList():
			if l, ok := val.([]any); ok {
				for i := range l {
					l[i] = efGoDurations(fd.Message(), l[i])
				}
			}
		default:
			obj[k] = efGoDurations(fd.Message(), val)
		}
	}
	return v
}

// efMissingTypedConfig is Istio's recurseMissingTypedConfig (envoyfilter.go):
// the names of the messages, at any depth of the decoded value, that have a
// typed_config field and set neither it nor config_discovery, whatever the
// patch operation (Envoy is removing the lookup of extensions by name).
func efMissingTypedConfig(m protoreflect.Message) []string {
	var missing []string
	fields := m.Descriptor().Fields()
	name, requires, has := "", false, false
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		set := m.Has(fd)
		switch fd.JSONName() {
		case "name":
			name = fmt.Sprint(m.Get(fd).Interface())
		case "typedConfig":
			requires = true
			has = has || set
		case "configDiscovery":
			has = has || set
		}
		if set && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			missing = append(missing, efMissingTypedConfig(m.Get(fd).Message())...)
		}
	}
	if requires && !has {
		missing = append(missing, name)
	}
	return missing
}

// efResolveTypes walks a JSON tree and checks each "@type". Unknown types in
// a package meshguard knows, and Envoy v2 types, are errors (Istio: "referenced
// type unknown"); types from packages meshguard does not link are replaced by
// a Struct so the rest of the value can still be checked, with a warning.
func efResolveTypes(p *field.Path, v any, f *Findings) any {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			t[k] = efResolveTypes(p, c, f)
		}
		url, ok := t["@type"].(string)
		if !ok {
			return t
		}
		if _, err := protoregistry.GlobalTypes.FindMessageByURL(url); err == nil {
			return t
		}
		name := url[strings.LastIndex(url, "/")+1:]
		pkg := name
		if i := strings.LastIndex(name, "."); i >= 0 {
			pkg = name[:i]
		}
		if strings.HasPrefix(name, "envoy.") && (strings.Contains(name, ".v2.") || strings.Contains(name, ".v2alpha.") ||
			strings.HasPrefix(name, "envoy.config.filter.")) || protoregistry.GlobalFiles.NumFilesByPackage(protoreflect.FullName(pkg)) > 0 {
			f.Error(p, url, "Envoy filter: referenced type unknown (hint: try using the v3 XDS API): "+url)
		} else {
			f.Warn(p, url, "Envoy filter: type "+url+" is not known to meshguard; its content is not checked")
		}
		rest := map[string]any{}
		for k, c := range t {
			if k != "@type" {
				rest[k] = c
			}
		}
		return map[string]any{"@type": "type.googleapis.com/google.protobuf.Struct", "value": rest}
	case []any:
		for i, c := range t {
			t[i] = efResolveTypes(p, c, f)
		}
	}
	return v
}

// efEnvoyConstraints runs the protoc-gen-validate rules Envoy enforces on
// the object and on the typed_config of a filter.
func efEnvoyConstraints(p *field.Path, msg proto.Message, f *Findings) {
	type validator interface{ Validate() error }
	if v, ok := msg.(validator); ok {
		if err := v.Validate(); err != nil {
			f.Error(p, nil, "Envoy filter: patch value is rejected by Envoy's constraints: "+err.Error())
			return
		}
	}
	var tc *anypb.Any
	switch m := msg.(type) {
	case *hcm.HttpFilter:
		tc = m.GetTypedConfig()
	case *listener.Filter:
		tc = m.GetTypedConfig()
	case *listener.ListenerFilter:
		tc = m.GetTypedConfig()
	}
	if tc == nil {
		return
	}
	inner, err := tc.UnmarshalNew()
	if err != nil {
		return // reported by efResolveTypes
	}
	if v, ok := inner.(validator); ok {
		if err := v.Validate(); err != nil {
			f.Error(p.Child("typed_config"), nil, "Envoy filter: typed_config is rejected by Envoy's constraints: "+err.Error())
		}
	}
}

// efDeprecations warns about deprecated fields set anywhere in a decoded
// value (typed_config included) and about types from frozen API packages:
// Envoy removes both in later releases.
func efDeprecations(p *field.Path, m protoreflect.Message, seen map[string]bool, f *Findings) {
	desc := m.Descriptor()
	if desc.FullName() == "google.protobuf.Any" {
		if a, ok := m.Interface().(*anypb.Any); ok {
			if inner, err := a.UnmarshalNew(); err == nil {
				efDeprecations(p, inner.ProtoReflect(), seen, f)
			}
		}
		return
	}
	if fo, ok := desc.ParentFile().Options().(*descriptorpb.FileOptions); ok && fo != nil {
		pkg := string(desc.ParentFile().Package())
		st, _ := proto.GetExtension(fo, udpaannotations.E_FileStatus).(*udpaannotations.StatusAnnotation)
		if st.GetPackageVersionStatus() == udpaannotations.PackageVersionStatus_FROZEN && !seen[pkg] {
			seen[pkg] = true
			f.Warn(p, pkg, "Envoy filter: API package "+pkg+" is frozen; use its newer version")
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fo, ok := fd.Options().(*descriptorpb.FieldOptions); ok && fo.GetDeprecated() && !seen[string(fd.FullName())] {
			seen[string(fd.FullName())] = true
			f.Warn(p, string(fd.FullName()), fmt.Sprintf("Envoy filter: field %s is deprecated", fd.FullName()))
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i, l := 0, v.List(); i < l.Len(); i++ {
				efDeprecations(p, l.Get(i).Message(), seen, f)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				efDeprecations(p, mv.Message(), seen, f)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			efDeprecations(p, v.Message(), seen, f)
		}
		return true
	})
}
