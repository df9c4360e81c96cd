package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print meshguard's version and the versions of the libraries it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "meshguard %s\n", version)
			info, ok := debug.ReadBuildInfo()
			if !ok {
				return nil
			}
			fmt.Fprintf(out, "go %s\n", info.GoVersion)
			for _, dep := range info.Deps {
				switch dep.Path {
				case "k8s.io/api", "sigs.k8s.io/controller-runtime", "github.com/open-policy-agent/opa",
					"istio.io/api", "github.com/cert-manager/cert-manager", "github.com/envoyproxy/go-control-plane/envoy":
					fmt.Fprintf(out, "%s %s\n", dep.Path, dep.Version)
				}
			}
			return nil
		},
	}
}
