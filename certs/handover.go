package certs

import "time"

// caHandover is the leader's one rule, for both cluster modes, on when a
// leaf of a new CA may go out (self mode writes it, cert-manager mode asks
// cert-manager to re-issue it): once every webhook configuration's caBundle
// has held the new CA for PropagationDelay without a break (the API
// server's watch of the configuration lags the write: trusted). Self mode,
// which writes the caBundles itself, also goes ahead once CAWaitTimeout has
// passed since the leader first saw the CA (waited: another writer keeps
// reverting them); cert-manager mode never does, as there cainjector writes
// them and a leaf of a CA they lack fails every call.
//
// Trust counts only from what this term saw in one unbroken run: a caBundle
// that loses the CA (another writer re-applied an older bundle) restarts the
// wait when it holds the CA again, and each leadership term starts from
// nothing (the bundles may have been reverted and re-patched between
// terms). The zero value is a fresh term.
type caHandover struct {
	fp            string    // fingerprint of the CA the times are for
	caSeenSince   time.Time // when this term first saw that CA
	inBundleSince time.Time // start of the current run of every caBundle holding it; zero: not holding it
}

// see records that the current CA, of fingerprint fp, was seen at now. It
// reports whether fp is another CA than the one last seen (the times start
// over).
func (h *caHandover) see(fp string, now time.Time) (newCA bool) {
	if fp == h.fp {
		return false
	}
	*h = caHandover{fp: fp, caSeenSince: now}
	return true
}

// bundles records one successful look at the caBundles at now: inBundle
// tells whether every one of them holds the CA last seen. A look that failed
// is not recorded (neither a loss nor a hold).
func (h *caHandover) bundles(inBundle bool, now time.Time) {
	switch {
	case !inBundle:
		h.inBundleSince = time.Time{}
	case h.inBundleSince.IsZero():
		h.inBundleSince = now
	}
}

// trusted reports whether a leaf of the CA last seen may go out at now
// because every caBundle has held it for delay, inBundle being this pass's
// look at the caBundles (false when it failed).
func (h *caHandover) trusted(inBundle bool, now time.Time, delay time.Duration) bool {
	return inBundle && !h.inBundleSince.IsZero() && now.Sub(h.inBundleSince) >= delay
}

// waited reports whether timeout has passed at now since the CA last seen
// was first seen.
func (h *caHandover) waited(now time.Time, timeout time.Duration) bool {
	return h.fp != "" && now.Sub(h.caSeenSince) >= timeout
}

// reset forgets everything: at the start of each leadership term, and in
// cert-manager mode once the served leaf is of the current CA.
func (h *caHandover) reset() { *h = caHandover{} }
