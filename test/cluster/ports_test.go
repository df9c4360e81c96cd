package cluster

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestFreePortNeverRepeats: ports handed out in one process are distinct,
// so a server's metrics and health ports cannot collide (a CI run failed
// with both drawn as the same port).
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestFreePortAcrossProcesses: a port another test process handed out is
// not handed out here while that process runs, and is again once it has
// exited (two test binaries run in parallel drew the same port in CI).
func TestFreePortAcrossProcesses(t *testing.T) {
	if os.Getenv("MESHGUARD_PORT_CLAIM") != "" {
		return // this is the child: its part is TestFreePortChild
	}
	p := 40000 + os.Getpid()%20000
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortChild$")
	cmd.Env = append(os.Environ(), "MESHGUARD_PORT_CLAIM="+strconv.Itoa(p))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "claimed\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("child: %q, %v", line, err)
	}
	if claim(p) {
		t.Errorf("port %d held by a running child process was claimed here", p)
	}
	stdin.Close() // the child exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if !claim(p) {
		t.Errorf("port %d still held after the child process exited", p)
	}
}

// TestFreePortChild is TestFreePortAcrossProcesses's child: it claims the
// port it is given, says so, and holds it until its stdin is closed.
func TestFreePortChild(t *testing.T) {
	v := os.Getenv("MESHGUARD_PORT_CLAIM")
	if v == "" {
		return
	}
	p, _ := strconv.Atoi(v)
	if !claim(p) {
		t.Fatalf("child could not claim port %d", p)
	}
	fmt.Println("claimed")
	io.Copy(io.Discard, os.Stdin)
}
