package authz

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/internal/runnable"
)

// Setup adds the ext_authz gRPC server and its policy source to mgr as
// Runnables: the API server (AuthorizationPolicy and PeerAuthentication
// informers of its own, Pods from mgr's cache; see kubeSource) unless
// o.PolicyDir is set, in which case the directory is watched. Both stop
// gracefully when the manager's context ends. They run on every replica
// (not only the leader).
func Setup(mgr manager.Manager, o Options, tlsConfig *tls.Config, log logr.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o = o.withDefaults()
	engine := newEngine(o, log.WithName("policy"))
	srv := NewServer(engine, o, log.WithName("authz"))
	if err := mgr.AddReadyzCheck("authz-policy", srv.Ready); err != nil {
		return fmt.Errorf("add ext_authz readiness check: %w", err)
	}
	trigger := make(chan struct{}, 1)
	rl := &Reloader{Engine: engine, Log: log.WithName("policy"), OnReady: srv.MarkReady, NormalPriority: o.RebuildPriority == "normal"}
	var src *kubeSource
	if o.PolicyDir == "" {
		var err error
		if src, err = newKubeSource(mgr.GetConfig(), mgr.GetCache(), o.RegoDir, o.Revision, log.WithName("policy")); err != nil {
			return err
		}
		src.SetDiscoverySelectors(o.DiscoverySelectors)
		o.onDiscovery = src.SetDiscoverySelectors
	}

	switch {
	case o.MeshConfigPath != "":
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			return watchMeshConfig(ctx, o, engine, log.WithName("mesh-config"), trigger)
		})); err != nil {
			return fmt.Errorf("add mesh config watcher: %w", err)
		}
	case o.MeshConfigs != nil:
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			followMeshConfigs(ctx, o, engine, log.WithName("mesh-config"), trigger)
			return nil
		})); err != nil {
			return fmt.Errorf("add mesh config follower: %w", err)
		}
	}
	if o.PolicyDir != "" {
		rl.Load = DirLoaderFor(o.PolicyDir, o.RegoDir, o.Revision, log.WithName("policy"))
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			go rl.Run(ctx, trigger, o.Debounce)
			return WatchDirs(ctx, log.WithName("policy"), trigger, o.PolicyDir, o.RegoDir)
		})); err != nil {
			return fmt.Errorf("add policy dir watcher: %w", err)
		}
	} else {
		rl.Load = src.Load
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			if err := src.Watch(ctx, trigger); err != nil {
				return err
			}
			if o.RegoDir != "" {
				go func() {
					if err := WatchDirs(ctx, log.WithName("policy"), trigger, o.RegoDir); err != nil {
						log.Error(err, "cannot watch the user Rego directory: changes to it are not reloaded", "dir", o.RegoDir)
					}
				}()
			}
			rl.Run(ctx, trigger, o.Debounce)
			return nil
		})); err != nil {
			return fmt.Errorf("add policy watcher: %w", err)
		}
	}

	if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
		lis, err := net.Listen("tcp", o.Addr)
		if err != nil {
			return fmt.Errorf("ext_authz listen on %s: %w", o.Addr, err)
		}
		log.Info("ext_authz gRPC server listening", "addr", lis.Addr().String(), "tls", tlsConfig != nil)
		if o.Draining != nil {
			go func() {
				select {
				case <-o.Draining:
					srv.health.Shutdown() // NOT_SERVING from now on, whatever MarkReady says
				case <-ctx.Done():
				}
			}()
		}
		return srv.Serve(ctx, lis, tlsConfig)
	})); err != nil {
		return fmt.Errorf("add ext_authz server: %w", err)
	}
	if o.HTTPAddr != "" {
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			lis, err := net.Listen("tcp", o.HTTPAddr)
			if err != nil {
				return fmt.Errorf("ext_authz HTTP listen on %s: %w", o.HTTPAddr, err)
			}
			log.Info("ext_authz HTTP server listening", "addr", lis.Addr().String(), "tls", tlsConfig != nil, "pathPrefix", o.HTTPPathPrefix)
			return srv.ServeHTTP(ctx, lis, tlsConfig)
		})); err != nil {
			return fmt.Errorf("add ext_authz HTTP server: %w", err)
		}
	}
	return nil
}

// RunStandalone serves from a policy directory without a manager (used by
// `meshguard authz serve` and hack/ghz-load.sh), reloading the directory
// and, with o.MeshConfigPath, the mesh config on change. It returns when ctx ends.
// With o.HTTPAddr it also serves HTTP ext_authz there, with the same TLS.
func RunStandalone(ctx context.Context, o Options, lis net.Listener, tlsConfig *tls.Config, log logr.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.PolicyDir == "" {
		return fmt.Errorf("--policy-dir is required")
	}
	o = o.withDefaults()
	engine := newEngine(o, log.WithName("policy"))
	srv := NewServer(engine, o, log.WithName("authz"))
	rl := &Reloader{Engine: engine, Load: DirLoaderFor(o.PolicyDir, o.RegoDir, o.Revision, log.WithName("policy")), Log: log.WithName("policy"), OnReady: srv.MarkReady,
		NormalPriority: o.RebuildPriority == "normal"}
	if err := rl.Reload(ctx); err != nil {
		return err
	}
	trigger := make(chan struct{}, 1)
	go rl.Run(ctx, trigger, o.Debounce)
	go func() {
		if err := WatchDirs(ctx, log.WithName("policy"), trigger, o.PolicyDir, o.RegoDir); err != nil {
			log.Error(err, "policy dir watch stopped")
		}
	}()
	// The mesh config reloads as under serve (same watcher).
	if o.MeshConfigPath != "" {
		go func() {
			if err := watchMeshConfig(ctx, o, engine, log.WithName("mesh-config"), trigger); err != nil {
				log.Error(err, "mesh config watch stopped")
			}
		}()
	}
	// The same lines as under serve and dev (Setup), which operators and
	// scripts wait for.
	log.Info("ext_authz gRPC server listening", "addr", lis.Addr().String(), "tls", tlsConfig != nil)
	if o.HTTPAddr == "" {
		return srv.Serve(ctx, lis, tlsConfig)
	}
	hlis, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("ext_authz HTTP listen on %s: %w", o.HTTPAddr, err)
	}
	log.Info("ext_authz HTTP server listening", "addr", hlis.Addr().String(), "tls", tlsConfig != nil, "pathPrefix", o.HTTPPathPrefix)
	// A new variable, not ctx: the watcher goroutines above still read ctx.
	srvCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpErr := make(chan error, 1)
	go func() {
		err := srv.ServeHTTP(srvCtx, hlis, tlsConfig)
		cancel() // one server failing stops the other
		httpErr <- err
	}()
	err = srv.Serve(srvCtx, lis, tlsConfig)
	cancel()
	return errors.Join(err, <-httpErr)
}
