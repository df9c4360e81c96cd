package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/cluster"
)

// TestChartIstioConfigMaps: istioConfig.namespace makes the injector read
// Istio's own ConfigMaps (--istio-config-namespace with Istio's names, the
// revision's for a revision) instead of the chart's files, and grants read
// access to exactly those two ConfigMaps in Istio's namespace; the authorizer
// of a real API server is asked what meshguard's ServiceAccount may do.
func TestChartIstioConfigMaps(t *testing.T) {
	args := func(m manifests) []string { return m.deployment(t).Spec.Template.Spec.Containers[0].Args }
	for _, a := range args(parse(t, renderHelm(t))) {
		if strings.HasPrefix(a, "--istio-config-namespace") {
			t.Errorf("off by default, but %s passed", a)
		}
	}
	if got := args(parse(t, renderHelm(t, "--set", "istioConfig.namespace=istio-system", "--set", "revision=canary"))); !slices.Contains(got, "--injector-configmap=istio-sidecar-injector-canary") ||
		!slices.Contains(got, "--mesh-configmap=istio-canary") {
		t.Errorf("revision canary: args %v, want Istio's revision ConfigMap names", got)
	}
	if _, err := helmTemplate(t, "--set", "istioConfig.namespace=Istio_System"); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("invalid namespace: want a schema error naming it, got %v", err)
	}

	out := renderHelm(t, "--set", "istioConfig.namespace=istio-system")
	got := args(parse(t, out))
	for _, want := range []string{"--istio-config-namespace=istio-system", "--injector-configmap=istio-sidecar-injector", "--mesh-configmap=istio"} {
		if !slices.Contains(got, want) {
			t.Errorf("args %v lack %s", got, want)
		}
	}
	for _, a := range got {
		// meshguard refuses the files together with the ConfigMaps.
		if strings.HasPrefix(a, "--mesh-config=") || strings.HasPrefix(a, "--injector-values=") {
			t.Errorf("%s passed together with --istio-config-namespace", a)
		}
	}

	c := cluster.Start(t)
	for _, ns := range []string{namespace, "istio-system", "demo"} {
		cluster.CreateNamespace(t, c, ns, nil)
	}
	applyRBAC(t, c, out)
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"get", "configmaps/istio-sidecar-injector", "-n", "istio-system"}, true},
		{[]string{"watch", "configmaps/istio-sidecar-injector", "-n", "istio-system"}, true},
		{[]string{"list", "configmaps/istio", "-n", "istio-system"}, true},
		{[]string{"watch", "configmaps/istio", "-n", "istio-system"}, true},
		// Nothing else.
		{[]string{"list", "configmaps", "-n", "istio-system"}, false},
		{[]string{"get", "configmaps/istio-ca-root-cert", "-n", "istio-system"}, false},
		{[]string{"update", "configmaps/istio-sidecar-injector", "-n", "istio-system"}, false},
		{[]string{"get", "configmaps/istio-sidecar-injector", "-n", "demo"}, false},
		{[]string{"get", "secrets/istio-ca-secret", "-n", "istio-system"}, false},
	}
	canI := func(args []string) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args = append(append([]string{"auth", "can-i"}, args...), "--as", "system:serviceaccount:"+namespace+":"+serviceName)
		out, err := c.Kubectl(ctx, "", args...)
		answer, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		answer = strings.TrimSpace(answer)
		var kerr *cluster.KubectlError
		if err != nil && !(errors.As(err, &kerr) && answer == "no") {
			return false, fmt.Errorf("kubectl %v: %w", args, err)
		}
		return answer == "yes", nil
	}
	// Grants first (the authorizer sees RBAC through informers), then denials.
	for _, phase := range []bool{true, false} {
		for _, tc := range cases {
			if tc.want != phase {
				continue
			}
			if err := cluster.Eventually(10*time.Second, func() error {
				got, err := canI(tc.args)
				if err != nil {
					return err
				}
				if got != tc.want {
					return fmt.Errorf("ServiceAccount can %v = %v, want %v", tc.args, got, tc.want)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
	}
}
