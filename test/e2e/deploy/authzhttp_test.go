package deploy

import (
	"os"
	"path/filepath"
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
	// Asked for but impossible: refused at install, not silently dropped
	// (ext_authz off) or left to fail at start (one port for both servers).
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"authz.enabled=false", "authz.http.enabled=true"}, "authz.http.enabled=true needs authz.enabled=true"},
		{[]string{"authz.http.enabled=true", "authz.http.port=9000"}, "authz.http.port 9000 is authz.port too"},
		// ext_authz follows the mesh config the injector reads from
		// Istio's ConfigMaps: without a webhook it would use Istio's
		// defaults, whatever ConfigMap istio says (a root namespace's
		// mesh-wide DENY skipped).
		{[]string{"istioConfig.namespace=istio-system", "webhooks.injection.enabled=false", "webhooks.validation.enabled=false"},
			"istioConfig.namespace needs a webhook enabled"},
	} {
		var args []string
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		if _, err := helmTemplate(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error %q, got %v", tc.set, tc.want, err)
		}
	}
}

// TestKustomizeHTTPAuthzComponent: an overlay adding components/authz-http
// renders the same HTTP ext_authz flag and ports as the chart's authz.http.
func TestKustomizeHTTPAuthzComponent(t *testing.T) {
	dir := t.TempDir()
	rel := func(elem ...string) string { // kustomize wants relative paths
		r, err := filepath.Rel(dir, repoPath(t, elem...))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " +
		rel("deploy", "kustomize", "overlays", "self-managed") + "\ncomponents:\n  - " +
		rel("deploy", "kustomize", "components", "authz-http") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, kubectlBin(t), "kustomize", dir)
	if err != nil {
		t.Fatalf("kustomize: %v", err)
	}
	km := parse(t, out)
	hm := parse(t, renderHelm(t, "--set", "authz.http.enabled=true"))
	kc, hc := km.deployment(t).Spec.Template.Spec.Containers[0], hm.deployment(t).Spec.Template.Spec.Containers[0]
	if !slices.Contains(kc.Args, "--authz-http-addr=:9001") || !slices.Contains(hc.Args, "--authz-http-addr=:9001") {
		t.Errorf("--authz-http-addr: kustomize %v, helm %v", kc.Args, hc.Args)
	}
	port := func(ps []corev1.ContainerPort) corev1.ContainerPort {
		for _, p := range ps {
			if p.Name == "http-authz" {
				return p
			}
		}
		return corev1.ContainerPort{}
	}
	if kp, hp := port(kc.Ports), port(hc.Ports); kp != hp || kp.ContainerPort != 9001 {
		t.Errorf("container port: kustomize %+v, helm %+v", kp, hp)
	}
	svc := func(m manifests) corev1.ServicePort {
		for _, p := range m.service(t).Spec.Ports {
			if p.Name == "http-authz" {
				return p
			}
		}
		return corev1.ServicePort{}
	}
	if ks, hs := svc(km), svc(hm); ks.Port != 9001 || ks.Port != hs.Port || ks.TargetPort != hs.TargetPort || *ks.AppProtocol != *hs.AppProtocol {
		t.Errorf("service port: kustomize %+v, helm %+v", ks, hs)
	}
}
