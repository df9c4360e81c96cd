// Package dev runs `meshguard dev` (what `make run` runs: a -tags dev build) as a newcomer would:
// it waits for the printed instructions, pastes the printed commands into a
// shell, checks what they show, then stops it with Ctrl-C (SIGINT) and checks
// that nothing is left behind.
package dev

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/test/binary"
	"github.com/meshguard/meshguard/test/cluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	binary.Cleanup()
	os.Exit(code)
}

func TestDevPrintsCommandsThatWork(t *testing.T) {
	bin, err := binary.DevPath()
	if err != nil {
		t.Fatal(err)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k8sBin := filepath.Join(root, "bin", "k8s")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin, "dev", "--k8s-bin", k8sBin,
		"--metrics-addr", cluster.FreeAddr(t), "--health-addr", cluster.FreeAddr(t), "--authz-addr", cluster.FreeAddr(t))
	// When ctx ends (the deferred cancel runs before t.Cleanup on a failed
	// test) stop it as a user would, with Ctrl-C, so it stops the control
	// plane it started; a SIGKILL would orphan kube-apiserver and etcd.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stderr = os.Stderr // meshguard's logs, shown when the test fails or with -v
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once the process has exited; waitErr is then set
	var waitErr error
	// On a failed test, stop it as a user would (Ctrl-C), so that it stops the
	// control plane it started; SIGKILL only if that hangs.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})

	// Read the instructions: everything up to the health line.
	var lines []string
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		line := scanner.Text()
		lines = append(lines, line)
		if strings.HasPrefix(line, "ext_authz gRPC:") {
			break
		}
	}
	go func() {
		for scanner.Scan() {
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "ext_authz gRPC:") {
		t.Fatalf("meshguard dev printed no instructions:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("instructions printed after %s", time.Since(start).Round(time.Millisecond))

	var kubeconfig string
	var exports, commands []string
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, "  export KUBECONFIG="); ok {
			kubeconfig = rest
		}
		if strings.HasPrefix(line, "  export ") {
			exports = append(exports, strings.TrimSpace(line))
		} else if strings.HasPrefix(line, "  kubectl ") || strings.HasPrefix(line, "  printf ") {
			commands = append(commands, strings.TrimSpace(line))
		}
	}
	if kubeconfig == "" || len(commands) != 4 {
		t.Fatalf("want a KUBECONFIG and 4 commands, got %q and %q", kubeconfig, commands)
	}

	// The commands run as a user pastes them after `make run` on a fresh
	// machine: after the printed exports, in a shell with no kubectl of its
	// own on PATH (only bin/k8s has one, which the exports must provide).
	var basePath []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "kubectl")); err != nil {
			basePath = append(basePath, dir)
		}
	}
	if !slices.Contains(exports, "export PATH="+k8sBin+":$PATH") {
		t.Errorf("the instructions do not put %s (its kubectl) on PATH: %q", k8sBin, exports)
	}
	shell := func(command string) (string, error) {
		c := exec.CommandContext(ctx, "bash", "-c", strings.Join(exports, "\n")+"\n"+command)
		c.Env = append(os.Environ(), "PATH="+strings.Join(basePath, string(filepath.ListSeparator)))
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// 1. label a namespace; 2. create a pod; 3. see its containers.
	for _, c := range commands[:2] {
		if out, err := shell(c); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	out, err := shell(commands[2])
	if err != nil {
		t.Fatalf("%s: %v\n%s", commands[2], err, out)
	}
	for _, name := range []string{"istio-init", "istio-proxy", "web"} {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(out) {
			t.Errorf("container %s missing from the stored pod; containers: %q", name, out)
		}
	}
	// 4. the bad VirtualService is rejected with its field path.
	out, err = shell(commands[3])
	if err == nil {
		t.Errorf("bad VirtualService was accepted: %s", out)
	}
	if !strings.Contains(out, "spec.http[0].route[0].weight") || !strings.Contains(out, "denied") {
		t.Errorf("rejection does not name the field: %s", out)
	}

	// A ProxyConfig resource reaches injection through the server's cache:
	// pods created after it carry its concurrency and environment variables.
	proxyConfig := `printf 'apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: cfg, namespace: demo}\nspec:\n  concurrency: 3\n  environmentVariables: {FROM_PROXYCONFIG: "yes"}\n' | kubectl apply -f -`
	if out, err := shell(proxyConfig); err != nil {
		t.Fatalf("applying a ProxyConfig: %v\n%s", err, out)
	}
	// await polls command until ok accepts its output.
	await := func(what, command string, ok func(string) bool) {
		t.Helper()
		if err := cluster.Eventually(10*time.Second, func() error {
			out, err := shell(command)
			if err != nil || !ok(out) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s never happened: %v", what, err)
		}
	}
	dryRun := `kubectl run pc -n demo --image=nginx --dry-run=server -o jsonpath='{.spec.containers[?(@.name=="istio-proxy")].env}'`
	await("the ProxyConfig reaching injection", dryRun, func(out string) bool {
		return strings.Contains(out, `\"concurrency\":3`) && strings.Contains(out, `"FROM_PROXYCONFIG"`)
	})

	// Native sidecars follow the nodes' kubelet versions (auto): with one
	// node older than v1.33 pods get classic sidecars and kubectl shows why;
	// once it is gone they get native ones. The nodes are plain API objects
	// (no kubelet runs), created with their reported version.
	nodes := `printf 'apiVersion: v1\nkind: Node\nmetadata: {name: old}\nstatus: {nodeInfo: {kubeletVersion: v1.32.4}}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: new}\nstatus: {nodeInfo: {kubeletVersion: v1.33.1}}\n' | kubectl create -f -`
	if out, err := shell(nodes); err != nil {
		t.Fatalf("creating nodes: %v\n%s", err, out)
	}
	nativeProbe := `kubectl run nat -n demo --image=nginx --dry-run=server -o jsonpath='{.spec.initContainers[*].name}{" / "}{.spec.containers[*].name}' 2>&1`
	await("classic sidecar with a warning naming the old node", nativeProbe, func(out string) bool {
		return strings.Contains(out, "Warning: classic (not native) sidecar injected") && strings.Contains(out, `old: "v1.32.4"`) &&
			strings.HasSuffix(out, "istio-init / nat istio-proxy")
	})
	if out, err := shell("kubectl delete node old"); err != nil {
		t.Fatalf("deleting the old node: %v\n%s", err, out)
	}
	await("native sidecar", nativeProbe, func(out string) bool { return out == "istio-init istio-proxy / nat" })

	// Ctrl-C stops everything and removes the temporary directory.
	apiServer := apiServerAddr(t, kubeconfig)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("meshguard dev exited with %v after SIGINT", waitErr)
		}
	case <-ctx.Done():
		t.Fatal("meshguard dev did not exit after SIGINT")
	}
	if _, err := os.Stat(filepath.Dir(kubeconfig)); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s left behind (stat: %v)", filepath.Dir(kubeconfig), err)
	}
	if conn, err := net.DialTimeout("tcp", apiServer, time.Second); err == nil {
		conn.Close()
		t.Errorf("kube-apiserver still listening on %s after exit", apiServer)
	}
}

func apiServerAddr(t *testing.T, kubeconfig string) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(cfg.Host, "https://")
	if _, port, err := net.SplitHostPort(host); err != nil || port == "" {
		t.Fatalf("API server address %q: %v", host, err)
	} else if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	return host
}
