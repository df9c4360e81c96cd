package authz

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshguard/meshguard/policy"
)

// A call still running when the context ends is cut after
// Options.ShutdownTimeout (serve's --shutdown-timeout), not after a bound of
// its own: both servers stop within it, so the process stops in the time
// the operator gave it.
func TestServeStopsWithinShutdownTimeout(t *testing.T) {
	o := Options{DecisionLog: "off", ShutdownTimeout: 200 * time.Millisecond}
	engine := policy.NewEngine(o.Mesh())
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, o, logr.Discard())
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, glis, nil) }()
	go func() { done <- srv.ServeHTTP(ctx, hlis, nil) }()

	// gRPC: a Check whose request message never comes stays open until
	// the server ends it (health Watch streams end at once, see
	// TestServeEndsHealthWatches).
	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
		"/"+ServiceName+"/Check"); err != nil {
		t.Fatal(err)
	}
	// Wait until the server has the stream: a health Check on the same
	// connection is answered after the Check stream's headers were read.
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	// HTTP: a request whose headers have started but not ended keeps its
	// connection active, so Shutdown waits for it.
	hc, err := net.Dial("tcp", hlis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if _, err := hc.Write([]byte("GET /x HTTP/1.1\r\nHost: a\r\n")); err != nil {
		t.Fatal(err)
	}

	cancel()
	// Well under the 10 s the servers used to wait whatever the timeout.
	deadline := time.After(5 * time.Second)
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-deadline:
			t.Fatal("servers still draining 5 s after the context ended with ShutdownTimeout 200ms")
		}
	}
}

// An open health Watch stream does not hold the shutdown: the watcher is
// told NOT_SERVING and its stream ended, so Serve returns at once instead of
// after ShutdownTimeout (GracefulStop waits for every stream, and grpc-go's
// health.Server.Shutdown only sends NOT_SERVING).
func TestServeEndsHealthWatches(t *testing.T) {
	o := Options{DecisionLog: "off", ShutdownTimeout: time.Minute}
	engine := policy.NewEngine(o.Mesh())
	if _, err := engine.Update(context.Background(), &policy.Set{}); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, o, logr.Discard())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, nil) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watch, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first status %v, %v: want SERVING", r, err)
	}

	// The bound only has to tell "at once" from ShutdownTimeout (1m), with
	// room for a loaded machine under -race.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve still draining 20 s after the context ended (ShutdownTimeout 1m): the Watch stream holds it")
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("status at shutdown %v, %v: want NOT_SERVING", r, err)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("Watch stream still open after Serve returned")
	}
}
