package template

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestMergeRulesAsIstios: the container merge rules after rendering, as
// Istio's pkg/kube/inject/webhook.go reinsertOverrides,
// reapplyOverwrittenContainers and adjustInitContainerUser apply them.
func TestMergeRulesAsIstios(t *testing.T) {
	uid := func(n int64) *corev1.SecurityContext { return &corev1.SecurityContext{RunAsUser: &n} }
	initArgs := []string{"-p", "15001", "-u", "1337", "-m", "REDIRECT"}
	// A pod as a template renders it: the user's istio-proxy (sc) merged into
	// the injected one, istio-init with the proxy's UID.
	pods := func(sc *corev1.SecurityContext, annotations map[string]string) (final, original, injected *corev1.Pod) {
		injected = &corev1.Pod{Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: ProxyContainerName, Image: "proxyv2", SecurityContext: uid(1337)}},
			InitContainers: []corev1.Container{{Name: InitContainerName, Image: "proxyv2", Args: initArgs}},
		}}
		original = &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}, {Name: ProxyContainerName, Image: "auto", SecurityContext: sc}}}}
		original.Annotations = annotations
		final = &corev1.Pod{Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "app"}, {Name: ProxyContainerName, Image: "proxyv2", SecurityContext: uid(1337)}},
			InitContainers: []corev1.Container{{Name: InitContainerName, Image: "proxyv2", Args: append([]string(nil), initArgs...)}},
		}}
		return final, original, injected
	}
	for _, tc := range []struct {
		name        string
		sc          *corev1.SecurityContext
		annotations map[string]string
		tproxy      bool
		// wantInitUID is the istio-init -u argument, wantProxyUID the
		// istio-proxy's runAsUser, wantOverrides whether the pod records its
		// override in proxy.istio.io/overrides.
		wantInitUID   string
		wantProxyUID  int64
		wantOverrides bool
	}{
		{name: "user UID replaces -u", sc: uid(1234), wantInitUID: "1234", wantProxyUID: 1234, wantOverrides: true},
		// "iptables --uid-owner argument must not be 0"
		{name: "user UID 0 leaves -u", sc: uid(0), wantInitUID: "1337", wantProxyUID: 0, wantOverrides: true},
		// "RunAsUser cannot be overridden (ie, must remain 0) in TPROXY mode"
		{name: "TPROXY mesh keeps the proxy at UID 0", sc: uid(1234), tproxy: true, wantInitUID: "1234", wantProxyUID: 0, wantOverrides: true},
		{name: "TPROXY annotation keeps the proxy at UID 0", sc: uid(1234), annotations: map[string]string{"sidecar.istio.io/interceptionMode": "TPROXY"},
			wantInitUID: "1234", wantProxyUID: 0, wantOverrides: true},
		// Overrides are recorded on first injection only (!alreadyInjected).
		{name: "re-injection records no overrides", sc: uid(1234), annotations: map[string]string{AnnotationStatus: `{"containers":["other"]}`},
			wantInitUID: "1234", wantProxyUID: 1234, wantOverrides: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			final, original, injected := pods(tc.sc, tc.annotations)
			if tc.annotations != nil {
				final.Annotations = map[string]string{}
				for k, v := range tc.annotations {
					final.Annotations[k] = v
				}
			}
			got, err := ReapplyOverrides(final, original, injected, tc.tproxy, nil)
			if err != nil {
				t.Fatal(err)
			}
			init := FindContainer(InitContainerName, got.Spec.InitContainers)
			if a := strings.Join(init.Args, " "); !strings.Contains(a, "-u "+tc.wantInitUID+" ") {
				t.Errorf("istio-init args %q, want -u %s", a, tc.wantInitUID)
			}
			proxy := FindContainer(ProxyContainerName, got.Spec.Containers)
			if proxy.SecurityContext == nil || proxy.SecurityContext.RunAsUser == nil || *proxy.SecurityContext.RunAsUser != tc.wantProxyUID {
				t.Errorf("istio-proxy securityContext %+v, want runAsUser %d", proxy.SecurityContext, tc.wantProxyUID)
			}
			if proxy.Image != "proxyv2" {
				t.Errorf("istio-proxy image %q: the user's \"auto\" must keep the injected one", proxy.Image)
			}
			if _, ok := got.Annotations[AnnotationOverrides]; ok != tc.wantOverrides {
				t.Errorf("%s recorded: %v, want %v (%v)", AnnotationOverrides, ok, tc.wantOverrides, got.Annotations)
			}
		})
	}
}

// TestReinsertOverrides: a container recorded in proxy.istio.io/overrides is
// put back only when the pod no longer has one of its name (Istio
// webhook.go reinsertOverrides).
func TestReinsertOverrides(t *testing.T) {
	ann := map[string]string{AnnotationOverrides: `{"containers":[{"name":"istio-proxy","image":"recorded"}],"initContainers":[{"name":"istio-init","image":"recorded"}]}`}
	for _, tc := range []struct {
		name             string
		containers, init []corev1.Container
		want, wantInit   string
	}{
		{"absent: put back", []corev1.Container{{Name: "app"}}, nil, "app,istio-proxy/recorded", "istio-init/recorded"},
		{"present: kept as is", []corev1.Container{{Name: "app"}, {Name: "istio-proxy", Image: "mine"}}, []corev1.Container{{Name: "istio-init", Image: "mine"}},
			"app,istio-proxy/mine", "istio-init/mine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: tc.containers, InitContainers: tc.init}}
			pod.Annotations = ann
			got, err := ReinsertOverrides(pod)
			if err != nil {
				t.Fatal(err)
			}
			names := func(cs []corev1.Container) string {
				var n []string
				for _, c := range cs {
					if c.Image != "" {
						n = append(n, c.Name+"/"+c.Image)
					} else {
						n = append(n, c.Name)
					}
				}
				return strings.Join(n, ",")
			}
			if g := names(got.Spec.Containers); g != tc.want {
				t.Errorf("containers %s, want %s", g, tc.want)
			}
			if g := names(got.Spec.InitContainers); g != tc.wantInit {
				t.Errorf("init containers %s, want %s", g, tc.wantInit)
			}
		})
	}
}
