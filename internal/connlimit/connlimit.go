// Package connlimit caps the connections a server has open at once, for
// every listening server of meshguard (the webhook, health probe and
// metrics servers, ext_authz's gRPC and HTTP ports).
package connlimit

import (
	"fmt"
	"net"

	"golang.org/x/net/netutil"
)

// Listener caps the connections open at once from lis at n
// (golang.org/x/net/netutil.LimitListener): at the cap Accept waits, leaving
// new clients in the kernel's accept queue (not refused; beyond its backlog
// the kernel stops answering their SYNs and they retry), until a connection
// closes. The server must bound a connection that never completes its
// handshake, or a client could hold its slot for good: meshguard's servers
// close it at their handshake or first-request deadline. n < 1 panics:
// callers pass a checked flag or a constant.
func Listener(lis net.Listener, n int) net.Listener {
	if n < 1 {
		panic(fmt.Sprintf("connlimit.Listener: limit %d", n))
	}
	return netutil.LimitListener(lis, n)
}
