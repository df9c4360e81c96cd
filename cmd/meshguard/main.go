// Command meshguard is a control-plane component for Istio-style meshes:
// sidecar injection, mesh config validation and ext_authz authorization in
// one binary.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var exit exitError
	if errors.As(err, &exit) {
		if exit.msg != "" {
			fmt.Fprintln(stderr, "Error:", exit.msg)
		}
		return exit.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	if strings.HasPrefix(err.Error(), "unknown command ") {
		// cobra's error for a command meshguard does not have, which it
		// returns before any command runs: a usage error, as istioctl's
		// GetExitCode maps "unknown command" to ExitIncorrectUsage (Istio:
		// istioctl/cmd/istioctl/main.go GetExitCode).
		return exitAnalyzeUsage
	}
	return 1
}

// exitError carries a specific exit code out of a subcommand (e.g. `validate`
// exits 1 for invalid config and 2 for unreadable input).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }
