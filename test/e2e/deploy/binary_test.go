package deploy

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/binary"
)

// TestArgsAcceptedByBinary builds meshguard and lets its own flag parser
// check every command line the packagings render: `serve <args> --help`
// fails on an unknown flag or a value of the wrong type, so the manifests
// cannot drift from the binary.
func TestArgsAcceptedByBinary(t *testing.T) {
	t.Parallel() // the slow two (a build, a control plane) overlap
	bin, err := binary.Path()
	if err != nil {
		t.Fatal(err)
	}
	ps := append(packagings(), helmPackaging("self", "", "--set", "authz.enabled=false", "--set", "serviceName=mg",
		"--set", "webhooks.injection.enabled=false", "--set", "webhooks.validation.enabled=false"),
		helmPackaging("cert-manager", "", "--set", "istioConfig.namespace=istio-system"))
	for _, p := range ps {
		t.Run(p.name, func(t *testing.T) {
			args := parse(t, p.render(t)).deployment(t).Spec.Template.Spec.Containers[0].Args
			out, err := run(t, bin, append(args, "--help")...)
			if err != nil {
				t.Fatalf("meshguard rejects the rendered command line %v: %v", args, err)
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("meshguard %v --help printed no usage:\n%s", args, out)
			}
		})
	}
}
