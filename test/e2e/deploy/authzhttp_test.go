package deploy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestChartHTTPAuthz: authz.http.enabled adds the HTTP ext_authz flag,
// container port and Service port; off by default; a pathPrefix without a
// leading / is rejected as meshguard itself rejects it.
func TestChartHTTPAuthz(t *testing.T) {
	hasHTTPPort := func(m manifests) bool {
		for _, p := range m.service(t).Spec.Ports {
			if p.Name == "http-authz" && p.Port == 9001 && p.TargetPort.StrVal == "http-authz" {
				return true
			}
		}
		return false
	}
	def := parse(t, renderHelm(t))
	for _, a := range def.deployment(t).Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--authz-http-addr") {
			t.Errorf("HTTP ext_authz is off by default, but %s passed", a)
		}
	}
	if hasHTTPPort(def) {
		t.Error("HTTP ext_authz is off by default, but the Service exposes it")
	}

	on := parse(t, renderHelm(t, "--set", "authz.http.enabled=true", "--set", "authz.http.pathPrefix=/check"))
	c := on.deployment(t).Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--authz-http-addr=:9001") || !slices.Contains(c.Args, "--authz-http-path-prefix=/check") {
		t.Errorf("args %v lack the HTTP ext_authz flags", c.Args)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http-authz" && p.ContainerPort == 9001 }) {
		t.Errorf("container ports %v lack http-authz", c.Ports)
	}
	if !hasHTTPPort(on) {
		t.Error("Service lacks the http-authz port")
	}
	if _, err := helmTemplate(t, "--set", "authz.http.pathPrefix=check"); err == nil || !strings.Contains(err.Error(), "pathPrefix") {
		t.Errorf("pathPrefix without /: want an error naming pathPrefix, got %v", err)
	}
}
