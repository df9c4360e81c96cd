package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/policy"
)

func newAuthzCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "authz",
		Short: "Evaluate AuthorizationPolicy/PeerAuthentication like the ext_authz service, offline or standalone",
	}
	cmd.AddCommand(newAuthzCheckCmd(), newAuthzServeCmd())
	return cmd
}

func newAuthzCheckCmd() *cobra.Command {
	o := authz.DefaultOptions()
	var requestFile, meshConfig string
	var explain bool
	cmd := &cobra.Command{
		Use:   "check --policy-dir DIR --request FILE|-",
		Short: "Decide one Envoy CheckRequest (protojson) against the policies in a directory and print a JSON verdict",
		Long: `Reads an Envoy envoy.service.auth.v3.CheckRequest in protojson from FILE (or stdin with "-"),
evaluates it against the AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Pod YAML and *.rego files in
--policy-dir exactly as the ext_authz service would, and prints one JSON verdict:

  {"allowed": bool, "status": 200|403|400, "action": "ALLOW|DENY|AUDIT|NONE", "policy": "ns/name", "rule": N, "reason": "..."}

With --explain the object also has "explain": the deciding policy and rule, every matching
AUDIT, dry-run ALLOW/DENY and CUSTOM policy (with its first matching rule), and the effective
PeerAuthentication mode with the policy it came from ("" = the mesh default PERMISSIVE).

Every AuthorizationPolicy and PeerAuthentication is validated as "meshguard validate" does
(unknown fields included); one it rejects makes the check fail (exit 2).

Exit status 0 when a verdict was produced (allowed or not), 2 on bad input, 3 when the
policies could not be evaluated for the request (the server's internal error, which it
answers with 503, or under --fail-open, when user Rego modules failed, with the verdict of
the policies without them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.PolicyDir == "" {
				return exitError{2, "--policy-dir is required"}
			}
			if requestFile == "" {
				return exitError{2, "--request is required (a file, or - for stdin)"}
			}
			if err := authzFromMeshConfig(cmd.Flags(), meshConfig, &o); err != nil {
				return exitError{2, err.Error()}
			}
			if err := o.Validate(); err != nil {
				return exitError{2, err.Error()}
			}
			// Bounded as the server bounds a CheckRequest (--authz-max-recv-msg-size).
			raw, err := readInput(requestFile, cmd.InOrStdin(), int64(o.MaxRecvMsgSize))
			if err != nil {
				return exitError{2, fmt.Sprintf("read request: %v", err)}
			}
			req := &authv3.CheckRequest{}
			if err := protojson.Unmarshal(raw, req); err != nil {
				return exitError{2, fmt.Sprintf("request %s: not a protojson envoy.service.auth.v3.CheckRequest: %v", requestFile, err)}
			}
			// Read for --revision, as the server reads it (authz.DirLoaderFor).
			loader := &policy.DirLoader{Revision: o.Revision, OnSkip: func(s policy.OutOfRevision) {
				fmt.Fprintln(cmd.ErrOrStderr(), "skipped:", s)
			}}
			set, warnings, err := loader.Load(o.PolicyDir)
			if err != nil {
				return exitError{2, err.Error()}
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			snap, err := policy.Compile(cmd.Context(), o.Mesh(), set, 1)
			if err != nil {
				return exitError{2, err.Error()}
			}
			for _, w := range snap.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			v, err := snap.Check(cmd.Context(), req)
			if err != nil {
				return exitError{3, err.Error()}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			if explain {
				return enc.Encode(explainedVerdict{Verdict: v, Explain: explainVerdict(v)})
			}
			return enc.Encode(v)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.PolicyDir, "policy-dir", "", "directory with AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Pod YAML and *.rego")
	fs.StringVar(&requestFile, "request", "", "CheckRequest in protojson: a file, or - for stdin")
	fs.BoolVar(&explain, "explain", false, "add \"explain\": deciding policy and rule, AUDIT, dry-run and CUSTOM matches, effective PeerAuthentication mode and its policy")
	o.AddSemanticsFlags(fs)
	o.AddRevisionFlag(fs)
	addMeshConfigFlag(fs, &meshConfig)
	return cmd
}

// explainedVerdict is the --explain output: the verdict plus why.
type explainedVerdict struct {
	policy.Verdict
	Explain verdictExplanation `json:"explain"`
}

type verdictExplanation struct {
	Decision           decisionExplanation `json:"decision"`
	Audit              []policy.Hit        `json:"audit"`
	DryRunAllow        []policy.Hit        `json:"dryRunAllow"`
	DryRunDeny         []policy.Hit        `json:"dryRunDeny"`
	Custom             []policy.Hit        `json:"custom"`
	PeerAuthentication peerAuthnExplained  `json:"peerAuthentication"`
}

type decisionExplanation struct {
	Action string `json:"action"`
	Policy string `json:"policy,omitempty"`
	Rule   *int   `json:"rule,omitempty"` // spec.rules index; absent when no rule decided
	Reason string `json:"reason"`
}

type peerAuthnExplained struct {
	Mode   string `json:"mode"`
	Policy string `json:"policy"` // "ns/name"; "" = mesh default
}

func explainVerdict(v policy.Verdict) verdictExplanation {
	hits := func(h []policy.Hit) []policy.Hit {
		if h == nil {
			return []policy.Hit{}
		}
		return h
	}
	d := decisionExplanation{Action: v.Action, Policy: v.Policy, Reason: v.Reason}
	if v.Rule >= 0 {
		r := v.Rule
		d.Rule = &r
	}
	return verdictExplanation{Decision: d, Audit: hits(v.Audit), DryRunAllow: hits(v.DryRunAllow), DryRunDeny: hits(v.DryRunDeny),
		Custom: hits(v.Custom), PeerAuthentication: peerAuthnExplained{Mode: v.Mode, Policy: v.ModePolicy}}
}

func addMeshConfigFlag(fs *pflag.FlagSet, path *string) {
	fs.StringVar(path, "mesh-config", "", "MeshConfig YAML file: rootNamespace, trustDomain, trustDomainAliases and pathNormalization, unless given by their flags (authz serve reloads it on change)")
}

// newAuthzServeCmd runs only the ext_authz server from a policy directory,
// without a Kubernetes API server (used by hack/ghz-load.sh).
func newAuthzServeCmd() *cobra.Command {
	var o authz.Options
	var meshConfig string
	cmd := &cobra.Command{
		Use:   "serve --policy-dir DIR",
		Short: "Serve ext_authz gRPC from a watched policy directory and mesh config (no Kubernetes needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.PolicyDir == "" {
				return exitError{2, "--policy-dir is required"}
			}
			if err := tuneGC(); err != nil {
				return exitError{2, err.Error()}
			}
			if err := authzFromMeshConfig(cmd.Flags(), meshConfig, &o); err != nil {
				return exitError{2, err.Error()}
			}
			// A bad flag value is bad input (2), as for `authz check`.
			if err := o.Validate(); err != nil {
				return exitError{2, err.Error()}
			}
			// As serve: a second signal exits without waiting for the
			// graceful stop (authz.Options.ShutdownTimeout, 10 s).
			ctx, stop := shutdownContext(cmd.Context(), 0, nil)
			defer stop()
			lis, err := net.Listen("tcp", o.Addr)
			if err != nil {
				return fmt.Errorf("listen %s: %w", o.Addr, err)
			}
			return authz.RunStandalone(ctx, o, lis, nil, stderrLogger(cmd.ErrOrStderr()))
		},
	}
	o.AddFlags(cmd.Flags())
	o.AddRevisionFlag(cmd.Flags())
	addMeshConfigFlag(cmd.Flags(), &meshConfig)
	return cmd
}

func stderrLogger(w io.Writer) logr.Logger {
	return funcr.NewJSON(func(obj string) { fmt.Fprintln(w, obj) }, funcr.Options{})
}
