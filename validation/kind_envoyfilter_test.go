package validation

import (
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1alpha3"
)

func efStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func efOne(applyTo networking.EnvoyFilter_ApplyTo, match *networking.EnvoyFilter_EnvoyConfigObjectMatch, op networking.EnvoyFilter_Patch_Operation, v *structpb.Struct) *networking.EnvoyFilter {
	return &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{{
		ApplyTo: applyTo, Match: match, Patch: &networking.EnvoyFilter_Patch{Operation: op, Value: v}}}}
}

func efListener(filter, sub string) *networking.EnvoyFilter_EnvoyConfigObjectMatch {
	fm := &networking.EnvoyFilter_ListenerMatch_FilterMatch{Name: filter}
	if sub != "" {
		fm.SubFilter = &networking.EnvoyFilter_ListenerMatch_SubFilterMatch{Name: sub}
	}
	return &networking.EnvoyFilter_EnvoyConfigObjectMatch{ObjectTypes: &networking.EnvoyFilter_EnvoyConfigObjectMatch_Listener{
		Listener: &networking.EnvoyFilter_ListenerMatch{FilterChain: &networking.EnvoyFilter_ListenerMatch_FilterChainMatch{Filter: fm}}}}
}

// efWaypoint is a WAYPOINT context match, with wm as its waypoint match when set.
func efWaypoint(wm *networking.EnvoyFilter_WaypointMatch) *networking.EnvoyFilter_EnvoyConfigObjectMatch {
	m := &networking.EnvoyFilter_EnvoyConfigObjectMatch{Context: networking.EnvoyFilter_WAYPOINT}
	if wm != nil {
		m.ObjectTypes = &networking.EnvoyFilter_EnvoyConfigObjectMatch_Waypoint{Waypoint: wm}
	}
	return m
}

func wpFilter(filter, sub string) *networking.EnvoyFilter_WaypointMatch {
	fm := &networking.EnvoyFilter_WaypointMatch_FilterMatch{Name: filter}
	if sub != "" {
		fm.SubFilter = &networking.EnvoyFilter_WaypointMatch_FilterMatch_SubFilterMatch{Name: sub}
	}
	return &networking.EnvoyFilter_WaypointMatch{Filter: fm}
}

func TestValidateEnvoyFilter(t *testing.T) {
	const always = "EnvoyFilter exposes internal implementation details"
	luaFilter := efStruct(t, map[string]any{"name": "envoy.filters.http.lua", "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", "default_source_code": map[string]any{"inline_string": "function envoy_on_request(h) end"}}})
	hcmMatch := efListener(efHCM, "envoy.filters.http.router")
	cluster := &networking.EnvoyFilter_EnvoyConfigObjectMatch{ObjectTypes: &networking.EnvoyFilter_EnvoyConfigObjectMatch_Cluster{
		Cluster: &networking.EnvoyFilter_ClusterMatch{Service: "a.example.com"}}}
	remove := &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}
	wpHCMRouter := wpFilter(efHCM, "envoy.filters.http.router")
	wpRoute := &networking.EnvoyFilter_WaypointMatch{Route: &networking.EnvoyFilter_WaypointMatch_RouteMatch{Name: "fake-route"}}
	runKindCases(t, validateEnvoyFilter, []kindCase{
		{name: "selector only", spec: &networking.EnvoyFilter{WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "c"}}},
			warns: []string{always}},
		{name: "insert lua before router", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE, luaFilter),
			warns: []string{always}},
		{name: "merge partial cluster", spec: efOne(networking.EnvoyFilter_CLUSTER, cluster, networking.EnvoyFilter_Patch_MERGE,
			efStruct(t, map[string]any{"connect_timeout": "2s"})), warns: []string{always}},
		// Stricter than Istio (docs/compatibility.md): Istio's validateEnvoyFilter checks
		// only its waypoint match rules for context WAYPOINT and skips the patch.
		{name: "waypoint patches checked", spec: efOne(networking.EnvoyFilter_INVALID, efWaypoint(nil),
			networking.EnvoyFilter_Patch_INVALID, nil),
			errs: []string{"spec.configPatches[0].applyTo: Required value: Envoy filter: missing applyTo",
				"spec.configPatches[0].patch.operation: Required value: Envoy filter: missing patch operation", "spec.configPatches[0].patch.value: Required value"},
			warns: []string{always}},
		{name: "waypoint patch value checked", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, efWaypoint(wpHCMRouter), networking.EnvoyFilter_Patch_INSERT_BEFORE,
			efStruct(t, map[string]any{"name": "envoy.filters.http.lua", "typed_config": map[string]any{
				"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", "inline_code": 12.0, "nosuchfield": true}})),
			errs:  []string{"spec.configPatches[0].patch.value: Invalid value: Envoy filter: patch value is not a valid envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"},
			warns: []string{always}},
		{name: "waypoint typed_config constraints", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, efWaypoint(wpHCMRouter), networking.EnvoyFilter_Patch_INSERT_BEFORE,
			efStruct(t, map[string]any{"typed_config": map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}})),
			errs:  []string{"spec.configPatches[0].patch.value: Invalid value: Envoy filter: patch value is rejected by Envoy's constraints: invalid HttpFilter.Name"},
			warns: []string{always}},
		{name: "waypoint valid patches", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efWaypoint(wpHCMRouter), Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_INSERT_BEFORE, Value: luaFilter}},
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Match: efWaypoint(&networking.EnvoyFilter_WaypointMatch{}), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Match: efWaypoint(nil), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_VIRTUAL_HOST, Match: efWaypoint(&networking.EnvoyFilter_WaypointMatch{Route: &networking.EnvoyFilter_WaypointMatch_RouteMatch{Name: "r"}}), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_NETWORK_FILTER, Match: efWaypoint(&networking.EnvoyFilter_WaypointMatch{Filter: &networking.EnvoyFilter_WaypointMatch_FilterMatch{Name: efHCM}}), Patch: remove}}},
			warns: []string{always}},
		// Istio's pkg/config/validation/envoyfilter/envoyfilter.go validateEnvoyFilter
		// waypoint rules and messages (TestValidateEnvoyFilter "waypoint ..." rows).
		{name: "waypoint unsupported applyTo", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_LISTENER, Match: efWaypoint(nil), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_LISTENER_FILTER, Match: efWaypoint(nil), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_EXTENSION_CONFIG, Match: efWaypoint(nil), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_BOOTSTRAP, Match: efWaypoint(nil), Patch: remove}}},
			errs: []string{`spec.configPatches[0].applyTo: Invalid value: "LISTENER": Envoy filter: applyTo LISTENER is not supported for waypoint`,
				`spec.configPatches[1].applyTo: Invalid value: "LISTENER_FILTER": Envoy filter: applyTo LISTENER_FILTER is not supported for waypoint`,
				`spec.configPatches[2].applyTo: Invalid value: "EXTENSION_CONFIG": Envoy filter: applyTo EXTENSION_CONFIG is not supported for waypoint`,
				`spec.configPatches[3].applyTo: Invalid value: "BOOTSTRAP": Envoy filter: applyTo BOOTSTRAP is not supported for waypoint`},
			warns: []string{always}},
		{name: "waypoint unsupported applyTo without patch", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_LISTENER, Match: efWaypoint(&networking.EnvoyFilter_WaypointMatch{})}}},
			errs:  []string{"Envoy filter: applyTo LISTENER is not supported for waypoint", "spec.configPatches[0].patch: Required value: Envoy filter: missing patch"},
			warns: []string{always}},
		{name: "waypoint match rules", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_ROUTE_CONFIGURATION, Match: efWaypoint(wpFilter(efHCM, "")), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Match: efWaypoint(wpFilter(efHCM, "")), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Match: efWaypoint(wpRoute), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_FILTER_CHAIN, Match: efWaypoint(wpRoute), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efWaypoint(&networking.EnvoyFilter_WaypointMatch{}), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efWaypoint(wpFilter("fake-route", "")), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efWaypoint(wpFilter(efHCM, "")), Patch: remove},
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efWaypoint(nil), Patch: remove},
			// Istio checks one thing at a time: a filter match first, then the route.
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Match: efWaypoint(&networking.EnvoyFilter_WaypointMatch{
				Filter: &networking.EnvoyFilter_WaypointMatch_FilterMatch{Name: efHCM}, Route: &networking.EnvoyFilter_WaypointMatch_RouteMatch{Name: "r"}}), Patch: remove}}},
			errs: []string{"spec.configPatches[0].match.waypoint.filter: Invalid value: Envoy filter: applyTo ROUTE_CONFIGURATION for waypoint cannot have filter match",
				"spec.configPatches[1].match.waypoint.filter: Invalid value: Envoy filter: applyTo CLUSTER for waypoint cannot have filter match",
				"spec.configPatches[2].match.waypoint.route: Invalid value: Envoy filter: applyTo CLUSTER for waypoint cannot have route match",
				"spec.configPatches[3].match.waypoint.route: Invalid value: Envoy filter: applyTo FILTER_CHAIN for waypoint cannot have route match",
				"spec.configPatches[4].match.waypoint.filter: Required value: Envoy filter: applyTo HTTP_FILTER for waypoint must have filter match",
				`spec.configPatches[5].match.waypoint.filter.name: Invalid value: "fake-route": Envoy filter: applyTo HTTP_FILTER for waypoint requires name with envoy.filters.network.http_connection_manager`,
				"spec.configPatches[6].match.waypoint.filter.subFilter.name: Required value: Envoy filter: applyTo HTTP_FILTER for waypoint must have subfilter name to match on",
				"spec.configPatches[7].match.waypoint.filter: Required value: Envoy filter: applyTo HTTP_FILTER for waypoint must have filter match",
				"spec.configPatches[8].match.waypoint.filter: Invalid value: Envoy filter: applyTo CLUSTER for waypoint cannot have filter match"},
			warns: []string{always}},
		{name: "waypoint proxyVersion regex", spec: efOne(networking.EnvoyFilter_CLUSTER, &networking.EnvoyFilter_EnvoyConfigObjectMatch{Context: networking.EnvoyFilter_WAYPOINT,
			Proxy: &networking.EnvoyFilter_ProxyMatch{ProxyVersion: "1.(2"}}, networking.EnvoyFilter_Patch_REMOVE, nil),
			errs:  []string{`spec.configPatches[0].match.proxy.proxyVersion: Invalid value: "1.(2": Envoy filter: invalid regex for proxy version`},
			warns: []string{always}},
		{name: "missing pieces", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			nil, {}, {ApplyTo: networking.EnvoyFilter_CLUSTER, Patch: &networking.EnvoyFilter_Patch{}},
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_ADD}}}},
			errs: []string{"spec.configPatches[0]: Required value", "spec.configPatches[1].applyTo: Required value: Envoy filter: missing applyTo",
				"spec.configPatches[1].patch: Required value: Envoy filter: missing patch", "spec.configPatches[2].patch.operation: Required value: Envoy filter: missing patch operation",
				"spec.configPatches[2].patch.value: Required value", "spec.configPatches[3].patch.value: Required value: Envoy filter: missing patch value for non-remove operation"},
			warns: []string{always}},
		{name: "remove needs no value", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_REMOVE, nil), warns: []string{always}},
		{name: "bad proxyVersion regex", spec: efOne(networking.EnvoyFilter_CLUSTER, &networking.EnvoyFilter_EnvoyConfigObjectMatch{
			Proxy: &networking.EnvoyFilter_ProxyMatch{ProxyVersion: "1.(2"}}, networking.EnvoyFilter_Patch_REMOVE, nil),
			errs:  []string{`spec.configPatches[0].match.proxy.proxyVersion: Invalid value: "1.(2": Envoy filter: invalid regex for proxy version`},
			warns: []string{always}},
		{name: "match class mismatch", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: cluster, Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}},
			{ApplyTo: networking.EnvoyFilter_HTTP_ROUTE, Match: cluster, Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}},
			{ApplyTo: networking.EnvoyFilter_CLUSTER, Match: hcmMatch, Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}}}},
			errs: []string{"spec.configPatches[0].match: Invalid value: Envoy filter: applyTo for listener class objects cannot have non listener match",
				"spec.configPatches[1].match: Invalid value: Envoy filter: applyTo for http route class objects",
				"spec.configPatches[2].match: Invalid value: Envoy filter: applyTo for cluster class objects"},
			warns: []string{always}},
		// Stricter than Istio (docs/compatibility.md): Istio's ValidateEnvoyFilter leaves
		// LISTENER_FILTER out of its listener-class match checks.
		{name: "listener filter is listener class", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_LISTENER_FILTER, Match: cluster, Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}},
			{ApplyTo: networking.EnvoyFilter_LISTENER_FILTER, Match: efListener("", ""), Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}}}},
			errs: []string{"spec.configPatches[0].match: Invalid value: Envoy filter: applyTo for listener class objects cannot have non listener match",
				"spec.configPatches[1].match.listener.filterChain.filter.name: Required value: Envoy filter: filter match has no name to match on"},
			warns: []string{always}},
		{name: "filter match rules", spec: &networking.EnvoyFilter{ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
			{ApplyTo: networking.EnvoyFilter_LISTENER, Match: efListener(efHCM, ""), Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}},
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efListener("", ""), Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}},
			{ApplyTo: networking.EnvoyFilter_NETWORK_FILTER, Match: efListener("envoy.filters.network.tcp_proxy", "x"), Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}},
			{ApplyTo: networking.EnvoyFilter_HTTP_FILTER, Match: efListener("envoy.http_connection_manager", ""), Patch: &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE}}}},
			errs: []string{"spec.configPatches[1].match.listener.filterChain.filter.name: Required value",
				"spec.configPatches[2].match.listener.filterChain.filter.subFilter: Invalid value: Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only",
				"spec.configPatches[2].match.listener.filterChain.filter.subFilter: Invalid value: Envoy filter: subfilter match requires filter match with envoy.filters.network.http_connection_manager"},
			warns: []string{always, "spec.configPatches[0].match.listener.filterChain.filter: Invalid value: Envoy filter: filter match has no effect when used with LISTENER",
				`spec.configPatches[3].match.listener.filterChain.filter.name: Invalid value: "envoy.http_connection_manager": Envoy filter: using deprecated filter name`}},
		// Istio decodes leniently and warns (envoyfilter.go: "We do not want to reject in case the
		// proto is valid but our libraries are outdated").
		{name: "unknown field in value warns", spec: efOne(networking.EnvoyFilter_CLUSTER, nil, networking.EnvoyFilter_Patch_MERGE, efStruct(t, map[string]any{"conect_timeout": "2s"})),
			warns: []string{always, `spec.configPatches[0].patch.value: Invalid value: Envoy filter: patch value has fields unknown to meshguard's envoy.config.cluster.v3.Cluster (not validated)`}},
		{name: "wrong value type still rejected", spec: efOne(networking.EnvoyFilter_CLUSTER, nil, networking.EnvoyFilter_Patch_MERGE, efStruct(t, map[string]any{"connect_timeout": true})),
			errs:  []string{"spec.configPatches[0].patch.value: Invalid value: Envoy filter: patch value is not a valid envoy.config.cluster.v3.Cluster"},
			warns: []string{always}},
		{name: "subFilter without a name", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, &networking.EnvoyFilter_EnvoyConfigObjectMatch{
			ObjectTypes: &networking.EnvoyFilter_EnvoyConfigObjectMatch_Listener{Listener: &networking.EnvoyFilter_ListenerMatch{
				FilterChain: &networking.EnvoyFilter_ListenerMatch_FilterChainMatch{Filter: &networking.EnvoyFilter_ListenerMatch_FilterMatch{
					Name: efHCM, SubFilter: &networking.EnvoyFilter_ListenerMatch_SubFilterMatch{}}}}}},
			networking.EnvoyFilter_Patch_REMOVE, nil),
			errs: []string{"spec.configPatches[0].match.listener.filterChain.filter.subFilter.name: Required value: Envoy filter: subfilter match has no name to match on"}, warns: []string{always}},
		{name: "deprecated names from Istio's list", spec: efOne(networking.EnvoyFilter_NETWORK_FILTER, efListener("envoy.redis_proxy", ""), networking.EnvoyFilter_Patch_REMOVE, nil),
			warns: []string{always, `filter.name: Invalid value: "envoy.redis_proxy": Envoy filter: using deprecated filter name "envoy.redis_proxy"; use "envoy.filters.network.redis_proxy" instead`}},
		{name: "v2 type rejected", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE, efStruct(t, map[string]any{
			"name": "envoy.lua", "typed_config": map[string]any{"@type": "type.googleapis.com/envoy.config.filter.http.lua.v2.Lua", "inline_code": "x"}})),
			errs:  []string{`spec.configPatches[0].patch.value: Invalid value: "type.googleapis.com/envoy.config.filter.http.lua.v2.Lua": Envoy filter: referenced type unknown (hint: try using the v3 XDS API)`},
			warns: []string{always, `spec.configPatches[0].patch.value.name: Invalid value: "envoy.lua": Envoy filter: using deprecated filter name`}},
		{name: "typo in known package rejected", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE, efStruct(t, map[string]any{
			"name": "l", "typed_config": map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lu"}})),
			errs: []string{"referenced type unknown"}, warns: []string{always}},
		{name: "unknown foreign type warns", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE, efStruct(t, map[string]any{
			"name": "acme", "typed_config": map[string]any{"@type": "type.googleapis.com/acme.filters.v1.Config", "x": 1.0}})),
			warns: []string{always, `Envoy filter: type type.googleapis.com/acme.filters.v1.Config is not known to meshguard`}},
		{name: "Envoy constraints on complete objects", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE,
			efStruct(t, map[string]any{"typed_config": map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}})),
			errs:  []string{"spec.configPatches[0].patch.value: Invalid value: Envoy filter: patch value is rejected by Envoy's constraints: invalid HttpFilter.Name"},
			warns: []string{always}},
		{name: "typed_config constraints", spec: efOne(networking.EnvoyFilter_NETWORK_FILTER, efListener("envoy.filters.network.tcp_proxy", ""), networking.EnvoyFilter_Patch_INSERT_BEFORE,
			efStruct(t, map[string]any{"name": "envoy.filters.network.tcp_proxy", "typed_config": map[string]any{
				"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"}})),
			errs:  []string{"spec.configPatches[0].patch.value.typed_config: Invalid value: Envoy filter: typed_config is rejected by Envoy's constraints"},
			warns: []string{always}},
		{name: "filter without typed_config warns", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE,
			efStruct(t, map[string]any{"name": "envoy.filters.http.cors"})),
			warns: []string{always, "spec.configPatches[0].patch.value: Invalid value: Envoy filter: using deprecated types by name without typed_config; envoy.filters.http.cors"}},
		{name: "MERGE without typed_config warns too", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_MERGE,
			efStruct(t, map[string]any{"name": "envoy.filters.http.cors"})),
			warns: []string{always, "Envoy filter: using deprecated types by name without typed_config; envoy.filters.http.cors"}},
		{name: "deprecated field warns", spec: efOne(networking.EnvoyFilter_CLUSTER, cluster, networking.EnvoyFilter_Patch_MERGE,
			efStruct(t, map[string]any{"use_tcp_for_dns_lookups": true})),
			warns: []string{always, `spec.configPatches[0].patch.value: Invalid value: "envoy.config.cluster.v3.Cluster.use_tcp_for_dns_lookups": Envoy filter: field envoy.config.cluster.v3.Cluster.use_tcp_for_dns_lookups is deprecated`}},
		// Istio reads patch values with golang/protobuf jsonpb, whose Duration
		// is time.ParseDuration (efGoDurations), typed_config contents included.
		{name: "Go durations in a value and its typed_config", spec: efOne(networking.EnvoyFilter_HTTP_FILTER, hcmMatch, networking.EnvoyFilter_Patch_INSERT_BEFORE,
			efStruct(t, map[string]any{"name": "envoy.filters.http.ext_authz", "typed_config": map[string]any{
				"@type":        "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
				"grpc_service": map[string]any{"envoy_grpc": map[string]any{"cluster_name": "authz"}, "timeout": "1m30s"}}})),
			warns: []string{always}},
		{name: "Go duration in a cluster", spec: efOne(networking.EnvoyFilter_CLUSTER, cluster, networking.EnvoyFilter_Patch_ADD,
			efStruct(t, map[string]any{"name": "c", "connect_timeout": "250ms"})), warns: []string{always}},
		{name: "unreadable duration still refused", spec: efOne(networking.EnvoyFilter_CLUSTER, cluster, networking.EnvoyFilter_Patch_ADD,
			efStruct(t, map[string]any{"name": "c", "connect_timeout": "5 minutes"})),
			errs: []string{"patch value is not a valid envoy.config.cluster.v3.Cluster"}, warns: []string{always}},
		{name: "selector wildcard", spec: &networking.EnvoyFilter{WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"a*": "b"}}},
			errs: []string{"wildcard is not supported in selector"}, warns: []string{always}},
	})
}

func TestEnvoyFilterYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "ext_proc insert", doc: `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ext-proc, namespace: istio-system}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      listener:
        filterChain:
          filter: {name: envoy.filters.network.http_connection_manager}
    patch:
      operation: INSERT_FIRST
      value:
        name: envoy.filters.http.ext_proc
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
          grpc_service: {envoy_grpc: {cluster_name: ext-proc}}
`, warns: []string{"EnvoyFilter exposes internal implementation details"}},
		{name: "unknown field", doc: `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: bad, namespace: istio-system}
spec:
  configPatches:
  - applyTo: CLUSTER
    patch:
      operation: ADD
      value: {name: c, connect_timeout: forever}
`, errs: []string{"EnvoyFilter istio-system/bad", "spec.configPatches[0].patch.value", "not a valid envoy.config.cluster.v3.Cluster"}},
		// A review's documents: waypoint patches were admitted unchecked.
		{name: "waypoint bogus lua value", doc: `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: e6, namespace: default}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: WAYPOINT
      waypoint:
        filter: {name: envoy.filters.network.http_connection_manager, subFilter: {name: envoy.filters.http.router}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          inline_code: 12
          nosuchfield: true
`, errs: []string{"EnvoyFilter default/e6", "spec.configPatches[0].patch.value", "not a valid envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"}},
		{name: "waypoint listener without patch", doc: `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: e7, namespace: default}
spec:
  configPatches:
  - applyTo: LISTENER
    match:
      context: WAYPOINT
      waypoint: {}
`, errs: []string{"EnvoyFilter default/e7", "applyTo LISTENER is not supported for waypoint", "spec.configPatches[0].patch: Required value: Envoy filter: missing patch"}},
	})
}
