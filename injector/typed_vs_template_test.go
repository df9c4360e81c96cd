package injector

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
)

// typedVsTemplatePods carry the per-pod inputs the typed injector resolves
// itself (annotations, labels, probes, ports, volumes), which the
// configuration-wide agreement check (typedAgreesWithTemplates) never sees.
// Pods declaring istio-proxy/istio-init are left out: their differences are
// listed in docs/compatibility.md.
const typedVsTemplatePods = `
- metadata: {name: probes, labels: {app: a, version: v1}}
  spec:
    containers:
    - name: app
      image: x
      ports: [{name: http, containerPort: 8080}, {containerPort: 9090, protocol: UDP}]
      readinessProbe: {httpGet: {path: /r, port: http, scheme: HTTPS, httpHeaders: [{name: h, value: v}]}, timeoutSeconds: 4}
      livenessProbe: {tcpSocket: {port: 9090}}
      startupProbe: {grpc: {port: 7070, service: s}}
      lifecycle: {preStop: {httpGet: {path: /stop, port: 8080}}, postStart: {tcpSocket: {port: http}}}
    - name: second
      image: y
      livenessProbe: {httpGet: {path: /l, port: nope}}
- metadata: {name: native-app, labels: {app.kubernetes.io/name: nm, app.kubernetes.io/version: "2"}}
  spec:
    initContainers:
    - {name: sc, image: z, restartPolicy: Always, readinessProbe: {httpGet: {path: /x, port: 81}}}
    - {name: migrate, image: z}
    containers:
    - {name: app, image: x}
- metadata: {name: own-core-dump}
  spec:
    initContainers:
    - {name: migrate, image: z}
    - {name: enable-core-dump, image: z}
    containers:
    - {name: app, image: x}
- metadata: {name: labels, labels: {"topology.istio.io/network": n1, "security.istio.io/tlsMode": "", "service.istio.io/canonical-name": ""}}
  spec:
    containers:
    - {name: app, image: x}
- metadata: {name: grpc, annotations: {"inject.istio.io/templates": grpc-simple, "prometheus.io/port": "9000"}}
  spec:
    containers:
    - {name: app, image: x, ports: [{containerPort: 50051}], readinessProbe: {grpc: {port: 50051}}}
- metadata: {name: secctx}
  spec:
    securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, seccompProfile: {type: RuntimeDefault}}
    initContainers:
    - {name: setup, image: z, securityContext: {runAsUser: 0}}
    containers:
    - {name: app, image: x, securityContext: {runAsUser: 1001, allowPrivilegeEscalation: false}, readinessProbe: {exec: {command: ["true"]}}, livenessProbe: {httpGet: {port: 8080, host: 10.0.0.1}}}
- metadata: {generateName: web-7d9f-, labels: {app: web, pod-template-hash: 7d9f}, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9f, uid: u1, controller: true}]}
  spec:
    serviceAccountName: sa1
    imagePullSecrets: [{name: s1}, {name: own}]
    volumes: [{name: v, emptyDir: {}}]
    containers:
    - name: app
      image: x
      ports: [{name: http, containerPort: 8080, hostPort: 80, hostIP: 1.2.3.4}, {name: sctp, containerPort: 7000, protocol: SCTP}]
      readinessProbe: {httpGet: {port: admin, path: /r}}
      startupProbe: {httpGet: {port: 8080, path: /s}, failureThreshold: 30}
    - name: sidecar2
      image: y
      ports: [{name: admin, containerPort: 9901}]
      livenessProbe: {httpGet: {port: admin, path: /l}}
`

// TestTypedMatchesTemplateOnAnnotatedPods injects pods carrying the
// injection annotations with the typed injector and with the generic
// renderer of Istio's stock templates (forced), under several values, and
// requires the same pod.
func TestTypedMatchesTemplateOnAnnotatedPods(t *testing.T) {
	var base []*corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(typedVsTemplatePods), &base); err != nil {
		t.Fatal(err)
	}
	pods := base
	for _, annos := range []map[string]string{
		{AnnotationStatusPort: "15030"},
		{AnnotationProxyConfig: "statusPort: 15030"},
		{AnnotationInterceptionMode: "NONE"},
		{AnnotationProxyConfig: "interceptionMode: NONE"},
		{AnnotationIncludeInboundPorts: "8080"},
		{AnnotationIncludeInboundPorts: ""},
		{AnnotationExcludeInboundPorts: "9090"},
		{AnnotationIncludeOutboundIPs: "", AnnotationExcludeOutboundPorts: "", AnnotationIncludeOutboundPorts: ""},
		{AnnotationRewriteProbes: "false"},
		{AnnotationProxyCPU: "200m", AnnotationProxyMemoryLimit: "1Gi"},
		{AnnotationLogLevel: "debug", AnnotationComponentLog: "misc:error", AnnotationAgentLogLevel: "all:debug"},
		{AnnotationBootstrapOverride: "cm"},
		{AnnotationUserVolume: `{"v":{"emptyDir":{}}}`, AnnotationUserVolumeMount: `{"v":{"mountPath":"/x"}}`},
		{AnnotationNativeSidecar: "true"},
		{AnnotationNativeSidecar: "yes"},
		{AnnotationReadinessDelay: "5", AnnotationReadinessPeriod: "7", AnnotationReadinessFailure: "9"},
		{AnnotationPromPort: "9000", AnnotationPromPath: "/m"},
		{"prometheus.io.scrape": "true", "prometheus-io/port": "9102"},
		{AnnotationPromScrape: "false"},
		{AnnotationMergeMetrics: "false", AnnotationPromPort: "9000"},
		{AnnotationProxyConfig: "holdApplicationUntilProxyStarts: true"},
		{AnnotationProxyConfig: "holdApplicationUntilProxyStarts: false"},
		{AnnotationProxyConfig: "concurrency: 3\nproxyMetadata: {FOO: bar}"},
		{AnnotationProxyImageType: "distroless"},
		{AnnotationKubevirtInterfaces: "eth1", AnnotationExcludeInterfaces: "eth2", AnnotationRerouteVirtual: "eth3"},
		{AnnotationCapNetBind: "false"},
		{AnnotationCapNetBind: "true"},
		{AnnotationProxyCPULimit: "2", AnnotationProxyMemory: "100Mi"},
		{AnnotationProxyCPU: "1", AnnotationProxyMemory: "1Gi", AnnotationProxyCPULimit: "2", AnnotationProxyMemoryLimit: "2Gi"},
		{AnnotationProxyImage: "docker.io/istio/proxyv2:1.0"},
		{AnnotationProxyImage: "proxyv2"},
		{AnnotationInterceptionMode: "TPROXY"},
		{AnnotationProxyConfig: "interceptionMode: TPROXY"},
		{AnnotationInterceptionMode: "TPROXY", AnnotationCapNetBind: "true"},
		{AnnotationIncludeOutboundIPs: "10.0.0.0/8", AnnotationExcludeOutboundIPs: "10.1.0.0/16"},
		{AnnotationIncludeOutboundIPs: "*", AnnotationExcludeOutboundIPs: ""},
		{AnnotationIncludeInboundPorts: "*", AnnotationExcludeInboundPorts: "8080,9090"},
		{AnnotationExcludeInboundPorts: ""},
		{AnnotationExcludeOutboundPorts: "443,8443"},
		{AnnotationIncludeOutboundPorts: "80"},
		{AnnotationReadinessAppPorts: "8080"},
		{AnnotationTrafficAppPorts: "8080"},
		{AnnotationStatusPort: "15030", AnnotationRewriteProbes: "false"},
		{AnnotationStatusPort: "15030", AnnotationExcludeInboundPorts: "15030"},
		{AnnotationNativeSidecar: "false"},
		{"sidecar.istio.io/init-containers-before-proxy": "migrate,sc"},
		{"sidecar.istio.io/init-containers-before-proxy": "migrate", AnnotationNativeSidecar: "true", AnnotationInterceptionMode: "NONE"},
		{AnnotationNativeSidecar: "true", AnnotationProxyConfig: "holdApplicationUntilProxyStarts: true"},
		{AnnotationNativeSidecar: "true", AnnotationStatusPort: "15030"},
		{AnnotationInterceptionMode: "NONE", AnnotationNativeSidecar: "true"},
		{AnnotationUserVolume: `{"v":{"configMap":{"name":"c"}},"w":{"secret":{"secretName":"s"}}}`, AnnotationUserVolumeMount: `{"w":{"mountPath":"/w","readOnly":true},"v":{"mountPath":"/v"}}`},
		{AnnotationDefaultContainer: "second", AnnotationDefaultLogsContainer: "second"},
		{"sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound", "sidecar.istio.io/extraStatTags": "a,b"},
		{"sidecar.istio.io/enableCoreDump": "true"},
		{AnnotationProxyConfig: "proxyMetadata: {IPTABLES_TRACE_LOGGING: \"true\"}"},
		{AnnotationProxyConfig: "proxyMetadata: {ISTIO_META_ENABLE_HBONE: \"true\"}"},
		{AnnotationProxyConfig: "proxyStatsMatcher: {inclusionPrefixes: [a]}\nstatusPort: 15031\ntracing: {zipkin: {address: z:9411}}"},
		// Spellings Istio's validator accepts but its template reads
		// differently from the number (YAML 1.1 octal, the raw string
		// compared with "0" and copied): both paths deny them.
		{AnnotationReadinessDelay: "010"},
		{AnnotationReadinessPeriod: "010", AnnotationReadinessFailure: "0100"},
		{AnnotationStatusPort: "00"},
		{AnnotationStatusPort: "015030"},
		{AnnotationStatusPort: " 15030"},
	} {
		for _, p := range base {
			pod := p.DeepCopy()
			for k, v := range annos {
				if pod.Annotations == nil {
					pod.Annotations = map[string]string{}
				}
				pod.Annotations[k] = v
			}
			pods = append(pods, pod)
		}
	}
	for _, native := range []bool{false, true} {
		for _, in := range []struct{ values, mesh string }{
			{`{}`, ``},
			{`{"pilot":{"cni":{"enabled":true}}}`, ``},
			{`{"global":{"proxy":{"holdApplicationUntilProxyStarts":true}}}`, ``},
			{`{"global":{"imagePullSecrets":["s1"],"network":"net0","multiCluster":{"clusterName":"c1"}}}`, ``},
			{`{"global":{"proxy":{"includeInboundPorts":"8080","excludeOutboundPorts":"9","includeOutboundPorts":"10"}},"pilot":{"cni":{"enabled":true}}}`, ``},
			{`{"global":{"proxy":{"privileged":true,"logLevel":"info","componentLogLevel":"misc:warn","includeIPRanges":"10.0.0.0/8","excludeIPRanges":"10.2.0.0/16","excludeInboundPorts":"7070","readinessInitialDelaySeconds":3,"readinessPeriodSeconds":4,"readinessFailureThreshold":5,"startupProbe":{"enabled":false},"clusterDomain":"c.local"},"logAsJson":true,"logging":{"level":"default:debug"},"proxy_init":{"forceApplyIptables":true},"nativeNftables":true,"imagePullPolicy":"Always","meshID":"m1","caAddress":"ca:15012","mountMtlsCerts":true}}`, `{"defaultConfig":{"holdApplicationUntilProxyStarts":true,"statusPort":15035,"concurrency":2},"trustDomain":"mesh.td"}`},
			{`{"global":{"proxy":{"lifecycle":{"preStop":{"exec":{"command":["sleep","5"]}}},"capNetBindService":true,"statusPort":15040,"startupProbe":{"enabled":true,"failureThreshold":7}},"trustDomain":"td.example","variant":"distroless","trustBundleName":"tb","sds":{"token":{"aud":"aud1"}},"istioNamespace":"is"},"sidecarInjectorWebhook":{"rewriteAppHTTPProbe":false},"pilot":{"cni":{"enabled":true,"provider":"multus"}},"revision":"canary"}`, `{"inboundTrafficPolicy":{"mode":"LOCALHOST"},"defaultConfig":{"interceptionMode":"TPROXY","proxyMetadata":{"ISTIO_META_ENABLE_HBONE":"true"},"tracing":{"tlsSettings":{"caCertificates":"/etc/ls/ca.pem"}}},"proxyListenPort":15002}`},
		} {
			var v map[string]any
			if err := json.Unmarshal([]byte(in.values), &v); err != nil {
				t.Fatal(err)
			}
			if v["global"] == nil {
				v["global"] = map[string]any{}
			}
			v["global"].(map[string]any)["nativeSidecars"] = native
			// TPROXY, capNetBindService and IPTABLES_TRACE_LOGGING rows are
			// compared, not denied by meshguard's guard (guard_test.go).
			v["meshguard"] = map[string]any{"allowPrivilegedOverrides": true}
			vb, _ := json.Marshal(v)
			typed, err := config.Inputs{Values: vb, Mesh: []byte(in.mesh)}.Load()
			if err != nil {
				t.Fatal(err)
			}
			vb = append(vb, in.mesh...)
			if probe := (&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}); useGenericTemplates(probe, typed) {
				// Then both sides below render generically and compare nothing.
				t.Errorf("values %s: the typed injector disagrees with the stock template on its probe pod", vb)
			}
			generic := forceGeneric(typed)
			for _, pod := range pods {
				name := fmt.Sprintf("%s %v (values %s)", pod.Name, pod.Annotations, vb)
				a, errA := Inject(pod.DeepCopy(), "app", typed, Options{})
				b, errB := Inject(pod.DeepCopy(), "app", generic, Options{})
				if (errA == nil) != (errB == nil) {
					t.Errorf("%s: typed error %v, template error %v", name, errA, errB)
					continue
				}
				if errA != nil {
					continue
				}
				if d := jsonDiff("", podJSON(a.Pod), podJSON(b.Pod)); len(d) > 0 {
					t.Errorf("%s: typed (got) and template (want) differ:\n%s", name, strings.Join(d, "\n"))
				}
			}
		}
	}
}

// jsonDiff lists the paths where two decoded JSON values differ (at most a
// few, keys in order).
func jsonDiff(path string, a, b any) []string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			if out = append(out, jsonDiff(path+"."+k, x[k], y[k])...); len(out) > 5 {
				return out
			}
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			break
		}
		var out []string
		for i := range x {
			if out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), x[i], y[i])...); len(out) > 5 {
				return out
			}
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return []string{fmt.Sprintf("  %s: %.300s, want %.300s", path, ja, jb)}
}
