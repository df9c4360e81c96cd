package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/injector/kubeinject"
)

// newInjectCmd is `meshguard inject`, the offline equivalent of
// `istioctl kube-inject`, sharing the webhook's injector. It takes
// istioctl's flag names for Istio's three injector inputs, so a script can
// swap one command for the other.
func newInjectCmd() *cobra.Command {
	var file, output, injectConfigPath, meshPath, valuesPath string
	var maxInput int64
	cmd := &cobra.Command{
		Use:   "inject -f FILE|-",
		Short: "Inject the istio-proxy sidecar into Kubernetes YAML (like istioctl kube-inject)",
		Long: `Reads multi-document YAML and writes it to stdout with the sidecar injected into
Pods and the pod templates of ReplicationControllers, Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs and OpenShift DeploymentConfigs (also as
items of a v1 List). Other documents pass through unchanged with a note on stderr.
Pods that opt out (sidecar.istio.io/inject: "false", hostNetwork) are left as they
are; notes go to stderr. A bare Pod's workload identity is inferred from its
ownerReferences and labels, as the webhook does.

Istio's injector inputs are read from files, each holding either the key's content
or the whole ConfigMap: --injectConfigFile (key "config" of ConfigMap
istio-sidecar-injector: policy, selectors, templates), --valuesFile (its key
"values") and --meshConfigFile (key "mesh" of ConfigMap istio). Without them,
Istio's defaults apply. Istio's stock templates are built by meshguard's typed
injector; any other template (a customised sidecar, your own) is rendered as
Istio renders it.`,
		Example: `  meshguard inject -f deployment.yaml | kubectl apply -f -
  meshguard inject --injectConfigFile inject-config.yaml --valuesFile values.json \
    --meshConfigFile mesh.yaml -f app.yaml -o app-injected.yaml
  kubectl -n istio-system get cm istio-sidecar-injector -o yaml > injector.yaml
  meshguard inject --injectConfigFile injector.yaml --valuesFile injector.yaml -f - < app.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return exitError{code: 2, msg: "inject: -f FILE or -f - (stdin) is required"}
			}
			for _, pair := range [][2]string{{"meshConfigFile", "mesh-config"}, {"valuesFile", "values"}} {
				if cmd.Flags().Changed(pair[0]) && cmd.Flags().Changed(pair[1]) {
					return exitError{code: 2, msg: fmt.Sprintf("inject: --%s and its alias --%s are both set", pair[0], pair[1])}
				}
			}
			// Every input, -f and the three config files alike, is read by
			// the CLI's one reader (readInput, as validate reads its files):
			// bounded by --max-input-size; a pipe is read as istioctl reads
			// it (--valuesFile <(kubectl get cm ...)).
			in := config.Inputs{ConfigSource: injectConfigPath, ValuesSource: valuesPath, MeshSource: meshPath}
			for _, f := range []struct {
				data              *[]byte
				path, flag, alias string
			}{
				{&in.Config, injectConfigPath, "injectConfigFile", ""},
				{&in.Values, valuesPath, "valuesFile", "values"},
				{&in.Mesh, meshPath, "meshConfigFile", "mesh-config"},
			} {
				if f.path == "" {
					continue
				}
				flag := f.flag
				if f.alias != "" && cmd.Flags().Changed(f.alias) {
					flag = f.alias
				}
				path := f.path
				if path == "-" {
					path = "./-" // a file so named, as istioctl reads it; stdin is -f's
				}
				b, err := readInput(path, nil, maxInput)
				if err != nil {
					return exitError{code: 2, msg: fmt.Sprintf("inject: --%s %s: %v", flag, f.path, err)}
				}
				*f.data = b
			}
			cfg, err := in.Load()
			if err != nil {
				return exitError{code: 2, msg: "inject: " + err.Error()}
			}
			data, err := readInput(file, cmd.InOrStdin(), maxInput)
			if err != nil {
				return exitError{code: 2, msg: fmt.Sprintf("inject: -f %s: %v", file, err)}
			}
			res, err := kubeinject.InjectData(data, cfg)
			if err != nil {
				return exitError{code: 1, msg: fmt.Sprintf("inject %s: %v", file, err)}
			}
			for _, n := range res.Notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", n)
			}
			if output != "" {
				if err := writeOutput(output, res.Output); err != nil {
					return exitError{code: 2, msg: "inject: " + err.Error()}
				}
				return nil
			}
			_, err = cmd.OutOrStdout().Write(res.Output)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&file, "filename", "f", "", "input YAML file, or - for stdin")
	fs.StringVarP(&output, "output", "o", "", "write the injected YAML to this file instead of stdout")
	maxInputSizeFlag(cmd, &maxInput, "largest input (-f, stdin, each config file) read, in bytes (more than 0); larger input is refused")
	fs.StringVar(&injectConfigPath, "injectConfigFile", "", `injector config: key "config" of ConfigMap istio-sidecar-injector, or that ConfigMap (default: Istio's stock templates)`)
	fs.StringVar(&valuesPath, "valuesFile", "", `injector values: key "values" of ConfigMap istio-sidecar-injector, or that ConfigMap (default: Istio's defaults)`)
	fs.StringVar(&meshPath, "meshConfigFile", "", `mesh config: key "mesh" of ConfigMap istio, or that ConfigMap (default: Istio's defaults)`)
	aliasOf(fs, &meshPath, "mesh-config", "meshConfigFile")
	aliasOf(fs, &valuesPath, "values", "valuesFile")
	return cmd
}

// aliasOf registers name as another spelling of flag target (meshguard's
// own names from before it took istioctl's).
func aliasOf(fs *pflag.FlagSet, p *string, name, target string) {
	fs.StringVar(p, name, "", "alias of --"+target)
}

// writeOutput writes -o FILE whole or not at all: a regular file (or a new
// one) is replaced by renaming a file written beside it, so a failed write (a
// full disk) leaves the previous output as it was. The replacement keeps the
// old file's mode; a new file gets os.WriteFile's 0644 less the umask. A file
// that could not be written before is still refused (opened for writing,
// not truncated), and where the directory takes no new file, or replacing
// the file would lose another hard link to it or its owner (keepsIdentity),
// the output is written in place as before. Anything but a regular file (a
// symlink, written through and kept; /dev/stdout; a FIFO) is written
// directly.
func writeOutput(name string, data []byte) error {
	perm := fs.FileMode(0o644)
	fi, err := os.Lstat(name)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return os.WriteFile(name, data, perm)
	case err == nil:
		perm = fi.Mode().Perm()
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	// Not os.CreateTemp: a new file would keep its 0600.
	dir, base := filepath.Split(name)
	tmp, err := os.OpenFile(filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(rand.Uint64(), 36)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrPermission) && fi != nil {
		return os.WriteFile(name, data, perm)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary name would only confuse
		}
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer os.Remove(tmp.Name())
	if fi != nil && !keepsIdentity(tmp, fi) {
		tmp.Close()
		return os.WriteFile(name, data, perm)
	}
	_, err = tmp.Write(data)
	if fi != nil && err == nil {
		err = tmp.Chmod(perm) // exactly the old mode, whatever the umask
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return os.Rename(tmp.Name(), name)
}
