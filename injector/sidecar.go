package injector

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	clientnetworking "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/template"
)

func ptr[T any](v T) *T { return &v }

// image builds an injected image name (Istio's pkg/kube/inject/inject.go, image URL
// construction): an annotation containing
// "/" is used as is; otherwise <hub>/<image>:<tag>[-<variant>]. An image the
// pod chose (proxyImage, proxyImageType, proxy.istio.io/config imageType) is
// used only if it is the configured one or allowed (guard.go).
func (p *params) image(name string) string {
	meshType := p.imageType(p.operatorCfg)
	configured := p.buildImage(name, meshType)
	if img := p.annos.ProxyImage; img.Set {
		return p.allowImage(img.Value, configured, "annotation "+AnnotationProxyImage)
	}
	if t := p.annos.ProxyImageType; t.Set {
		return p.allowImage(p.buildImage(name, t.Value), configured, "annotation "+AnnotationProxyImageType)
	}
	if t := p.imageType(p.proxyCfg); t != meshType {
		src := p.podSource(func(pc *meshv1alpha1.ProxyConfig) bool { return pc.GetImage() != nil })
		return p.allowImage(p.buildImage(name, t), configured, src+" (image.imageType)")
	}
	return configured
}

// imageType is the image type pc gives the proxy (Istio's ProxyImage):
// global.variant, unless pc sets an image, whose imageType then counts even
// when empty.
func (p *params) imageType(pc *meshv1alpha1.ProxyConfig) string {
	if img := pc.GetImage(); img != nil {
		return img.GetImageType()
	}
	return p.cfg.Values.Global.Variant
}

// buildImage is <hub>/<name>:<tag>[-<imageType>] (config.GlobalValues.ImageURL).
func (p *params) buildImage(name, imageType string) string {
	return p.cfg.Values.Global.ImageURL(name, imageType)
}

// excludeInbound is the status port appended to the excluded inbound ports
// unless present or 0 (Istio's template function excludeInboundPort).
func excludeInbound(statusPort int32, ports string) string {
	return template.ExcludeInboundPort(statusPort, ports)
}

// inboundPorts are the pod's inbound capture lists as the template computes
// them: the include list (annotation, else the values) and the exclusions
// (annotation, else the values) with the status port added. istio-init's
// arguments, the CNI annotations and the probe rewrite all read them.
func (p *params) inboundPorts() (include, exclude string) {
	a, v := p.annos, p.cfg.Values.Global.Proxy
	return a.IncludeInboundPorts.Or(*v.IncludeInboundPorts), excludeInbound(p.statusPort, a.ExcludeInboundPorts.Or(*v.ExcludeInboundPorts))
}

// initContainer builds istio-init (or istio-validation in CNI mode), as Istio's
// injection-template.yaml does.
func (p *params) initContainer() *corev1.Container {
	v := p.cfg.Values.Global
	m := p.cfg.Mesh
	a := p.annos
	uid := p.proxyUID
	if p.mode == meshv1alpha1.ProxyConfig_TPROXY {
		uid = defaultProxyID // the template pins it in TPROXY mode
	}
	included, excluded := p.inboundPorts()
	logLevel := a.AgentLogLevel.Or(v.Logging.Level)
	var strs stringBlock // the computed arguments, in one allocation
	strs.grow(3*20 + len("15090,15021,") + len(excluded) + len("--log_output_level=") + len(logLevel))
	listen, inbound, user := strs.int(int64(m.ProxyListenPort)), strs.int(int64(m.ProxyInboundListenPort)), strs.int(uid)
	exclude, level := strs.str("15090,15021,", excluded), strs.str("--log_output_level=", logLevel)
	args := make([]string, 0, 32) // room for the optional flags below
	args = append(args,
		"istio-iptables",
		"-p", strs.get(listen),
		"-z", strs.get(inbound),
		"-u", strs.get(user),
		"-m", p.mode.String(),
		"-i", a.IncludeOutboundIPRanges.Or(*v.Proxy.IncludeIPRanges),
		"-x", a.ExcludeOutboundIPRanges.Or(*v.Proxy.ExcludeIPRanges),
		"-b", included,
		"-d", strings.TrimSuffix(strs.get(exclude), ","),
	)
	// An annotation set to "" still adds the flag (Istio's template tests isset).
	if a.IncludeOutboundPorts.Set || *v.Proxy.IncludeOutboundPorts != "" {
		args = append(args, "-q", a.IncludeOutboundPorts.Or(*v.Proxy.IncludeOutboundPorts))
	}
	if a.ExcludeOutboundPorts.Set || *v.Proxy.ExcludeOutboundPorts != "" {
		args = append(args, "-o", a.ExcludeOutboundPorts.Or(*v.Proxy.ExcludeOutboundPorts))
	}
	if a.RerouteVirtualInterfaces.Set {
		args = append(args, "-k", a.RerouteVirtualInterfaces.Value)
	} else if a.KubevirtInterfaces.Set {
		args = append(args, "-k", a.KubevirtInterfaces.Value)
	}
	if a.ExcludeInterfaces.Set {
		args = append(args, "-c", a.ExcludeInterfaces.Value)
	}
	args = append(args, strs.get(level))
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
		Env:             slices.Clone(p.metadataEnvs),
	}
	// The proxy's resource lists, shared read-only (Result.Pod).
	c.Resources = p.resources
	sb := p.newSecurityBlock()
	s := &sb.scalars
	if p.cni {
		c.Name = ValidationContainerName
		sb.context = corev1.SecurityContext{
			AllowPrivilegeEscalation: s.bool(false),
			Privileged:               s.bool(false),
			Capabilities:             sb.capabilities(nil),
			ReadOnlyRootFilesystem:   s.bool(true),
			RunAsNonRoot:             s.bool(true),
			RunAsUser:                s.int64(p.proxyUID),
			RunAsGroup:               s.int64(p.proxyGID),
		}
		c.SecurityContext = &sb.context
		if p.mode == meshv1alpha1.ProxyConfig_TPROXY { // as -u above: validate as the UID the rules exclude
			c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup = ptr(int64(defaultProxyID)), ptr(int64(defaultProxyID))
		}
		return c
	}
	sb.context = corev1.SecurityContext{
		AllowPrivilegeEscalation: s.bool(v.Proxy.Privileged),
		Privileged:               s.bool(v.Proxy.Privileged),
		Capabilities:             sb.capabilities(netAdminRaw),
		ReadOnlyRootFilesystem:   s.bool(false),
		RunAsGroup:               s.int64(0),
		RunAsNonRoot:             s.bool(false),
		RunAsUser:                s.int64(0),
	}
	c.SecurityContext = &sb.context
	return c
}

// netAdminRaw are istio-init's added capabilities (read only).
var netAdminRaw = []corev1.Capability{"NET_ADMIN", "NET_RAW"}

// securityBlock backs one injected container's securityContext, its
// capabilities and its pointer fields with one allocation instead of one
// per object; every field has its own memory.
type securityBlock struct {
	context corev1.SecurityContext
	caps    corev1.Capabilities
	drop    [1]corev1.Capability
	add     [2]corev1.Capability
	scalars scalars
}

// newSecurityBlock hands out the securityBlocks of one injection:
// istio-init's and istio-proxy's come from one allocation.
func (p *params) newSecurityBlock() *securityBlock {
	if len(p.securityBlocks) == 0 {
		p.securityBlocks = make([]securityBlock, 2)
	}
	b := &p.securityBlocks[0]
	p.securityBlocks = p.securityBlocks[1:]
	return b
}

// capabilities drops ALL and adds add (copied; nil adds none).
func (b *securityBlock) capabilities(add []corev1.Capability) *corev1.Capabilities {
	b.drop[0] = "ALL"
	b.caps.Drop = b.drop[:]
	if len(add) > 0 {
		b.caps.Add = append(b.add[:0:len(b.add)], add...)
	}
	return &b.caps
}

// scalars backs the pointer fields of one container's securityContext with
// one allocation instead of one per field; each field gets its own slot,
// so no two fields share memory. Beyond its slots it allocates as ptr does.
type scalars struct {
	bools  [6]bool
	ints   [4]int64
	nb, ni int
}

func (s *scalars) bool(v bool) *bool {
	if s.nb == len(s.bools) {
		return ptr(v)
	}
	b := &s.bools[s.nb]
	s.nb++
	*b = v
	return b
}

func (s *scalars) int64(v int64) *int64 {
	if s.ni == len(s.ints) {
		return ptr(v)
	}
	n := &s.ints[s.ni]
	s.ni++
	*n = v
	return n
}

// envRefs backs the valueFrom sources of istio-proxy's env (six field and
// two resource references, two allocations each otherwise) with one
// allocation; each env var gets its own elements. Beyond its slots it
// allocates.
type envRefs struct {
	srcs   []corev1.EnvVarSource
	fields []corev1.ObjectFieldSelector
	res    []corev1.ResourceFieldSelector
	block  struct {
		srcs   [8]corev1.EnvVarSource
		fields [6]corev1.ObjectFieldSelector
		res    [2]corev1.ResourceFieldSelector
	}
}

func newEnvRefs() *envRefs {
	r := new(envRefs)
	r.srcs, r.fields, r.res = r.block.srcs[:], r.block.fields[:], r.block.res[:]
	return r
}

func (r *envRefs) source() *corev1.EnvVarSource {
	if len(r.srcs) == 0 {
		return &corev1.EnvVarSource{}
	}
	s := &r.srcs[0]
	r.srcs = r.srcs[1:]
	return s
}

// field is fieldEnv(name, path).
func (r *envRefs) field(name, path string) corev1.EnvVar {
	if len(r.fields) == 0 {
		return fieldEnv(name, path)
	}
	sel := &r.fields[0]
	r.fields = r.fields[1:]
	sel.FieldPath = path
	src := r.source()
	src.FieldRef = sel
	return corev1.EnvVar{Name: name, ValueFrom: src}
}

// resource is resourceEnv(name, res).
func (r *envRefs) resource(name, res string) corev1.EnvVar {
	if len(r.res) == 0 {
		return resourceEnv(name, res)
	}
	sel := &r.res[0]
	r.res = r.res[1:]
	*sel = corev1.ResourceFieldSelector{Resource: res, Divisor: one}
	src := r.source()
	src.ResourceFieldRef = sel
	return corev1.EnvVar{Name: name, ValueFrom: src}
}

// stringBlock builds a few short strings in one buffer, so they share one
// allocation (strings.Builder.String does not copy): str and int append a
// string and return its index for get. Size it with grow first, or the
// first str may allocate a buffer too small for the rest.
type stringBlock struct {
	b    strings.Builder
	ends [8]int
	n    int
}

func (s *stringBlock) grow(n int) { s.b.Grow(n) }

func (s *stringBlock) str(a, b string) int {
	if s.b.Cap() == 0 {
		s.b.Grow(128)
	}
	s.b.WriteString(a)
	s.b.WriteString(b)
	return s.end()
}

func (s *stringBlock) int(v int64) int {
	var digits [20]byte
	s.b.Write(strconv.AppendInt(digits[:0], v, 10))
	return s.end()
}

func (s *stringBlock) end() int {
	s.ends[s.n] = s.b.Len()
	s.n++
	return s.n - 1
}

// get returns string i; the buffer is never written again at its offsets.
func (s *stringBlock) get(i int) string {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.b.String()[start:s.ends[i]]
}

// metadataEnv is the effective proxyMetadata as env vars, by name, each entry
// as Istio's template renders it (config.TemplateEnv). An entry that
// fails there is an error naming the input that set it: the mesh config's
// are checked when it loads, so it is a pod-level input's or the root
// namespace's ProxyConfig resource's.
func (p *params) metadataEnv(root *clientnetworking.ProxyConfig) ([]corev1.EnvVar, error) {
	md := p.proxyCfg.GetProxyMetadata()
	if len(md) == 0 {
		return nil, nil
	}
	out := make([]corev1.EnvVar, 0, len(md))
	for _, k := range sortedKeys(md) {
		name, v, err := config.TemplateEnv(k, md[k])
		if err != nil {
			src := crSource(root)
			if src == "" {
				src = "mesh config defaultConfig"
			}
			for _, l := range p.podLayers {
				if _, ok := l.sets.GetProxyMetadata()[k]; ok {
					src = l.source
				}
			}
			return nil, fieldErr(src+" (proxyMetadata."+k+")", err)
		}
		out = append(out, corev1.EnvVar{Name: name, Value: v})
	}
	return out, nil
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
	// The resources resolved for this request (istio-init shares them).
	c.Resources = p.resources
	if p.native {
		c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	}
	if p.statusPort != 0 {
		// Both probes and their actions in one allocation; each probe has its own action.
		pr := new(struct {
			startup, readiness       corev1.Probe
			startupGet, readinessGet corev1.HTTPGetAction
		})
		pr.readinessGet = corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromInt32(15021)}
		pr.startupGet = pr.readinessGet
		if *v.Proxy.StartupProbe.Enabled {
			pr.startup = corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: &pr.startupGet},
				PeriodSeconds:    1,
				TimeoutSeconds:   3,
				FailureThreshold: *v.Proxy.StartupProbe.FailureThreshold,
			}
			c.StartupProbe = &pr.startup
		}
		pr.readiness = corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &pr.readinessGet},
			InitialDelaySeconds: p.annos.ReadinessInitialDelaySeconds.Or(*v.Proxy.ReadinessInitialDelaySeconds),
			PeriodSeconds:       p.annos.ReadinessPeriodSeconds.Or(*v.Proxy.ReadinessPeriodSeconds),
			TimeoutSeconds:      3,
			FailureThreshold:    p.annos.ReadinessFailureThreshold.Or(*v.Proxy.ReadinessFailureThreshold),
		}
		c.ReadinessProbe = &pr.readiness
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
	sb := p.newSecurityBlock()
	s := &sb.scalars
	sb.context = corev1.SecurityContext{
		AllowPrivilegeEscalation: s.bool(v.Proxy.Privileged),
		Privileged:               s.bool(v.Proxy.Privileged),
		Capabilities:             sb.capabilities(nil),
		ReadOnlyRootFilesystem:   s.bool(true),
		RunAsGroup:               s.int64(p.proxyGID),
		RunAsNonRoot:             s.bool(true),
		RunAsUser:                s.int64(p.proxyUID),
	}
	sc := &sb.context
	tproxy := p.mode == meshv1alpha1.ProxyConfig_TPROXY
	netBind := p.netBindService()
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
		// The template's trace-logging context: privileged root with
		// NET_ADMIN only, a read-only root and the proxy group, replacing the
		// TPROXY/NET_BIND_SERVICE one.
		sc.Privileged, sc.AllowPrivilegeEscalation = ptr(true), ptr(true)
		sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}}
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot, sc.ReadOnlyRootFilesystem = ptr(int64(0)), ptr(p.proxyGID), ptr(false), ptr(true)
	}
	c.SecurityContext = sc
	p.userMounts(c)
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
	var strs stringBlock // the computed arguments, in one allocation
	domain := strs.str("$(POD_NAMESPACE).svc.", v.Proxy.ClusterDomain)
	proxyLevel := strs.str("--proxyLogLevel=", p.annos.LogLevel.Or(v.Proxy.LogLevel))
	componentLevel := strs.str("--proxyComponentLogLevel=", p.annos.ComponentLogLevel.Or(v.Proxy.ComponentLogLevel))
	agentLevel := strs.str("--log_output_level=", p.annos.AgentLogLevel.Or(v.Logging.Level))
	args := make([]string, 0, 9)
	args = append(args,
		"proxy", role,
		"--domain", strs.get(domain),
		strs.get(proxyLevel),
		strs.get(componentLevel),
		strs.get(agentLevel),
	)
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
		caAddr = defaultCAAddr(p.cfg.Values.Revision, v.IstioNamespace)
	}
	// Not for a native sidecar: its recorded override lives under
	// initContainers, which Istio's reinsertOverrides does not put back into
	// .Spec.Containers, so a re-injection would drop the ports again (the
	// pod would change on every reinvocation).
	specContainers := pod.Spec.Containers
	if p.specContainers != nil && !p.native {
		specContainers = p.specContainers
	}
	podPorts := podPortsJSON(specContainers)
	var appNames []string
	for i := range pod.Spec.Containers {
		if n := pod.Spec.Containers[i].Name; n != ProxyContainerName {
			appNames = append(appNames, n)
		}
	}
	refs := newEnvRefs()
	env = append(env,
		corev1.EnvVar{Name: "PILOT_CERT_PROVIDER", Value: v.PilotCertProvider},
		corev1.EnvVar{Name: "CA_ADDR", Value: caAddr},
		refs.field("POD_NAME", "metadata.name"),
		refs.field("POD_NAMESPACE", "metadata.namespace"),
		refs.field("INSTANCE_IP", "status.podIP"),
		refs.field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		refs.field("HOST_IP", "status.hostIP"),
		refs.resource("ISTIO_CPU_LIMIT", "limits.cpu"),
		corev1.EnvVar{Name: "PROXY_CONFIG", Value: p.proxyJSON},
		corev1.EnvVar{Name: "ISTIO_META_POD_PORTS", Value: podPorts},
	)
	if gw {
		env = append(env, refs.resource("GOMEMLIMIT", "limits.memory"),
			corev1.EnvVar{Name: "ISTIO_META_APP_CONTAINERS", Value: strings.Join(appNames, ",")})
	} else {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_APP_CONTAINERS", Value: strings.Join(appNames, ",")},
			refs.resource("GOMEMLIMIT", "limits.memory"))
	}
	mode := p.mode.String()
	if gw {
		mode = p.proxyCfg.GetInterceptionMode().String() // the gateway template ignores the annotation
	}
	clusterID := v.MultiCluster.ClusterName
	if clusterID == "" {
		clusterID = "Kubernetes"
	}
	env = append(env,
		corev1.EnvVar{Name: "ISTIO_META_CLUSTER_ID", Value: clusterID},
		refs.field("ISTIO_META_NODE_NAME", "spec.nodeName"),
		corev1.EnvVar{Name: "ISTIO_META_INTERCEPTION_MODE", Value: mode},
	)
	if v.Network != "" { // template position; moved below when the pod's network is known
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_NETWORK", Value: v.Network})
	}
	workload := pod.Labels[LabelWorkloadName]
	if gw || workload == "" {
		workload = p.owner.Name
	}
	if workload != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_WORKLOAD_NAME", Value: workload})
	}
	if p.owner.Name != "" && p.owner.APIVersion != "" {
		ns := p.owner.Namespace // the template's .DeploymentMeta.Namespace
		if ns == "" {
			ns = "default"
		}
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_OWNER",
			Value: "kubernetes://apis/" + p.owner.APIVersion + "/namespaces/" + ns + "/" + strings.ToLower(p.owner.Kind) + "s/" + p.owner.Name})
	}
	// Both stock templates (injection-template.yaml and
	// gateway-injection-template.yaml) emit it when the annotation is set.
	if p.annos.BootstrapOverride.Set {
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
	env = append(env, p.metadataEnvs...)
	// Network and URL-path envs are removed from their template position and
	// appended after the template envs in sorted order (Istio's pkg/kube/inject/webhook.go).
	extra := make(map[string]string, len(p.proxyEnv)+1)
	for k, val := range p.proxyEnv {
		extra[k] = val
	}
	if n := p.network(); n != "" {
		extra["ISTIO_META_NETWORK"] = n
	}
	// Istio's extractClusterAndNetwork: the values' cluster name unless the
	// URL path names one; either way it is moved here like the network.
	if c := v.MultiCluster.ClusterName; c != "" && extra["ISTIO_META_CLUSTER_ID"] == "" {
		extra["ISTIO_META_CLUSTER_ID"] = c
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

// defaultCAAddr is CA_ADDR when the values set no caAddress (Istio's
// injection-template.yaml: istiod[-<revision>].<istioNamespace>.svc:15012).
// The last one built is kept, so the pods of one config share it instead of
// each concatenating its own.
func defaultCAAddr(revision, istioNamespace string) string {
	if c := lastCAAddr.Load(); c != nil && c.revision == revision && c.namespace == istioNamespace {
		return c.addr
	}
	rev := ""
	if revision != "" && revision != "default" {
		rev = "-" + revision
	}
	c := &caAddr{revision, istioNamespace, "istiod" + rev + "." + istioNamespace + ".svc:15012"}
	lastCAAddr.Store(c)
	return c.addr
}

type caAddr struct{ revision, namespace, addr string }

var lastCAAddr atomic.Pointer[caAddr]

// podPortsJSON is ISTIO_META_POD_PORTS: the ports of every container the
// template sees, a user-declared istio-proxy included (Istio's template
// ranges over all of .Spec.Containers, unlike ISTIO_META_APP_CONTAINERS).
func podPortsJSON(containers []corev1.Container) string {
	// Spelled as Istio's template writes it (injection-template.yaml
	// ISTIO_META_POD_PORTS): "[", then each port (structToJSON, i.e.
	// json.Marshal) on its own line indented by four spaces, every one
	// after the first with a leading comma, then "]".
	n := 0
	for i := range containers {
		for j := range containers[i].Ports {
			p := &containers[i].Ports[j]
			n += 96 + len(p.Name) + len(p.Protocol) + len(p.HostIP)
		}
	}
	if n == 0 {
		return "[\n]"
	}
	b := make([]byte, 0, n+3)
	b = append(b, '[')
	first := true
	for i := range containers {
		for j := range containers[i].Ports {
			b = append(b, "\n    "...)
			if !first {
				b = append(b, ',')
			}
			b = appendContainerPort(b, &containers[i].Ports[j])
			first = false
		}
	}
	return string(append(b, "\n]"...))
}

// appendContainerPort appends json.Marshal(*p): corev1.ContainerPort's
// fields in struct order, all but containerPort omitempty
// (TestPodPortsJSONMatchesEncodingJSON checks the bytes and the fields).
func appendContainerPort(b []byte, p *corev1.ContainerPort) []byte {
	b = append(b, '{')
	if p.Name != "" {
		b = AppendJSONString(append(b, `"name":`...), p.Name)
		b = append(b, ',')
	}
	if p.HostPort != 0 {
		b = strconv.AppendInt(append(b, `"hostPort":`...), int64(p.HostPort), 10)
		b = append(b, ',')
	}
	b = strconv.AppendInt(append(b, `"containerPort":`...), int64(p.ContainerPort), 10)
	if p.Protocol != "" {
		b = AppendJSONString(append(b, `,"protocol":`...), string(p.Protocol))
	}
	if p.HostIP != "" {
		b = AppendJSONString(append(b, `,"hostIP":`...), p.HostIP)
	}
	return append(b, '}')
}

func (p *params) proxyMounts() []corev1.VolumeMount {
	v := p.cfg.Values.Global
	ms := make([]corev1.VolumeMount, 0, 12) // room for all, so one allocation
	ms = append(ms,
		corev1.VolumeMount{Name: "workload-socket", MountPath: "/var/run/secrets/workload-spiffe-uds"},
		corev1.VolumeMount{Name: "credential-socket", MountPath: "/var/run/secrets/credential-uds"},
		corev1.VolumeMount{Name: "workload-certs", MountPath: "/var/run/secrets/workload-spiffe-credentials"},
	)
	if v.PilotCertProvider == "istiod" {
		ms = append(ms, corev1.VolumeMount{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"})
		if p.template != TemplateGateway { // Istio's gateway template mounts no CRL
			ms = append(ms, corev1.VolumeMount{Name: "istio-ca-crl", MountPath: "/var/run/secrets/istio/crl"})
		}
	}
	ms = append(ms, corev1.VolumeMount{Name: "istio-data", MountPath: "/var/lib/istio/data"})
	if p.annos.BootstrapOverride.Set { // sidecar and gateway templates alike
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

// userMounts adds sidecar.istio.io/userVolumeMount (sidecar template only).
func (p *params) userMounts(c *corev1.Container) {
	if p.template == TemplateSidecar {
		c.VolumeMounts = append(c.VolumeMounts, p.annos.UserVolumeMounts...)
	}
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
	if len(p.annos.UserVolumeMounts) == 0 {
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
	for _, m := range p.annos.UserVolumeMounts {
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
	src := new(volumeSources) // the sources below, allocated together
	// Room for the pod's own volumes too: apply merges them in place.
	vs := make([]corev1.Volume, 0, maxInjectedVolumes+len(p.annos.UserVolumes)+len(pod.Spec.Volumes))
	vs = append(vs,
		corev1.Volume{Name: "workload-socket"},
		corev1.Volume{Name: "credential-socket"},
		corev1.Volume{Name: "workload-certs"},
	)
	sidecar := p.template == TemplateSidecar
	if p.template == TemplateGateway {
		// Istio's gateway template declares these two as emptyDir; the
		// sidecar template leaves them without a source.
		vs[1].EmptyDir, vs[2].EmptyDir = &src.credentialSocket, &src.workloadCerts
	}
	// Both stock templates: `isset .ObjectMeta.Annotations
	// "sidecar.istio.io/bootstrapOverride"`, the ConfigMap named by its value.
	if cm := p.annos.BootstrapOverride; cm.Set {
		vs = append(vs, corev1.Volume{Name: "custom-bootstrap-volume", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Value}}}})
	}
	src.envoy.Medium = corev1.StorageMediumMemory
	src.podinfoRefs = [2]corev1.ObjectFieldSelector{{FieldPath: "metadata.labels"}, {FieldPath: "metadata.annotations"}}
	src.podinfoItems = [2]corev1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &src.podinfoRefs[0]},
		{Path: "annotations", FieldRef: &src.podinfoRefs[1]},
	}
	src.podinfo.Items = src.podinfoItems[:]
	src.tokenExpiry = 43200
	src.token = corev1.ServiceAccountTokenProjection{Path: "istio-token", ExpirationSeconds: &src.tokenExpiry, Audience: v.Sds.Token.Aud}
	src.tokenSources[0].ServiceAccountToken = &src.token
	src.projected.Sources = src.tokenSources[:]
	vs = append(vs,
		corev1.Volume{Name: "istio-envoy", VolumeSource: corev1.VolumeSource{EmptyDir: &src.envoy}},
		corev1.Volume{Name: "istio-data", VolumeSource: corev1.VolumeSource{EmptyDir: &src.data}},
		corev1.Volume{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &src.podinfo}},
		corev1.Volume{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &src.projected}},
	)
	if v.PilotCertProvider == "istiod" {
		src.caCert.Name = v.TrustBundleName
		vs = append(vs, corev1.Volume{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{ConfigMap: &src.caCert}})
		if p.template != TemplateGateway {
			src.crlOptional = true
			src.crl = corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "istio-ca-crl"}, Optional: &src.crlOptional}
			vs = append(vs, corev1.Volume{Name: "istio-ca-crl", VolumeSource: corev1.VolumeSource{ConfigMap: &src.crl}})
		}
	}
	if v.MountMtlsCerts {
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			// Both templates name the default account's secret (Istio's
			// injection-template.yaml: {{ if eq .Spec.ServiceAccountName "" }}
			// secretName: istio.default).
			sa = "default"
		}
		vs = append(vs, corev1.Volume{Name: "istio-certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "istio." + sa, Optional: ptr(true)}}})
	}
	if uv := p.annos.UserVolumes; len(uv) > 0 && sidecar {
		vs = append(vs, uv...)
		p.userVols = append(p.userVols, uv...)
	}
	return vs, nil
}

// maxInjectedVolumes is the most volumes volumes injects besides the
// userVolume ones: three sockets and certificate directories, a custom
// bootstrap, istio-envoy, istio-data, istio-podinfo, istio-token, the CA
// certificate and CRL, and the mTLS certificates.
const maxInjectedVolumes = 11

// volumeSources backs the sources of the injected volumes: a dozen small
// objects every injection needs, in one allocation instead of one each.
// Every volume points at its own fields.
type volumeSources struct {
	credentialSocket, workloadCerts, envoy, data corev1.EmptyDirVolumeSource
	podinfo                                      corev1.DownwardAPIVolumeSource
	podinfoItems                                 [2]corev1.DownwardAPIVolumeFile
	podinfoRefs                                  [2]corev1.ObjectFieldSelector
	projected                                    corev1.ProjectedVolumeSource
	tokenSources                                 [1]corev1.VolumeProjection
	token                                        corev1.ServiceAccountTokenProjection
	tokenExpiry                                  int64
	caCert, crl                                  corev1.ConfigMapVolumeSource
	crlOptional                                  bool
}
