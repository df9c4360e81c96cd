package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshguard/meshguard/certs/pki"
)

// TestTLSConfigServesGRPC: the same Source serves a gRPC server (ext_authz)
// with client-certificate verification, and ALPN h2 still negotiates.
func TestTLSConfigServesGRPC(t *testing.T) {
	st := newStore("grpc-test")
	now := time.Now()
	ca, _ := mustCA(t, now, time.Hour)
	leaf, err := pki.NewLeaf(ca, pki.LeafSpec{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Lifetime: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.set(leaf, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(st.TLSConfig(true))))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(st.CABundle())
	check := func(client pki.KeyPair) error {
		c, err := client.Parsed()
		if err != nil {
			return err
		}
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*c}, ServerName: "127.0.0.1"})))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(mustLeaf(t, ca, []string{"envoy"}, now, time.Hour)); err != nil {
		t.Fatalf("trusted client: %v", err)
	}
	other, _ := mustCA(t, now, time.Hour)
	if err := check(mustLeaf(t, other, []string{"envoy"}, now, time.Hour)); err == nil {
		t.Fatal("client from another CA accepted")
	}
}
