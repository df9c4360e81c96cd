package injector

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// Pod-level inputs (annotations, user-declared injected containers) must not
// change the proxy image or weaken the sidecar's security settings unless the
// values' `meshguard:` allow-list permits it (a deliberate
// difference from Istio, docs/compatibility.md "Pod-level overrides").
// Images are ignored with a warning (the configured image still works);
// privilege and hostPath requests deny the pod, because dropping them would
// silently change what the pod does or leave it referencing a missing volume.

// FieldError is an error about one pod field or annotation. Its message may
// quote the offending value: return it to the requester, but log only Field
// (see Fields), since values can hold secrets.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, err error) error { return &FieldError{Field: field, Err: err} }

// Fields returns the fields named by the FieldErrors in err (through
// fmt.Errorf %w and errors.Join), in order, for logging without values.
func Fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			if !slices.Contains(out, fe.Field) {
				out = append(out, fe.Field)
			}
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

const (
	allowImagesKey     = "values meshguard.allowedProxyImages"
	allowPrivilegedKey = "values meshguard.allowPrivilegedOverrides"
	allowHostPathKey   = "values meshguard.allowHostPathVolumes"
)

// quoteShort quotes a user value for a warning, cut so a hostile value cannot
// bloat the response (the API server truncates long warnings anyway).
func quoteShort(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func (p *params) warnOnce(w string) {
	if !slices.Contains(p.warnings, w) {
		p.warnings = append(p.warnings, w)
	}
}

// allowImage returns requested if it is the configured image or allowed by
// the allow-list; otherwise it warns (naming source) and returns configured.
func (p *params) allowImage(requested, configured, source string) string {
	if requested == configured || p.cfg.Values.Meshguard.ProxyImageAllowed(requested) {
		return requested
	}
	p.warnOnce(fmt.Sprintf("%s ignored: image %s is not in %s; the configured proxy image is used",
		source, quoteShort(requested), allowImagesKey))
	return configured
}

// checkPrivilegedAnnotations denies annotations that run the proxy as root,
// add capabilities or make it privileged, unless allowed. Settings that come
// from the mesh config or values are the operator's and are not checked.
func (p *params) checkPrivilegedAnnotations() error {
	if p.cfg.Values.Meshguard.AllowPrivilegedOverrides {
		return nil
	}
	var errs []error
	deny := func(field, what string) {
		errs = append(errs, fieldErr(field, fmt.Errorf("%s, which %s does not permit", what, allowPrivilegedKey)))
	}
	meshPC := p.operatorCfg
	if p.mode == meshv1alpha1.ProxyConfig_TPROXY && meshPC.GetInterceptionMode() != meshv1alpha1.ProxyConfig_TPROXY {
		field := "annotation " + AnnotationInterceptionMode
		if !p.annos.InterceptionMode.Set {
			field = "annotation " + AnnotationProxyConfig + " (interceptionMode)"
		}
		deny(field, "TPROXY runs istio-proxy as root with NET_ADMIN")
	}
	if p.netBindService() && !p.valuesNetBindService() {
		deny("annotation "+AnnotationCapNetBind, "it runs istio-proxy as root with NET_BIND_SERVICE")
	}
	if p.proxyCfg.GetProxyMetadata()["IPTABLES_TRACE_LOGGING"] == "true" && meshPC.GetProxyMetadata()["IPTABLES_TRACE_LOGGING"] != "true" {
		src := p.podSource(func(pc *meshv1alpha1.ProxyConfig) bool { return pc.GetProxyMetadata()["IPTABLES_TRACE_LOGGING"] != "" })
		deny(src+" (proxyMetadata.IPTABLES_TRACE_LOGGING)", "it makes istio-proxy privileged and root")
	}
	return errors.Join(errs...)
}

// checkOverrideSecurity compares an injected container before and after the
// user's override and denies any weakening of its securityContext.
func (p *params) checkOverrideSecurity(name string, before, after *corev1.Container) error {
	if p.cfg.Values.Meshguard.AllowPrivilegedOverrides {
		return nil
	}
	esc := escalations(before.SecurityContext, after.SecurityContext)
	// Host ports are a node-level privilege too (Pod Security Standards, baseline).
	for _, pt := range after.Ports {
		if pt.HostPort != 0 && !slices.ContainsFunc(before.Ports, func(b corev1.ContainerPort) bool { return b.HostPort == pt.HostPort }) {
			esc = append(esc, fmt.Sprintf("ports hostPort %d", pt.HostPort))
		}
	}
	if len(esc) > 0 {
		return fieldErr(fmt.Sprintf("user-declared container %q (pod spec or %s)", name, AnnotationOverrides),
			fmt.Errorf("sets %s, which %s does not permit", strings.Join(esc, ", "), allowPrivilegedKey))
	}
	return nil
}

// escalations lists the securityContext changes from before to after that
// grant more privilege (the container-level checks of the Pod Security
// Standards plus the injector's hardening: non-root, read-only root fs).
func escalations(before, after *corev1.SecurityContext) []string {
	if before == nil {
		before = &corev1.SecurityContext{}
	}
	if after == nil {
		after = &corev1.SecurityContext{}
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	var out []string
	if isTrue(after.Privileged) && !isTrue(before.Privileged) {
		out = append(out, "securityContext.privileged=true")
	}
	// An unset allowPrivilegeEscalation defaults to true.
	if isFalse(before.AllowPrivilegeEscalation) && !isFalse(after.AllowPrivilegeEscalation) {
		out = append(out, "securityContext.allowPrivilegeEscalation=true")
	}
	var capsBefore, capsAfter, dropBefore, dropAfter []corev1.Capability
	if before.Capabilities != nil {
		capsBefore, dropBefore = before.Capabilities.Add, before.Capabilities.Drop
	}
	if after.Capabilities != nil {
		capsAfter, dropAfter = after.Capabilities.Add, after.Capabilities.Drop
	}
	for _, c := range capsAfter {
		if !slices.Contains(capsBefore, c) {
			out = append(out, "securityContext.capabilities.add "+string(c))
		}
	}
	if slices.Contains(dropBefore, "ALL") && !slices.Contains(dropAfter, "ALL") {
		out = append(out, "securityContext.capabilities.drop without ALL")
	}
	root := func(id *int64) bool { return id != nil && *id == 0 }
	if root(after.RunAsUser) && !root(before.RunAsUser) {
		out = append(out, "securityContext.runAsUser=0")
	}
	if root(after.RunAsGroup) && !root(before.RunAsGroup) {
		out = append(out, "securityContext.runAsGroup=0")
	}
	if isTrue(before.RunAsNonRoot) && !isTrue(after.RunAsNonRoot) {
		out = append(out, "securityContext.runAsNonRoot=false")
	}
	if isTrue(before.ReadOnlyRootFilesystem) && !isTrue(after.ReadOnlyRootFilesystem) {
		out = append(out, "securityContext.readOnlyRootFilesystem=false")
	}
	if after.SeccompProfile != nil && after.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined &&
		(before.SeccompProfile == nil || before.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined) {
		out = append(out, "securityContext.seccompProfile Unconfined")
	}
	if after.AppArmorProfile != nil && after.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined &&
		(before.AppArmorProfile == nil || before.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined) {
		out = append(out, "securityContext.appArmorProfile Unconfined")
	}
	if after.SELinuxOptions != nil && (before.SELinuxOptions == nil || *after.SELinuxOptions != *before.SELinuxOptions) {
		out = append(out, "securityContext.seLinuxOptions")
	}
	if after.ProcMount != nil && *after.ProcMount == corev1.UnmaskedProcMount &&
		(before.ProcMount == nil || *before.ProcMount != corev1.UnmaskedProcMount) {
		out = append(out, "securityContext.procMount Unmasked")
	}
	if after.WindowsOptions != nil && isTrue(after.WindowsOptions.HostProcess) &&
		(before.WindowsOptions == nil || !isTrue(before.WindowsOptions.HostProcess)) {
		out = append(out, "securityContext.windowsOptions.hostProcess=true")
	}
	return out
}

// checkHostPath denies hostPath volumes added by sidecar.istio.io/userVolume
// and hostPath mounts on the injected containers, unless allowed.
func (p *params) checkHostPath(userVols []corev1.Volume, podVols []corev1.Volume, injected ...*corev1.Container) error {
	if p.cfg.Values.Meshguard.AllowHostPathVolumes {
		return nil
	}
	var errs []error
	var hostPath map[string]bool // allocated only when a hostPath volume exists
	mark := func(name string) {
		if hostPath == nil {
			hostPath = map[string]bool{}
		}
		hostPath[name] = true
	}
	for _, v := range userVols {
		if v.HostPath != nil {
			mark(v.Name)
			errs = append(errs, fieldErr("annotation "+AnnotationUserVolume,
				fmt.Errorf("volume %q is a hostPath volume, which %s does not permit", v.Name, allowHostPathKey)))
		}
	}
	for _, v := range podVols {
		if v.HostPath != nil {
			mark(v.Name)
		}
	}
	if hostPath == nil {
		return nil
	}
	for _, c := range injected {
		if c == nil {
			continue
		}
		for _, m := range c.VolumeMounts {
			if hostPath[m.Name] {
				errs = append(errs, fieldErr(fmt.Sprintf("container %q volumeMounts (%s or a user-declared %s)", c.Name, AnnotationUserVolumeMount, c.Name),
					fmt.Errorf("mounts hostPath volume %q, which %s does not permit", m.Name, allowHostPathKey)))
			}
		}
	}
	return errors.Join(errs...)
}
