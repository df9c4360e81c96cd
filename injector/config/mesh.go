package config

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
)

// DefaultProxyConfig returns Istio's default ProxyConfig (mesh.DefaultProxyConfig
// in istio/istio pkg/config/mesh DefaultMeshConfig).
func DefaultProxyConfig() *meshv1alpha1.ProxyConfig {
	return &meshv1alpha1.ProxyConfig{
		ConfigPath:               "./etc/istio/proxy",
		ClusterName:              &meshv1alpha1.ProxyConfig_ServiceCluster{ServiceCluster: "istio-proxy"},
		DrainDuration:            durationpb.New(45 * time.Second),
		TerminationDrainDuration: durationpb.New(5 * time.Second),
		ProxyAdminPort:           15000,
		ControlPlaneAuthPolicy:   meshv1alpha1.AuthenticationPolicy_MUTUAL_TLS,
		DiscoveryAddress:         "istiod.istio-system.svc:15012",
		Tracing: &meshv1alpha1.Tracing{Tracer: &meshv1alpha1.Tracing_Zipkin_{
			Zipkin: &meshv1alpha1.Tracing_Zipkin{Address: "zipkin.istio-system:9411"},
		}},
		BinaryPath:     "/usr/local/bin/envoy",
		StatNameLength: 189,
		StatusPort:     15020,
	}
}

// DefaultMeshConfig returns the parts of Istio's mesh.DefaultMeshConfig that
// injection reads.
func DefaultMeshConfig() *meshv1alpha1.MeshConfig {
	return &meshv1alpha1.MeshConfig{
		ProxyListenPort:        15001,
		ProxyInboundListenPort: 15006,
		EnablePrometheusMerge:  wrapperspb.Bool(true),
		TrustDomain:            "cluster.local",
		RootNamespace:          "istio-system",
		DefaultConfig:          DefaultProxyConfig(),
		InboundTrafficPolicy: &meshv1alpha1.MeshConfig_InboundTrafficPolicy{
			Mode: meshv1alpha1.MeshConfig_InboundTrafficPolicy_PASSTHROUGH,
		},
	}
}

// CleanProxyConfig returns a copy of pc without the fields that equal Istio's
// defaults, which is what Istio writes into PROXY_CONFIG (cleanProxyConfig).
func CleanProxyConfig(pc *meshv1alpha1.ProxyConfig) *meshv1alpha1.ProxyConfig {
	out := proto.Clone(pc).(*meshv1alpha1.ProxyConfig)
	def := DefaultProxyConfig().ProtoReflect()
	m := out.ProtoReflect()
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if def.Has(fd) && def.Get(fd).Equal(v) {
			clear = append(clear, fd)
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
	return out
}
