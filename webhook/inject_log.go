package webhook

import (
	"errors"
	"strings"

	"github.com/go-logr/logr"
)

// No secrets or tokens in logs (docs/compatibility.md "Logs carry no
// secrets"): pods carry env values and
// annotations that may hold credentials, so the injection path logs names
// (namespace, pod, the offending fields) and never pod content or messages
// that quote it.

// safeDecodeError drops the input excerpts json-iterator appends to its
// errors ("error found in #N byte of ...|<input>|..., bigger context ..."),
// which would put pod content (env values, annotations) into logs and into
// the denial the API server records. The message and byte offset remain.
func safeDecodeError(err error) error {
	msg := err.Error()
	const marker = ", error found in #"
	i := strings.Index(msg, marker)
	if i < 0 {
		return err
	}
	rest := msg[i+len(marker):]
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	return errors.New(msg[:i] + " (at byte " + rest + ")")
}

// redactedKeys are the log keys whose values controller-runtime's admission
// webhook fills with the response message; our denial messages quote the
// offending annotation value for the requester, so they must not be logged.
var redactedKeys = map[string]bool{"message": true}

// redactSink replaces the values of redactedKeys with "[redacted]".
type redactSink struct {
	logr.LogSink
}

// redactLogger returns log with redactedKeys' values redacted.
func redactLogger(log logr.Logger) logr.Logger {
	if log.GetSink() == nil {
		return log
	}
	return log.WithSink(redactSink{log.GetSink()})
}

func redact(kv []any) []any {
	var out []any
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok && redactedKeys[k] {
			if out == nil {
				out = append([]any(nil), kv...)
			}
			out[i+1] = "[redacted]"
		}
	}
	if out == nil {
		return kv
	}
	return out
}

func (s redactSink) Info(level int, msg string, kv ...any) {
	s.LogSink.Info(level, msg, redact(kv)...)
}

func (s redactSink) Error(err error, msg string, kv ...any) {
	s.LogSink.Error(err, msg, redact(kv)...)
}

func (s redactSink) WithValues(kv ...any) logr.LogSink {
	return redactSink{s.LogSink.WithValues(redact(kv)...)}
}

func (s redactSink) WithName(name string) logr.LogSink {
	return redactSink{s.LogSink.WithName(name)}
}

// WithCallDepth keeps caller information right when the sink supports it.
func (s redactSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return redactSink{cd.WithCallDepth(depth + 1)}
	}
	return s
}
