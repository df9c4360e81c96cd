package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/reload"
)

// ConfigWatcher reloads the injector config when its files change. A new
// config is validated completely before it replaces the old one; a bad one
// is logged and counted (meshguard_injector_config_reload_errors_total) and
// the last good one keeps serving (Istio swapped first, #53923).
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
	// (InjectionOptions.OnConfigReload; the first call comes when the watch
	// starts and re-reads the files).
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
	trigger := make(chan struct{}, 1)
	watchErr := make(chan error, 1)
	go func() { watchErr <- reload.Watch(ctx, w.Log, trigger, []string{w.MeshPath, w.ValuesPath}, nil) }()
	// The manager starts this after its caches sync, well after SetupInjection
	// loaded the files: read them again once they are watched, so a change in
	// between is not missed. (A trigger before the watch is up costs one
	// extra reload.)
	w.Reload()
	go reload.Debounce(ctx, trigger, debounce, w.Reload)
	select {
	case <-ctx.Done():
		return <-watchErr
	case err := <-watchErr:
		if err != nil {
			return fmt.Errorf("watching injector config: %w", err)
		}
		<-ctx.Done()
		return nil
	}
}

// Reload loads, validates and swaps in the config files now.
func (w *ConfigWatcher) Reload() {
	load := w.Load
	if load == nil {
		load = func() (*config.Snapshot, error) { return config.LoadFiles(w.MeshPath, w.ValuesPath) }
	}
	snap, err := load()
	if err != nil {
		configReloadErrors.Inc()
		w.Log.Error(err, "rejected injector config; keeping the last good one", "meshConfig", w.MeshPath, "values", w.ValuesPath)
	} else {
		w.Store.Store(snap)
		configReloads.Inc()
		w.Log.Info("reloaded injector config", "meshConfig", w.MeshPath, "values", w.ValuesPath, "revision", snap.Revision())
	}
	if w.OnReload != nil {
		w.OnReload(err)
	}
}
