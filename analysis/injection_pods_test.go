package analysis

import (
	"slices"
	"testing"
)

// TestPodMissingProxy: IST0103 on the cases Istio's injection.yaml does not
// separate, with Istio's rule (injection/injection.go Analyzer.Analyze at
// 018148e): which namespaces are injected (istio-injection=enabled, or an
// istio.io/rev label without istio-injection; not one with both, nor one
// only objects name), which pods (Pods, not Deployments; the inject label
// over the annotation, "false" in any case; hostNetwork) and which
// containers (not init containers).
func TestPodMissingProxy(t *testing.T) {
	app := []Container{{Name: "app", Image: "app:1"}}
	pod := func(ns, name string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: name, Containers: app}
	}
	with := func(w Workload, f func(*Workload)) Workload { f(&w); return w }
	in := Input{
		Namespaces: map[string]map[string]string{
			"on": {"istio-injection": "enabled"}, "rev": {"istio.io/rev": "canary"}, "both": {"istio.io/rev": "canary", "istio-injection": "enabled"},
			"off": {"istio-injection": "disabled"}, "bare": nil, "istio-system": {"istio-injection": "enabled"}, "kube-system": {"istio-injection": "enabled"},
		},
		Workloads: []Workload{
			pod("on", "plain"),
			pod("rev", "plain"),
			pod("both", "plain"),
			pod("off", "plain"),
			pod("bare", "plain"),
			pod("unknown", "plain"),
			pod("istio-system", "plain"),
			pod("kube-system", "plain"),
			with(pod("on", "deploy"), func(w *Workload) { w.Kind = "Deployment" }),
			with(pod("on", "native-sidecar"), func(w *Workload) { w.InitContainers = []Container{{Name: "istio-proxy", Image: "proxyv2"}} }),
			with(pod("on", "proxy-no-image"), func(w *Workload) { w.Containers = append(app, Container{Name: "istio-proxy"}) }),
			with(pod("on", "proxy"), func(w *Workload) { w.Containers = append(app, Container{Name: "istio-proxy", Image: "proxyv2"}) }),
			with(pod("on", "anno-FALSE"), func(w *Workload) { w.Annotations = map[string]string{"sidecar.istio.io/inject": "FALSE"} }),
			with(pod("on", "label-true-anno-false"), func(w *Workload) {
				w.Labels = map[string]string{"sidecar.istio.io/inject": "true"}
				w.Annotations = map[string]string{"sidecar.istio.io/inject": "false"}
			}),
			with(pod("on", "host"), func(w *Workload) { w.HostNetwork = true }),
		},
	}
	var got []string
	for _, m := range Analyze(in) {
		if m.Code == PodMissingProxy {
			got = append(got, m.Namespace+"/"+m.Object)
		}
	}
	slices.Sort(got)
	want := []string{"on/label-true-anno-false", "on/native-sidecar", "on/plain", "on/proxy-no-image", "rev/plain"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
