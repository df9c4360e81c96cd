package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/internal/manifest"
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
	// A flag that is unknown or whose value does not parse, and positional
	// arguments a command does not take, are usage errors with the
	// command's usage exit code, never 1 (which `validate` and `inject` use
	// for an invalid object), as istioctl sets a flag error function on every
	// command (Istio: istioctl/cmd/root.go GetRootCmd, CommandParseError).
	// Subcommands inherit the root's flag error function (cobra).
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return exitError{code: usageExitCode(cmd), msg: err.Error()}
	})
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.HasSubCommands() && !sub.Runnable() {
				// A command group (`authz`): cobra prints its help for any
				// argument and exits 0, so `meshguard authz chek` passed
				// in CI. An argument is a usage error; none prints help.
				sub.Args = cobra.NoArgs
				sub.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			}
			if sub.Args != nil {
				sub.Args = usageArgs(sub.Args)
			}
			wrap(sub)
		}
	}
	wrap(root)
	return root
}

// usageArgs makes the errors of a positional-arguments check usage errors
// (usageExitCode).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return exitError{code: usageExitCode(cmd), msg: err.Error()}
		}
		return nil
	}
}

// usageExitCode is the exit status of a usage error (an unknown flag, a flag
// value that does not parse, an argument the command does not take) of cmd:
// analyze's is istioctl's ExitIncorrectUsage (64, exitAnalyzeUsage), as is an
// unknown command's; every other command's is 2, the status of input it
// could not run on (validate, inject, authz and serve; 1 means the input is
// at fault there).
func usageExitCode(cmd *cobra.Command) int {
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	if !top.HasParent() || top.Name() == "analyze" {
		return exitAnalyzeUsage
	}
	return 2
}

// byteLimit is the value of a --max-input-size flag: a number of bytes over
// 0 (0 or less, which read as the default before, is refused as a bad flag
// value, a usage error).
type byteLimit struct{ p *int64 }

func (b byteLimit) String() string { return strconv.FormatInt(*b.p, 10) }

func (b byteLimit) Type() string { return "bytes" }

func (b byteLimit) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return fmt.Errorf("not a number of bytes")
	}
	if v <= 0 {
		return fmt.Errorf("%d: must be more than 0 bytes", v)
	}
	*b.p = v
	return nil
}

// maxInputSizeFlag registers --max-input-size of cmd over p
// (default manifest.DefaultMaxInputBytes).
func maxInputSizeFlag(cmd *cobra.Command, p *int64, usage string) {
	*p = manifest.DefaultMaxInputBytes
	cmd.Flags().Var(byteLimit{p}, "max-input-size", usage)
}
