package policy

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

// EnableFailOpenFallback makes every later Update give a snapshot with user
// modules its fallback (Snapshot.WithoutUserModules), for --fail-open. A
// snapshot compiled before the call has no fallback (its failures are
// internal errors) until the next Update.
func (e *Engine) EnableFailOpenFallback() { e.fallback.Store(true) }

// WithoutUserModules is s's policies evaluated without its user modules:
// the answer to a request whose evaluation of s failed under --fail-open.
// nil when s has no user modules or the engine was not asked for the
// fallback (EnableFailOpenFallback): then an evaluation error of s has no
// fallback (fail closed).
func (s *Snapshot) WithoutUserModules() *Snapshot { return s.withoutUser }

// addFallback gives s, compiled with user modules, its fallback: s itself
// evaluated through its shards' direct query (compileShard), the generated
// decision with user_deny, its one reference to the user modules
// (regogen.go generateShard), replaced by an empty list, plus the
// PeerAuthentication mode and the reports. OPA evaluates only the rules a
// query depends on (topdown evaluates a rule when a reference reaches it),
// so no rule of data.meshguard.user runs and none of their errors,
// conflicts or deadlines can reach the fallback; and the policies are
// compiled once, not again without the user modules (which doubled a
// snapshot's heap, docs/compatibility.md "--fail-open"). It runs inside the
// update that builds s, before s is published.
func (s *Snapshot) addFallback() {
	if !s.hasUserModules() {
		return
	}
	fb := *s
	// What only the user modules read of the destination makes nothing
	// undecidable without them (undecidable). The fallback compiled,
	// generated and translated nothing of its own.
	fb.userReads, fb.policyOnly, fb.withoutUser = 0, true, nil
	fb.Compiled, fb.Generated, fb.Translated = 0, 0, 0
	s.withoutUser = &fb
}

// hasUserModules: s's shards were compiled with user modules (all of them
// or none: CompileNext puts user modules in one shard).
func (s *Snapshot) hasUserModules() bool {
	for _, sh := range s.shards {
		if sh != nil {
			return sh.user
		}
	}
	return false
}
