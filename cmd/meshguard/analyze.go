package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/audit"
	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

// Exit codes of `istioctl analyze` (istioctl's exit codes: ExitIncorrectUsage for a bad flag,
// ExitDataError for unparsable input, ExitAnalyzerFoundIssues for messages at
// or above the failure threshold).
const (
	exitAnalyzeUsage       = 64
	exitAnalyzeDataError   = 65
	exitAnalyzeFoundIssues = 79
)

type analyzeOptions struct {
	files            []string
	output           string
	namespace        string
	failureThreshold string
	// outputThreshold: the lowest level printed (-o any format); the zero
	// value is Info, istioctl's default.
	outputThreshold analysis.Level
	maxInputBytes   int64
	regoDir         string
	kubeconfig      string
	kubeContext     string // --context
	meshConfigFile  string
	istioNamespace  string
	suppress        []string
	// clusterAllNamespaces: -n not given, so the cluster is read in every namespace.
	clusterAllNamespaces bool
	// allNamespaces: -A, every namespace is reported, -n or not.
	allNamespaces bool
	// cluster and mapper are set by --kubeconfig or -k (or injected by tests).
	cluster dynamic.Interface
	mapper  meta.RESTMapper
	// clusterMetadata lists the Secrets of the Gateways' pods' namespaces,
	// their metadata only (listGatewaySecrets); set by --kubeconfig (or
	// injected by tests). Nil: no credentialName is reported.
	clusterMetadata metadata.Interface
	// revision is --revision: the istio.io/rev whose cluster mesh objects
	// are read ("" = "default"; policy.InRevision).
	revision string
	// ignoreUnknown is --ignore-unknown: input that cannot be parsed does not
	// make the exit status 65 (istioctl's: no FileParseError).
	ignoreUnknown bool
	// timeout is --timeout: the run stops (exit 1) past it; 0 is no bound.
	timeout time.Duration
}

func newAnalyzeCmd() *cobra.Command {
	o := &analyzeOptions{}
	cmd := &cobra.Command{
		Use:   "analyze [FILE|DIR|- ...] [-f FILE|DIR|- ...]",
		Short: "Check references between mesh objects (istioctl analyze's codes and levels)",
		Long: `Analyze reads every object of the inputs as one set and runs the cross-resource
checks of the /validate webhook (validation/crossref) over the whole set:
references to missing Gateways, hosts (exportTo honoured), ports and
DestinationRule subsets (IST0101), a multi-port destination without a port
(IST0112), mesh VirtualServices sharing a host (IST0109), VirtualService hosts no server of
their Gateway exposes (IST0132), conflicting Gateways (IST0145), Gateway ports
no Service of the gateway workload exposes (IST0162), unreachable VirtualService
rules and ineffective matches (IST0130/IST0131). An object that fails
validation is reported as IST0106. Kubernetes Services in the inputs are the
hosts references may name; Pods and Deployments are the workloads Gateways select.

Exit status, as istioctl analyze: 0 no message at or above --failure-threshold,
79 some message at or above it, 65 some input could not be read or parsed,
64 a bad flag value (an unknown flag, a value that does not parse), 1 any
other error (no input, a cluster that cannot be read, a namespace -n
names, without -A, that the cluster does not have, more than 400,000
objects in the files and the cluster together), as istioctl's exit code for
an error of no other kind. Files, directories (read with their
subdirectories) and - (stdin) are named as arguments, as istioctl analyze
takes them, or with -f. Unlike
istioctl, the status is the same with -o json or -o yaml (istioctl exits 0
there), so a CI job reading the JSON keeps the failure signal.`,
		// Positional arguments are files, as istioctl analyze's (Istio:
		// istioctl/pkg/analyze/analyze.go gatherFiles), read after those of -f.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code := runAnalyze(cmd.Context(), *o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	cmd.Flags().StringVarP(&o.output, "output", "o", "log", "output format: log, json or yaml")
	cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "default", "namespace of objects that name none")
	cmd.Flags().StringVar(&o.failureThreshold, "failure-threshold", "Error", "lowest message level that makes the exit status non-zero: Info, Warning or Error")
	cmd.Flags().Var(levelFlag{&o.outputThreshold}, "output-threshold", "lowest message level printed: Info, Warning or Error (the exit status counts every message)")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "report the messages of every namespace (with --kubeconfig or -k: also with -n, which then only names the namespace of objects that name none)")
	var useKube bool
	cmd.Flags().BoolVarP(&useKube, "use-kube", "k", false, "analyse the cluster too, of --kubeconfig or else the environment's kubeconfig (KUBECONFIG, else ~/.kube/config; the in-cluster config only when neither gives a cluster); --use-kube=false: files only, no cluster is contacted. Not given: the cluster of --kubeconfig or --context only")
	maxInputSizeFlag(cmd, &o.maxInputBytes, "largest input (file or stdin) read, in bytes (more than 0); larger input is refused")
	cmd.Flags().StringVar(&o.regoDir, "rego", "", "directory of organisation rules (Rego v1, package meshguard.validation): deny messages are reported as Error, warn as Warning (code MG0001)")
	cmd.Flags().StringVar(&o.meshConfigFile, "meshConfigFile", "", "mesh config file for the analyzers that read it (root namespace, DNS auto-allocation, default providers); overrides the cluster's (default: the cluster's ConfigMap istio, else Istio's defaults)")
	cmd.Flags().StringVarP(&o.istioNamespace, "istioNamespace", "i", analysis.DefaultRootNamespace, "namespace of the cluster's ConfigMaps istio (key mesh) and istio-sidecar-injector* read with --kubeconfig")
	cmd.Flags().StringArrayVarP(&o.suppress, "suppress", "S", nil, `suppress the messages of a code on the objects a pattern names, CODE="Kind namespace/name" (as printed) ("*" matches any run of characters); repeatable`)
	cmd.Flags().StringVarP(&o.kubeconfig, "kubeconfig", "c", "", "also analyse the objects stored in this kubeconfig's cluster (every namespace is read, as istioctl reads it; with -n only the messages about that namespace's objects are reported)")
	cmd.Flags().StringVar(&o.kubeContext, "context", "", "also analyse the cluster of this context of the kubeconfig (--kubeconfig, else KUBECONFIG or ~/.kube/config); its namespace is that of the files' objects that name none, unless -n is given")
	// istioctl's --revision (default "default", passed to
	// AddRunningKubeSourceWithRevision): the cluster's mesh objects of
	// another revision are not read (skipStored); the files' are.
	cmd.Flags().StringVar(&o.revision, "revision", "default", `revision whose cluster mesh objects are analysed: those labelled istio.io/rev=REVISION and the unlabelled ones ("default": the default revision's); objects of the files are read whatever their label`)
	// Accepted and ignored, as istioctl analyze keeps it (hidden in effect:
	// "[Removed: ... hardcoded to true]", Istio: istioctl/pkg/analyze/analyze.go
	// Analyze): directories are always read with their subdirectories.
	cmd.Flags().BoolP("recursive", "R", true, "ignored (istioctl compatibility): directories are always read with their subdirectories")
	_ = cmd.Flags().MarkHidden("recursive")
	// istioctl's --ignore-unknown, --color, --timeout and --multi-cluster
	// (istioctl/pkg/analyze/analyze.go Analyze).
	cmd.Flags().BoolVar(&o.ignoreUnknown, "ignore-unknown", false, "input that cannot be parsed is reported but does not make the exit status 65 (istioctl's flag)")
	cmd.Flags().Bool("color", false, "accepted for istioctl compatibility: the output is never coloured")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "stop the run (exit 1) when it takes longer than this (e.g. 30s); 0: no bound")
	var multiCluster bool
	cmd.Flags().BoolVar(&multiCluster, "multi-cluster", false, "not supported: analyze reads one cluster (a usage error)")
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if multiCluster {
			// istioctl then reads the remote clusters of the istio-system
			// secrets labelled istio/multiCluster=true (getClients);
			// meshguard has no multi-cluster analyzers, and dropping the
			// flag silently would report on one cluster as if on all.
			return exitError{code: exitAnalyzeUsage, msg: "--multi-cluster is not supported: meshguard analyze reads one cluster (--kubeconfig/--context); run it once per cluster"}
		}
		o.files = append(o.files, args...)
		// istioctl's -k/--use-kube (istioctl/pkg/analyze/analyze.go
		// Analyze): false is files only, true reads the cluster of the
		// kubeconfig. Its default is true; here a cluster is contacted only
		// when asked for (-k, --kubeconfig or --context), so that a
		// kubeconfig in the environment never changes what `analyze FILES`
		// reports.
		kube := o.kubeconfig != "" || o.kubeContext != ""
		if cmd.Flags().Changed("use-kube") {
			if !useKube && kube {
				return exitError{code: exitAnalyzeUsage, msg: "--use-kube=false (files only) and --kubeconfig or --context (read the cluster) contradict each other: give one"}
			}
			kube = useKube
		}
		if !kube {
			if len(o.files) == 0 {
				return errNoInput
			}
			return nil
		}
		cfg, contextNamespace, err := clusterConfig(o.kubeconfig, o.kubeContext)
		if err != nil {
			return err
		}
		if !cmd.Flags().Changed("namespace") {
			// istioctl's ctx.NamespaceOrDefault with a cluster: the
			// context's namespace, for the files' objects that name none.
			o.namespace = contextNamespace
		}
		if o.cluster, err = dynamic.NewForConfig(cfg); err != nil {
			return fmt.Errorf("cluster client: %w", err)
		}
		if o.clusterMetadata, err = metadata.NewForConfig(cfg); err != nil {
			return fmt.Errorf("cluster metadata client: %w", err)
		}
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return fmt.Errorf("cluster discovery client: %w", err)
		}
		o.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
		if !cmd.Flags().Changed("namespace") {
			o.clusterAllNamespaces = true
		}
		return nil
	}
	return cmd
}

// levelFlag is a message level flag (--output-threshold), read with
// analysis.ParseLevel while the flags are parsed: a value that does not parse
// is a usage error (64), as istioctl's formatting.MessageThreshold.Set
// refuses it there.
type levelFlag struct{ p *analysis.Level }

func (l levelFlag) String() string {
	if l.p == nil { // pflag's zero value of the type
		return analysis.Info.String()
	}
	return l.p.String()
}

func (l levelFlag) Type() string { return "level" }

func (l levelFlag) Set(s string) error {
	v, err := analysis.ParseLevel(s)
	if err != nil {
		return err
	}
	*l.p = v
	return nil
}

// maxClusterObjects bounds what analyze reads and holds, the objects of the
// files (each document, each List item) and of the cluster together, as the
// audit's snapshot is bounded (audit.MaxObjects mesh objects and as many
// Kubernetes objects): past it analysis stops (exit 1). The files are bounded
// each by --max-input-size, but -f is repeatable and an 8 MiB file holds
// 700,000 one-line documents.
var maxClusterObjects = 2 * audit.MaxObjects

// tooManyObjects is the error past maxClusterObjects.
func tooManyObjects() error {
	return fmt.Errorf("more than %d objects (mesh objects, Services, Namespaces, pods, Deployments; files and cluster together): analysis stopped", maxClusterObjects)
}

// runAnalyze decodes the inputs, analyses them and returns the exit code.
func runAnalyze(ctx context.Context, o analyzeOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	threshold, err := analysis.ParseLevel(o.failureThreshold)
	if err != nil {
		fmt.Fprintf(stderr, "Error: --failure-threshold: %v\n", err)
		return exitAnalyzeUsage
	}
	// In any case, as istioctl (strings.ToLower of -o before its check).
	o.output = strings.ToLower(o.output)
	if o.output != "log" && o.output != "json" && o.output != "yaml" {
		fmt.Fprintf(stderr, "Error: unsupported output format %q (log, json or yaml)\n", o.output)
		return exitAnalyzeUsage
	}
	if o.allNamespaces {
		// istioctl's -A blanks the selected namespace: nothing is scoped.
		o.clusterAllNamespaces = true
	}
	if o.namespace == "" {
		// As istioctl analyze (selectedNamespace "" is metav1.NamespaceDefault)
		// and validate: an object is never analysed without a namespace.
		o.namespace = metav1.NamespaceDefault
	}
	if o.cluster != nil && !o.clusterAllNamespaces {
		// -n scopes the analysis to a namespace: it must exist, as istioctl
		// checks before analysing (istioctl/pkg/analyze/analyze.go Analyze).
		// istioctl prints this line and exits 0; here 1, so that a
		// mistyped -n fails a CI job instead of passing it with nothing
		// analysed (docs/compatibility.md). Not under -A or without -n:
		// every namespace is analysed then, and -n or the context's
		// namespace only names the files' objects that name none.
		switch err := clusterNamespaceExists(ctx, o.cluster, o.namespace); {
		case errors.Is(err, errNamespaceNotFound):
			fmt.Fprintf(stderr, "namespace %q not found\n", o.namespace)
			return 1
		case err != nil:
			fmt.Fprintf(stderr, "Error: cluster: %v\n", err)
			return 1
		}
	}
	var in analysis.Input
	for _, f := range o.suppress {
		sup, known, err := analysis.ParseSuppression(f)
		if err != nil {
			fmt.Fprintf(stderr, "Error: --suppress: %v\n", err)
			return exitAnalyzeUsage
		}
		if !known { // istioctl's warning; such a code suppresses nothing
			fmt.Fprintf(stderr, "Warning: Supplied message code '%s' is an unknown message code and will not have any effect.\n", sup.Code)
		}
		in.Suppressions = append(in.Suppressions, sup)
	}
	if o.meshConfigFile != "" {
		// istioctl ignores a file it cannot read (AddFileKubeMeshConfig's
		// error is dropped) and analyses with the defaults; here it is an
		// input that could not be read, before any analysis.
		m, err := meshconfig.LoadFile(o.meshConfigFile)
		if err != nil {
			fmt.Fprintf(stderr, "Error: --meshConfigFile: %v\n", err)
			return exitAnalyzeDataError
		}
		in.Mesh = m
	}
	var rules *orgrules.Rules
	if o.regoDir != "" {
		if rules, err = orgrules.Load(ctx, o.regoDir); err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return exitAnalyzeDataError
		}
	}
	in.Namespaces = map[string]map[string]string{}
	type rawObject struct {
		obj    analysis.Object
		source map[string]any
		valid  bool
	}
	var raws []rawObject
	unreadable := false
	failures := 0
	fail := func(where string, err error) {
		unreadable = true
		failures++
		fmt.Fprintf(stderr, "%s: unreadable: %v\n", where, err)
	}
	var analysed []string // the files read, for the message saying none has issues
	unparsed := 0         // files with an input error
	unparsedFiles := map[string]bool{}
	// addObject adds one object of the files or the cluster; addKube
	// takes the Kubernetes kinds (a stored Deployment's pods are the
	// cluster's: AddStoredKubernetesObject).
	addObject := func(origin string, obj map[string]any, addKube func(map[string]any, string) (bool, error)) {
		// Namespaces, Services, Pods and Deployments are what mesh objects
		// refer to or select.
		if known, err := addKube(obj, o.namespace); known {
			if err != nil {
				fail(origin, err)
			}
			return
		}
		res := validation.ValidateObject(ctx, obj, validation.Options{DefaultNamespace: o.namespace})
		if res.Skipped {
			return
		}
		ns := res.Namespace
		if ns == "" {
			ns = o.namespace
		}
		mo := analysis.Object{Kind: res.Kind, Namespace: ns, Name: res.Name, Origin: origin, Spec: res.Spec(),
			Annotations: analysis.ObjectAnnotations(obj)} // for galley.istio.io/analyze-suppress
		in.Invalid = append(in.Invalid, analysis.ValidationMessages(shown(mo), res.Errors, res.Warnings)...)
		// The rules judge invalid objects too, as validate, the webhook and
		// the audit do; only valid ones are referable.
		raws = append(raws, rawObject{mo, obj, res.Valid()})
		if res.Valid() {
			in.Objects = append(in.Objects, mo)
		}
	}
	add := func(origin string, obj map[string]any) { addObject(origin, obj, in.AddKubernetesObject) }
	fromFiles := fileObjects{defaultNamespace: o.namespace}
	inFiles := map[string]bool{} // objectKey of every object of the files
	objects := 0                 // read from the files and the cluster: maxClusterObjects
	tooMany := func(where string) bool {
		if objects++; objects > maxClusterObjects {
			fmt.Fprintf(stderr, "Error: %s: %v\n", where, tooManyObjects())
			return true
		}
		return false
	}
	for _, arg := range o.files {
		files, err := expandInput(arg)
		if err != nil {
			fail(arg, err)
			unparsed++
			continue
		}
		for _, f := range files {
			file := f.name
			analysed = append(analysed, file)
			before := failures
			data, err := f.read(stdin, o.maxInputBytes)
			if err != nil {
				fail(file, err)
				unparsed++
				continue
			}
			// Each document is decoded when its turn comes (counted first),
			// not all up front.
			docs, err := manifest.SplitRaw(data)
			for _, d := range docs {
				where := fmt.Sprintf("%s#%d", file, d.Index)
				if tooMany(where) {
					return 1
				}
				if d.Err != nil {
					fail(where, d.Err)
					continue
				}
				obj, derr := manifest.Decode(d.Raw)
				switch {
				case derr != nil:
					fail(where, derr)
				case obj == nil:
				case manifest.IsList(obj):
					items, err := manifest.Items(obj)
					if err != nil {
						fail(where, err)
					}
					// The List document counted as its first item.
					for i, item := range items {
						itemWhere := fmt.Sprintf("%s.items[%d]", where, i)
						if i > 0 && tooMany(itemWhere) {
							return 1
						}
						fromFiles.add(file, itemWhere, item, nil)
					}
				default:
					fromFiles.add(file, where, obj, d.Raw)
				}
			}
			if err != nil {
				fail(file, err)
			}
			if failures > before {
				unparsedFiles[file] = true
				unparsed++
			}
		}
	}
	// Only the last copy of an object is analysed, and none in the
	// namespaces istioctl ignores (fileObjects, inIgnoredNamespace).
	for _, fo := range fromFiles.list {
		if inIgnoredNamespace(fo.obj, o.namespace) {
			continue
		}
		inFiles[objectKey(fo.obj, o.namespace)] = true
		before := failures
		add(fo.origin, fo.obj)
		if failures > before && !unparsedFiles[fo.file] {
			unparsedFiles[fo.file] = true
			unparsed++
		}
	}
	if o.cluster != nil {
		ns := o.namespace
		if o.clusterAllNamespaces {
			ns = ""
		}
		// The files are applied to the cluster, as istioctl analyze -k FILE
		// simulates it (its file source takes precedence): a stored object
		// a file also holds is left out.
		addStored := func(origin string, obj map[string]any) error {
			if objects++; objects > maxClusterObjects {
				return tooManyObjects()
			}
			if !inFiles[objectKey(obj, o.namespace)] && !skipStored(obj, o.revision) {
				addObject(origin, obj, in.AddStoredKubernetesObject)
			}
			return nil
		}
		err := listCluster(ctx, o.cluster, o.mapper, addStored)
		if err == nil && in.Mesh == nil { // --meshConfigFile takes precedence, as in istioctl
			in.Mesh, err = clusterMeshConfig(ctx, o.cluster, o.istioNamespace)
		}
		if err == nil {
			err = listInjectorConfigMaps(ctx, o.cluster, o.istioNamespace, addStored)
		}
		if err == nil {
			err = listSelectedWorkloads(ctx, o.cluster, &in, addStored)
		}
		if err == nil {
			err = listGatewaySecrets(ctx, o.clusterMetadata, &in, addStored)
		}
		if err == nil {
			err = listInjectedWorkloads(ctx, o.cluster, ns, &in, addStored)
		}
		if err == nil {
			err = listMutatingWebhooks(ctx, o.cluster, addStored)
		}
		if err != nil {
			// Not an input that could not be parsed (65): istioctl returns
			// the error of a cluster it cannot read before printing any
			// message (istioctl/pkg/analyze/analyze.go, sa.Analyze), exit 1;
			// the part read would give false findings (IST0101).
			if errors.Is(err, context.DeadlineExceeded) && o.timeout > 0 {
				err = fmt.Errorf("%w (--timeout %s)", err, o.timeout)
			}
			fmt.Fprintf(stderr, "Error: cluster: %v\n", err)
			return 1
		}
	}
	if err := ctx.Err(); err != nil && o.timeout > 0 {
		// Past --timeout: what was read is not analysed (a partial read
		// gives false findings).
		fmt.Fprintf(stderr, "Error: analysis stopped after --timeout %s: %v\n", o.timeout, err)
		return 1
	}
	msgs := analysis.Analyze(in)
	if rules != nil {
		// Organisation rules see every object with its namespace's labels
		// (from Namespace documents in the input) and the objects it refers to.
		objs := make([]crossref.Object, 0, len(raws))
		for _, r := range raws {
			if r.valid {
				objs = append(objs, crossref.Object{Kind: r.obj.Kind, Key: crossref.Key{Namespace: r.obj.Namespace, Name: r.obj.Name}, Spec: r.obj.Spec})
			}
		}
		ix := crossref.IndexOf(in.Domain, in.Services, in.Namespaces, objs)
		for _, r := range raws {
			var v orgrules.Verdict
			ri, err := orgrules.InputFor(ix, r.obj.Kind, r.obj.Namespace, r.obj.Name, r.obj.Spec, r.source, orgrules.Admission{})
			if err == nil {
				v, err = rules.Evaluate(ctx, ri)
			}
			msgs = append(msgs, analysis.OrgRuleMessages(shown(r.obj), v, err)...)
		}
		analysis.Sort(msgs)
	}
	if o.cluster != nil && !o.clusterAllNamespaces {
		// Every namespace is read (listCluster: objects refer across
		// namespaces), but the analysis is scoped to one: a Namespace's own
		// messages (IST0102, IST0123) count as in the namespace they name,
		// as istioctl's kube origin makes a Namespace's namespace its name
		// (Istio: pkg/config/legacy/source/kube/origin.go Origin.Namespace).
		// The messages about objects of other namespaces (theirs, their
		// Services' and pods', the organisation rules' on them) are dropped,
		// as istioctl's filterMessages drops every message about an object
		// of another namespace (pkg/config/analysis/local/istiod_analyze.go).
		msgs = slices.DeleteFunc(msgs, func(m analysis.Message) bool {
			if m.Kind == "Namespace" {
				return m.Object != o.namespace
			}
			// A cluster-scoped object's (MutatingWebhookConfiguration,
			// IST0139) are kept, as filterMessages keeps a message whose
			// origin has no namespace.
			return m.Namespace != "" && m.Namespace != o.namespace
		})
	}
	// Printed are the messages at or above --output-threshold, in every
	// format; the exit status below counts them all (istioctl/pkg/analyze/
	// analyze.go Analyze: outputMessages is FilterOutLowerThan(outputThreshold),
	// errorIfMessagesExceedThreshold reads result.Messages).
	printed := slices.DeleteFunc(slices.Clone(msgs), func(m analysis.Message) bool { return m.Level < o.outputThreshold })
	if printed == nil && o.output != "log" {
		printed = []analysis.Message{} // an empty list, not null
	}
	switch o.output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(printed)
	case "yaml":
		// The JSON list as YAML, as istioctl's YAML output converts its JSON.
		b, err := yaml.Marshal(printed)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(b)
	default:
		for _, m := range printed {
			fmt.Fprintln(stdout, m.String())
		}
	}
	// When nothing is printed, as istioctl (len(outputMessages) == 0), even
	// if a message below --output-threshold reaches --failure-threshold:
	// istioctl then prints this line and its issues error. In every output
	// format, on stderr, as istioctl (outside its format switch): stdout
	// keeps the JSON or YAML list alone.
	if len(printed) == 0 {
		noIssues(stderr, o, analysed, unparsed, unreadable)
	}
	// The log format ends with the text of istioctl's error for the exit
	// status (istioctl/pkg/analyze/analyze.go FileParseError,
	// AnalyzerFoundIssuesError, printed by cobra; none for JSON).
	trailer := func(text string) {
		if o.output == "log" {
			fmt.Fprintf(stderr, "Error: %s\n", text)
		}
	}
	// Issues take precedence over unreadable input, as in istioctl
	// (errorIfMessagesExceedThreshold first, FileParseError only without).
	switch {
	case analysis.Exceeds(msgs, threshold):
		trailer(fmt.Sprintf("Analyzers found issues when analyzing %s.\nSee %s for more information about causes and resolutions.",
			analyzeTarget(o), analysisDocs))
		return exitAnalyzeFoundIssues
	case unreadable && !o.ignoreUnknown:
		trailer("Some files couldn't be parsed.")
		return exitAnalyzeDataError
	}
	return 0
}

// analysisDocs is Istio's page of analyzer messages (pkg/url ConfigAnalysis,
// of the latest release: meshguard follows no Istio version).
const analysisDocs = "https://istio.io/latest/docs/reference/config/analysis"

// analyzeTarget names what was analysed as istioctl's analyzeTargetAsString:
// the namespace, or all namespaces of the cluster.
func analyzeTarget(o analyzeOptions) string {
	if o.allNamespaces || (o.cluster != nil && o.clusterAllNamespaces) {
		return "all namespaces"
	}
	return "namespace: " + o.namespace
}

// noIssues says, as istioctl analyze does on stderr in every output format
// (istioctl/pkg/analyze/analyze.go Analyze), that no message was found: in the
// files read (one a line), else in the namespace or all namespaces of the
// cluster; with the files that could not be parsed counted, and nothing when
// only an object read from the cluster could not be decoded (its error is
// printed).
func noIssues(stderr io.Writer, o analyzeOptions, files []string, unparsed int, unreadable bool) {
	target := analyzeTarget(o)
	switch {
	case unparsed > 0:
		// istioctl names the namespace here, files or not.
		fileOrFiles := "files"
		if unparsed == 1 {
			fileOrFiles = "file"
		}
		fmt.Fprintf(stderr, "No validation issues found when analyzing %s (but %d %s could not be parsed).\n", target, unparsed, fileOrFiles)
	case unreadable:
	case len(files) > 0:
		fmt.Fprintf(stderr, "\u2714 No validation issues found when analyzing %s.\n", strings.Join(files, "\n"))
	default:
		fmt.Fprintf(stderr, "\u2714 No validation issues found when analyzing %s.\n", target)
	}
}

// shown is o as messages name it: an object without kind is "object", as
// validate names it (validation.Result.Object), not an empty kind
// ("( default/x FILE#0)").
func shown(o analysis.Object) analysis.Object {
	if o.Kind == "" {
		o.Kind = "object"
	}
	return o
}

// objectKey names an object by API group, kind, namespace (defaultNamespace
// when it names none) and name.
func objectKey(obj map[string]any, defaultNamespace string) string {
	u := unstructured.Unstructured{Object: obj}
	ns := u.GetNamespace()
	if ns == "" {
		ns = defaultNamespace
	}
	return strings.Join([]string{u.GroupVersionKind().Group, u.GetKind(), ns, u.GetName()}, "/")
}

// runRegoTests runs the Rego unit tests of dir and fails when one fails.
func runRegoTests(ctx context.Context, dir string, stdout io.Writer) error {
	if dir == "" {
		return fmt.Errorf("--test needs --rego DIR")
	}
	results, err := orgrules.RunTests(ctx, dir)
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		status := "PASS"
		if !r.Passed {
			status, failed = "FAIL", failed+1
		}
		fmt.Fprintf(stdout, "%s: %s", r.Name, status)
		if r.Detail != "" {
			fmt.Fprintf(stdout, " (%s)", r.Detail)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "PASS: %d/%d\n", len(results)-failed, len(results))
	// No test is a pass, as for opa test without --fail-on-empty (OPA's
	// cmd/test.go).
	if failed > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("%d of %d Rego tests failed", failed, len(results))}
	}
	return nil
}
