package injector

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// image builds an injected image name (Istio's pkg/kube/inject/inject.go, image URL
// construction): an annotation containing
// "/" is used as is; otherwise <hub>/<image>:<tag>[-<variant>]. An image the
// pod chose (proxyImage, proxyImageType, proxy.istio.io/config imageType) is
// used only if it is the configured one or allowed (guard.go).
func (p *params) image(name string) string {
	meshType := p.operatorCfg.GetImage().GetImageType()
	configured := p.buildImage(name, meshType)
	if img, ok := p.annos[AnnotationProxyImage]; ok && strings.Contains(img, "/") {
		return p.allowImage(img, configured, "annotation "+AnnotationProxyImage)
	}
	if t, ok := p.annos[AnnotationProxyImageType]; ok {
		return p.allowImage(p.buildImage(name, t), configured, "annotation "+AnnotationProxyImageType)
	}
	if t := p.proxyCfg.GetImage().GetImageType(); t != meshType {
		src := p.podSource(func(pc *meshv1alpha1.ProxyConfig) bool { return pc.GetImage() != nil })
		return p.allowImage(p.buildImage(name, t), configured, src+" (image.imageType)")
	}
	return configured
}

// buildImage is <hub>/<name>:<tag>[-<variant>]; imageType (if set) replaces
// global.variant, "default" means none (Istio's pkg/kube/inject/inject.go).
func (p *params) buildImage(name, imageType string) string {
	g := p.cfg.Values.Global
	if strings.Contains(name, "/") {
		return name
	}
	variant := g.Variant
	if imageType != "" {
		variant = imageType
	}
	tag := strings.TrimSuffix(strings.TrimSuffix(g.Tag, "-distroless"), "-debug")
	if variant != "" && variant != "default" {
		tag += "-" + variant
	}
	return g.Hub + "/" + name + ":" + tag
}

// excludeInbound is the status port appended to the excluded inbound ports
// unless present or 0 (Istio template func excludeInboundPort).
func excludeInbound(statusPort int32, ports string) string {
	if statusPort == 0 {
		return ports
	}
	sp := strconv.Itoa(int(statusPort))
	for _, f := range strings.Split(ports, ",") {
		if strings.TrimSpace(f) == sp {
			return ports
		}
	}
	if strings.TrimSpace(ports) == "" {
		return sp
	}
	return ports + "," + sp
}

// initContainer builds istio-init (or istio-validation in CNI mode), as Istio's
// injection-template.yaml does.
func (p *params) initContainer() *corev1.Container {
	v := p.cfg.Values.Global
	m := p.cfg.Mesh
	uid := strconv.FormatInt(p.proxyUID, 10)
	if p.mode == "TPROXY" {
		uid = strconv.Itoa(defaultProxyID) // the template pins it in TPROXY mode
	}
	args := []string{
		"istio-iptables",
		"-p", strconv.Itoa(int(m.ProxyListenPort)),
		"-z", strconv.Itoa(int(m.ProxyInboundListenPort)),
		"-u", uid,
		"-m", p.mode,
		"-i", p.anno(AnnotationIncludeOutboundIPs, *v.Proxy.IncludeIPRanges),
		"-x", p.anno(AnnotationExcludeOutboundIPs, *v.Proxy.ExcludeIPRanges),
		"-b", p.anno(AnnotationIncludeInboundPorts, *v.Proxy.IncludeInboundPorts),
		"-d", "15090,15021," + excludeInbound(p.statusPort, p.anno(AnnotationExcludeInboundPorts, *v.Proxy.ExcludeInboundPorts)),
	}
	args[len(args)-1] = strings.TrimSuffix(args[len(args)-1], ",")
	if s, ok := p.annos[AnnotationIncludeOutboundPorts]; ok || *v.Proxy.IncludeOutboundPorts != "" {
		if !ok {
			s = *v.Proxy.IncludeOutboundPorts
		}
		args = append(args, "-q", s)
	}
	if s, ok := p.annos[AnnotationExcludeOutboundPorts]; ok || *v.Proxy.ExcludeOutboundPorts != "" {
		if !ok {
			s = *v.Proxy.ExcludeOutboundPorts
		}
		args = append(args, "-o", s)
	}
	if s, ok := p.annos[AnnotationRerouteVirtual]; ok {
		args = append(args, "-k", s)
	} else if s, ok := p.annos[AnnotationKubevirtInterfaces]; ok {
		args = append(args, "-k", s)
	}
	if s, ok := p.annos[AnnotationExcludeInterfaces]; ok {
		args = append(args, "-c", s)
	}
	args = append(args, "--log_output_level="+p.anno(AnnotationAgentLogLevel, v.Logging.Level))
	if v.LogAsJSON {
		args = append(args, "--log_as_json")
	}
	if p.cni {
		args = append(args, "--run-validation", "--skip-rule-apply")
	}
	if v.ProxyInit.ForceApplyIptables {
		args = append(args, "--force-apply")
	}
	if v.NativeNftables {
		args = append(args, "--native-nftables")
	}
	c := &corev1.Container{
		Name:            InitContainerName,
		Image:           p.image(v.ProxyInit.Image),
		Args:            args,
		ImagePullPolicy: v.ImagePullPolicy,
		Env:             metadataEnv(p.proxyCfg),
		Resources:       *p.resources.DeepCopy(),
	}
	if p.cni {
		c.Name = ValidationContainerName
		c.SecurityContext = &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Privileged:               ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   ptr(true),
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(p.proxyUID),
			RunAsGroup:               ptr(p.proxyGID),
		}
		if p.mode == "TPROXY" { // as -u above: validate as the UID the rules exclude
			c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup = ptr(int64(defaultProxyID)), ptr(int64(defaultProxyID))
		}
		return c
	}
	c.SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(v.Proxy.Privileged),
		Privileged:               ptr(v.Proxy.Privileged),
		Capabilities: &corev1.Capabilities{
			Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
			Drop: []corev1.Capability{"ALL"},
		},
		ReadOnlyRootFilesystem: ptr(false),
		RunAsGroup:             ptr(int64(0)),
		RunAsNonRoot:           ptr(false),
		RunAsUser:              ptr(int64(0)),
	}
	return c
}

func metadataEnv(pc *meshv1alpha1.ProxyConfig) []corev1.EnvVar {
	md := pc.GetProxyMetadata()
	if len(md) == 0 {
		return nil
	}
	out := make([]corev1.EnvVar, 0, len(md))
	for _, k := range sortedKeys(md) {
		out = append(out, corev1.EnvVar{Name: k, Value: md[k]})
	}
	return out
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

// resourceEnv is a resourceFieldRef env var with divisor "1", as Istio's
// templates write it (sidecar and gateway alike).
func resourceEnv(name, res string) corev1.EnvVar {
	sel := &corev1.ResourceFieldSelector{Resource: res, Divisor: one}
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: sel}}
}

var one = resource.MustParse("1")

// proxyContainer builds istio-proxy (Istio's injection-template.yaml); pod's regular containers
// feed ISTIO_META_POD_PORTS and ISTIO_META_APP_CONTAINERS.
func (p *params) proxyContainer(pod *corev1.Pod) (*corev1.Container, error) {
	if p.template == TemplateGateway {
		return p.gatewayContainer(pod)
	}
	v := p.cfg.Values.Global
	c, err := p.agentContainer(pod, "sidecar")
	if err != nil {
		return nil, err
	}
	c.Resources = *p.resources.DeepCopy()
	if p.native {
		c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	}
	if p.statusPort != 0 {
		get := &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromInt32(15021)}
		if *v.Proxy.StartupProbe.Enabled {
			c.StartupProbe = &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: get.DeepCopy()},
				PeriodSeconds:    1,
				TimeoutSeconds:   3,
				FailureThreshold: *v.Proxy.StartupProbe.FailureThreshold,
			}
		}
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: get},
			InitialDelaySeconds: p.annoInt(AnnotationReadinessDelay, *v.Proxy.ReadinessInitialDelaySeconds),
			PeriodSeconds:       p.annoInt(AnnotationReadinessPeriod, *v.Proxy.ReadinessPeriodSeconds),
			TimeoutSeconds:      3,
			FailureThreshold:    p.annoInt(AnnotationReadinessFailure, *v.Proxy.ReadinessFailureThreshold),
		}
	}
	switch {
	case v.Proxy.Lifecycle != nil:
		c.Lifecycle = v.Proxy.Lifecycle.DeepCopy()
	case !p.native && p.hold:
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"pilot-agent", "wait"}}}}
	case p.native:
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"pilot-agent", "request", "--debug-port=" + strconv.Itoa(int(p.statusPort)), "POST", "drain"}}}}
	}
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(v.Proxy.Privileged),
		Privileged:               ptr(v.Proxy.Privileged),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr(true),
		RunAsGroup:               ptr(p.proxyGID),
		RunAsNonRoot:             ptr(true),
		RunAsUser:                ptr(p.proxyUID),
	}
	tproxy := p.mode == "TPROXY"
	netBind := strings.EqualFold(p.annos[AnnotationCapNetBind], "true")
	if tproxy || netBind {
		if tproxy {
			sc.Capabilities.Add = append(sc.Capabilities.Add, "NET_ADMIN")
		}
		if netBind {
			sc.Capabilities.Add = append(sc.Capabilities.Add, "NET_BIND_SERVICE")
		}
		// Root, but in the proxy group istio-init excludes (-u 1337 in TPROXY):
		// the template pins 1337 here, whatever the namespace's range.
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot = ptr(int64(0)), ptr(int64(defaultProxyID)), ptr(false)
	}
	if p.proxyCfg.GetProxyMetadata()["IPTABLES_TRACE_LOGGING"] == "true" {
		sc.Privileged, sc.AllowPrivilegeEscalation = ptr(true), ptr(true)
		sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}}
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot, sc.ReadOnlyRootFilesystem = ptr(int64(0)), ptr(int64(0)), ptr(false), ptr(false)
	}
	c.SecurityContext = sc
	if err := p.userMounts(c); err != nil {
		return nil, err
	}
	return c, nil
}

// agentContainer is what both templates' istio-proxy has: image, pilot-agent
// arguments for role, the Envoy metrics port, env and volume mounts.
func (p *params) agentContainer(pod *corev1.Pod, role string) (*corev1.Container, error) {
	v := p.cfg.Values.Global
	env, err := p.agentEnv(pod)
	if err != nil {
		return nil, err
	}
	return &corev1.Container{
		Name:            ProxyContainerName,
		Image:           p.image(v.Proxy.Image),
		Args:            p.agentArgs(role),
		ImagePullPolicy: v.ImagePullPolicy,
		Ports:           []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}},
		Env:             env,
		VolumeMounts:    p.proxyMounts(),
	}, nil
}

// agentArgs are pilot-agent's arguments for role (sidecar or router).
func (p *params) agentArgs(role string) []string {
	v := p.cfg.Values.Global
	args := []string{
		"proxy", role,
		"--domain", "$(POD_NAMESPACE).svc." + v.Proxy.ClusterDomain,
		"--proxyLogLevel=" + p.anno(AnnotationLogLevel, v.Proxy.LogLevel),
		"--proxyComponentLogLevel=" + p.anno(AnnotationComponentLog, v.Proxy.ComponentLogLevel),
		"--log_output_level=" + p.anno(AnnotationAgentLogLevel, v.Logging.Level),
	}
	if v.LogAsJSON {
		args = append(args, "--log_as_json")
	}
	return args
}

// agentEnv is istio-proxy's env for the pod's template, in template order,
// then the network and URL-path envs (Istio's pkg/kube/inject/webhook.go).
func (p *params) agentEnv(pod *corev1.Pod) ([]corev1.EnvVar, error) {
	v := p.cfg.Values.Global
	m := p.cfg.Mesh
	gw := p.template == TemplateGateway
	env := make([]corev1.EnvVar, 0, 32)
	if !gw && m.GetInboundTrafficPolicy().GetMode() == meshv1alpha1.MeshConfig_InboundTrafficPolicy_LOCALHOST {
		env = append(env, corev1.EnvVar{Name: "REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION", Value: "true"})
	}
	caAddr := v.CAAddress
	if caAddr == "" {
		rev := ""
		if r := p.cfg.Values.Revision; r != "" && r != "default" {
			rev = "-" + r
		}
		caAddr = "istiod" + rev + "." + v.IstioNamespace + ".svc:15012"
	}
	podPorts, err := podPortsJSON(pod)
	if err != nil {
		return nil, err
	}
	var appNames []string
	for i := range pod.Spec.Containers {
		if n := pod.Spec.Containers[i].Name; n != ProxyContainerName {
			appNames = append(appNames, n)
		}
	}
	env = append(env,
		corev1.EnvVar{Name: "PILOT_CERT_PROVIDER", Value: v.PilotCertProvider},
		corev1.EnvVar{Name: "CA_ADDR", Value: caAddr},
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("INSTANCE_IP", "status.podIP"),
		fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		fieldEnv("HOST_IP", "status.hostIP"),
		resourceEnv("ISTIO_CPU_LIMIT", "limits.cpu"),
		corev1.EnvVar{Name: "PROXY_CONFIG", Value: p.proxyJSON},
		corev1.EnvVar{Name: "ISTIO_META_POD_PORTS", Value: podPorts},
	)
	if gw {
		env = append(env, resourceEnv("GOMEMLIMIT", "limits.memory"),
			corev1.EnvVar{Name: "ISTIO_META_APP_CONTAINERS", Value: strings.Join(appNames, ",")})
	} else {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_APP_CONTAINERS", Value: strings.Join(appNames, ",")},
			resourceEnv("GOMEMLIMIT", "limits.memory"))
	}
	mode := p.mode
	if gw {
		mode = p.proxyCfg.GetInterceptionMode().String() // the gateway template ignores the annotation
	}
	clusterID := v.MultiCluster.ClusterName
	if clusterID == "" {
		clusterID = "Kubernetes"
	}
	env = append(env,
		corev1.EnvVar{Name: "ISTIO_META_CLUSTER_ID", Value: clusterID},
		fieldEnv("ISTIO_META_NODE_NAME", "spec.nodeName"),
		corev1.EnvVar{Name: "ISTIO_META_INTERCEPTION_MODE", Value: mode},
	)
	workload := pod.Labels[LabelWorkloadName]
	if gw || workload == "" {
		workload = p.owner.Name
	}
	if workload != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_WORKLOAD_NAME", Value: workload})
	}
	if p.owner.Name != "" && p.owner.APIVersion != "" {
		ns := p.namespace
		if ns == "" {
			ns = "default"
		}
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_OWNER",
			Value: "kubernetes://apis/" + p.owner.APIVersion + "/namespaces/" + ns + "/" + strings.ToLower(p.owner.Kind) + "s/" + p.owner.Name})
	}
	if _, ok := p.annos[AnnotationBootstrapOverride]; ok && !gw {
		env = append(env, corev1.EnvVar{Name: "ISTIO_BOOTSTRAP_OVERRIDE", Value: "/etc/istio/custom-bootstrap/custom_bootstrap.json"})
	}
	td := m.TrustDomain
	if td == "" {
		td = v.TrustDomain
	}
	meshID := v.MeshID
	if meshID == "" {
		meshID = td
	}
	if meshID != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_MESH_ID", Value: meshID})
	}
	if td != "" {
		env = append(env, corev1.EnvVar{Name: "TRUST_DOMAIN", Value: strings.TrimSuffix(td, "=")})
	}
	env = append(env, metadataEnv(p.proxyCfg)...)
	// Network and URL-path envs are removed from their template position and
	// appended after the template envs in sorted order (Istio's pkg/kube/inject/webhook.go).
	extra := make(map[string]string, len(p.proxyEnv)+1)
	if v.Network != "" {
		extra["ISTIO_META_NETWORK"] = v.Network
	}
	for k, val := range p.proxyEnv {
		extra[k] = val
	}
	if len(extra) > 0 {
		kept := env[:0]
		for _, e := range env {
			if _, ok := extra[e.Name]; !ok {
				kept = append(kept, e)
			}
		}
		env = kept
		for _, k := range sortedKeys(extra) {
			env = append(env, corev1.EnvVar{Name: k, Value: extra[k]})
		}
	}
	return env, nil
}

func (p *params) annoInt(key string, def int32) int32 {
	if s, ok := p.annos[key]; ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			return int32(n)
		}
	}
	return def
}

func podPortsJSON(pod *corev1.Pod) (string, error) {
	var ports []corev1.ContainerPort
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ProxyContainerName {
			continue
		}
		ports = append(ports, pod.Spec.Containers[i].Ports...)
	}
	if len(ports) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(ports)
	if err != nil {
		return "", fmt.Errorf("spec.containers[].ports: %w", err)
	}
	return string(b), nil
}

func (p *params) proxyMounts() []corev1.VolumeMount {
	v := p.cfg.Values.Global
	ms := []corev1.VolumeMount{
		{Name: "workload-socket", MountPath: "/var/run/secrets/workload-spiffe-uds"},
		{Name: "credential-socket", MountPath: "/var/run/secrets/credential-uds"},
		{Name: "workload-certs", MountPath: "/var/run/secrets/workload-spiffe-credentials"},
	}
	if v.PilotCertProvider == "istiod" {
		ms = append(ms, corev1.VolumeMount{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"})
		if p.template != TemplateGateway { // Istio's gateway template mounts no CRL
			ms = append(ms, corev1.VolumeMount{Name: "istio-ca-crl", MountPath: "/var/run/secrets/istio/crl"})
		}
	}
	ms = append(ms, corev1.VolumeMount{Name: "istio-data", MountPath: "/var/lib/istio/data"})
	if _, ok := p.annos[AnnotationBootstrapOverride]; ok && p.template == TemplateSidecar {
		ms = append(ms, corev1.VolumeMount{Name: "custom-bootstrap-volume", MountPath: "/etc/istio/custom-bootstrap"})
	}
	ms = append(ms,
		corev1.VolumeMount{Name: "istio-envoy", MountPath: "/etc/istio/proxy"},
		corev1.VolumeMount{Name: "istio-token", MountPath: "/var/run/secrets/tokens"})
	if v.MountMtlsCerts {
		ms = append(ms, corev1.VolumeMount{Name: "istio-certs", MountPath: "/etc/certs/", ReadOnly: true})
	}
	ms = append(ms, corev1.VolumeMount{Name: "istio-podinfo", MountPath: "/etc/istio/pod"})
	return ms
}

func (p *params) userMounts(c *corev1.Container) error {
	s, ok := p.annos[AnnotationUserVolumeMount]
	if !ok || p.template != TemplateSidecar {
		return nil
	}
	mounts, err := parseNamedList[corev1.VolumeMount](s, func(vm *corev1.VolumeMount) *string { return &vm.Name })
	if err != nil {
		return fieldErr("annotation "+AnnotationUserVolumeMount, err)
	}
	p.userMountList = mounts
	c.VolumeMounts = append(c.VolumeMounts, mounts...)
	return nil
}

// parseNamedList reads sidecar.istio.io/userVolume and userVolumeMount in
// both forms Istio's templates accept (range over fromJSON): a map keyed by
// name (sorted by key, as Go templates range over maps), or a JSON array
// whose items carry their own name (an item without one is named by its
// index, the key the template writes first).
func parseNamedList[T any](s string, name func(*T) *string) ([]T, error) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		var items []T
		if err := json.Unmarshal([]byte(t), &items); err != nil {
			return nil, err
		}
		for i := range items {
			if n := name(&items[i]); *n == "" {
				*n = strconv.Itoa(i)
			}
		}
		return items, nil
	}
	var m map[string]T
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(m))
	for _, k := range sortedKeys(m) {
		it := m[k]
		*name(&it) = k
		out = append(out, it)
	}
	return out, nil
}

// checkUserMounts denies userVolumeMount entries the API server would
// reject or that would shadow the sidecar's own files: a mountPath the
// sidecar already uses, or a volume the pod (with the injected and
// userVolume volumes) does not declare.
func (p *params) checkUserMounts(podVols, injectedVols []corev1.Volume) error {
	if len(p.userMountList) == 0 {
		return nil
	}
	declared := map[string]bool{}
	for _, vs := range [][]corev1.Volume{podVols, injectedVols} {
		for _, v := range vs {
			declared[v.Name] = true
		}
	}
	used := map[string]string{}
	for _, m := range p.proxyMounts() {
		used[strings.TrimSuffix(m.MountPath, "/")] = m.Name
	}
	var errs []error
	for _, m := range p.userMountList {
		if owner, ok := used[strings.TrimSuffix(m.MountPath, "/")]; ok {
			errs = append(errs, fieldErr("annotation "+AnnotationUserVolumeMount,
				fmt.Errorf("volume %q: mountPath %q is already used by the sidecar (volume %q)", m.Name, m.MountPath, owner)))
		}
		if !declared[m.Name] {
			errs = append(errs, fieldErr("annotation "+AnnotationUserVolumeMount,
				fmt.Errorf("volume %q is not declared by the pod (spec.volumes or %s)", m.Name, AnnotationUserVolume)))
		}
	}
	return errors.Join(errs...)
}

// volumes returns the injected volumes in template order (Istio's injection-template.yaml).
func (p *params) volumes(pod *corev1.Pod) ([]corev1.Volume, error) {
	v := p.cfg.Values.Global
	vs := []corev1.Volume{
		{Name: "workload-socket"},
		{Name: "credential-socket"},
		{Name: "workload-certs"},
	}
	sidecar := p.template == TemplateSidecar
	if p.template == TemplateGateway {
		// Istio's gateway template declares these two as emptyDir; the
		// sidecar template leaves them without a source.
		vs[1].EmptyDir, vs[2].EmptyDir = &corev1.EmptyDirVolumeSource{}, &corev1.EmptyDirVolumeSource{}
	}
	if cm, ok := p.annos[AnnotationBootstrapOverride]; ok && sidecar {
		vs = append(vs, corev1.Volume{Name: "custom-bootstrap-volume", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}})
	}
	vs = append(vs,
		corev1.Volume{Name: "istio-envoy", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		corev1.Volume{Name: "istio-data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
		}}}},
		corev1.Volume{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "istio-token", ExpirationSeconds: ptr(int64(43200)), Audience: v.Sds.Token.Aud},
		}}}}},
	)
	if v.PilotCertProvider == "istiod" {
		vs = append(vs,
			corev1.Volume{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: v.TrustBundleName}}}})
		if p.template != TemplateGateway {
			vs = append(vs, corev1.Volume{Name: "istio-ca-crl", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "istio-ca-crl"}, Optional: ptr(true)}}})
		}
	}
	if v.MountMtlsCerts {
		sa := pod.Spec.ServiceAccountName
		if sa == "" && !sidecar {
			sa = "default" // the gateway template names the default account's secret
		}
		vs = append(vs, corev1.Volume{Name: "istio-certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "istio." + sa, Optional: ptr(true)}}})
	}
	if s, ok := p.annos[AnnotationUserVolume]; ok && sidecar {
		uv, err := parseNamedList[corev1.Volume](s, func(v *corev1.Volume) *string { return &v.Name })
		if err != nil {
			return nil, fieldErr("annotation "+AnnotationUserVolume, err)
		}
		vs = append(vs, uv...)
		p.userVols = append(p.userVols, uv...)
	}
	return vs, nil
}
