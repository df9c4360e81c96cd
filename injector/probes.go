package injector

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	envAppProbers      = "ISTIO_KUBE_APP_PROBERS"
	envPromAnnotations = "ISTIO_PROMETHEUS_ANNOTATIONS"
)

func (p *params) rewriteProbes() bool {
	if p.meshStatus == 0 {
		return false // nothing listens for rewritten probes
	}
	return p.annos.RewriteAppHTTPProbers.Or(*p.cfg.Values.SidecarInjectorWebhook.RewriteAppHTTPProbe)
}

// hasProbesOrHooks reports whether a container of pod has something
// rewriteContainer may rewrite.
func hasProbesOrHooks(pod *corev1.Pod) bool {
	for _, cs := range [...][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if hasRewritable(&cs[i]) {
				return true
			}
		}
	}
	return false
}

// rewriteContainer points c's httpGet/tcpSocket/grpc probes and httpGet/
// tcpSocket lifecycle hooks at pilot-agent's status port and records the
// originals in probers (Istio's pkg/kube/inject/app_probe.go).
func (p *params) rewriteContainer(c *corev1.Container, probers map[string]*prober) {
	if !hasRewritable(c) {
		return
	}
	if !p.probePortsSet {
		p.probePorts, p.probePortsSet = p.probePortInclusion(), true
	}
	base := "/app-health/" + c.Name + "/"
	c.ReadinessProbe = p.rewriteProbe(c, c.ReadinessProbe, base+"readyz", probers)
	c.LivenessProbe = p.rewriteProbe(c, c.LivenessProbe, base+"livez", probers)
	c.StartupProbe = p.rewriteProbe(c, c.StartupProbe, base+"startupz", probers)
	if lc := c.Lifecycle; lc != nil {
		lbase := "/app-lifecycle/" + c.Name + "/"
		lc.PreStop = p.rewriteHook(c, lc.PreStop, lbase+"prestopz", probers)
		lc.PostStart = p.rewriteHook(c, lc.PostStart, lbase+"poststartz", probers)
	}
}

// restoreContainer gives c's probes and lifecycle hooks that a previous
// injection rewrote their app targets back from probers, keyed by the path
// the rewrite gave each (rewriteContainer); see undoPostProcess.
func restoreContainer(c *corev1.Container, probers map[string]*prober) {
	base := "/app-health/" + c.Name + "/"
	for _, pr := range []struct {
		probe **corev1.Probe
		path  string
	}{{&c.ReadinessProbe, base + "readyz"}, {&c.LivenessProbe, base + "livez"}, {&c.StartupProbe, base + "startupz"}} {
		if *pr.probe == nil {
			continue
		}
		if orig := recordedFor((*pr.probe).HTTPGet, pr.path, probers); orig != nil {
			out := (*pr.probe).DeepCopy()
			out.ProbeHandler = corev1.ProbeHandler{HTTPGet: orig.HTTPGet.DeepCopy(), TCPSocket: orig.TCPSocket.DeepCopy(), GRPC: orig.GRPC.DeepCopy()}
			// The record holds the app's timeout (rewriteProbe); a stored
			// pod's 1 where the app wrote none is the API server's default,
			// which must not become a new record (reinvocation: no change).
			if orig.TimeoutSeconds == 0 && out.TimeoutSeconds == 1 {
				out.TimeoutSeconds = 0
			}
			*pr.probe = out
		}
	}
	if c.Lifecycle == nil {
		return
	}
	lbase := "/app-lifecycle/" + c.Name + "/"
	for _, h := range []struct {
		handler **corev1.LifecycleHandler
		path    string
	}{{&c.Lifecycle.PreStop, lbase + "prestopz"}, {&c.Lifecycle.PostStart, lbase + "poststartz"}} {
		if *h.handler == nil {
			continue
		}
		// A hook's target is an HTTP or TCP one (rewriteHook records no other).
		if orig := recordedFor((*h.handler).HTTPGet, h.path, probers); orig != nil && orig.GRPC == nil {
			out := (*h.handler).DeepCopy()
			out.HTTPGet, out.TCPSocket = orig.HTTPGet.DeepCopy(), orig.TCPSocket.DeepCopy()
			*h.handler = out
		}
	}
}

// recordedFor is the target probers recorded for path when get is the
// rewrite of one (an HTTP GET of path on a port number), else nil.
func recordedFor(get *corev1.HTTPGetAction, path string, probers map[string]*prober) *prober {
	if get == nil || get.Path != path || get.Port.Type != intstr.Int {
		return nil
	}
	orig := probers[path]
	if orig == nil {
		return nil
	}
	// Exactly one target, as rewriteProbe and rewriteHook record.
	n := 0
	for _, set := range []bool{orig.HTTPGet != nil, orig.TCPSocket != nil, orig.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil
	}
	return orig
}

func (p *params) statusPortTarget() intstr.IntOrString { return intstr.FromInt32(p.meshStatus) }

func (p *params) rewriteProbe(c *corev1.Container, pr *corev1.Probe, path string, probers map[string]*prober) *corev1.Probe {
	if pr == nil {
		return nil
	}
	h := &pr.ProbeHandler
	if !p.portIncluded(c, probePort(h.HTTPGet, h.TCPSocket, h.GRPC)) {
		return pr
	}
	var orig *prober
	switch {
	case h.HTTPGet != nil:
		if p.alreadyRewritten(h.HTTPGet.Port) {
			return pr
		}
		orig = appTarget(c, h.HTTPGet, nil)
		out := pr.DeepCopy()
		out.HTTPGet.Port = p.statusPortTarget()
		out.HTTPGet.Path = path
		if out.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			out.HTTPGet.Scheme = corev1.URISchemeHTTP
		}
		pr = out
	case h.TCPSocket != nil:
		orig = appTarget(c, nil, h.TCPSocket)
		out := pr.DeepCopy()
		out.TCPSocket = nil
		out.HTTPGet = &corev1.HTTPGetAction{Path: path, Port: p.statusPortTarget()}
		pr = out
	case h.GRPC != nil:
		orig = &prober{GRPC: h.GRPC.DeepCopy()}
		out := pr.DeepCopy()
		out.GRPC = nil
		out.HTTPGet = &corev1.HTTPGetAction{Path: path, Port: p.statusPortTarget()}
		pr = out
	default:
		return pr // exec probes are untouched
	}
	if orig != nil {
		orig.TimeoutSeconds = pr.TimeoutSeconds
		probers[path] = orig
	}
	return pr
}

func (p *params) rewriteHook(c *corev1.Container, h *corev1.LifecycleHandler, path string, probers map[string]*prober) *corev1.LifecycleHandler {
	if h == nil {
		return nil
	}
	if !p.portIncluded(c, probePort(h.HTTPGet, h.TCPSocket, nil)) {
		return h
	}
	switch {
	case h.HTTPGet != nil:
		if p.alreadyRewritten(h.HTTPGet.Port) {
			return h
		}
		if orig := appTarget(c, h.HTTPGet, nil); orig != nil {
			probers[path] = orig
		}
		// Istio's convertAppLifecycleHandlerHTTPGet: a copy with only the
		// port, the path and HTTPS→HTTP changed (host and headers kept).
		out := h.DeepCopy()
		out.HTTPGet.Port = p.statusPortTarget()
		out.HTTPGet.Path = path
		if out.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			out.HTTPGet.Scheme = corev1.URISchemeHTTP
		}
		return out
	case h.TCPSocket != nil:
		if orig := appTarget(c, nil, h.TCPSocket); orig != nil {
			probers[path] = orig
		}
		return &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: p.statusPortTarget()}}
	}
	return h
}

// appTarget is the app's own HTTP or TCP target (one of get, tcp) with a
// named port resolved to its number, for pilot-agent to call; nil when the
// port name does not exist in the container.
func appTarget(c *corev1.Container, get *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction) *prober {
	var port intstr.IntOrString
	if get != nil {
		port = get.Port
	} else {
		port = tcp.Port
	}
	resolved, ok := resolvePort(c, port)
	if !ok {
		return nil
	}
	if get != nil {
		g := get.DeepCopy()
		g.Port = resolved
		return &prober{HTTPGet: g}
	}
	t := tcp.DeepCopy()
	t.Port = resolved
	return &prober{TCPSocket: t}
}

// probePort is the port a probe or hook targets (HTTP, TCP or gRPC).
func probePort(get *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction, grpc *corev1.GRPCAction) intstr.IntOrString {
	switch {
	case get != nil:
		return get.Port
	case tcp != nil:
		return tcp.Port
	case grpc != nil:
		return intstr.FromInt32(grpc.Port)
	}
	return intstr.IntOrString{}
}

// probePortInclusion is Istio's getPortInclusionOrExclusionList
// (pkg/kube/inject/app_probe.go) over the pod's interception annotations as
// the template leaves them (the CNI block writes them with the values'
// defaults; without CNI only the pod's own count): an include list other
// than "*" maps its ports to true and ignores the exclusions; otherwise the
// excluded ports map to false. Nil when it names no port (every port).
func (p *params) probePortInclusion() map[int32]bool {
	include, exclude := p.annos.IncludeInboundPorts.Or(""), p.annos.ExcludeInboundPorts.Or("")
	if p.cni && p.template == TemplateSidecar {
		include, exclude = p.inboundPorts()
	}
	var ports map[int32]bool
	list, included := exclude, false
	if include != "" && include != "*" {
		list, included = include, true
	}
	for _, s := range strings.Split(list, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n != 0 {
			if ports == nil {
				ports = map[int32]bool{}
			}
			ports[int32(n)] = included
		}
	}
	return ports
}

// portIncluded is Istio's isPortIncluded for c's probe or hook port: a port
// the inclusion map names decides by its entry; any other is included unless
// the map lists included ports. A named port is resolved first (an unknown
// name counts as 0), and the answer decides both the rewrite and the record.
// Istio judges those apart (pkg/kube/inject/app_probe.go): shouldPatchProbe
// and shouldPatchLifecycleHandler read Port.IntVal, 0 for a name, while
// DumpAppProbers resolves the name; under an include or exclude list a named
// port's probe can so be recorded but not rewritten, or rewritten with no
// prober for pilot-agent to call. A deliberate difference
// (TestProbesOnPortsLeftOutOfCapture).
func (p *params) portIncluded(c *corev1.Container, port intstr.IntOrString) bool {
	if len(p.probePorts) == 0 {
		return true
	}
	var n int32
	if r, ok := resolvePort(c, port); ok {
		n = r.IntVal
	}
	if inc, ok := p.probePorts[n]; ok {
		return inc
	}
	for _, inc := range p.probePorts {
		if inc {
			return false
		}
	}
	return true
}

func (p *params) alreadyRewritten(port intstr.IntOrString) bool {
	return port.Type == intstr.Int && port.IntVal == p.meshStatus
}

// resolvePort turns a named port into the container's port number.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (intstr.IntOrString, bool) {
	if port.Type == intstr.Int {
		return port, true
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return intstr.FromInt(n), true
	}
	for _, cp := range c.Ports {
		if strings.EqualFold(cp.Name, port.StrVal) && cp.Name == port.StrVal {
			return intstr.FromInt32(cp.ContainerPort), true
		}
	}
	return port, false
}
