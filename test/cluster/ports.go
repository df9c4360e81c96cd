package cluster

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a
// server a test starts (tests talk to loopback only). It is taken below the
// kernel's ephemeral range when it can be: a port from that range (what
// listening on port 0 gives) can be taken, before the server binds it, as
// the local port of any outgoing connection of the tests running in
// parallel, and the server then fails with "address already in use".
//
// A port is handed out once across the test processes of a run: two calls a
// moment apart (a server's metrics and health ports) could otherwise draw
// the same free port, and so could two test binaries running in parallel
// (`go test -p 2`; a CI run failed with "address already in use"), and the
// second listener fails.
func FreePort(t testing.TB) int {
	t.Helper()
	if low := ephemeralLow(); low > 11024 {
		for range 50 {
			p := low - 10000 + rand.IntN(10000)
			if !claim(p) {
				continue
			}
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
				l.Close()
				return p
			}
		}
	}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claim(p) {
			return p
		}
	}
	t.Fatal("no free port not handed out before")
	return 0
}

var (
	claimedMu sync.Mutex
	claimed   = map[int]bool{}
	// claims is a file in which this process write-locks byte p for each
	// port p it hands out. The locks are POSIX record locks, so the kernel
	// drops them when the process exits (however it exits) and nothing is
	// left behind; they are per process, hence the map above within one.
	// The file is never closed: closing any descriptor of it would drop
	// every lock.
	claims     *os.File
	claimsOnce sync.Once
)

// claim records p as handed out by this process and by no other test
// process still running; false if it was. Without the lock file (an
// unwritable temporary directory) only this process is checked.
func claim(p int) bool {
	claimedMu.Lock()
	defer claimedMu.Unlock()
	if claimed[p] {
		return false
	}
	claimsOnce.Do(func() {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "meshguard-test-ports.lock"), os.O_RDWR|os.O_CREATE, 0o666)
		if err == nil {
			claims = f
		}
	})
	if claims != nil {
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(p), Len: 1}
		if err := syscall.FcntlFlock(claims.Fd(), syscall.F_SETLK, &lk); err != nil {
			return false // held by another test process
		}
	}
	claimed[p] = true
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// ip_local_port_range), 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	low, _ := strconv.Atoi(f[0])
	return low
}

// FreeAddr is FreePort as a "127.0.0.1:port" address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
