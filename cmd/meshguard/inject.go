package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
)

// newInjectCmd is `meshguard inject`, the offline equivalent of
// `istioctl kube-inject`, sharing the webhook's injector.
func newInjectCmd() *cobra.Command {
	var file, meshPath, valuesPath, injectConfigPath string
	cmd := &cobra.Command{
		Use:   "inject -f FILE|-",
		Short: "Inject the istio-proxy sidecar into Kubernetes YAML (like istioctl kube-inject)",
		Long: `Reads multi-document YAML and writes it to stdout with the sidecar injected into
Pods and the pod templates of ReplicationControllers, Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs and OpenShift DeploymentConfigs (also as
items of a v1 List). Other documents pass through unchanged with a note on stderr.
Pods that opt out (sidecar.istio.io/inject: "false", hostNetwork) are left as they
are; notes go to stderr. A bare Pod's workload identity is inferred from its
ownerReferences and labels, as the webhook does.`,
		Example: `  meshguard inject -f deployment.yaml | kubectl apply -f -
  meshguard inject -f - --injectConfigFile config --valuesFile values --meshConfigFile mesh < app.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return exitError{code: 2, msg: "inject: -f FILE or -f - (stdin) is required"}
			}
			cfg, err := config.LoadInputs(injectConfigPath, valuesPath, meshPath)
			if err != nil {
				return exitError{code: 2, msg: "inject: " + err.Error()}
			}
			var in io.Reader = cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return exitError{code: 2, msg: "inject: " + err.Error()}
				}
				defer f.Close()
				in = f
			}
			res, err := kubeinject.Inject(in, cfg)
			if err != nil {
				return exitError{code: 1, msg: fmt.Sprintf("inject %s: %v", file, err)}
			}
			for _, n := range res.Notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", n)
			}
			_, err = cmd.OutOrStdout().Write(res.Output)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "input YAML file, or - for stdin")
	// istioctl kube-inject's flag names, so scripts can swap it for meshguard;
	// --mesh-config and --values stay as aliases.
	cmd.Flags().StringVar(&injectConfigPath, "injectConfigFile", "",
		"injector config: the config key of ConfigMap istio-sidecar-injector, or the whole ConfigMap (default: Istio's defaults)")
	cmd.Flags().StringVar(&valuesPath, "valuesFile", "",
		"injector values: the values key of ConfigMap istio-sidecar-injector, or the whole ConfigMap (default: Istio's defaults)")
	cmd.Flags().StringVar(&meshPath, "meshConfigFile", "",
		"MeshConfig: the mesh key of ConfigMap istio, or the whole ConfigMap (default: Istio's defaults)")
	cmd.Flags().StringVar(&meshPath, "mesh-config", "", "alias of --meshConfigFile")
	cmd.Flags().StringVar(&valuesPath, "values", "", "alias of --valuesFile")
	return cmd
}
