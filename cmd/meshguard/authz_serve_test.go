package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshguard/meshguard/reload"
	"github.com/meshguard/meshguard/test/cluster"
)

// `meshguard authz serve --mesh-config` reloads the mesh config like serve
// does: a rootNamespace change makes that namespace's policies mesh-wide
// without a restart (Istio's root namespace, MeshConfig rootNamespace), and
// a file that cannot be parsed is rejected, counted, and the last good
// settings keep deciding.
func TestAuthzServeReloadsMeshConfig(t *testing.T) {
	dir := rootDenyPolicyDir(t)
	meshDir := t.TempDir()
	mesh := filepath.Join(meshDir, "mesh.yaml")
	writeMesh := func(content string) {
		t.Helper()
		tmp := filepath.Join(meshDir, ".mesh.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, mesh); err != nil { // atomically, as a ConfigMap update is
			t.Fatal(err)
		}
	}
	writeMesh("rootNamespace: istio-system\n")

	addr := cluster.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetArgs([]string{"authz", "serve", "--policy-dir", dir, "--mesh-config", mesh, "--authz-addr", addr,
			"--authz-reload-debounce", "10ms", "--decision-log", "off"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		done <- cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("authz serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("authz serve did not stop")
		}
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal([]byte(authzRequest("/private")), req); err != nil {
		t.Fatal(err)
	}
	allowed := func() (bool, error) {
		resp, err := client.Check(ctx, req)
		if err != nil {
			return false, err
		}
		return resp.GetOkResponse() != nil, nil
	}
	eventually := func(what string, cond func() error, retry func()) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			if retry != nil {
				retry()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("serving, /private allowed (mesh-root is not the root namespace)", func() error {
		ok, err := allowed()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("denied")
		}
		return nil
	}, nil)

	// The watch registers asynchronously: rewrite until the change is seen.
	eventually("rootNamespace change reaches the verdict", func() error {
		ok, err := allowed()
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("still allowed")
		}
		return nil
	}, func() { writeMesh("rootNamespace: mesh-root\n") })

	meshErrors := reload.ReloadErrorsTotal.WithLabelValues(string(reload.MeshConfig))
	before := testutil.ToFloat64(meshErrors)
	writeMesh("rootNamespace: [unterminated\n")
	eventually("the broken mesh config is rejected", func() error {
		if got := testutil.ToFloat64(meshErrors); got <= before {
			return fmt.Errorf("meshguard_config_reload_errors_total{source=mesh-config} = %v, want > %v", got, before)
		}
		return nil
	}, nil)
	if ok, err := allowed(); err != nil || ok {
		t.Fatalf("after the rejected mesh config: allowed=%v err=%v, want the last good settings' denial", ok, err)
	}
}

// authzServeChildArgs, set in the environment, makes
// TestAuthzServeSecondSignalExits the `meshguard authz serve` process itself
// (its arguments, one a line).
const authzServeChildArgs = "MESHGUARD_TEST_AUTHZ_SERVE_ARGS"

// TestAuthzServeSecondSignalExits: a second SIGTERM during the graceful stop
// of `meshguard authz serve` exits at once, as under serve and dev
// (ctrl.SetupSignalHandler); before, signal.NotifyContext swallowed it and
// the process waited for the graceful stop's 10 s bound. An open gRPC
// reflection stream holds the graceful stop.
func TestAuthzServeSecondSignalExits(t *testing.T) {
	if args := os.Getenv(authzServeChildArgs); args != "" {
		cmd := newRootCmd()
		cmd.SetArgs(strings.Split(args, "\n"))
		if err := cmd.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	addr := cluster.FreeAddr(t)
	var stderr bytes.Buffer
	child := exec.Command(os.Args[0], "-test.run=^TestAuthzServeSecondSignalExits$")
	child.Env = append(os.Environ(), authzServeChildArgs+"="+strings.Join([]string{"authz", "serve",
		"--policy-dir", rootDenyPolicyDir(t), "--authz-addr", addr, "--decision-log", "off", "--authz-reflection"}, "\n"))
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = child.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = child.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("authz serve's stderr:\n%s", stderr.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The health Watch says when the server serves, and ends when its
	// graceful stop begins (authz.Server.Serve).
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("health watch before serving: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := refl.Recv(); err != nil { // the stream is open, and stays so
		t.Fatal(err)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := watch.Recv(); err != nil {
			break // the graceful stop has begun
		}
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		var exit *exec.ExitError
		if !errors.As(waitErr, &exit) || exit.ExitCode() != 1 {
			t.Errorf("authz serve ended with %v after the second signal, want exit status 1", waitErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("authz serve did not exit on a second SIGTERM during its graceful stop")
	}
}
