package config

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
)

// SecurityValues is meshguard's own `meshguard:` section of the values file
// (Istio's values have no such key). It is the allow-list for pod-level inputs
// (annotations, user-declared istio-proxy/istio-init containers) that would
// change the proxy image or weaken the sidecar's security settings. Everything
// is denied by default; see docs/compatibility.md "Pod-level overrides".
type SecurityValues struct {
	// AllowedProxyImages are path.Match globs ("docker.io/istio/*") an
	// annotation- or override-chosen image must match; "*" does not cross "/".
	// Images that do not match are ignored (the configured image is kept).
	AllowedProxyImages []string `json:"allowedProxyImages,omitempty"`
	// AllowPrivilegedOverrides lets pods make the sidecar privileged, root,
	// add capabilities etc. (TPROXY, capNetBindService, securityContext
	// overrides). When false such pods are denied.
	AllowPrivilegedOverrides bool `json:"allowPrivilegedOverrides,omitempty"`
	// AllowHostPathVolumes lets sidecar.istio.io/userVolume add hostPath
	// volumes and injected containers mount hostPath volumes. When false such
	// pods are denied.
	AllowHostPathVolumes bool `json:"allowHostPathVolumes,omitempty"`
}

// ProxyImageAllowed reports whether image matches one of the allowed globs.
// The globs were validated at load, so a match error cannot occur.
func (s SecurityValues) ProxyImageAllowed(image string) bool {
	for _, p := range s.AllowedProxyImages {
		if ok, err := path.Match(p, image); err == nil && ok {
			return true
		}
	}
	return false
}

func (s SecurityValues) validate() error {
	var errs []error
	for i, p := range s.AllowedProxyImages {
		field := fmt.Sprintf("values.meshguard.allowedProxyImages[%d]", i)
		switch {
		case strings.TrimSpace(p) == "":
			errs = append(errs, fmt.Errorf("%s: must not be empty", field))
			continue
		case strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			errs = append(errs, fmt.Errorf("%s: %q contains whitespace or control characters", field, p))
			continue
		}
		// path.Match reports a malformed pattern whatever the name (Go ≥ 1.16).
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid glob: %w", field, p, err))
		}
	}
	return errors.Join(errs...)
}
