// Command noop is the floor of the ext_authz benchmarks (hack/bench-compare.sh):
// an envoy.service.auth.v3.Authorization/Check server that answers OK without
// looking at the request, built with meshguard's own gRPC server options
// (authz.GRPCServerOptions) and the same registrations (health, reflection)
// and GC setting, so only the Check handler differs from meshguard's server.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/meshguard/meshguard/authz"
)

// serverGCPercent mirrors cmd/meshguard/gc.go's default for its servers.
const serverGCPercent = 400

type noop struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:19100", "listen address")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	o := authz.DefaultOptions()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g := grpc.NewServer(authz.GRPCServerOptions(o, nil)...)
	authv3.RegisterAuthorizationServer(g, noop{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	if o.Reflection {
		reflection.Register(g)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); g.Stop() }()
	if err := g.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
