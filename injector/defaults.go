package injector

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The API server defaults a pod after every mutating webhook, so a
// reinvocation (reinvocationPolicy: IfNeeded) sees the injected containers
// with defaults filled in. To keep the second call a no-op, CreatePatch
// compares an item with the defaulted form of its replacement too. These
// mirror the subset of k8s.io/kubernetes pkg/apis/core/v1/defaults.go that
// applies to what injection generates; they are used for comparison only,
// the emitted objects stay as Istio renders them.

const defaultMode int32 = 0o644

func defaultedContainer(c *corev1.Container) *corev1.Container {
	c = c.DeepCopy()
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
		if img := c.Image; !strings.Contains(img, "@") {
			if i := strings.LastIndex(img, ":"); i < 0 || strings.Contains(img[i:], "/") || img[i+1:] == "latest" {
				c.ImagePullPolicy = corev1.PullAlways
			}
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
	defaultLifecycle(c.Lifecycle)
	// SetDefaults_Pod: requests default to limits when unset.
	if len(c.Resources.Limits) > 0 {
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		for k, v := range c.Resources.Limits {
			if _, ok := c.Resources.Requests[k]; !ok {
				c.Resources.Requests[k] = v.DeepCopy()
			}
		}
	}
	return c
}

// defaultProbe sets what the API server defaults in a probe (SetDefaults_Probe,
// SetDefaults_HTTPGetAction), in place; nil is left alone.
func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
}

// defaultLifecycle sets what the API server defaults in lifecycle hooks, in place.
func defaultLifecycle(lc *corev1.Lifecycle) {
	if lc == nil {
		return
	}
	for _, h := range []*corev1.LifecycleHandler{lc.PreStop, lc.PostStart} {
		if h != nil {
			defaultHTTPGet(h.HTTPGet)
		}
	}
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func defaultedVolume(v *corev1.Volume) *corev1.Volume {
	v = v.DeepCopy()
	s := &v.VolumeSource
	if *s == (corev1.VolumeSource{}) {
		s.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	mode := func(m **int32) {
		if *m == nil {
			dm := defaultMode
			*m = &dm
		}
	}
	if s.ConfigMap != nil {
		mode(&s.ConfigMap.DefaultMode)
	}
	if s.Secret != nil {
		mode(&s.Secret.DefaultMode)
	}
	if s.Projected != nil {
		mode(&s.Projected.DefaultMode)
	}
	if s.DownwardAPI != nil {
		mode(&s.DownwardAPI.DefaultMode)
		for i := range s.DownwardAPI.Items {
			if fr := s.DownwardAPI.Items[i].FieldRef; fr != nil && fr.APIVersion == "" {
				fr.APIVersion = "v1"
			}
		}
	}
	return v
}
