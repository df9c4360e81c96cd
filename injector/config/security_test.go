package config

import "testing"

func TestSecurityDefaultsDenyEverything(t *testing.T) {
	s := Default().Values.Meshguard
	if len(s.AllowedProxyImages) != 0 || s.AllowPrivilegedOverrides || s.AllowHostPathVolumes {
		t.Fatalf("default allow-list must be empty, got %+v", s)
	}
	if s.ProxyImageAllowed("docker.io/istio/proxyv2:1.31.0") {
		t.Error("empty allow-list allowed an image")
	}
}

func TestProxyImageAllowed(t *testing.T) {
	snap, err := Load(nil, []byte(`
meshguard:
  allowedProxyImages: ["docker.io/istio/*", "gcr.io/acme/proxyv2@sha256:*"]
  allowPrivilegedOverrides: true
  allowHostPathVolumes: true
`))
	if err != nil {
		t.Fatal(err)
	}
	s := snap.Values.Meshguard
	if !s.AllowPrivilegedOverrides || !s.AllowHostPathVolumes {
		t.Errorf("flags not loaded: %+v", s)
	}
	for _, tc := range []struct {
		image string
		want  bool
	}{
		{"docker.io/istio/proxyv2:1.31.0", true},
		{"docker.io/istio/proxyv2:1.31.0-distroless", true},
		{"docker.io/istio/sub/proxyv2:1", false}, // "*" does not cross "/"
		{"docker.io/istio/../evil/proxyv2:1", false},
		{"docker.io/istiox/proxyv2:1", false},
		{"evil.io/docker.io/istio/proxyv2:1", false},
		{"gcr.io/acme/proxyv2@sha256:0123abcd", true},
		{"gcr.io/acme/proxyv2:latest", false},
		{"", false},
	} {
		if got := s.ProxyImageAllowed(tc.image); got != tc.want {
			t.Errorf("ProxyImageAllowed(%q) = %v, want %v", tc.image, got, tc.want)
		}
	}
}
