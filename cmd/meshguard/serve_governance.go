package main

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/webhook"
)

// governanceOptions are serve's organisation-rule sources (docs/governance.md).
type governanceOptions struct {
	orgRules webhook.OrgRulesOptions
}

func (g *governanceOptions) addFlags(fs *pflag.FlagSet) {
	g.orgRules.AddFlags(fs)
}

// setupOrgRules loads the organisation rules (when a source is configured),
// keeps them reloaded, gates readiness on their first load and hands them to
// the validation webhook. A rejected reload becomes an Event on meshguard's Pod.
func setupOrgRules(mgr manager.Manager, o *serveOptions, sink *eventSink, log logr.Logger) (*webhook.OrgRules, error) {
	ro := o.governance.orgRules
	ro.Namespace = o.namespace
	ro.OnReload = func(err error) {
		if err != nil {
			sink.rejected("OrgRulesRejected", err)
		}
	}
	rules, err := webhook.SetupOrgRules(mgr, ro, log.WithName("orgrules"))
	if err != nil {
		return nil, fmt.Errorf("set up organisation rules: %w", err)
	}
	if rules != nil {
		if err := mgr.AddReadyzCheck("orgrules", rules.Ready); err != nil {
			return nil, err
		}
	}
	o.validation.OrgRules = rules
	return rules, nil
}
