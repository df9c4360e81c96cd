package authz

import (
	"context"
	"fmt"
	"path/filepath"
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
		// requests keep their CPU (internal/background; issue 17's swap
		// stall). The first build, with nothing to serve yet, runs as is.
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
	for _, f := range snap.Failed {
		msg := "policy cannot be evaluated; the workloads it selects are denied"
		if !f.Denies {
			msg = "policy cannot be evaluated; reported as matching every request to the workloads it selects, none denied (it never decides)"
		}
		r.Log.Error(fmt.Errorf("%s: %s", f.Object, f.Reason), msg, "snapshot", snap.Version, "policy", f.ID)
	}
	for _, w := range snap.Warnings {
		r.Log.Info("policy warning", "snapshot", snap.Version, "warning", w)
	}
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
// (policy.DirLoader).
func DirLoader(policyDir, regoDir string, log logr.Logger) Loader {
	dir := new(policy.DirLoader)
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
			mods, err := loadRego(regoDir)
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
func loadRego(dir string) (map[string]string, error) {
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
