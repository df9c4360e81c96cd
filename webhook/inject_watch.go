package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/reload"
)

// ConfigWatcher reloads the injector config into its Store when the files
// change. The Store (reload.Store) validates a new config completely before
// it replaces the old one; a bad one is logged, counted
// (meshguard_config_reload_errors_total{source="injector-config"}) and
// reported, and the last good one keeps serving (Istio swapped first, #53923).
type ConfigWatcher struct {
	Store      *ConfigStore
	MeshPath   string
	ValuesPath string
	Debounce   time.Duration
	Log        logr.Logger
	// Load, if set, replaces config.LoadFiles(MeshPath, ValuesPath) (e.g. to
	// apply flag overrides after every reload).
	Load func() (*config.Snapshot, error)
	// OnReload, if set, is called after every reload attempt with its error
	// (the first call comes when the watch starts and re-reads the files).
	// Rejections are reported by the Store (reload.Reporting.OnReject).
	OnReload func(error)
}

// NeedLeaderElection is false: every replica serves webhooks and needs the config.
func (w *ConfigWatcher) NeedLeaderElection() bool { return false }

// Start watches until ctx ends. It watches the files' directories because
// mounted ConfigMaps are updated by swapping a symlink, not by writing the file.
func (w *ConfigWatcher) Start(ctx context.Context) error {
	if w.MeshPath == "" && w.ValuesPath == "" {
		<-ctx.Done()
		return nil
	}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultReloadDebounce
	}
	// The manager starts this after its caches sync, well after SetupInjection
	// loaded the files: reload.Run reads them again once they are watched, so
	// a change in between is not missed.
	if err := reload.Run(ctx, w.Log, []string{w.MeshPath, w.ValuesPath}, nil, debounce, w.Reload); err != nil {
		return fmt.Errorf("watching injector config: %w", err)
	}
	return nil
}

// Reload loads, validates and swaps in the config files now.
func (w *ConfigWatcher) Reload() { _ = w.reload() }

// reload is Reload returning the error it reported.
func (w *ConfigWatcher) reload() error {
	load := w.Load
	if load == nil {
		load = func() (*config.Snapshot, error) { return config.LoadFiles(w.MeshPath, w.ValuesPath) }
	}
	snap, err := w.Store.Update(load)
	if err == nil {
		w.Log.Info("reloaded injector config", "meshConfig", w.MeshPath, "values", w.ValuesPath, "revision", snap.Revision())
	}
	if w.OnReload != nil {
		w.OnReload(err)
	}
	return err
}
