package kubeinject

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
)

// TestInjectDeploymentConfigWritesNumbersAsIstioctl: istioctl kube-inject
// decodes a DeploymentConfig into OpenShift's Go type (pkg/kube/inject
// inject.go FromRawToObject: sigs.k8s.io/yaml Unmarshal into
// openshift/api apps/v1 DeploymentConfig) and writes it back with
// sigs.k8s.io/yaml Marshal (IntoResourceFile). So a YAML float where the
// type has a string becomes strconv.FormatFloat(f, 'g', -1, 32) ("1e+06"),
// and where the type has an integer it is written as that integer; the
// status block the type always has is written too (Istio's
// deploymentconfig.yaml.injected golden). meshguard decoded the object as
// a map and re-encoded it as JSON before reading the template: a float
// 1e6 became the JSON integer 1000000, so a string field read "1000000",
// and a label value was left as an integer.
func TestInjectDeploymentConfigWritesNumbersAsIstioctl(t *testing.T) {
	for _, c := range []struct {
		in   string // as written in the YAML input
		want string // the string istioctl writes for it (FormatFloat 'g' 32)
	}{
		{"999999", `"999999"`},
		{"1e6", `"1e+06"`},
		{"1.5e6", `"1.5e+06"`},
		{"1e21", `"1e+21"`},
		{"-1e6", `"-1e+06"`},
		{"0.000001", `"1e-06"`},
	} {
		in := `apiVersion: apps.openshift.io/v1
kind: DeploymentConfig
metadata:
  name: dc
  labels: {l: ` + c.in + `}
spec:
  selector: {s: ` + c.in + `}
  strategy:
    type: Custom
    customParams: {command: [` + c.in + `]}
  template:
    metadata:
      labels: {app: dc, l: ` + c.in + `}
    spec:
      containers:
      - name: c
        image: i
        args: [` + c.in + `]
`
		res, err := InjectData([]byte(in), config.Default())
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		out := string(res.Output)
		for _, want := range []string{
			"\n    l: " + c.want + "\n",         // metadata.labels (map[string]string)
			"\n    s: " + c.want + "\n",         // spec.selector (map[string]string)
			"\n      - " + c.want + "\n",        // strategy.customParams.command ([]string)
			"\n        l: " + c.want + "\n",     // spec.template.metadata.labels
			"\n        - " + c.want + "\n",      // the container's args
			"\nstatus:\n  availableReplicas: 0", // DeploymentConfigStatus, no omitempty fields
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", c.in, want, out)
			}
		}
	}
}

// TestInjectDeploymentConfigIntegerFields: a whole-number float where
// OpenShift's type has an integer (replicas: 1e6) is that integer, as
// sigs.k8s.io/yaml's JSON step writes 1e6 as 1000000 (encoding/json uses
// exponents from 1e21 only); one with a fraction or one too big is refused
// naming the field (istioctl refuses it too: cannot unmarshal number).
func TestInjectDeploymentConfigIntegerFields(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"1e6", "replicas: 1000000\n", ""},
		{"-1e6", "replicas: -1000000\n", ""},
		{"999999", "replicas: 999999\n", ""},
		{"1.5", "", "field spec.replicas"},
		{"1e21", "", "field spec.replicas"},
	} {
		in := "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata: {name: dc}\nspec:\n  replicas: " + c.in +
			"\n  template: {spec: {containers: [{name: c, image: i}]}}\n"
		res, err := InjectData([]byte(in), config.Default())
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "DeploymentConfig dc") {
				t.Errorf("replicas %s: error %v, want one naming DeploymentConfig dc and %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("replicas %s: %v", c.in, err)
		}
		if !strings.Contains(string(res.Output), "\nspec:\n  "+c.want) {
			t.Errorf("replicas %s: output lacks %q:\n%s", c.in, c.want, res.Output)
		}
	}
}
