package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/analysis"
	"github.com/meshguard/meshguard/internal/dirwalk"
	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

type validateOptions struct {
	files     []string
	output    string
	namespace string
	// maxInputBytes bounds each input (file or stdin); 0 means manifest.DefaultMaxInputBytes.
	maxInputBytes int64
	// regoDir holds organisation rules (orgrules) applied to every object;
	// with regoTest, its Rego unit tests are run instead.
	regoDir  string
	regoTest bool
}

func newValidateCmd() *cobra.Command {
	o := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate -f FILE|DIR|- [-f ...]",
		Short: "Validate Istio config offline, with the same checks as the /validate webhook",
		Long: `Validate reads multi-document YAML or JSON (files, directories searched for
*.yaml, *.yml and *.json, or - for stdin) and checks every Istio object with the
webhook's rules, including the CRD OpenAPI and CEL rules. Objects of other API
groups are skipped.

Each problem is printed on one line:
  FILE#DOC: Kind namespace/name: field.path: message
(DOC counts the non-empty documents of FILE from 0; an item of a List
document is FILE#DOC.items[i]). Warnings are printed as
  FILE#DOC: warning: Kind namespace/name: field.path: message
and every document that is not validated (another API group) as
  FILE#DOC: skipped: Kind namespace/name: not an Istio API group
(Kind name for a kind known to be cluster-scoped, such as Namespace).
At most 100 errors and 100 warnings are printed per object; the rest are
summarised ("and 1,299,990 more warnings"). Each input is read up to
--max-input-size bytes (default 8 MiB, as meshguard inject); a larger one is
refused as unreadable. A directory is read up to 10,000 files and 64 MiB in
all, the bound of every directory input (--policy-dir too); name a larger one's
parts with several -f. Duplicate keys are errors naming the key and line.

An input that cannot be listed or read is printed as
  FILE: unreadable: message
With --rego, every object is held until the rules run: past 400,000 objects
(documents and List items of every -f) validation stops, naming the bound.

Exit status: 0 all valid, 1 some object invalid, 2 some input unreadable
(or no -f, too many objects for --rego, an unknown flag, a flag value that
does not parse, an argument).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.regoTest {
				return runRegoTests(cmd.Context(), o.regoDir, cmd.OutOrStdout())
			}
			if len(o.files) == 0 {
				// Nothing to read: the command could not run (2), not an
				// invalid object (1).
				return exitError{code: 2, msg: `required flag(s) "filename" not set`}
			}
			code := runValidate(cmd.Context(), *o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that do not set metadata.namespace")
	maxInputSizeFlag(cmd, &o.maxInputBytes, "largest input (file or stdin) read, in bytes (more than 0); larger input is refused")
	cmd.Flags().StringVar(&o.regoDir, "rego", "", "directory of organisation rules (Rego v1, package meshguard.validation; see docs/governance.md): deny messages are errors, warn messages warnings")
	cmd.Flags().BoolVar(&o.regoTest, "test", false, "with --rego: run the Rego unit tests of the directory (like opa test) instead of validating")
	// Accepted and ignored, as istioctl validate keeps it (hidden, without
	// effect since Mixer), so scripts written for istioctl still run.
	cmd.Flags().BoolP("referential", "x", true, "ignored (istioctl compatibility)")
	_ = cmd.Flags().MarkHidden("referential")
	return cmd
}

// docReport is one document's outcome in -o json.
type docReport struct {
	File     string `json:"file"`
	Document int    `json:"document"`
	// Item is the index in a List document's items, nil for a plain document.
	Item *int `json:"item,omitempty"`
	// Error is set when the input could not be read or parsed.
	Error string `json:"error,omitempty"`
	Valid bool   `json:"valid"`
	*validation.Result
	// whole: Error is about the whole input (it could not be listed or
	// read), printed as FILE, not FILE#DOC, in the text output.
	whole bool
}

// runValidate validates every input and returns the exit code (0, 1 or 2).
func runValidate(ctx context.Context, o validateOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.output != "text" && o.output != "json" {
		fmt.Fprintf(stderr, "Error: unsupported output format %q (text or json)\n", o.output)
		return 2
	}
	if o.namespace == "" {
		// As istioctl validate: an object is never validated without a namespace.
		o.namespace = metav1.NamespaceDefault
	}
	var rules *orgrules.Rules
	if o.regoDir != "" {
		var err error
		if rules, err = orgrules.Load(ctx, o.regoDir); err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 2
		}
	}
	// Reports are printed as they are made: what is kept in memory does not
	// grow with the number of objects (an 8 MiB input of a million empty
	// documents held gigabytes). Organisation rules run once every input is
	// read: they see each object with its namespace's labels and the objects
	// it refers to in the whole input, as `analyze --rego` and the webhook
	// do; then the objects and reports are kept until they have run.
	w := &reportWriter{json: o.output == "json", stdout: stdout, stderr: stderr}
	var set *ruleSet
	var held []docReport
	if rules != nil {
		set = newRuleSet(o.namespace)
	}
	unreadable, invalid := false, false
	// held counts the documents and List items held for the rules: with
	// --rego every object of every -f is kept until the rules run, so their
	// number is bounded as analyze's (maxClusterObjects, the audit's bound);
	// past it validation stops, an input it could not run on (2). Without
	// --rego nothing is held: each file is bounded by --max-input-size.
	heldObjects, stopped := 0, false
	hold := func(file string, doc int, item *int) bool {
		if set == nil || stopped {
			return !stopped
		}
		if heldObjects++; heldObjects > maxClusterObjects {
			stopped, unreadable = true, true
			w.write(docReport{File: file, Document: doc, Item: item,
				Error: fmt.Sprintf("more than %d objects held for the organisation rules (--rego): validation stopped", maxClusterObjects)})
			return false
		}
		return true
	}
	emit := func(r docReport) {
		if set != nil {
			held = append(held, r)
			return
		}
		invalid = invalid || (r.Result != nil && !r.Valid)
		w.write(r)
	}
	fail := func(file string, doc int, err error) {
		unreadable = true
		emit(docReport{File: file, Document: doc, Error: err.Error()})
	}
	failInput := func(file string, err error) {
		unreadable = true
		emit(docReport{File: file, Error: err.Error(), whole: true})
	}
	report := func(r docReport, obj map[string]any) {
		res := validation.ValidateObject(ctx, obj, validation.Options{DefaultNamespace: o.namespace})
		reportScope(&res)
		r.Valid, r.Result = res.Valid(), &res
		if set != nil {
			if err := set.add(obj, r.Result); err != nil {
				unreadable = true
				emit(docReport{File: r.File, Document: r.Document, Item: r.Item, Error: err.Error()})
				return
			}
		}
		emit(r)
	}
	for _, in := range o.files {
		files, err := expandInput(in)
		if err != nil {
			failInput(in, err)
			continue
		}
		for _, f := range files {
			file := f.name
			data, err := f.read(stdin, o.maxInputBytes)
			if err != nil {
				failInput(file, err)
				continue
			}
			// Each document is decoded when its turn comes, not all up front.
			docs, err := manifest.SplitRaw(data)
			for _, d := range docs {
				if !hold(file, d.Index, nil) {
					break
				}
				if d.Err != nil {
					fail(file, d.Index, d.Err)
					continue
				}
				obj, derr := manifest.Decode(d.Raw)
				if derr != nil {
					fail(file, d.Index, derr)
					continue
				}
				if obj == nil {
					continue
				}
				if !manifest.IsList(obj) {
					report(docReport{File: file, Document: d.Index}, obj)
					continue
				}
				items, err := manifest.Items(obj)
				if err != nil {
					fail(file, d.Index, err)
					continue
				}
				for i, item := range items {
					// The List document counted as its first item.
					if i > 0 && !hold(file, d.Index, &i) {
						break
					}
					report(docReport{File: file, Document: d.Index, Item: &i}, item)
				}
			}
			if err != nil && !stopped {
				fail(file, len(docs), err)
			}
			if stopped {
				break
			}
		}
		if stopped {
			break
		}
	}
	if stopped {
		// Nothing held is printed: the rules did not run.
		w.close()
		return 2
	}
	if set != nil {
		set.evaluate(ctx, rules)
		for _, r := range held {
			if r.Result != nil {
				r.Valid = r.Result.Valid()
				invalid = invalid || !r.Valid
			}
			w.write(r)
		}
	}
	w.close()
	switch {
	case unreadable:
		return 2
	case invalid:
		return 1
	}
	return 0
}

// reportWriter prints reports one at a time: text lines, or the elements of
// one indented JSON array.
type reportWriter struct {
	json           bool
	stdout, stderr io.Writer
	n              int // reports written
}

func (w *reportWriter) write(r docReport) {
	if w.json {
		b, _ := json.MarshalIndent(r, "  ", "  ")
		sep := ",\n  "
		if w.n == 0 {
			sep = "[\n  "
		}
		w.n++
		fmt.Fprintf(w.stdout, "%s%s", sep, b)
		return
	}
	where := fmt.Sprintf("%s#%d", r.File, r.Document)
	if r.whole {
		// As analyze prints an input it could not read.
		where = r.File
	}
	if r.Item != nil {
		where += fmt.Sprintf(".items[%d]", *r.Item)
	}
	if r.Error != "" {
		fmt.Fprintf(w.stderr, "%s: unreadable: %s\n", where, r.Error)
		return
	}
	if r.Skipped {
		fmt.Fprintf(w.stdout, "%s: skipped: %s: not an Istio API group\n", where, r.Object())
		return
	}
	for _, l := range r.ErrorLines() {
		fmt.Fprintf(w.stdout, "%s: %s\n", where, l)
	}
	for _, l := range r.WarningLines() {
		fmt.Fprintf(w.stdout, "%s: warning: %s\n", where, l)
	}
}

// close ends the JSON array ([] when there was no report).
func (w *reportWriter) close() {
	switch {
	case !w.json:
	case w.n == 0:
		fmt.Fprint(w.stdout, "[]\n")
	default:
		fmt.Fprint(w.stdout, "\n]\n")
	}
}

// input is one file of an -f argument: stdin ("-"), a file named on the
// command line, or a file listed from a directory.
type input struct {
	// name is the file as reported: under the directory as the user named it.
	name string
	// path, set for a file listed from a directory, is where it is read:
	// under the directory dirwalk.Files resolved (a mounted volume's content
	// directory of the listing, so one run reads one version of it).
	path string
}

// expandInput turns "-", a file or a directory into the list of files to read.
func expandInput(in string) ([]input, error) {
	if in == "-" {
		return []input{{name: "-"}}, nil
	}
	st, err := os.Stat(in)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []input{{name: in}}, nil
	}
	// Symlinks may point anywhere (a checkout's own links): the user names
	// the input.
	root, rel, err := dirwalk.Files(in, dirwalk.Options{Exts: []string{".yaml", ".yml", ".json"}})
	if errors.Is(err, manifest.ErrTooLarge) {
		// The bound of every directory input (--policy-dir's too), with no
		// flag: each -f is listed on its own, so its parts still validate.
		return nil, fmt.Errorf("reading directory %s: %w; name its subdirectories or files with several -f", in, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", in, err)
	}
	files := make([]input, len(rel))
	for i, r := range rel {
		files[i] = input{name: filepath.Join(in, r), path: filepath.Join(root, r)}
	}
	return files, nil
}

// read reads the input up to max bytes. A file listed from a directory is
// read as every directory loader reads it (manifest.ReadFile: a FIFO put in
// its place after the listing is refused, not waited on); a file named on the
// command line may be a pipe, as kubectl and istioctl read it
// (-f <(helm template ...)).
func (f input) read(stdin io.Reader, max int64) ([]byte, error) {
	if f.path != "" {
		return manifest.ReadFile(f.path, max)
	}
	return readInput(f.name, stdin, max)
}

// readInput reads one input, refusing more than max bytes (bounded before
// parsing: a 50 MB file must not become gigabytes of parsed objects).
func readInput(file string, stdin io.Reader, max int64) ([]byte, error) {
	if file == "-" {
		return manifest.ReadAll(stdin, max)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return manifest.ReadAll(f, max)
}

// ruleSet collects the objects of one validate run for the organisation
// rules: the mesh objects with their results, and the Kubernetes objects
// (Namespaces' labels, Services) that references and rules may name.
type ruleSet struct {
	defaultNS string
	subjects  []ruleSubject
	kube      analysis.Input
}

type ruleSubject struct {
	obj map[string]any
	res *validation.Result
}

func newRuleSet(defaultNS string) *ruleSet {
	return &ruleSet{defaultNS: defaultNS}
}

// add records a mesh object, or a Kubernetes object read as analyze reads it
// (analysis.Input.AddKubernetesObject): a Namespace whose labels do not
// decode is an error, as there, not labels silently left out.
func (s *ruleSet) add(obj map[string]any, res *validation.Result) error {
	if res.Skipped {
		_, err := s.kube.AddKubernetesObject(obj, s.defaultNS)
		return err
	}
	s.subjects = append(s.subjects, ruleSubject{obj, res})
	return nil
}

// evaluate applies the rules to every object. Only valid objects are
// indexed as referable.
func (s *ruleSet) evaluate(ctx context.Context, rules *orgrules.Rules) {
	var objs []crossref.Object
	for _, sub := range s.subjects {
		if sub.res.Valid() && sub.res.Spec() != nil {
			objs = append(objs, crossref.Object{Kind: sub.res.Kind, Key: crossref.Key{Namespace: sub.res.Namespace, Name: sub.res.Name}, Spec: sub.res.Spec()})
		}
	}
	ix := crossref.IndexOf("", s.kube.Services, s.kube.Namespaces, objs)
	for _, sub := range s.subjects {
		errs, warns := orgrules.Check(ctx, rules, ix, sub.res.Kind, sub.res.Namespace, sub.res.Name, sub.res.Spec(), sub.obj, orgrules.Admission{})
		sub.res.Errors = append(sub.res.Errors, errs...)
		sub.res.Warnings = append(sub.res.Warnings, warns...)
	}
}
