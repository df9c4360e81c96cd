package authz

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/internal/background"
	"github.com/meshguard/meshguard/internal/dirwalk"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/reload"
)

// Loader returns the complete current policy state.
type Loader func(ctx context.Context) (*policy.Set, error)

// Reloader compiles what a Loader returns into the engine. A failed load or
// compile keeps the last good snapshot; the engine's reload.Store counts,
// logs and reports it (newEngine).
type Reloader struct {
	Engine *policy.Engine
	Load   Loader
	Log    logr.Logger
	// OnReady runs after the first successful snapshot (e.g. Server.MarkReady).
	OnReady func()
	// NormalPriority rebuilds beside a serving snapshot at the process's
	// priority instead of internal/background's (--authz-rebuild-priority).
	NormalPriority bool

	ready          bool
	priorityWarned bool // background.Run's error logged once
	// loggedFailed and loggedWarnings: the last snapshot's failed policies
	// (ID → line) and warnings, so an unchanged one is not logged again at
	// each rebuild (every Pod change rebuilds; see logChanges).
	loggedFailed   map[string]string
	loggedWarnings map[string]bool
}

// newEngine returns the ext_authz policy engine: its updates are counted as
// reload.Policy, a rejected one logged on log and passed to o.OnReloadError.
func newEngine(o Options, log logr.Logger) *policy.Engine {
	return policy.NewEngine(o.Mesh(), policy.ReportUpdates(reload.Reporting{Source: reload.Policy, Log: log, OnReject: o.OnReloadError}))
}

// Reload runs one load+compile.
func (r *Reloader) Reload(ctx context.Context) error {
	var snap *policy.Snapshot
	var err error
	update := func() { snap, err = r.Engine.UpdateFrom(ctx, r.Load) }
	if r.ready && !r.NormalPriority {
		// A snapshot is serving: rebuild beside it at low priority, so
		// requests keep their CPU (internal/background; the swap stall of
		// docs/benchmarks.md "What remains, and why (profile)"). The first
		// build, with nothing to serve yet, runs as is.
		if perr := background.Run(update); perr != nil && !r.priorityWarned {
			r.priorityWarned = true
			r.Log.Info("policy rebuilds run at normal priority", "reason", perr.Error())
		}
	} else {
		update()
	}
	if err != nil {
		return err
	}
	m := DefaultMetrics()
	m.Version.Set(float64(snap.Version))
	m.Policies.WithLabelValues("AuthorizationPolicy").Set(float64(snap.Policies))
	m.Policies.WithLabelValues("PeerAuthentication").Set(float64(snap.Peers))
	m.Policies.WithLabelValues("Pod").Set(float64(snap.Pods))
	// Stored policies that cannot be evaluated: the workloads an ALLOW,
	// DENY or PeerAuthentication selects are denied (policy.FailClosedRule);
	// an AUDIT, CUSTOM or dry-run one is reported as matching every request
	// and denies nothing (policy.FailedPolicy.Denies). Counted and logged as
	// errors.
	m.Policies.WithLabelValues("FailedClosed").Set(float64(len(snap.Failed)))
	r.logChanges(snap)
	// shardsGenerated/shardsCompiled < shards, policiesTranslated <
	// authorizationPolicies: the unchanged modules and translations were
	// reused (policy.CompileNext).
	r.Log.Info("policy snapshot active", "snapshot", snap.Version, "authorizationPolicies", snap.Policies,
		"peerAuthentications", snap.Peers, "pods", snap.Pods, "warnings", len(snap.Warnings),
		"shards", snap.Shards, "shardsGenerated", snap.Generated, "shardsCompiled", snap.Compiled, "policiesTranslated", snap.Translated)
	if !r.ready {
		r.ready = true
		if r.OnReady != nil {
			r.OnReady()
		}
	}
	return nil
}

// logChanges logs snap's failed policies (as errors) and warnings that are
// new or changed against the last snapshot logged, all of them at the first:
// a rebuild with the same policies logs none again, a new or changed one is
// never dropped, and one that goes away and comes back is new again.
func (r *Reloader) logChanges(snap *policy.Snapshot) {
	failed := make(map[string]string, len(snap.Failed))
	// policy.failClosed also files each failure as a warning
	// ("<object>: cannot be evaluated, ..."): the error line says it.
	repeats := make(map[string]bool, len(snap.Failed)) // by object
	for _, f := range snap.Failed {
		msg := "policy cannot be evaluated; the workloads it selects are denied"
		if !f.Denies {
			msg = "policy cannot be evaluated; reported as matching every request to the workloads it selects, none denied (it never decides)"
		}
		line := f.Object + ": " + f.Reason
		failed[f.ID] = msg + "\x00" + line
		repeats[f.Object] = true
		if r.loggedFailed[f.ID] != failed[f.ID] {
			r.Log.Error(errors.New(line), msg, "snapshot", snap.Version, "policy", f.ID)
		}
	}
	warnings := make(map[string]bool, len(snap.Warnings))
	for _, w := range snap.Warnings {
		warnings[w] = true
		if r.loggedWarnings[w] {
			continue
		}
		if obj, _, ok := strings.Cut(w, ": cannot be evaluated"); ok && repeats[obj] {
			continue
		}
		r.Log.Info("policy warning", "snapshot", snap.Version, "warning", w)
	}
	r.loggedFailed, r.loggedWarnings = failed, warnings
}

// Run reloads once (unless a snapshot is already loaded), then after every
// burst of triggers (reload.Debounce). It returns when ctx is done.
func (r *Reloader) Run(ctx context.Context, trigger <-chan struct{}, debounce time.Duration) {
	if !r.ready {
		_ = r.Reload(ctx)
	}
	reload.Debounce(ctx, trigger, debounce, func() { _ = r.Reload(ctx) })
}

// DirLoader loads a policy directory plus optional user Rego directory;
// documents unchanged since its last load are not decoded again
// (policy.DirLoader). It reads the policies of the default revision.
func DirLoader(policyDir, regoDir string, log logr.Logger) Loader {
	return DirLoaderFor(policyDir, regoDir, "", log)
}

// DirLoaderFor is DirLoader for revision rev ("" = default): a policy
// labelled istio.io/rev for another revision is skipped, logged at V(1)
// (policy.DirLoader.Revision).
func DirLoaderFor(policyDir, regoDir, rev string, log logr.Logger) Loader {
	dir := &policy.DirLoader{Revision: rev, OnSkip: func(o policy.OutOfRevision) {
		log.V(1).Info("policy skipped: labelled for another revision", "policy", o.String(), "label", o.Label, "revision", o.Revision)
	}}
	return func(context.Context) (*policy.Set, error) {
		set := &policy.Set{UserModules: map[string]string{}}
		if policyDir != "" {
			s, warnings, err := dir.Load(policyDir)
			if err != nil {
				return nil, err
			}
			for _, w := range warnings {
				log.Info("policy dir warning", "warning", w)
			}
			set = s
		}
		if regoDir != "" {
			mods, err := loadRego(regoDir, log)
			if err != nil {
				return nil, err
			}
			for k, v := range mods {
				// A policy-dir module under rego/ has this name too: one
				// replacing the other would drop its deny rules unseen (the
				// same file, --authz-rego-dir being that rego/, is one module).
				key := "rego/" + k
				if old, dup := set.UserModules[key]; dup && old != v {
					return nil, fmt.Errorf("user rego dir: %s and %s of the policy dir %s are both module %s: rename one",
						filepath.Join(regoDir, k), filepath.Join(policyDir, key), policyDir, key)
				}
				set.UserModules[key] = v
			}
		}
		return set, nil
	}
}

// loadRego reads the user Rego modules under dir, keyed by their path
// relative to it, by the rules of every directory input (dirwalk.Files).
// An `opa test` file is skipped, logged on log, by the policy dir's rule
// (policy.SkipRegoTestFile): a *_test.rego of package meshguard.user is a
// module.
func loadRego(dir string, log logr.Logger) (map[string]string, error) {
	root, files, err := dirwalk.Files(dir, dirwalk.Options{Exts: []string{".rego"}, Confine: true})
	if err != nil {
		return nil, fmt.Errorf("user rego dir %s: %w", dir, err)
	}
	out := make(map[string]string, len(files))
	for _, rel := range files {
		b, err := policy.ReadFileBounded(filepath.Join(root, rel))
		if err != nil {
			return nil, fmt.Errorf("user rego dir: %w", err)
		}
		skipped, err := policy.SkipRegoTestFile(rel, b)
		if err != nil {
			return nil, fmt.Errorf("user rego dir %s: %w", dir, err)
		}
		if skipped != "" {
			log.Info("user rego dir warning", "warning", skipped)
			continue
		}
		out[rel] = string(b)
	}
	return out, nil
}

// WatchDirs sends on trigger whenever anything under dirs changes
// (reload.Watch). It returns when ctx is done.
func WatchDirs(ctx context.Context, log logr.Logger, trigger chan<- struct{}, dirs ...string) error {
	if err := reload.Watch(ctx, log, trigger, nil, dirs); err != nil {
		return fmt.Errorf("watch policy dir: %w", err)
	}
	return nil
}
