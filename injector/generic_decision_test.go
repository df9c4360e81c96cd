package injector

import (
	"slices"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/test/conformance"
)

// TestTypedPathOnlyWhereItAgreesWithTheTemplates: with Istio's default
// install the typed injector builds the sidecar (stock text, values it
// models); values that Istio's stock sidecar template uses but the typed
// injector does not model (global.sts.servicePort → --stsPort) send pods to
// the generic renderer, so the pod is still Istio's rendering rather than
// one that quietly lacks the setting.
func TestTypedPathOnlyWhereItAgreesWithTheTemplates(t *testing.T) {
	cfg, values, mesh := conformance.IstioInstall(t)
	stock, err := config.Inputs{Config: cfg, Values: values, Mesh: mesh}.Load()
	if err != nil {
		t.Fatal(err)
	}
	pod := benchPod(0)
	for _, name := range []string{"", TemplateGateway, TemplateGrpcSimple} {
		p := pod.DeepCopy()
		if name != "" {
			p.Annotations = map[string]string{AnnotationInjectTemplates: name}
		}
		if useGenericTemplates(p, stock) {
			t.Errorf("default install, template %q: want the typed path", name)
		}
	}

	// No inputs at all (`meshguard inject` without flags, `serve` without
	// files): Istio's stock templates are in effect, and the typed injector
	// keeps building sidecar, gateway and grpc-simple; grpc-agent renders.
	none, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", TemplateGateway, TemplateGrpcSimple, "grpc-agent"} {
		p := pod.DeepCopy()
		if name != "" {
			p.Annotations = map[string]string{AnnotationInjectTemplates: name}
		}
		if generic := useGenericTemplates(p, none); generic != (name == "grpc-agent") {
			t.Errorf("no inputs, template %q: generic path %v", name, generic)
		}
	}
	// And, as with a config, values the typed injector does not model send
	// the pods to the template rather than dropping the setting.
	stsOnly, err := config.Inputs{Values: []byte(`{"global":{"sts":{"servicePort":15463}}}`)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !useGenericTemplates(pod, stsOnly) {
		t.Error("no config, values with global.sts.servicePort: want the generic path")
	}

	vb := conformance.EditGlobalValues(t, values, func(g map[string]any) { g["sts"] = map[string]any{"servicePort": 15463} })
	sts, err := config.Inputs{Config: cfg, Values: vb, Mesh: mesh}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !useGenericTemplates(pod, sts) {
		t.Fatal("global.sts.servicePort set: want the generic path")
	}
	res, err := Inject(pod, "app", sts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, c := range append(res.Pod.Spec.InitContainers, res.Pod.Spec.Containers...) {
		if c.Name == ProxyContainerName {
			args = c.Args
		}
	}
	if !slices.Contains(args, "--stsPort=15463") {
		t.Errorf("istio-proxy args %v lack Istio's --stsPort=15463", args)
	}
}

// TestTracerBranchesTakeTheTemplate: Istio's stock sidecar adds the DD_* env
// of a pod's apm.datadoghq.com/env under global.proxy.tracer=datadog, and
// mounts lightstep-certs for a pod whose own ProxyConfig has tracing TLS
// under tracer=lightstep. The typed injector models neither, so such
// configurations render the template instead of silently dropping them.
func TestTracerBranchesTakeTheTemplate(t *testing.T) {
	cfg, values, mesh := conformance.IstioInstall(t)
	withTracer := func(tracer string) *config.Snapshot {
		t.Helper()
		vb := conformance.EditGlobalValues(t, values, func(g map[string]any) { g["proxy"].(map[string]any)["tracer"] = tracer })
		s, err := config.Inputs{Config: cfg, Values: vb, Mesh: mesh}.Load()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pod := benchPod(0)
	if useGenericTemplates(pod, withTracer("zipkin")) {
		t.Error("tracer zipkin: want the typed path")
	}
	if !useGenericTemplates(pod, withTracer("lightstep")) {
		t.Error("tracer lightstep: want the generic path")
	}

	pod.Annotations = map[string]string{"apm.datadoghq.com/env": `{"DD_ENV":"prod","DD_SERVICE":"shop"}`}
	res, err := Inject(pod, "app", withTracer("datadog"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, c := range append(res.Pod.Spec.InitContainers, res.Pod.Spec.Containers...) {
		if c.Name == ProxyContainerName {
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
		}
	}
	if env["DD_ENV"] != "prod" || env["DD_SERVICE"] != "shop" {
		t.Errorf("tracer datadog: istio-proxy env lacks Istio's DD_ENV/DD_SERVICE from apm.datadoghq.com/env: %v", env)
	}
}
