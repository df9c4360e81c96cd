package cluster

import "testing"

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
