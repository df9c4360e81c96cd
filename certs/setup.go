package certs

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/internal/runnable"
)

// Setup builds the Source for o.Mode. Files mode works without a manager
// (mgr may be nil) and has the pair loaded when Setup returns; the cluster
// modes add their informers (every replica) and writers (leader only) to mgr.
func Setup(ctx context.Context, mgr manager.Manager, o Options, log logr.Logger) (Source, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Mode == ModeFiles {
		return setupFiles(ctx, o, log.WithValues("certMode", ModeFiles))
	}
	if mgr == nil {
		return nil, fmt.Errorf("--cert-mode=%s needs a Kubernetes connection", modeName(o.Mode))
	}
	if o.Mode == ModeAuto {
		if o.Mode, err = DetectMode(mgr.GetConfig()); err != nil {
			return nil, err
		}
		log.Info("detected certificate mode", "certMode", o.Mode)
	}
	log = log.WithValues("certMode", o.Mode)
	switch o.Mode {
	case ModeCertManager:
		s, err := setupCertManager(ctx, mgr.GetConfig(), o, log)
		if err != nil {
			return nil, err
		}
		if err := addRunnables(mgr, runnable.EveryReplica(s.serve), runnable.LeaderOnly(s.reissue)); err != nil {
			return nil, err
		}
		return s, nil
	default:
		s, err := setupSelf(mgr.GetConfig(), o, log)
		if err != nil {
			return nil, err
		}
		if err := addRunnables(mgr, runnable.EveryReplica(s.serve), runnable.LeaderOnly(s.rotate)); err != nil {
			return nil, err
		}
		return s, nil
	}
}

func addRunnables(mgr manager.Manager, rs ...manager.Runnable) error {
	for _, r := range rs {
		if err := mgr.Add(r); err != nil {
			return fmt.Errorf("add certificate runnable: %w", err)
		}
	}
	return nil
}

// DetectMode picks cert-manager when the certificates.cert-manager.io CRD is
// served, else self.
func DetectMode(cfg *rest.Config) (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("discovery client: %w", err)
	}
	res, err := dc.ServerResourcesForGroupVersion("cert-manager.io/v1")
	if apierrors.IsNotFound(err) {
		return ModeSelf, nil
	}
	if err != nil {
		return "", fmt.Errorf("look for the certificates.cert-manager.io CRD: %w", err)
	}
	for _, r := range res.APIResources {
		if r.Name == "certificates" {
			return ModeCertManager, nil
		}
	}
	return ModeSelf, nil
}

// ModeOf is the mode a Source from Setup runs in (auto resolved), so serve
// can choose the webhook clientConfig: InjectCAFrom for cert-manager,
// CABundle for files, nothing for self (caBundle is patched in).
func ModeOf(src Source) string {
	switch s := src.(type) {
	case *cmSource:
		return ModeCertManager
	case *selfSource:
		return ModeSelf
	case *store:
		return s.mode
	}
	return ""
}
