package injector

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meshguard/meshguard/injector/config"
)

// OpenShift preallocates each namespace a UID range and supplemental groups
// and records them on the namespace; its restricted SCC only admits UIDs from
// that range, so Istio runs the proxy as the top of the range instead of 1337
// (Istio's pkg/kube/inject/openshift.go).
const (
	AnnotationOpenShiftUIDRange           = "openshift.io/sa.scc.uid-range"
	AnnotationOpenShiftSupplementalGroups = "openshift.io/sa.scc.supplemental-groups"
	defaultProxyID                        = 1337
	// PlatformOpenShift is the values' global.platform of an OpenShift
	// install (Istio's pkg/platform OpenShift).
	PlatformOpenShift = "openshift"
)

// IsOpenShift reports whether cfg is an OpenShift install: the values'
// global.platform is exactly "openshift". Istio decides by istiod's PLATFORM
// environment variable (pkg/platform IsOpenShift), which its istiod chart
// sets from global.platform; meshguard has no such variable and reads the
// values key, the one its templates already compare. The webhook reads the
// pod's namespace only then, and only then do its annotations set the
// proxy's UID/GID (proxyIDsFor).
func IsOpenShift(cfg *config.Snapshot) bool {
	return cfg != nil && cfg.Values.Global.Platform == PlatformOpenShift
}

// proxyIDsFor returns the proxy's UID and GID under cfg: the namespace's
// OpenShift range on OpenShift, else 1337 whatever the namespace carries, as
// Istio's GetProxyIDs (pkg/kube/inject/inject.go) gets no namespace off
// OpenShift (pkg/kube/inject/webhook.go Webhook.inject). Elsewhere the
// openshift.io annotations are anyone's to set, and would move the UID
// iptables exempts.
func proxyIDsFor(cfg *config.Snapshot, nsAnnotations map[string]string) (uid, gid int64) {
	if !IsOpenShift(cfg) {
		return defaultProxyID, defaultProxyID
	}
	return proxyIDs(nsAnnotations)
}

// proxyIDs returns the proxy's UID and GID for a namespace with annotations:
// the last UID of its uid-range, the last GID of the first supplemental
// group block (or of the uid-range when that annotation is absent), each
// 1337 when absent or unparsable, as Istio does.
func proxyIDs(nsAnnotations map[string]string) (uid, gid int64) {
	uid, gid = defaultProxyID, defaultProxyID
	if s := nsAnnotations[AnnotationOpenShiftUIDRange]; s != "" {
		if _, last, err := parseIDBlock(s); err == nil {
			uid = last
		}
	}
	groups, ok := nsAnnotations[AnnotationOpenShiftSupplementalGroups]
	if !ok {
		groups = nsAnnotations[AnnotationOpenShiftUIDRange]
	}
	if groups != "" {
		first, _, _ := strings.Cut(groups, ",")
		if _, last, err := parseIDBlock(first); err == nil {
			gid = last
		}
	}
	return uid, gid
}

// parseIDBlock reads an OpenShift ID block, "<start>/<size>" or
// "<start>-<end>", into its first and last ID.
func parseIDBlock(s string) (first, last int64, err error) {
	s = strings.TrimSpace(s)
	sep, isSize := "-", false
	if strings.Contains(s, "/") {
		sep, isSize = "/", true
	}
	a, b, ok := strings.Cut(s, sep)
	if !ok {
		return 0, 0, fmt.Errorf("ID block %q is not <start>/<size> or <start>-<end>", s)
	}
	start, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	n, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("ID block %q is not <start>/<size> or <start>-<end>", s)
	}
	end := n
	if isSize {
		if n == 0 {
			return 0, 0, fmt.Errorf("ID block %q has size 0", s)
		}
		end = start + n - 1
	}
	// Kubernetes accepts runAsUser/runAsGroup up to 2^31-1; beyond that the
	// pod would be rejected, so such a block falls back to 1337.
	if end < start || end > 1<<31-1 {
		return 0, 0, fmt.Errorf("ID block %q is out of range", s)
	}
	return int64(start), int64(end), nil
}
