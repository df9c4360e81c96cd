package httplog

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

// TestErrorLogLevels: what a client can cause at will is logged at V(1),
// the server's own faults as errors, one structured entry per line.
func TestErrorLogLevels(t *testing.T) {
	for _, tc := range []struct {
		line, want string
	}{
		{"http: TLS handshake error from 10.0.0.1:4242: EOF\n", `"level":1`},
		{"http: TLS handshake error from 10.0.0.1:4242: remote error: tls: bad certificate\n", `"level":1`},
		{"http2: server connection error from 10.0.0.1:4242: connection error: PROTOCOL_ERROR\n", `"level":1`},
		{"timeout waiting for SETTINGS frames from 10.0.0.1:4242\n", `"level":1`},
		{"http: panic serving 10.0.0.1:4242: boom\ngoroutine 1 [running]:\n", `"error":null`},
		{"http2: panic serving 10.0.0.1:4242: boom\ngoroutine 1 [running]:\n", `"error":null`},
		{"http: Accept error: accept tcp [::]:9443: accept4: too many open files; retrying in 5ms\n", `"error":null`},
		{"http: superfluous response.WriteHeader call from x (y:1)\n", `"error":null`},
	} {
		var lines []string
		log := funcr.NewJSON(func(obj string) { lines = append(lines, obj) }, funcr.Options{Verbosity: 1})
		if _, err := ErrorLog(log.WithValues("server", "s")).Writer().Write([]byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		if len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[0], `"server":"s"`) ||
			strings.HasSuffix(lines[0], `\n"}`) {
			t.Errorf("%q logged as %q, want one entry with %s and the server's name", tc.line, lines, tc.want)
		}
	}
}
