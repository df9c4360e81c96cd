package config

import "testing"

// TestImageURL: the image the injector renders (Istio's
// pkg/kube/inject/inject.go imageURL, updateImageTypeIfPresent), shared by
// the injector and `meshguard analyze` (IST0158).
func TestImageURL(t *testing.T) {
	g := GlobalValues{Hub: "docker.io/istio", Tag: "1.3.1-distroless"}
	for _, tc := range []struct{ name, imageType, want string }{
		{"proxyv2", "", "docker.io/istio/proxyv2:1.3.1-distroless"},
		{"proxyv2", "debug", "docker.io/istio/proxyv2:1.3.1-debug"},
		{"proxyv2", "default", "docker.io/istio/proxyv2:1.3.1"},
		{"example.com/p:1", "distroless", "example.com/p:1"},
	} {
		if got := g.ImageURL(tc.name, tc.imageType); got != tc.want {
			t.Errorf("ImageURL(%q, %q) = %q, want %q", tc.name, tc.imageType, got, tc.want)
		}
	}
	v, err := LoadValues([]byte(`{"sidecarInjectorWebhook":{"enableNamespacesByDefault":true}}`))
	if err != nil || !v.SidecarInjectorWebhook.EnableNamespacesByDefault || v.Global.Proxy.Image != "proxyv2" {
		t.Errorf("LoadValues: %+v, %v", v.SidecarInjectorWebhook, err)
	}
}
