package policy

import (
	"context"
)

// --fail-open answers an evaluation that failed with the same policies
// evaluated without the user modules, never with an unconditional allow.
//
// In Istio, ALLOW and DENY policies are Envoy RBAC filters, which have no
// failure mode: they always decide. Only the CUSTOM action's ext_authz
// filter has one, failure_mode_allow, which Istio sets from the extension
// provider's failOpen (Istio: pilot/pkg/security/authz/builder/extauthz.go
// generateGRPCConfig, generateHTTPConfig), and a failure there skips only
// that external check. To meshguard, the user Rego modules are that
// external check (docs/authz-user-rego.md); the ALLOW, DENY and
// PeerAuthentication rules meshguard generates are the RBAC filters. So
// when a snapshot with user modules fails to evaluate a request, what a
// user module did (an error a client can provoke, a conflict in
// response_headers) may only skip the user modules, and the request gets
// the verdict of the generated rules alone: a DENY it matches still denies.

// EnableFailOpenFallback makes every later Update compile, beside a
// snapshot with user modules, the same set without them
// (Snapshot.WithoutUserModules), for --fail-open. A snapshot compiled
// before the call has no fallback (its failures are internal errors) until
// the next Update.
func (e *Engine) EnableFailOpenFallback() { e.fallback.Store(true) }

// WithoutUserModules is s's policies compiled without its user modules:
// the answer to a request whose evaluation of s failed under --fail-open.
// nil when s has no user modules, the engine was not asked for the
// fallback (EnableFailOpenFallback) or compiling it failed (a warning of s
// says why): then an evaluation error of s has no fallback (fail closed).
func (s *Snapshot) WithoutUserModules() *Snapshot { return s.withoutUser }

// addFallback compiles set without its user modules as s's fallback,
// reusing the shards and translations of prev's fallback (or of prev
// itself, a snapshot that had no user modules) as CompileNext reuses
// those of a previous snapshot. It runs inside the update that builds s,
// before s is published.
func (s *Snapshot) addFallback(ctx context.Context, prev *Snapshot, mesh Mesh, set *Set) {
	if len(set.UserModules) == 0 {
		return
	}
	if prev != nil && prev.withoutUser != nil {
		prev = prev.withoutUser
	}
	without := *set
	without.UserModules = nil
	fb, err := CompileNext(ctx, prev, mesh, &without, s.Version)
	if err != nil {
		// Cannot happen when s compiled (the generated rules are the same),
		// but if it does, s still serves: its errors are then internal
		// errors, denied, never a blanket allow.
		s.Warnings = append(s.Warnings, "policies without the user Rego modules (the --fail-open fallback) do not compile: "+
			err.Error()+"; evaluation errors are denied (503) until they do")
		return
	}
	s.withoutUser = fb
}
