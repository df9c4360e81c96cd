// Package httplog routes what net/http's servers log (http.Server.ErrorLog)
// to the process's structured logger; every meshguard HTTP server sets it.
package httplog

import (
	stdlog "log"
	"strings"

	"github.com/go-logr/logr"
)

// ErrorLog returns an http.Server.ErrorLog that writes to log; unset, net/http
// writes one unstructured line to stderr per event (log.Printf).
//
// A failed TLS handshake ("http: TLS handshake error") and an HTTP/2
// connection error ("http2: ", or a client's SETTINGS that never came) are the
// client's doing: any client can cause one per connection attempt, as often
// as it likes, and the client learns of the failure itself (the API server
// names it in its own log and in the admission error). They are logged at
// V(1), so they cannot flood the log (Istio's pilot/pkg/bootstrap/webhook.go
// httpServerErrorLogWriter logs a handshake EOF at debug level for the same
// reason). Everything else net/http logs is the server's fault (a handler's
// panic, over HTTP/1 or HTTP/2, or misuse of the ResponseWriter; accept
// failures, which net/http retries at most once a second) and is logged as an
// error.
func ErrorLog(log logr.Logger) *stdlog.Logger {
	return stdlog.New(writer{log}, "", 0)
}

type writer struct{ log logr.Logger }

func (w writer) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	clientCaused := strings.HasPrefix(msg, "http: TLS handshake error") || strings.HasPrefix(msg, "http2: ") ||
		strings.HasPrefix(msg, "timeout waiting for ") // an HTTP/2 client's SETTINGS or PING
	if clientCaused && !strings.HasPrefix(msg, "http2: panic serving") { // a handler's panic over HTTP/2
		w.log.V(1).Info(msg)
	} else {
		w.log.Error(nil, msg)
	}
	return len(p), nil
}
