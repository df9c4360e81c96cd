package injector

import (
	"fmt"
	"strconv"
	"strings"
)

// OpenShift preallocates each namespace a UID range and supplemental groups
// and records them on the namespace; its restricted SCC only admits UIDs from
// that range, so Istio runs the proxy as the top of the range instead of 1337
// (Istio's pkg/kube/inject/openshift.go).
const (
	AnnotationOpenShiftUIDRange           = "openshift.io/sa.scc.uid-range"
	AnnotationOpenShiftSupplementalGroups = "openshift.io/sa.scc.supplemental-groups"
	defaultProxyID                        = 1337
)

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
