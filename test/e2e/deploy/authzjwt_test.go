package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestChartJWTMetadata: authz.jwtMetadata "absent" (the default, as
// meshguard's own) passes no flag, so the chart's args stay the kustomize
// base's (TestPackagingsAgree); "forwarded" passes --authz-jwt-metadata; any
// other value is refused at install, as meshguard refuses it at start.
func TestChartJWTMetadata(t *testing.T) {
	hasFlag := func(args []string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--authz-jwt-metadata") })
	}
	for _, set := range [][]string{nil, {"--set", "authz.jwtMetadata=absent"}} {
		if args := parse(t, renderHelm(t, set...)).deployment(t).Spec.Template.Spec.Containers[0].Args; hasFlag(args) {
			t.Errorf("%v: args %v pass --authz-jwt-metadata, want the default", set, args)
		}
	}
	args := parse(t, renderHelm(t, "--set", "authz.jwtMetadata=forwarded")).deployment(t).Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--authz-jwt-metadata=forwarded") {
		t.Errorf("args %v lack --authz-jwt-metadata=forwarded", args)
	}
	if _, err := helmTemplate(t, "--set", "authz.jwtMetadata=Forwarded"); err == nil || !strings.Contains(err.Error(), "jwtMetadata") {
		t.Errorf("authz.jwtMetadata=Forwarded: want an error naming jwtMetadata, got %v", err)
	}
}

// TestChartConnectionLimits: webhooks.maxConnections and
// authz.maxConnections reach --webhook-max-connections and
// --authz-max-connections, whole numbers however large.
func TestChartConnectionLimits(t *testing.T) {
	args := parse(t, renderHelm(t, "--set", "webhooks.maxConnections=1500", "--set", "authz.maxConnections=2000000")).deployment(t).Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--webhook-max-connections=1500", "--authz-max-connections=2000000"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
}
