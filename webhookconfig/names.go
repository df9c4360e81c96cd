// Package webhookconfig names meshguard's admission webhook configurations and
// the paths they call. It is a leaf: certs (which patches the caBundle of
// exactly these objects) and webhook (which builds and serves them) both use
// it without certs linking the admission adapters.
package webhookconfig

// Paths served on the webhook server.
const (
	InjectPath   = "/inject"
	ValidatePath = "/validate"
)

// Names of meshguard's webhook configurations. Self-managed certificates patch
// the caBundle of exactly these objects (and nothing else), and RBAC is scoped
// to them.
const (
	MutatingConfigName   = "meshguard-sidecar-injector" // "-<revision>" is appended for a non-default revision
	ValidatingConfigName = "meshguard-validator"        // likewise
)

// IsDefaultRevision says whether rev names the default revision.
func IsDefaultRevision(rev string) bool { return rev == "" || rev == "default" }

// MutatingConfigNameFor is the mutating configuration's name for a revision.
func MutatingConfigNameFor(rev string) string { return withRevision(MutatingConfigName, rev) }

// ValidatingConfigNameFor is the validating configuration's name for a revision.
func ValidatingConfigNameFor(rev string) string { return withRevision(ValidatingConfigName, rev) }

func withRevision(name, rev string) string {
	if IsDefaultRevision(rev) {
		return name
	}
	return name + "-" + rev
}
