package injector

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

const defaultProxyImage = "registry.istio.io/testing/proxyv2:latest"

func guardCfg(t *testing.T, mesh, values string) *config.Snapshot {
	t.Helper()
	cfg, err := config.Load([]byte(mesh), []byte(values))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func container(pod *corev1.Pod, name string) *corev1.Container {
	for _, l := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range l {
			if l[i].Name == name {
				return &l[i]
			}
		}
	}
	return nil
}

// TestGuardPodOverrides covers every pod-level input that can change the
// proxy image or weaken the sidecar: ignored (image) or denied (privileges,
// hostPath) by default, honoured when the values' meshguard allow-list
// permits it. Successful cases are re-injected to check idempotence.
func TestGuardPodOverrides(t *testing.T) {
	const (
		allowImages = "meshguard: {allowedProxyImages: ['docker.io/istio/*', 'registry.istio.io/testing/*']}\n"
		allowPriv   = "meshguard: {allowPrivilegedOverrides: true}\n"
		allowHost   = "meshguard: {allowHostPathVolumes: true}\n"
	)
	proxyOverride := func(sc *corev1.SecurityContext, image string, mounts ...corev1.VolumeMount) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ProxyContainerName, Image: image, SecurityContext: sc, VolumeMounts: mounts})
		}
	}
	initOverride := func(sc *corev1.SecurityContext, image string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: InitContainerName, Image: image, SecurityContext: sc})
		}
	}
	annos := func(kv ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			for i := 0; i+1 < len(kv); i += 2 {
				p.Annotations[kv[i]] = kv[i+1]
			}
		}
	}
	hostVol := func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}})
	}
	b := func(v bool) *bool { return &v }
	i64 := func(v int64) *int64 { return &v }
	cases := []struct {
		name          string
		mesh, values  string
		mutate        []func(*corev1.Pod)
		wantErr       []string // substrings of the denial; empty = admitted
		wantWarn      string   // substring of exactly one warning; "" = no allow-list warning
		proxyImage    string   // expected istio-proxy image ("" = default)
		initImage     string   // expected istio-init image ("" = same as proxyImage)
		proxyRootUser bool     // istio-proxy expected to run as uid 0
	}{
		// Images: ignored with a warning unless allowed.
		{name: "proxyImage ignored by default", mutate: []func(*corev1.Pod){annos(AnnotationProxyImage, "evil.io/proxy:1")},
			wantWarn: `annotation sidecar.istio.io/proxyImage ignored: image "evil.io/proxy:1" is not in values meshguard.allowedProxyImages; the configured proxy image is used`},
		{name: "proxyImage allowed by list", values: allowImages, mutate: []func(*corev1.Pod){annos(AnnotationProxyImage, "docker.io/istio/proxyv2:1.31.1")},
			proxyImage: "docker.io/istio/proxyv2:1.31.1"},
		{name: "proxyImage glob does not cross /", values: allowImages, mutate: []func(*corev1.Pod){annos(AnnotationProxyImage, "docker.io/istio/evil/proxyv2:1")},
			wantWarn: "sidecar.istio.io/proxyImage ignored"},
		{name: "proxyImage without / is not an image (Istio)", mutate: []func(*corev1.Pod){annos(AnnotationProxyImage, "proxyv2")}},
		{name: "proxyImageType ignored by default", mutate: []func(*corev1.Pod){annos(AnnotationProxyImageType, "debug")},
			wantWarn: `annotation sidecar.istio.io/proxyImageType ignored: image "registry.istio.io/testing/proxyv2:latest-debug"`},
		{name: "proxyImageType allowed by list", values: allowImages, mutate: []func(*corev1.Pod){annos(AnnotationProxyImageType, "distroless")},
			proxyImage: "registry.istio.io/testing/proxyv2:latest-distroless"},
		{name: "proxyImageType default is the configured image", mutate: []func(*corev1.Pod){annos(AnnotationProxyImageType, "default")}},
		{name: "proxy.istio.io/config imageType ignored by default", mutate: []func(*corev1.Pod){annos(AnnotationProxyConfig, "image: {imageType: debug}")},
			wantWarn: "annotation proxy.istio.io/config (image.imageType) ignored"},
		{name: "mesh imageType is the operator's", mesh: "defaultConfig: {image: {imageType: distroless}}",
			proxyImage: "registry.istio.io/testing/proxyv2:latest-distroless"},
		{name: "user istio-proxy image ignored by default", mutate: []func(*corev1.Pod){proxyOverride(nil, "evil.io/proxy:1")},
			wantWarn: `user-declared container "istio-proxy" image ignored: image "evil.io/proxy:1"`},
		{name: "user istio-init image ignored by default", mutate: []func(*corev1.Pod){initOverride(nil, "evil.io/init:1")},
			wantWarn: `user-declared container "istio-init" image ignored`},
		{name: "user istio-proxy image allowed by list", values: allowImages, mutate: []func(*corev1.Pod){proxyOverride(nil, "docker.io/istio/proxyv2:1.30.0")},
			proxyImage: "docker.io/istio/proxyv2:1.30.0", initImage: defaultProxyImage},
		{name: "user istio-proxy image auto", mutate: []func(*corev1.Pod){proxyOverride(nil, "auto")}},

		// Privileges from annotations: denied unless allowed.
		{name: "TPROXY annotation denied", mutate: []func(*corev1.Pod){annos(AnnotationInterceptionMode, "TPROXY")},
			wantErr: []string{"annotation sidecar.istio.io/interceptionMode: TPROXY runs istio-proxy as root", "values meshguard.allowPrivilegedOverrides"}},
		{name: "TPROXY annotation allowed", values: allowPriv, mutate: []func(*corev1.Pod){annos(AnnotationInterceptionMode, "TPROXY")}, proxyRootUser: true},
		{name: "TPROXY via proxy.istio.io/config denied", mutate: []func(*corev1.Pod){annos(AnnotationProxyConfig, "interceptionMode: TPROXY")},
			wantErr: []string{"annotation proxy.istio.io/config (interceptionMode): TPROXY"}},
		{name: "TPROXY from mesh config is the operator's", mesh: "defaultConfig: {interceptionMode: TPROXY}", proxyRootUser: true},
		{name: "capNetBindService denied", mutate: []func(*corev1.Pod){annos(AnnotationCapNetBind, "true")},
			wantErr: []string{"annotation sidecar.istio.io/capNetBindService: it runs istio-proxy as root with NET_BIND_SERVICE"}},
		{name: "capNetBindService allowed", values: allowPriv, mutate: []func(*corev1.Pod){annos(AnnotationCapNetBind, "true")}, proxyRootUser: true},
		{name: "capNetBindService false is harmless", mutate: []func(*corev1.Pod){annos(AnnotationCapNetBind, "false")}},
		// Istio's template compares with "true" exactly: True turns nothing on.
		{name: "capNetBindService True is not true", mutate: []func(*corev1.Pod){annos(AnnotationCapNetBind, "True")}},
		{name: "capNetBindService from the values is the operator's", values: "global: {proxy: {capNetBindService: true}}", proxyRootUser: true},
		// The template's `eq (annotation … .Values.global.proxy.capNetBindService) "true"`
		// compares the value's text exactly: a values string "True" turns nothing on.
		{name: "values capNetBindService True is not true", values: "global: {proxy: {capNetBindService: 'True'}}"},
		{name: "capNetBindService annotation false beats the values", values: "global: {proxy: {capNetBindService: true}}",
			mutate: []func(*corev1.Pod){annos(AnnotationCapNetBind, "false")}},
		{name: "IPTABLES_TRACE_LOGGING via annotation denied", mutate: []func(*corev1.Pod){annos(AnnotationProxyConfig, "proxyMetadata: {IPTABLES_TRACE_LOGGING: 'true'}")},
			wantErr: []string{"proxyMetadata.IPTABLES_TRACE_LOGGING", "privileged"}},

		// Privileges from user-declared injected containers.
		{name: "override privileged denied", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{Privileged: b(true)}, "auto")},
			wantErr: []string{`user-declared container "istio-proxy"`, "securityContext.privileged=true", "allowPrivilegedOverrides"}},
		{name: "override allowPrivilegeEscalation denied", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{AllowPrivilegeEscalation: b(true)}, "")},
			wantErr: []string{"securityContext.allowPrivilegeEscalation=true"}},
		{name: "override capabilities denied", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}, Drop: []corev1.Capability{}}}, "")},
			wantErr: []string{"securityContext.capabilities.add SYS_ADMIN"}},
		{name: "override runAsUser 0 denied", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{RunAsUser: i64(0), RunAsNonRoot: b(false)}, "")},
			wantErr: []string{"securityContext.runAsUser=0", "securityContext.runAsNonRoot=false"}},
		{name: "override readOnlyRootFilesystem false denied", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{ReadOnlyRootFilesystem: b(false)}, "")},
			wantErr: []string{"securityContext.readOnlyRootFilesystem=false"}},
		{name: "override seccomp Unconfined denied", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}, "")},
			wantErr: []string{"seccompProfile Unconfined"}},
		{name: "override hostPort denied", mutate: []func(*corev1.Pod){func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ProxyContainerName, Ports: []corev1.ContainerPort{{ContainerPort: 15090, HostPort: 80}}})
		}}, wantErr: []string{"ports hostPort 80"}},
		{name: "override init privileged denied", mutate: []func(*corev1.Pod){initOverride(&corev1.SecurityContext{Privileged: b(true)}, "")},
			wantErr: []string{`user-declared container "istio-init"`, "securityContext.privileged=true"}},
		{name: "override privileged allowed", values: allowPriv, mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{RunAsUser: i64(0)}, "")}, proxyRootUser: true},
		{name: "override non-root uid is not an escalation", mutate: []func(*corev1.Pod){proxyOverride(&corev1.SecurityContext{RunAsUser: i64(1500)}, "")}},
		{name: "override init root as injected is not an escalation", mutate: []func(*corev1.Pod){initOverride(&corev1.SecurityContext{RunAsUser: i64(0)}, "")}},
		{name: "recorded overrides annotation is checked too", mutate: []func(*corev1.Pod){annos(AnnotationStatus, `{"containers":["istio-proxy"]}`,
			AnnotationOverrides, `{"containers":[{"name":"istio-proxy","securityContext":{"privileged":true}}]}`)},
			wantErr: []string{"proxy.istio.io/overrides", "securityContext.privileged=true"}},

		// hostPath.
		{name: "userVolume hostPath denied", mutate: []func(*corev1.Pod){annos(AnnotationUserVolume, `{"h":{"hostPath":{"path":"/"}}}`)},
			wantErr: []string{`annotation sidecar.istio.io/userVolume: volume "h" is a hostPath volume`, "values meshguard.allowHostPathVolumes"}},
		{name: "userVolume hostPath allowed", values: allowHost, mutate: []func(*corev1.Pod){annos(AnnotationUserVolume, `{"h":{"hostPath":{"path":"/"}}}`, AnnotationUserVolumeMount, `{"h":{"mountPath":"/host"}}`)}},
		{name: "userVolume configMap is fine", mutate: []func(*corev1.Pod){annos(AnnotationUserVolume, `{"c":{"configMap":{"name":"x"}}}`, AnnotationUserVolumeMount, `{"c":{"mountPath":"/c"}}`)}},
		{name: "userVolumeMount of a pod hostPath volume denied", mutate: []func(*corev1.Pod){hostVol, annos(AnnotationUserVolumeMount, `{"host":{"mountPath":"/host"}}`)},
			wantErr: []string{`container "istio-proxy" volumeMounts`, `mounts hostPath volume "host"`}},
		{name: "user istio-proxy mounting a hostPath volume denied", mutate: []func(*corev1.Pod){hostVol, proxyOverride(nil, "", corev1.VolumeMount{Name: "host", MountPath: "/host"})},
			wantErr: []string{`mounts hostPath volume "host"`}},
		{name: "app's own hostPath volume is the pod's business", mutate: []func(*corev1.Pod){hostVol}},

		// userVolumeMount and application ports: what the API
		// server would reject, or what shadows the sidecar's files, is denied.
		{name: "userVolumeMount onto the sidecar's /etc/istio/proxy denied", mutate: []func(*corev1.Pod){annos(AnnotationUserVolume, `{"c":{"configMap":{"name":"x"}}}`, AnnotationUserVolumeMount, `{"c":{"mountPath":"/etc/istio/proxy"}}`)},
			wantErr: []string{`annotation sidecar.istio.io/userVolumeMount: volume "c": mountPath "/etc/istio/proxy" is already used by the sidecar (volume "istio-envoy")`}},
		{name: "userVolumeMount onto a sidecar path with a trailing slash denied", mutate: []func(*corev1.Pod){annos(AnnotationUserVolume, `{"c":{"configMap":{"name":"x"}}}`, AnnotationUserVolumeMount, `{"c":{"mountPath":"/var/run/secrets/tokens/"}}`)},
			wantErr: []string{`is already used by the sidecar (volume "istio-token")`}},
		{name: "userVolumeMount of an undeclared volume denied", mutate: []func(*corev1.Pod){annos(AnnotationUserVolumeMount, `{"nope":{"mountPath":"/nope"}}`)},
			wantErr: []string{`annotation sidecar.istio.io/userVolumeMount: volume "nope" is not declared by the pod`}},
		{name: "userVolumeMount array form of an undeclared volume denied", mutate: []func(*corev1.Pod){annos(AnnotationUserVolumeMount, `[{"name":"nope","mountPath":"/nope"}]`)},
			wantErr: []string{`volume "nope" is not declared by the pod`}},
		{name: "userVolume and userVolumeMount array forms accepted", mutate: []func(*corev1.Pod){annos(AnnotationUserVolume, `[{"name":"c","configMap":{"name":"x"}}]`, AnnotationUserVolumeMount, `[{"name":"c","mountPath":"/c"}]`)}},
		{name: "userVolumeMount of a pod volume accepted", mutate: []func(*corev1.Pod){func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}, annos(AnnotationUserVolumeMount, `{"data":{"mountPath":"/data"}}`)}},
		{name: "traffic applicationPorts -1 denied", mutate: []func(*corev1.Pod){annos(AnnotationTrafficAppPorts, "-1")},
			wantErr: []string{`traffic.sidecar.istio.io/applicationPorts`, `"-1" is not a port number`}},
		{name: "readiness applicationPorts -1 denied", mutate: []func(*corev1.Pod){annos(AnnotationReadinessAppPorts, "80,-1")},
			wantErr: []string{`readiness.status.sidecar.istio.io/applicationPorts`, `"-1" is not a port number`}},
		{name: "applicationPorts list accepted", mutate: []func(*corev1.Pod){annos(AnnotationTrafficAppPorts, "80,8080", AnnotationReadinessAppPorts, "1,2,3")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := guardCfg(t, tc.mesh, tc.values)
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			for _, m := range tc.mutate {
				m(pod)
			}
			res, err := Inject(pod, "app", cfg, Options{})
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("expected the pod to be denied")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if len(Fields(err)) == 0 {
					t.Errorf("Fields(%v) is empty; the denial must name the field", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var guardWarns []string
			for _, w := range res.Warnings {
				if strings.Contains(w, "meshguard.allowedProxyImages") {
					guardWarns = append(guardWarns, w)
				}
			}
			switch {
			case tc.wantWarn == "" && len(guardWarns) > 0:
				t.Errorf("unexpected warnings %q", guardWarns)
			case tc.wantWarn != "" && (len(guardWarns) != 1 || !strings.Contains(guardWarns[0], tc.wantWarn)):
				t.Errorf("warnings %q, want exactly one containing %q", guardWarns, tc.wantWarn)
			}
			wantProxy := cmpOr(tc.proxyImage, defaultProxyImage)
			wantInit := cmpOr(tc.initImage, wantProxy)
			proxy, init := container(res.Pod, ProxyContainerName), container(res.Pod, InitContainerName)
			if proxy.Image != wantProxy || init.Image != wantInit {
				t.Errorf("images proxy=%q init=%q, want %q %q", proxy.Image, init.Image, wantProxy, wantInit)
			}
			if root := *proxy.SecurityContext.RunAsUser == 0; root != tc.proxyRootUser {
				t.Errorf("istio-proxy runAsUser %d, want root=%v", *proxy.SecurityContext.RunAsUser, tc.proxyRootUser)
			}
			if !tc.proxyRootUser && (*proxy.SecurityContext.Privileged || !*proxy.SecurityContext.RunAsNonRoot) {
				t.Errorf("istio-proxy lost its safe settings: %+v", proxy.SecurityContext)
			}
			// Idempotence: re-injecting the result changes nothing (also the warning repeats, same pod).
			got := applyPatch(t, pod, res)
			res2, err := Inject(got, "app", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res2.Patch) != 0 {
				ops, _ := json.Marshal(res2.Patch)
				t.Errorf("re-injection produced ops: %s", ops)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestEscalations(t *testing.T) {
	b := func(v bool) *bool { return &v }
	i64 := func(v int64) *int64 { return &v }
	unmasked := corev1.UnmaskedProcMount
	safe := &corev1.SecurityContext{Privileged: b(false), AllowPrivilegeEscalation: b(false), RunAsUser: i64(1337), RunAsGroup: i64(1337),
		RunAsNonRoot: b(true), ReadOnlyRootFilesystem: b(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	with := func(f func(*corev1.SecurityContext)) *corev1.SecurityContext { c := safe.DeepCopy(); f(c); return c }
	cases := []struct {
		name  string
		after *corev1.SecurityContext
		want  []string
	}{
		{"same", safe.DeepCopy(), nil},
		{"nil after loses everything", nil, []string{"securityContext.allowPrivilegeEscalation=true", "securityContext.capabilities.drop without ALL", "securityContext.runAsNonRoot=false", "securityContext.readOnlyRootFilesystem=false"}},
		{"group 0", with(func(c *corev1.SecurityContext) { c.RunAsGroup = i64(0) }), []string{"securityContext.runAsGroup=0"}},
		{"drop ALL replaced by one capability", with(func(c *corev1.SecurityContext) { c.Capabilities.Drop = []corev1.Capability{"NET_RAW"} }), []string{"securityContext.capabilities.drop without ALL"}},
		{"drop more is fine", with(func(c *corev1.SecurityContext) { c.Capabilities.Drop = append(c.Capabilities.Drop, "NET_RAW") }), nil},
		{"procMount", with(func(c *corev1.SecurityContext) { c.ProcMount = &unmasked }), []string{"securityContext.procMount Unmasked"}},
		{"selinux", with(func(c *corev1.SecurityContext) { c.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"} }), []string{"securityContext.seLinuxOptions"}},
		{"hostProcess", with(func(c *corev1.SecurityContext) {
			c.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: b(true)}
		}), []string{"securityContext.windowsOptions.hostProcess=true"}},
		{"apparmor", with(func(c *corev1.SecurityContext) {
			c.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
		}), []string{"securityContext.appArmorProfile Unconfined"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := escalations(safe, tc.after); !slices.Equal(got, tc.want) {
				t.Errorf("escalations = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	err := fmt.Errorf("pod a/b: %w", errors.Join(
		fieldErr("annotation x", errors.New("secret-value is bad")),
		fmt.Errorf("wrapped: %w", fieldErr("annotation y", errors.New("v"))),
		errors.New("plain"),
		fieldErr("annotation x", errors.New("again")),
	))
	if got := Fields(err); !slices.Equal(got, []string{"annotation x", "annotation y"}) {
		t.Fatalf("Fields = %q", got)
	}
	if Fields(nil) != nil || Fields(errors.New("x")) != nil {
		t.Fatal("Fields of non-field errors must be empty")
	}
}
