package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "meshguard",
		Short: "Sidecar injection, mesh config validation and ext_authz for Istio-style meshes",
		Long: `meshguard is one small control-plane binary that does three jobs:

  * injects the istio-proxy sidecar and istio-init into pods (mutating webhook /inject)
  * validates Istio mesh config (VirtualService, DestinationRule, AuthorizationPolicy, ...)
    at admission time (validating webhook /validate) and offline (meshguard validate)
  * answers Envoy ext_authz Check calls by evaluating AuthorizationPolicy and
    PeerAuthentication with OPA (gRPC envoy.service.auth.v3.Authorization)

Run "make run" for a local control plane with everything wired up.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newInjectCmd(),
		newValidateCmd(),
		newAnalyzeCmd(),
		newAuthzCmd(),
		newVersionCmd(),
	)
	root.AddCommand(devCommands()...)
	return root
}
