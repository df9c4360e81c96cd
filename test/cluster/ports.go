package cluster

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a
// server a test starts (tests talk to loopback only). It is taken below the
// kernel's ephemeral range when it can be: a port from that range (what
// listening on port 0 gives) can be taken, before the server binds it, as
// the local port of any outgoing connection of the tests running in
// parallel, and the server then fails with "address already in use".
//
// A port is handed out once per test process: two calls a moment apart (a
// server's metrics and health ports) could otherwise draw the same free
// port, and the second listener of the server fails.
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
)

// claim records p as handed out; false if it was already.
func claim(p int) bool {
	claimedMu.Lock()
	defer claimedMu.Unlock()
	if claimed[p] {
		return false
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
